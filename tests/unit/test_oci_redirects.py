"""Which redirects a registry may send (agent.oci.transport.redirect_rule), case by case; the
same rule against the real registry behind a faulting proxy: test_registry_faults.py."""

from __future__ import annotations

import pytest

from agent.oci.redirects import redirect_rule

SCOPES = {"reg.example/profiles/a": "team", "reg.example/profiles/b": "team",
          "mirror.example/profiles/a": "team", "reg.example/other/x": "other"}
RULE = redirect_rule(plain_http=frozenset({"plain.example"}), scope_of=SCOPES.get)
MANIFEST = "https://reg.example/v2/profiles/a/manifests/v1"
BLOB = "https://reg.example/v2/profiles/a/blobs/sha256:" + "ab" * 32


@pytest.mark.parametrize(("origin", "target", "method"), [
    (MANIFEST, "https://reg.example/v2/profiles/a/manifests/v1?x=1", "HEAD"),  # same repository
    (MANIFEST, "https://mirror.example/v2/profiles/a/manifests/v1", "GET"),  # same trust scope
    (BLOB, "https://storage.example/bucket/data?sig=1", "GET"),  # blobs: checked by digest
    (BLOB, "http://plain.example/blobs/data", "GET"),  # down to http: an insecure registry
])
def test_followed(origin: str, target: str, method: str) -> None:
    assert RULE(origin, target, method) == ""


@pytest.mark.parametrize(("origin", "target", "method", "why"), [
    (MANIFEST, "ftp://reg.example/v2/profiles/a/manifests/v1", "GET", "not an http(s) URL"),
    (MANIFEST, "file:///etc/passwd", "GET", "not an http(s) URL"),
    (MANIFEST, "http://reg.example/v2/profiles/a/manifests/v1", "GET", "down to plain http"),
    (MANIFEST, "https://reg.example/v2/other/x/manifests/v1", "GET", "outside the trust scope"),
    (MANIFEST, "https://reg.example/v2/nobody/manifests/v1", "GET", "outside the trust scope"),
    (MANIFEST, "https://storage.example/bucket/data", "GET", "only blob reads"),
    (BLOB, "https://storage.example/bucket/data", "PUT", "only blob reads"),
])
def test_refused(origin: str, target: str, method: str, why: str) -> None:
    assert why in RULE(origin, target, method)
