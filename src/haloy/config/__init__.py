"""Configuration: typed models and loaders for haloy.yaml and haloyd.yaml, and `Paths`."""
