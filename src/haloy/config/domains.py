"""Host-name syntax for app domains, aliases and the API domain (RFC 1123 labels)."""

from __future__ import annotations

import re

_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
MAX_DOMAIN_LENGTH = 253  # RFC 1035 2.3.4: 255 octets on the wire = 253 characters in text


def domain_problem(value: str, *, allow_wildcard: bool = False) -> str | None:
    """Why `value` is not a valid host name, or None when it is."""
    if not value:
        return "domain must not be empty"
    if "://" in value:
        return f"{value!r} is a URL; give the host name only (e.g. example.com)"
    if "/" in value:
        return f"{value!r} contains a path; give the host name only"
    if ":" in value:
        return f"{value!r} contains a port; give the host name only"
    if "*" in value and not allow_wildcard:
        return f"wildcard domain {value!r} is not allowed here; list each host name"
    if len(value) > MAX_DOMAIN_LENGTH:
        return f"domain is longer than {MAX_DOMAIN_LENGTH} characters"
    labels = value.lower().removesuffix(".").split(".")
    if allow_wildcard and labels[0] == "*":
        labels = labels[1:]
    if len(labels) < 2:
        return f"{value!r} is not a fully qualified domain name (e.g. app.example.com)"
    for label in labels:
        if not _LABEL.fullmatch(label):
            return (
                f"invalid domain {value!r}: label {label!r} must be 1-63 letters, digits "
                "or hyphens, not starting or ending with a hyphen"
            )
    if labels[-1].isdigit():
        return f"{value!r} looks like an IP address; give a domain name"
    return None


def normalize_domain(value: str) -> str:
    """Validate a domain and return it in canonical form (lower case, no trailing dot)."""
    problem = domain_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value.lower().removesuffix(".")
