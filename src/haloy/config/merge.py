"""Targets merged over the root of haloy.yaml (pure).

A target inherits every root field it does not set. `env` merges by name (a target entry
replaces the root entry of the same name, in place; new names are appended); `image` merges
field by field over the root image (or over the shared image `image_key` names). Each merged
field remembers the key path it came from, so later rules can point at the right line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from haloy.config.app_models import AppFile, ImageSpec, TargetSpec
from haloy.config.problems import Problem
from haloy.config.source import Loc
from haloy.config.values import EnvVar

_SPECIAL = {"name", "image", "image_key", "env"}
# What a preset changes unless the file says otherwise: a database keeps one container with
# a fixed name (clients and volumes point at it), is replaced in place, and is protected.
PRESET_DEFAULTS: dict[str, dict[str, Any]] = {
    "database": {
        "deployment_strategy": "replace",
        "naming_strategy": "static",
        "protected": True,
        "replicas": 1,
    },
    "service": {"deployment_strategy": "replace", "replicas": 1},
}


@dataclass
class MergedTarget:
    """One target after merging: the combined spec and where each field was written."""

    key: str | None
    spec: TargetSpec
    base: Loc
    origins: dict[str, Loc] = field(default_factory=dict)
    env_origins: list[Loc] = field(default_factory=list)

    def origin(self, name: str) -> Loc:
        """Where a field was written, else the target's own key (or the root)."""
        return self.origins.get(name, self.base)


def is_set(spec: TargetSpec | ImageSpec, name: str) -> bool:
    """A field the file actually gives (not a model default, not null)."""
    return name in spec.model_fields_set and getattr(spec, name) is not None


def merge_image(base: ImageSpec | None, over: ImageSpec | None) -> ImageSpec | None:
    """`over`'s fields win over `base`'s, one field at a time."""
    if base is None or over is None:
        return over if base is None else base
    values = {name: getattr(base, name) for name in base.model_fields_set}
    values.update({name: getattr(over, name) for name in over.model_fields_set})
    return ImageSpec.model_construct(_fields_set=set(values), **values)


def merge_env(
    root: list[EnvVar], root_loc: Loc, over: list[EnvVar], over_loc: Loc
) -> tuple[list[EnvVar], list[Loc]]:
    """Root env entries with the target's entries replacing same-named ones in place."""
    merged = list(root)
    origins: list[Loc] = [(*root_loc, i) for i in range(len(root))]
    for i, entry in enumerate(over):
        names = [e.name for e in merged]
        if entry.name in names:
            at = names.index(entry.name)
            merged[at], origins[at] = entry, (*over_loc, i)
        else:
            merged.append(entry)
            origins.append((*over_loc, i))
    return merged, origins


def _image_level(
    spec: TargetSpec, images: dict[str, ImageSpec], loc: Loc, problems: list[Problem]
) -> tuple[ImageSpec | None, bool]:
    """The image one level (root or target) asks for, and whether it replaces the base."""
    if is_set(spec, "image") and is_set(spec, "image_key"):
        message = "give either 'image' or 'image_key', not both"
        problems.append(Problem((*loc, "image_key"), message))
    if is_set(spec, "image_key"):
        key = spec.image_key or ""
        if key not in images:
            known = ", ".join(sorted(images)) or "none defined"
            problems.append(
                Problem((*loc, "image_key"), f"unknown image_key {key!r} (images: {known})")
            )
            return None, True
        return images[key], True
    return spec.image, False


def merge_targets(app: AppFile, problems: list[Problem]) -> list[MergedTarget]:
    """Every target of the file merged over the root; problems found on the way are appended."""
    images = app.images or {}
    root_image, root_replaces = _image_level(app, images, (), problems)
    root_origin: Loc = ("image_key",) if is_set(app, "image_key") else ("image",)
    entries: list[tuple[str | None, TargetSpec, Loc]] = (
        [(key, spec, ("targets", key)) for key, spec in app.targets.items()]
        if app.targets
        else [(None, TargetSpec(), ())]
    )
    merged: list[MergedTarget] = []
    for key, spec, loc in entries:
        values: dict[str, Any] = {}
        target = MergedTarget(key, TargetSpec(), loc)
        for name in TargetSpec.model_fields:
            if name in _SPECIAL:
                continue
            source, where = (spec, loc) if is_set(spec, name) else (app, ())
            if is_set(source, name):
                values[name] = getattr(source, name)
                target.origins[name] = (*where, name)
        if key is None:
            values["name"] = app.name
            target.origins["name"] = ("name",)
        else:
            values["name"] = spec.name or key
            target.origins["name"] = (*loc, "name") if spec.name else loc
        image, replaces = _image_level(spec, images, loc, problems)
        if image is not None or replaces:
            values["image"] = image if replaces else merge_image(root_image, image)
            target.origins["image"] = (*loc, "image_key" if replaces else "image")
        elif root_image is not None or root_replaces:
            values["image"] = root_image
            target.origins["image"] = root_origin
        env, target.env_origins = merge_env(
            list(app.env or []), ("env",), list(spec.env or []), (*loc, "env")
        )
        values["env"] = env
        for name, value in PRESET_DEFAULTS.get(values.get("preset") or "", {}).items():
            if name not in values:
                values[name] = value
                target.origins[name] = target.origins["preset"]
        target.spec = TargetSpec.model_construct(_fields_set=set(values), **values)
        merged.append(target)
    return merged
