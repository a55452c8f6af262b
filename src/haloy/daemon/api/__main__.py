"""`python -m haloy.daemon.api > docs/openapi.json`: print the OpenAPI document."""

import sys

from haloy.daemon.api.openapi import build_openapi, render

sys.stdout.write(render(build_openapi()))
