"""`haloyd`: the control-plane daemon."""
