"""`python -m haloy.proxy`: the same as the `haloy-proxy` script."""

from haloy.proxy.main import main

main()
