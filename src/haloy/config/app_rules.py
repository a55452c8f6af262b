"""Rules that need the merged targets: required fields, strategies, duplicates, references.

Each rule returns Problems located at the key that caused them, so one run reports every
problem of a file at once.
"""

from __future__ import annotations

from collections.abc import Iterator

from haloy.config.app_models import AppFile
from haloy.config.interpolate import reference_errors
from haloy.config.merge import MergedTarget
from haloy.config.problems import Problem
from haloy.config.source import Loc
from haloy.config.values import EnvVar, SourceReference

MUTABLE_TAGS = ("", "latest", "main", "master", "develop", "staging", "production")


def target_rules(t: MergedTarget, app: AppFile) -> Iterator[Problem]:
    """Problems of one merged target."""
    spec = t.spec
    where = "" if t.key is None else f" (target {t.key!r})"
    if not spec.name:
        yield Problem(t.origins.get("name", (*t.base, "name")), f"'name' is required{where}")
    if not spec.server:
        yield Problem(t.origins.get("server", (*t.base, "server")), f"'server' is required{where}")
    yield from _image_rules(t)
    if spec.naming_strategy == "static":
        if spec.deployment_strategy != "replace":
            yield Problem(
                t.origin("naming_strategy"),
                "naming_strategy 'static' requires deployment_strategy 'replace' "
                "(two containers cannot share one name during a rolling update)",
            )
        if (spec.replicas or 1) > 1:
            yield Problem(
                t.origin("replicas"), "naming_strategy 'static' allows at most 1 replica"
            )
    yield from _env_rules(t)
    yield from _secret_rules(t, app)


def _image_rules(t: MergedTarget) -> Iterator[Problem]:
    image = t.spec.image
    loc = t.origin("image")
    if image is None:
        if "image" not in t.origins:
            yield Problem((*t.base, "image"), "'image' (or 'image_key') is required")
        return
    if not image.repository:
        yield Problem(loc, "image.repository is required")
    history = image.history
    if history is not None and history.strategy == "registry":
        if (image.tag or "") in MUTABLE_TAGS:
            yield Problem(
                (*loc, "history"),
                "history strategy 'registry' needs an immutable image tag such as v1.2.3",
            )
        if not history.pattern:
            yield Problem((*loc, "history"), "history strategy 'registry' needs a 'pattern'")
    builds = image.build if image.build is not None else image.build_config is not None
    if builds:
        push = image.build_config.push if image.build_config else None
        push = push or ("registry" if image.registry else "server")
        if push == "registry" and image.registry is None:
            yield Problem(loc, "push 'registry' needs image.registry credentials")
        if push == "server" and image.registry is not None:
            yield Problem(
                (*loc, "registry"),
                "image.registry cannot be used with push 'server' (the image is uploaded)",
            )


def _env_rules(t: MergedTarget) -> Iterator[Problem]:
    templates: dict[str, str | None] = {}
    origins = dict(zip((e.name for e in t.spec.env or []), t.env_origins, strict=True))
    for entry in t.spec.env or []:
        templates[entry.name] = entry.value
    for err in reference_errors(templates, set(templates)):
        yield Problem((*origins[err.name], "value"), str(err))


def _secret_rules(t: MergedTarget, app: AppFile) -> Iterator[Problem]:
    refs: list[tuple[SourceReference, Loc]] = []
    for entry, origin in zip(t.spec.env or [], t.env_origins, strict=True):
        if entry.from_ is not None:
            refs.append((entry.from_, (*origin, "from", "secret")))
    if t.spec.api_token is not None and t.spec.api_token.from_ is not None:
        refs.append((t.spec.api_token.from_, (*t.origin("api_token"), "from", "secret")))
    providers = app.secret_providers
    for ref, loc in refs:
        if ref.secret is None:
            continue
        provider, source, _ = ref.secret_parts
        sources = getattr(providers, provider, None) if providers else None
        if not sources or source not in sources:
            yield Problem(
                loc,
                f"secret source {source!r} is not defined under secret_providers.{provider}",
            )


def file_rules(app: AppFile, targets: list[MergedTarget]) -> Iterator[Problem]:
    """Problems across targets: duplicate app names and duplicate domains."""
    if app.targets == {}:
        yield Problem(("targets",), "targets is empty; remove it or define a target")
    names: dict[str, str | None] = {}
    domains: dict[str, str] = {}
    for t in targets:
        label = t.key or "(root)"
        name = t.spec.name
        if name and name in names and t.key is not None:
            yield Problem(
                t.origin("name"),
                f"app name {name!r} is used by targets {names[name]!r} and {label!r}",
            )
        if name:
            names.setdefault(name, label)
        seen_here: set[str] = set()
        for i, domain in enumerate(t.spec.domains or []):
            loc = (*t.origin("domains"), i)
            for host in (domain.domain, *domain.aliases):
                owner = domains.setdefault(host, label)
                if host in seen_here:
                    yield Problem(loc, f"domain {host!r} is listed twice")
                elif owner != label:
                    yield Problem(loc, f"domain {host!r} is already used by target {owner!r}")
                seen_here.add(host)
    yield from _duplicate_env(app)


def _duplicate_env(app: AppFile) -> Iterator[Problem]:
    levels: list[tuple[Loc, list[EnvVar]]] = [(("env",), app.env or [])]
    levels += [(("targets", k, "env"), t.env or []) for k, t in (app.targets or {}).items()]
    for loc, entries in levels:
        seen: set[str] = set()
        for i, entry in enumerate(entries):
            if entry.name in seen:
                yield Problem((*loc, i, "name"), f"env {entry.name!r} is defined twice")
            seen.add(entry.name)
