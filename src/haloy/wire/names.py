"""The two names that travel from haloyd to the proxy: app names and deployment ids (pure).

Both are written into container labels, read back by discovery, sent in the route snapshot
and shown in the proxy's status and Prometheus labels, so each is held to one character set
wherever it enters (haloy.yaml, labels, snapshot): letters, digits and a few separators, never
quotes, backslashes, spaces or newlines.
"""

from __future__ import annotations

import re

APP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")  # Docker container-name safe
APP_NAME_RULE = "letters, digits, '-' and '_', starting with a letter or digit"

# haloyd's ids are ULIDs: 26 characters of Crockford's base32, upper case (image tags carry
# them in lower case). Letters and digits admit both; 64 bounds a label an engine may hold.
DEPLOYMENT_ID = re.compile(r"[A-Za-z0-9]{1,64}")
DEPLOYMENT_ID_RULE = "1-64 letters and digits (haloyd generates ULIDs)"


def is_app_name(value: str) -> bool:
    """True when `value` is a valid app name."""
    return APP_NAME.fullmatch(value) is not None


def is_deployment_id(value: str) -> bool:
    """True when `value` is a valid deployment id."""
    return DEPLOYMENT_ID.fullmatch(value) is not None
