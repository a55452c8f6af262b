"""haloy: deploy Docker containers to your own servers with zero downtime."""

__version__ = "0.1.0"
