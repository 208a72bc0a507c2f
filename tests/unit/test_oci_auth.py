import base64
import json
from pathlib import Path

import pytest

from agent.clock import FakeClock
from agent.errors import RegistryError
from agent.oci.auth import (
    Challenge,
    Credential,
    HostAuth,
    Token,
    auth_file,
    load_credentials,
    parse_challenge,
)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_auth_file_precedence(tmp_path: Path) -> None:
    home = tmp_path / "home"
    configured = tmp_path / "configured.json"
    env = {"REGISTRY_AUTH_FILE": str(tmp_path / "env.json")}
    assert auth_file(configured, env, home) == (configured, True)
    assert auth_file(None, env, home) == (tmp_path / "env.json", True)
    assert auth_file(None, {}, home) == (home / ".docker" / "config.json", False)


def test_credentials_by_host(tmp_path: Path) -> None:
    path = tmp_path / "auth.json"
    path.write_text(json.dumps({"auths": {
        "127.0.0.1:5000": {"auth": b64("alice:s3cr:et")},
        "https://Registry.Example/v1/": {"username": "bob", "password": "pw"},
        "helper.example": {},  # credential helper entries: not ours to run
        "broken.example": {"auth": "%%%"},
    }, "credsStore": "desktop"}))
    before = path.stat().st_mtime_ns
    creds = load_credentials(path, explicit=True)
    assert creds == {"127.0.0.1:5000": Credential("alice", "s3cr:et"),
                     "registry.example": Credential("bob", "pw")}
    assert path.stat().st_mtime_ns == before
    assert "s3cr" not in repr(creds)


def test_missing_and_broken_auth_files(tmp_path: Path) -> None:
    assert load_credentials(tmp_path / "absent.json", explicit=False) == {}
    with pytest.raises(RegistryError, match="does not exist"):
        load_credentials(tmp_path / "absent.json", explicit=True)
    bad = tmp_path / "bad.json"
    bad.write_text('{"auths": {"r": {"auth": "c2VjcmV0"}}')  # truncated
    with pytest.raises(RegistryError, match="not valid JSON") as info:
        load_credentials(bad, explicit=True)
    assert "c2VjcmV0" not in str(info.value)


def test_parse_challenge() -> None:
    assert parse_challenge('Basic realm="secprof test"') == Challenge(
        scheme="basic", realm="secprof test")
    assert parse_challenge(
        'Bearer realm="https://auth.example/token",service="registry.example",'
        'scope="repository:p/x:pull,push"') == Challenge(
        scheme="bearer", realm="https://auth.example/token", service="registry.example",
        scope="repository:p/x:pull,push")
    assert parse_challenge("Negotiate abc") is None
    assert parse_challenge("") is None


def test_one_bearer_token_per_scope() -> None:
    clock = FakeClock()
    auth = HostAuth("r", Credential("u", "p"), plain_http=False, clock=clock.monotonic)
    asked: list[Challenge] = []

    def fetch(challenge: Challenge, credential: Credential | None) -> Token:
        asked.append(challenge)
        return Token(value=f"t{len(asked)}", lifetime_s=300)

    header = 'Bearer realm="https://auth/token",service="s",scope="{}"'
    pull, push = "repository:a:pull", "repository:a:pull,push"
    assert auth.answer(header.format(pull), pull, fetch) == "Bearer t1"
    assert auth.answer(header.format(push), push, fetch) == "Bearer t2"
    assert auth.header(pull) == "Bearer t1"
    assert auth.header(push) == "Bearer t2"
    assert auth.header("repository:b:pull") is None
    clock.advance(296)  # renewed a little before it expires
    assert auth.header(pull) is None
    assert [c.scope for c in asked] == [pull, push]


def test_basic_is_sent_once_the_registry_asked_for_it() -> None:
    auth = HostAuth("r", Credential("u", "p"), plain_http=True, clock=FakeClock().monotonic)
    assert auth.header("repository:a:pull") is None
    answer = auth.answer('Basic realm="x"', "repository:a:pull", lambda c, k: Token(
        value="", lifetime_s=0))
    assert answer == Credential("u", "p").basic()
    assert auth.header("repository:other:pull") == answer


def test_refusals_are_clear() -> None:
    anonymous = HostAuth("r", None, plain_http=False, clock=FakeClock().monotonic)
    with pytest.raises(RegistryError, match="no credentials") as info:
        anonymous.answer('Basic realm="x"', "s", lambda c, k: Token(value="", lifetime_s=0))
    assert info.value.code == "registry-auth-required"
    with pytest.raises(RegistryError, match="only fetches tokens over HTTPS"):
        anonymous.answer('Bearer realm="http://evil.example/token"', "s",
                         lambda c, k: Token(value="", lifetime_s=0))
    with pytest.raises(RegistryError, match="does not name"):
        anonymous.answer("Negotiate", "s", lambda c, k: Token(value="", lifetime_s=0))
    assert HostAuth("r", Credential("u", "p"), plain_http=False,
                    clock=FakeClock().monotonic).rejected().code == "registry-auth-failed"
