"""The status API's routes: from a parsed request and its peer to a response.

Every GET reads one :class:`~agent.daemon.state.Snapshot` and nothing else, so it never waits on
the worker. The two POSTs are the only way to make the daemon do something; they need uid 0 by
``SO_PEERCRED`` and wait for the worker's answer at most ``?timeout=`` seconds.

Status codes: 200; 400 malformed request or query; 403 a POST from a non-root peer; 404 unknown
path, kind or profile; 405 wrong method (with ``Allow``); 409 a reconcile or reload that ran, or
was refused, and did not succeed (the body still carries the outcome and its report); 503 the
first reconcile has not finished (``readyz``, ``profiles``). The transport adds 408, 411, 413,
431, 505 (:mod:`agent.api.protocol`), and 500 for a bug in secprof.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote

from agent.api import metrics
from agent.api.listen import Peer
from agent.api.protocol import Request, Response, error_response, json_response
from agent.api.schema import error_json, profile_json, report_json
from agent.api.wire import DEFAULT_WAIT_S, MAX_WAIT_S, METRICS_TYPE, SCHEMA_VERSION
from agent.codes import Code
from agent.daemon.state import Control, Outcome, Snapshot
from agent.errors import ApiError, did_you_mean
from agent.model.profile import Kind, ProfileKey
from agent.reconcile.status import Report, State

log = logging.getLogger(__name__)

READ = ("GET", "HEAD")
WRITE = ("POST",)

Handler = Callable[[Mapping[str, str], Peer], Response]


@dataclass(frozen=True, slots=True)
class _Route:
    methods: tuple[str, ...]
    params: tuple[str, ...]  # the query parameters it takes; any other is a 400
    handler: Handler


def _shown(text: str) -> str:
    """Client text quoted for a message: escaped, and short."""
    return repr(text if len(text) <= 80 else text[:80] + "…")


def _kind_choices() -> list[str]:
    return [k.short for k in Kind] + [k.value for k in Kind]


def _query(raw: str, allowed: tuple[str, ...]) -> dict[str, str]:
    try:
        pairs = parse_qsl(raw, keep_blank_values=True, strict_parsing=True,
                          max_num_fields=len(allowed) + 1, errors="strict")
    except ValueError:
        raise ApiError(400, "malformed query string", code=Code.BAD_QUERY) from None
    out: dict[str, str] = {}
    for name, value in pairs:
        if name not in allowed:
            takes = f"; it takes {', '.join(allowed)}" if allowed else "; it takes none"
            raise ApiError(400, f"unknown query parameter {_shown(name)}"
                           f"{did_you_mean(name, allowed)}{takes}", code=Code.BAD_QUERY)
        if name in out:
            raise ApiError(400, f"query parameter {name!r} given twice", code=Code.BAD_QUERY)
        out[name] = value
    return out


def _wait(query: Mapping[str, str]) -> float:
    raw = query.get("timeout")
    if raw is None:
        return DEFAULT_WAIT_S
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 < value <= MAX_WAIT_S):
        raise ApiError(400, f"timeout must be a number of seconds in (0, {MAX_WAIT_S:g}], "
                       f"got {_shown(raw)}", code=Code.BAD_QUERY)
    return value


# The code of a failed request whose outcome names none.
_FAILED = {"reconcile": Code.RECONCILE_FAILED, "reload": Code.RELOAD_FAILED}


def _ready_report(snapshot: Snapshot) -> Report:
    if snapshot.report is None:
        raise ApiError(503, "the daemon has not finished its first reconcile yet",
                       code=Code.NOT_READY, hint="try again shortly, or wait with "
                       "'secprof is-ready'")
    return snapshot.report


class Api:
    """Routes requests; ``clock`` gives the uptime its "now"."""

    def __init__(self, control: Control, *, clock: Callable[[], float] = time.time) -> None:
        self._control = control
        self._clock = clock

    def handle(self, request: Request, peer: Peer) -> Response:
        """The response to ``request``; raises :class:`ApiError` for the error envelope."""
        try:
            segments = [unquote(s, errors="strict") for s in request.path.split("/")[1:]]
        except UnicodeDecodeError:
            raise ApiError(400, "the path is not valid UTF-8", code=Code.BAD_REQUEST) from None
        route = self._route(segments)
        if route is None:
            raise ApiError(404, f"no endpoint {_shown(request.path)}; see /v1/status, "
                           "/v1/profiles, /metrics", code=Code.NOT_FOUND)
        if request.method not in route.methods:
            error = ApiError(405, f"{_shown(request.method)} is not allowed on "
                             f"{request.path}; use {' or '.join(route.methods)}",
                             code=Code.METHOD_NOT_ALLOWED)
            return error_response(error, (("Allow", ", ".join(route.methods)),))
        return route.handler(_query(request.query, route.params), peer)

    def _route(self, segments: list[str]) -> _Route | None:
        match segments:
            case ["v1", "healthz"]:
                return _Route(READ, (), self._healthz)
            case ["v1", "readyz"]:
                return _Route(READ, (), self._readyz)
            case ["v1", "status"]:
                return _Route(READ, (), self._status)
            case ["v1", "profiles"]:
                return _Route(READ, ("kind", "state"), self._profiles)
            case ["v1", "profiles", kind, name]:
                return _Route(READ, (), functools.partial(self._profile, kind, name))
            case ["metrics"]:
                return _Route(READ, (), self._metrics)
            case ["v1", "reconcile"]:
                return _Route(WRITE, ("timeout",), functools.partial(
                    self._mutate, "reconcile", self._control.request_reconcile))
            case ["v1", "reload"]:
                return _Route(WRITE, ("timeout",), functools.partial(
                    self._mutate, "reload", self._control.request_reload))
        return None

    def _healthz(self, query: Mapping[str, str], peer: Peer) -> Response:
        return json_response(200, {"schema_version": SCHEMA_VERSION, "ok": True})

    def _readyz(self, query: Mapping[str, str], peer: Peer) -> Response:
        if self._control.snapshot().ready:
            return json_response(200, {"schema_version": SCHEMA_VERSION, "ready": True})
        error = {"code": Code.NOT_READY, "message": "the first reconcile has not finished"}
        return json_response(503, {"schema_version": SCHEMA_VERSION, "ready": False,
                                   "error": error})

    def _status(self, query: Mapping[str, str], peer: Peer) -> Response:
        snap = self._control.snapshot()
        report = snap.report
        counts = report.counts() if report else {}
        last: dict[str, Any] | None = None
        if report is not None:
            last = {"at": snap.last_reconcile_at, "durationSeconds": round(report.duration_s, 6),
                    "ok": report.ok, "applied": report.applied,
                    "filesWritten": report.files_written}
        return json_response(200, {
            "schema_version": SCHEMA_VERSION,
            "version": snap.version,
            "ready": snap.ready,
            "startedAt": snap.started_at,
            "uptimeSeconds": round(max(0.0, self._clock() - snap.started_at), 3),
            "configSource": snap.config_source,
            "lastReloadError": snap.last_reload_error,
            "lastReconcile": last,
            "lastSuccessAt": snap.metrics.last_success_at,
            "counts": {state.value: counts.get(state.value, 0) for state in State},
            "removed": len(report.removed) if report else 0,
            "errors": [error_json(e) for e in report.file_errors] if report else [],
            "notes": list(report.notes) if report else [],
            "backends": [
                {"kind": kind.value, "availability": probe.availability.value,
                 "reason": probe.reason}
                for kind, probe in sorted(snap.backends.items(), key=lambda item: item[0])
            ],
        })

    def _profiles(self, query: Mapping[str, str], peer: Peer) -> Response:
        kind: Kind | None = None
        if "kind" in query:
            try:
                kind = Kind.parse(query["kind"])
            except ValueError:
                raise ApiError(400, f"unknown kind {_shown(query['kind'])}"
                               f"{did_you_mean(query['kind'].lower(), _kind_choices())}",
                               code=Code.UNKNOWN_KIND) from None
        states: set[str] | None = None
        if "state" in query:  # e.g. state=Error,Stale: what `secprof status` summarises
            states = {s for s in query["state"].split(",") if s}
            unknown = sorted(states - {s.value for s in State})
            if unknown:
                raise ApiError(400, f"unknown state {_shown(unknown[0])}; one of "
                               f"{', '.join(s.value for s in State)}", code=Code.BAD_QUERY)
        snap = self._control.snapshot()
        report = _ready_report(snap)
        profiles = [profile_json(p) for p in report.profiles if kind in (None, p.key.kind)
                    and (states is None or p.state.value in states)]
        return json_response(200, {"schema_version": SCHEMA_VERSION,
                                   "reconciledAt": snap.last_reconcile_at, "profiles": profiles})

    def _profile(self, kind_text: str, name: str, query: Mapping[str, str],
                 peer: Peer) -> Response:
        try:
            kind = Kind.parse(kind_text)
        except ValueError:
            raise ApiError(404, f"unknown kind {_shown(kind_text)}"
                           f"{did_you_mean(kind_text.lower(), _kind_choices())}",
                           code=Code.UNKNOWN_KIND) from None
        snap = self._control.snapshot()
        key = ProfileKey(kind, name)
        for status in _ready_report(snap).profiles:
            if status.key == key:
                return json_response(200, {"schema_version": SCHEMA_VERSION,
                                           "reconciledAt": snap.last_reconcile_at,
                                           "profile": profile_json(status, detail=True)})
        raise ApiError(404, f"no {kind.value} named {_shown(name)} in the last reconcile",
                       code=Code.PROFILE_NOT_FOUND)

    def _metrics(self, query: Mapping[str, str], peer: Peer) -> Response:
        text = metrics.render(self._control.snapshot())
        return Response(status=200, body=text.encode(), content_type=METRICS_TYPE)

    def _mutate(self, what: str, request: Callable[[float], Outcome],
                query: Mapping[str, str], peer: Peer) -> Response:
        if peer.uid != 0:
            log.warning("%s refused: %s is not root", what, peer)
            raise ApiError(403, f"{what} needs root; this request came from uid {peer.uid}",
                           code=Code.FORBIDDEN, hint=f"run it as root: sudo secprof {what}")
        wait = _wait(query)
        log.info("%s requested by %s (waiting up to %g s)", what, peer, wait)
        started = time.monotonic()
        outcome = request(wait)
        log.info("%s requested by %s: %s after %.3f s%s", what, peer,
                 "ok" if outcome.ok else "not ok", time.monotonic() - started,
                 f": {outcome.message}" if outcome.message else "")
        doc: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "ok": outcome.ok,
            "message": outcome.message,
            "report": report_json(outcome.report) if outcome.report else None,
        }
        if outcome.ok:
            return json_response(200, doc)
        doc["error"] = {"code": outcome.code or _FAILED[what],
                        "message": outcome.message or f"{what} did not succeed"}
        return json_response(409, doc)
