"""The `haloy` command line: commands, API client, terminal output."""
