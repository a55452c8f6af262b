"""An image upload must not silently move a tag deployment history points to.

Every deployment tags its image `<app>:<deployment id>`. `docker load` moves any tag the tar
names, so an upload naming such a tag with another image would make the tag lie about what
that deployment ran. After each load the tags it set are checked against history: a moved
one is put back on the recorded image and the upload answers 409. (Rollback itself never
trusts the tag: it runs the recorded digest.)
"""

from __future__ import annotations

from collections.abc import Sequence

from haloy.daemon.api.problems import ApiProblem
from haloy.daemon.api.validate import deployment_id_problem
from haloy.runtime.engine import ImageStore
from haloy.runtime.images import digests_of, repository
from haloy.store import DeploymentStore


class HistoryTags:
    """Checks loaded references against the deployments history keeps."""

    def __init__(self, images: ImageStore, store: DeploymentStore) -> None:
        self.images = images
        self.store = store

    async def recorded_digest(self, ref: str) -> str | None:
        """The digest history records for `ref` when it is a deployment's tag, else None."""
        repo = repository(ref)
        tag = ref[len(repo) + 1:] if ref.startswith(f"{repo}:") else ""
        dep_id = tag.upper()
        if not tag or deployment_id_problem(dep_id):
            return None
        dep = await self.store.get(dep_id)
        if dep is None or dep.app != repo or not dep.image_digest:
            return None
        return dep.image_digest

    async def check(self, refs: Sequence[str]) -> None:
        """Raise 409 (after restoring the tag) if a load moved a deployment's tag."""
        for ref in refs:
            digest = await self.recorded_digest(ref)
            if digest is None:
                continue
            now = await self.images.inspect(ref)
            if now is not None and digest in (now.id, *digests_of(now)):
                continue  # the same image again
            recorded = await self.images.by_digest(digest)
            if recorded is not None:
                repo, _, tag = ref.rpartition(":")
                await self.images.tag(recorded.id, repo, tag)
            else:
                await self.images.untag(ref)
            raise ApiProblem(
                409, f"{ref} is the tag of a deployment in history ({digest}); the upload "
                "may not move it" + ("" if recorded is not None else
                                     " (the recorded image is gone, so the tag was removed)"),
                hint="tag the image with another name; haloy deploy tags deployments itself",
                code="image_tag_in_use",
            )
