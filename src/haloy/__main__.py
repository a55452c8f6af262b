"""`python -m haloy` runs the `haloy` CLI."""

from haloy.cli.main import main

if __name__ == "__main__":
    main()
