"""Health: probe, rise/fall state, monitor loop."""
