"""schemathesis hooks for test_api_fuzz: bodies for `application/x-tar` (POST /v1/images).

Random bytes, and small real tar archives of random members (what `docker load` parses
further before it refuses them). Loaded with SCHEMATHESIS_HOOKS=tests.e2e.schemathesis_hooks.
"""

from __future__ import annotations

import io
import tarfile

import schemathesis
from hypothesis import strategies as st


def _tar(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


NAMES = st.sampled_from(["manifest.json", "repositories", "index.json", "oci-layout",
                         "blobs/sha256/00", "x/layer.tar", "../escape"]) | st.text(
    st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=20)
CONTENT = st.sampled_from([b"[]", b"{}", b'[{"Config":"c.json","RepoTags":["x:y"],"Layers":'
                           b'["l.tar"]}]', b'{"imageLayoutVersion":"1.0.0"}']) | st.binary(
    max_size=256)
TARS = st.binary(max_size=2048) | st.dictionaries(NAMES, CONTENT, max_size=4).map(_tar)

schemathesis.openapi.media_type("application/x-tar", TARS)
