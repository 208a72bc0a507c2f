"""Routes, status codes and JSON shapes, from parsed request to response (no socket)."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from typing import Any

import pytest

from agent.api.listen import Peer
from agent.api.protocol import Request, Response, error_response
from agent.api.routes import Api
from agent.daemon.state import Outcome
from agent.errors import ApiError
from agent.reconcile.status import Report
from tests.support.control import T0, MemoryControl, clock, running, starting

ROOT = Peer(pid=100, uid=0, gid=0)
USER = Peer(pid=200, uid=1000, gid=1000)


def call(control: MemoryControl, method: str, target: str, peer: Peer = ROOT) -> Response:
    path, _, query = target.partition("?")
    request = Request(method=method, path=path, query=query, headers={"host": "x"})
    try:
        return Api(control, clock=clock).handle(request, peer)
    except ApiError as exc:
        return error_response(exc)


def doc(response: Response) -> Any:
    assert response.content_type == "application/json"
    return json.loads(response.body)


def error(response: Response) -> tuple[int, str]:
    body = doc(response)
    assert "error" in body
    assert set(body["error"]) >= {"code", "message"}
    return response.status, body["error"]["code"]


@pytest.fixture
def live() -> MemoryControl:
    return MemoryControl(running())


def test_healthz(live: MemoryControl) -> None:
    response = call(live, "GET", "/v1/healthz")
    assert (response.status, doc(response)) == (200, {"schema_version": 1, "ok": True})


def test_readyz_is_503_until_the_first_reconcile_then_200() -> None:
    control = MemoryControl(starting())
    response = call(control, "GET", "/v1/readyz")
    assert response.status == 503
    assert doc(response)["ready"] is False
    assert doc(response)["error"]["code"] == "not-ready"
    control.current = running()
    response = call(control, "GET", "/v1/readyz")
    assert (response.status, doc(response)) == (200, {"schema_version": 1, "ready": True})


def test_status_summary(live: MemoryControl) -> None:
    body = doc(call(live, "GET", "/v1/status"))
    assert body == {
        "schema_version": 1,
        "version": "0.1.0",
        "ready": True,
        "startedAt": T0 - 3600,
        "uptimeSeconds": 3600.0,
        "configSource": "/etc/secprof/config.toml",
        "lastReloadError": "[agent] sockett: unknown key",
        "lastReconcile": {"at": T0 - 60, "durationSeconds": 0.125, "ok": False,
                          "applied": True, "filesWritten": 1},
        "lastSuccessAt": T0 - 600,
        "counts": {"Pending": 0, "Installed": 0, "Validated": 1, "Stale": 1, "Error": 1,
                   "Removing": 0, "Disabled": 0},
        "removed": 1,
        "errors": [{"code": "yaml-invalid", "message": "not valid YAML",
                    "file": "junk.yaml", "text": "junk.yaml: not valid YAML"}],
        "notes": [],
        "backends": [
            {"kind": "AppArmorProfile", "availability": "compile-only",
             "reason": "no AppArmor in this kernel"},
            {"kind": "SeccompProfile", "availability": "installed", "reason": ""},
        ],
    }


def test_status_before_any_reconcile_has_empty_lists_not_nulls() -> None:
    body = doc(call(MemoryControl(starting()), "GET", "/v1/status"))
    assert body["ready"] is False
    assert body["lastReconcile"] is None
    assert body["errors"] == []
    assert set(body["counts"].values()) == {0}


def test_profiles_list_and_kind_filter(live: MemoryControl) -> None:
    body = doc(call(live, "GET", "/v1/profiles"))
    assert body["reconciledAt"] == T0 - 60
    names = [(p["kind"], p["name"]) for p in body["profiles"]]
    assert names == [("SeccompProfile", "web-frontend"), ("SeccompProfile", "broken"),
                     ("AppArmorProfile", "nginx")]
    first = body["profiles"][0]
    assert first["installedAt"] == T0 - 7200
    assert "chain" not in first
    for kind in ("seccomp", "SeccompProfile", "SECCOMP"):
        body = doc(call(live, "GET", f"/v1/profiles?kind={kind}"))
        assert [p["name"] for p in body["profiles"]] == ["web-frontend", "broken"]
    assert doc(call(live, "GET", "/v1/profiles?kind=selinux"))["profiles"] == []


@pytest.mark.parametrize("target", ["/v1/profiles?kind=secomp", "/v1/profiles?kind=",
                                    "/v1/profiles?knd=seccomp", "/v1/profiles?kind=a&kind=b",
                                    "/v1/profiles?kind", "/v1/profiles?kind=%ff",
                                    "/v1/status?verbose=1", "/v1/healthz?x=1&y=2&z=3"])
def test_bad_queries_are_400(live: MemoryControl, target: str) -> None:
    assert error(call(live, "GET", target))[0] == 400


def test_unknown_kind_suggests_the_close_one(live: MemoryControl) -> None:
    body = doc(call(live, "GET", "/v1/profiles?kind=secomp"))
    assert body["error"] == {"code": "unknown-kind",
                             "message": "unknown kind 'secomp' (did you mean seccomp?)"}


def test_profiles_before_the_first_reconcile_are_503() -> None:
    control = MemoryControl(starting())
    assert error(call(control, "GET", "/v1/profiles")) == (503, "not-ready")
    assert error(call(control, "GET", "/v1/profiles/seccomp/x")) == (503, "not-ready")


def test_profile_detail_has_the_chain_and_merged_syscalls(live: MemoryControl) -> None:
    body = doc(call(live, "GET", "/v1/profiles/seccomp/web-frontend"))
    profile = body["profile"]
    assert (profile["kind"], profile["name"], profile["state"]) == (
        "SeccompProfile", "web-frontend", "Stale")
    assert profile["chain"] == [
        {"reference": "web-frontend", "digest": "sha256:" + "a" * 64,
         "source": "web-frontend.yaml[0]", "signer": "", "stale": False,
         "staleReason": ""},
        {"reference": "oci://registry.example:5000/profiles/runtime:v1",
         "digest": "sha256:" + "b" * 64, "source": "registry.example:5000/profiles/runtime",
         "signer": "release@example.invalid", "stale": True, "staleReason": ""},
    ]
    assert profile["syscalls"] == [
        {"names": ["accept4", "bind"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
        {"names": ["ptrace"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
    ]
    same = doc(call(live, "GET", "/v1/profiles/SeccompProfile/web-frontend"))
    assert same == body


@pytest.mark.parametrize(("target", "code"), [
    ("/v1/profiles/seccomp/nope", "profile-not-found"),
    ("/v1/profiles/apparmor/web-frontend", "profile-not-found"),
    ("/v1/profiles/secomp/web-frontend", "unknown-kind"),
    ("/v1/profiles/seccomp/web-frontend/more", "not-found"),
    ("/v1/profiles/seccomp/", "profile-not-found"),
    ("/v1/profiles/", "not-found"),
    ("/v1/status/", "not-found"),
    ("/", "not-found"),
    ("/v2/status", "not-found"),
    ("//v1/status", "not-found"),
    ("/v1/profiles/seccomp/web%2Ffrontend", "profile-not-found"),
])
def test_unknown_paths_are_404(live: MemoryControl, target: str, code: str) -> None:
    assert error(call(live, "GET", target)) == (404, code)


def test_a_path_that_is_not_utf8_is_400(live: MemoryControl) -> None:
    assert error(call(live, "GET", "/v1/profiles/seccomp/%ff")) == (400, "bad-request")


@pytest.mark.parametrize(("method", "target", "allow"), [
    ("POST", "/v1/status", "GET, HEAD"),
    ("DELETE", "/v1/profiles/seccomp/web-frontend", "GET, HEAD"),
    ("PUT", "/metrics", "GET, HEAD"),
    ("GET", "/v1/reconcile", "POST"),
    ("get", "/v1/reload", "POST"),  # methods are case-sensitive
])
def test_wrong_method_is_405_with_allow(live: MemoryControl, method: str, target: str,
                                        allow: str) -> None:
    response = call(live, method, target)
    assert error(response) == (405, "method-not-allowed")
    assert response.headers == (("Allow", allow),)
    assert live.calls == []


def test_head_is_answered_like_get(live: MemoryControl) -> None:
    assert call(live, "HEAD", "/v1/status") == call(live, "GET", "/v1/status")


def test_metrics_content_type(live: MemoryControl) -> None:
    response = call(live, "GET", "/metrics")
    assert response.status == 200
    assert response.content_type == "text/plain; version=0.0.4; charset=utf-8"
    assert response.body.decode().startswith("# HELP secprof_")


@pytest.mark.parametrize("what", ["reconcile", "reload"])
def test_post_from_non_root_is_403_and_never_reaches_the_worker(
        live: MemoryControl, what: str) -> None:
    response = call(live, "POST", f"/v1/{what}", USER)
    assert error(response) == (403, "forbidden")
    assert "uid 1000" in doc(response)["error"]["message"]
    assert live.calls == []


@pytest.mark.parametrize("what", ["reconcile", "reload"])
def test_post_ok_is_200_with_the_outcome(live: MemoryControl, what: str) -> None:
    live.outcomes.append(Outcome(ok=True, message="done", report=Report(applied=True)))
    response = call(live, "POST", f"/v1/{what}?timeout=12.5")
    body = doc(response)
    assert response.status == 200
    assert (body["ok"], body["message"], body["report"]["applied"]) == (True, "done", True)
    assert "error" not in body
    assert live.calls == [(what, 12.5)]


def test_post_waits_60_s_by_default(live: MemoryControl) -> None:
    call(live, "POST", "/v1/reconcile")
    assert live.calls == [("reconcile", 60.0)]


@pytest.mark.parametrize(("outcome", "code"), [
    (Outcome(ok=False, message="config.toml: [agent] x: unknown key"), "reload-failed"),
    (Outcome(ok=False, message="no answer", code="timeout"), "timeout"),
])
def test_post_not_ok_is_409_with_envelope_and_outcome(
        live: MemoryControl, outcome: Outcome, code: str) -> None:
    live.outcomes.append(outcome)
    response = call(live, "POST", "/v1/reload")
    body = doc(response)
    assert response.status == 409
    assert body["error"] == {"code": code, "message": outcome.message}
    assert (body["ok"], body["report"]) == (False, None)


@pytest.mark.parametrize("timeout", ["0", "-1", "nan", "inf", "601", "abc", ""])
def test_post_rejects_bad_timeouts(live: MemoryControl, timeout: str) -> None:
    assert error(call(live, "POST", f"/v1/reconcile?timeout={timeout}")) == (400, "bad-query")
    assert live.calls == []


def test_gets_read_the_snapshot_while_a_post_waits_on_the_worker(live: MemoryControl) -> None:
    live.hold = threading.Event()
    waiting = threading.Thread(target=call, args=(live, "POST", "/v1/reconcile?timeout=5"))
    waiting.start()
    try:
        live.current = replace(running(), version="0.2.0")
        assert doc(call(live, "GET", "/v1/status"))["version"] == "0.2.0"
    finally:
        live.hold.set()
        waiting.join()
