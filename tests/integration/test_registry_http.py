"""The HTTP layer's fixes over oras-py (research/oci-sigstore.md §2.4), against servers that
misbehave on purpose: a total deadline, bounded retries with a short backoff, one Bearer token
per scope, and bodies read under a cap and a deadline."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from agent.errors import RegistryError, RegistryUnreachable
from agent.oci.reference import parse
from agent.oci.registry import RegistryClient
from agent.oci.transport import HttpPolicy
from agent.seccomp.render import digest
from tests.support.fake_http import black_hole, serve, tls_drip

MANIFEST = b'{"schemaVersion":2}'


def client(host: str, sleeps: list[float] | None = None, **policy: float) -> RegistryClient:
    record = sleeps if sleeps is not None else []
    return RegistryClient(policy=HttpPolicy(plain_http=frozenset({host}), **policy),
                          credentials={}, sleep=record.append)


def test_a_registry_that_never_answers_costs_the_timeout_and_no_more() -> None:
    with black_hole() as host:
        started = time.monotonic()
        with pytest.raises(RegistryUnreachable, match="timed out"):
            client(host, timeout_s=1.0, connect_timeout_s=0.5, retries=5).resolve(
                parse(f"oci://{host}/p/a:v1"))
        assert time.monotonic() - started < 2.0


def test_retries_are_bounded_and_short() -> None:
    def unavailable(method: str, path: str, headers: dict[str, str]
                    ) -> tuple[int, dict[str, str], bytes]:
        return 503, {"Content-Type": "application/json"}, json.dumps(
            {"errors": [{"code": "UNAVAILABLE", "message": "try later"}]}).encode()

    with serve(unavailable) as (host, seen):
        sleeps: list[float] = []
        with pytest.raises(RegistryUnreachable, match="answered 503: try later"):
            client(host, sleeps, retries=2).manifest(parse(f"oci://{host}/p/a:v1"),
                                                     digest(MANIFEST))
        assert len(seen) == 3
        assert sleeps == [0.25, 0.5]


def test_not_found_is_an_answer_and_is_not_retried() -> None:
    def missing(method: str, path: str, headers: dict[str, str]
                ) -> tuple[int, dict[str, str], bytes]:
        return 404, {}, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}'

    with serve(missing) as (host, seen):
        with pytest.raises(RegistryError) as info:
            client(host, retries=3).manifest(parse(f"oci://{host}/p/a:v1"), digest(MANIFEST))
        assert not isinstance(info.value, RegistryUnreachable)
        assert info.value.code == "artifact-not-found"
        assert "manifest unknown" in info.value.message
        assert len(seen) == 1


def test_one_bearer_token_per_scope() -> None:
    """oras-py keeps one token and fails on a second repository; here each scope has its own."""
    tokens: list[str] = []

    def token_registry(method: str, path: str, headers: dict[str, str]
                       ) -> tuple[int, dict[str, str], bytes]:
        url = urlsplit(path)
        if url.path == "/token":
            scope = parse_qs(url.query)["scope"][0]
            tokens.append(scope)
            return 200, {}, json.dumps({"token": f"tok {scope}", "expires_in": 300}).encode()
        repo = url.path.split("/")[2]
        scope = f"repository:{repo}:pull"
        if headers.get("authorization") != f"Bearer tok {scope}":
            return 401, {"WWW-Authenticate": f'Bearer realm="http://{own_host}/token",'
                         f'service="fake",scope="{scope}"'}, b""
        return 200, {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, MANIFEST

    with serve(token_registry) as (own_host, seen):
        registry = client(own_host)
        for repo in ("a", "b", "a", "b"):
            assert registry.manifest(parse(f"oci://{own_host}/{repo}:v1"),
                                     digest(MANIFEST)) == MANIFEST
        assert tokens == ["repository:a:pull", "repository:b:pull"]
        # Two challenged requests, two token requests, two answered, then two with the cached
        # tokens straight away.
        assert len(seen) == 8


def test_a_body_dripping_past_the_deadline_is_cut_off() -> None:
    def drip(method: str, path: str, headers: dict[str, str]
             ) -> tuple[int, dict[str, str], list[bytes]]:
        return 200, {}, [b"y" * 10] * 100  # 100 chunks, 0.2 s apart: each read is quick

    with serve(drip) as (host, _):
        started = time.monotonic()
        with pytest.raises(RegistryUnreachable, match="took longer than the timeout"):
            client(host, timeout_s=1.0, retries=0).blob(
                parse(f"oci://{host}/p/a:v1"), digest(b"y" * 1000), 1000, max_bytes=2000)
        assert time.monotonic() - started < 1.8


def test_a_manifest_over_four_mib_is_refused() -> None:
    def huge(method: str, path: str, headers: dict[str, str]
             ) -> tuple[int, dict[str, str], bytes | list[bytes]]:
        return 200, {}, b" " * (4 * 1024 * 1024 + 1)

    with serve(huge) as (host, _):
        with pytest.raises(RegistryError) as info:
            client(host).manifest(parse(f"oci://{host}/p/a:v1"), digest(b"{}"))
        assert info.value.code == "manifest-too-large"


def test_a_tls_handshake_dripping_past_the_deadline_is_cut_off() -> None:
    """Each byte of the server's handshake comes within the socket timeout, the whole never:
    the operation's deadline ends the handshake too."""
    with tls_drip(pause_s=0.1) as host:
        tls = RegistryClient(policy=HttpPolicy(timeout_s=1.0, connect_timeout_s=0.5,
                                               retries=0), credentials={})
        started = time.monotonic()
        with pytest.raises(RegistryUnreachable, match="timed out"):
            tls.resolve(parse(f"oci://{host}/p/a:v1"))
        assert time.monotonic() - started < 3.0
