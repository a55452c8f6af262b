"""Which `dev.haloy.*` labels of a container were set when it was created (pure).

Docker copies an image's labels onto every container made from it, so without this an image
could route itself to any host name (`LABEL dev.haloy.domain.1=api.example.com`). A routing
label counts only when whoever created the container set it:

* haloyd lists the keys it sets in `dev.haloy.labels` on every container it creates; when that
  list is the container's own (not inherited), exactly the listed keys count.
* otherwise (a container a person started with `docker run --label ...`), a key counts when
  its value differs from the image's: the create call set it. A label equal to the image's is
  taken as inherited and ignored, even if the person repeated it.

Labels outside `dev.haloy.` are passed through untouched.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

PREFIX = "dev.haloy."
OWN_LABELS = "dev.haloy.labels"


@dataclass(frozen=True)
class Sorted:
    """A container's labels split by origin."""

    own: Mapping[str, str]
    ignored: tuple[str, ...] = ()  # dev.haloy.* keys that came from the image


def own_list(keys: Iterable[str]) -> str:
    """The value haloyd puts in `dev.haloy.labels` for the labels it sets."""
    return ",".join(sorted({k for k in keys if k.startswith(PREFIX)} | {OWN_LABELS}))


def sort_labels(labels: Mapping[str, str], image: Mapping[str, str]) -> Sorted:
    """Keep the container's own `dev.haloy.*` labels; name the inherited ones."""
    listed: set[str] | None = None
    if OWN_LABELS in labels and image.get(OWN_LABELS) != labels[OWN_LABELS]:
        listed = {k.strip() for k in labels[OWN_LABELS].split(",")}
    own: dict[str, str] = {}
    ignored: list[str] = []
    for key, value in labels.items():
        if not key.startswith(PREFIX):
            own[key] = value
        elif (key in listed) if listed is not None else image.get(key) != value:
            own[key] = value
        else:
            ignored.append(key)
    return Sorted(own, tuple(sorted(ignored)))
