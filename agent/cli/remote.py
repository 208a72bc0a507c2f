"""Commands that ask the running daemon: status, is-ready, reconcile, reload.

They work from the daemon's JSON alone (the shapes of :mod:`agent.api.schema`) and import neither
the reconcile pipeline nor YAML, libseccomp or the OCI stack: ``secprof status`` must stay cheap
enough to run in a probe or a shell loop.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from agent.api.client import Client, Reply, api_error
from agent.cli.main import EXIT_OK, EXIT_PROFILE_ERROR
from agent.cli.text import emit_json, table
from agent.config import load
from agent.errors import UsageError
from agent.model.profile import Kind

ERROR_STATES = ("Error",)


def _client(args: argparse.Namespace, timeout_s: float = 5.0) -> Client:
    config = load(Path(args.config) if args.config else None)
    return Client(config.agent.socket, group=config.agent.socket_group, timeout_s=timeout_s)


def _short(kind: str) -> str:
    try:
        return Kind(kind).short
    except ValueError:  # a kind this CLI does not know yet: show it as the daemon spells it
        return kind


def age(seconds: float | None) -> str:
    """``45s``, ``12m``, ``5h``, ``3d`` (kubectl's style); ``-`` when unknown."""
    if seconds is None:
        return "-"
    s = max(0, int(seconds))
    if s < 120:
        return f"{s}s"
    if s < 2 * 3600:
        return f"{s // 60}m"
    if s < 48 * 3600:
        return f"{s // 3600}h"
    return f"{s // 86400}d"


def _since(at: Any, now: float) -> float | None:
    return now - at if isinstance(at, int | float) else None


def _list(doc: Mapping[str, Any], key: str) -> list[Any]:
    value = doc.get(key)
    return value if isinstance(value, list) else []


def _summary(status: Mapping[str, Any], now: float) -> str:
    counts = status.get("counts") or {}
    parts = [f"{n} {state.lower()}" for state, n in sorted(counts.items()) if n]
    line = ", ".join(parts) or "no profiles"
    last = status.get("lastReconcile")
    if isinstance(last, dict):
        verdict = "ok" if last.get("ok") else "with errors"
        line += (f"; last reconcile {age(_since(last.get('at'), now))} ago in "
                 f"{last.get('durationSeconds', 0):.2f} s, {verdict}")
    return f"{line}; secprof {status.get('version', '?')} up {age(status.get('uptimeSeconds'))}"


def _print_warnings(status: Mapping[str, Any]) -> None:
    for error in _list(status, "errors"):
        print(f"error: {error.get('text') or error.get('message')}")
    for note in _list(status, "notes"):
        print(f"note: {note}")
    for backend in _list(status, "backends"):
        if backend.get("availability") != "installed":
            print(f"note: {_short(backend.get('kind', '?'))} backend is "
                  f"{backend.get('availability')}: {backend.get('reason') or 'no reason given'}")
    if status.get("lastReloadError"):
        print(f"warning: the last reload kept the previous config: {status['lastReloadError']}")


# States an operator needs to look at: listed by default; the others only with --all.
ATTENTION_STATES = ("Error", "Stale", "Pending", "Removing")


def cmd_status(args: argparse.Namespace) -> int:
    """``secprof status [--all] [KIND/NAME]``: a summary (and the profiles that need attention)
    by default, every profile's row with ``--all``, or one profile in detail.

    The summary asks the daemon for its counts and, only when some profile needs attention,
    for those rows: at 1000 healthy profiles it moves ~2 KB instead of ~500 KB of JSON."""
    client = _client(args)
    if args.target:
        return _status_one(client, args.target, as_json=args.json)
    status = client.get("/v1/status")
    counts = status.get("counts") or {}
    wanted = "" if args.all else ",".join(s for s in ATTENTION_STATES if counts.get(s))
    last = status.get("lastReconcile")
    ok = bool(status.get("ready")) and isinstance(last, dict) and bool(last.get("ok"))
    if not status.get("ready"):
        if args.json:
            emit_json({**status, "profiles": []})
        else:
            print(f"the daemon has not finished its first reconcile yet "
                  f"(secprof {status.get('version', '?')} up {age(status.get('uptimeSeconds'))})")
        return EXIT_PROFILE_ERROR
    profiles: list[Any] = []
    reconciled_at: Any = None
    if args.all or wanted:
        reply = client.call("GET", "/v1/profiles" + (f"?state={wanted}" if wanted else ""))
        if reply.status not in (200, 503):
            raise api_error(reply)
        ok = ok and reply.status == 200
        profiles = _list(reply.doc, "profiles")
        reconciled_at = reply.doc.get("reconciledAt")
    if args.json:
        emit_json({**status, "profiles": profiles})
        return EXIT_OK if ok else EXIT_PROFILE_ERROR

    now = time.time()
    reconciled = _since(reconciled_at, now)
    rows = [["KIND", "NAME", "STATE", "AGE", "USAGE", "MESSAGE"]]
    for p in profiles:
        installed = _since(p.get("installedAt"), now)
        rows.append([_short(p.get("kind", "?")), p.get("name", "?"), p.get("state", "?"),
                     age(installed if installed is not None else reconciled),
                     p.get("usage") or "-", p.get("message", "")])
    total = sum(n for n in counts.values() if isinstance(n, int))
    if len(rows) > 1:
        table(rows)
    elif args.all:
        print("no profiles in the desired state")
    if not args.all and total > len(profiles):
        print(f"{total - len(profiles)} more profile(s) need no attention; "
              "'secprof status --all' lists every one")
    _print_warnings(status)
    print(_summary(status, now))
    return EXIT_OK if ok else EXIT_PROFILE_ERROR


def _target(text: str) -> tuple[str, str]:
    kind, sep, name = text.partition("/")
    if not sep or not kind or not name or "/" in name:
        raise UsageError(f"expected KIND/NAME (e.g. seccomp/web-frontend), got {text!r}")
    return kind, name


def _syscall_line(rule: Mapping[str, Any]) -> str:
    action = str(rule.get("action", "?"))
    if rule.get("errnoRet") is not None:
        action += f"({rule['errnoRet']})"
    line = f"{action}: {', '.join(rule.get('names', []))}"
    conditions = [
        f"arg{a.get('index')} {a.get('op')} {a.get('value')}"
        + (f" {a['valueTwo']}" if a.get("valueTwo") else "")
        for a in rule.get("args", [])
    ]
    if conditions:
        line += f" if {' and '.join(conditions)}"
    return textwrap.fill(line, width=100, subsequent_indent="    ", break_on_hyphens=False)


def _status_one(client: Client, target: str, *, as_json: bool) -> int:
    kind, name = _target(target)
    doc = client.get(f"/v1/profiles/{quote(kind, safe='')}/{quote(name, safe='')}")
    profile = doc.get("profile") or {}
    failed = profile.get("state") in ERROR_STATES
    if as_json:
        emit_json(doc)
        return EXIT_PROFILE_ERROR if failed else EXIT_OK

    now = time.time()
    step = f" ({profile['step']})" if profile.get("step") else ""
    installed = profile.get("installedDigest") or "-"
    if profile.get("installedAt") is not None:
        installed += f" ({age(_since(profile['installedAt'], now))} ago)"
    fields = [
        ("state", f"{profile.get('state', '?')}{step}"),
        ("message", profile.get("message") or "-"),
        ("source", profile.get("source") or "-"),
        ("location", profile.get("location") or "-"),
        ("usage", profile.get("usage") or "-"),
        ("digest", profile.get("digest") or "-"),
        ("installed", installed),
    ]
    print(f"{profile.get('kind', kind)}/{profile.get('name', name)}")
    for label, value in fields:
        print(f"  {label + ':':<10} {value}")
    chain = _list(profile, "chain")
    if chain:
        print("\nchain (the profile first, then its bases):")
        rows = [["#", "REFERENCE", "DIGEST", "SIGNER", "SOURCE"]]
        for i, link in enumerate(chain):
            signer = (link.get("signer") or "-") + (" (stale)" if link.get("stale") else "")
            rows.append([str(i), link.get("reference", "?"), link.get("digest", "?"), signer,
                         link.get("source", "")])
        table(rows)
    syscalls = _list(profile, "syscalls")
    if syscalls:
        print(f"\nmerged syscalls ({len(syscalls)} rule(s)):")
        for rule in syscalls:
            print(textwrap.indent(_syscall_line(rule), "  "))
    for warning in _list(profile, "warnings"):
        print(f"warning: {warning}")
    for note in _list(profile, "notes"):
        print(f"note: {note}")
    return EXIT_PROFILE_ERROR if failed else EXIT_OK


def cmd_is_ready(args: argparse.Namespace) -> int:
    """``secprof is-ready``: exit 0 ready, 1 not yet, 69 unreachable; silent unless ``--json``."""
    reply = _client(args).call("GET", "/v1/readyz")
    if reply.status not in (200, 503):
        raise api_error(reply)
    if args.json:
        emit_json(reply.doc)
    return EXIT_OK if reply.status == 200 else EXIT_PROFILE_ERROR


def _print_outcome(what: str, reply: Reply) -> None:
    report = reply.doc.get("report")
    if isinstance(report, dict):
        rows = [["KIND", "NAME", "STATE", "CHANGE", "MESSAGE"]]
        for p in _list(report, "profiles"):
            rows.append([_short(p.get("kind", "?")), p.get("name", "?"), p.get("state", "?"),
                         p.get("step") or "-", p.get("message", "")])
        for r in _list(report, "removed"):
            rows.append([_short(r.get("kind", "?")), r.get("name", "?"), "Removed", "remove", ""])
        if len(rows) > 1:
            table(rows)
        for error in _list(report, "errors"):
            print(f"error: {error.get('text') or error.get('message')}")
    if reply.status == 200:
        print(f"{what}: ok" + (f": {reply.doc['message']}" if reply.doc.get("message") else ""))
    else:
        error = api_error(reply)
        print(f"secprof: error: {what} did not succeed: {error.message}", file=sys.stderr)


def _mutate(args: argparse.Namespace, what: str) -> int:
    # The daemon answers within --timeout; the socket waits a little longer for that answer.
    client = _client(args, timeout_s=args.timeout + 10.0)
    reply = client.call("POST", f"/v1/{what}?timeout={args.timeout:g}")
    if reply.status not in (200, 409):
        raise api_error(reply)
    if args.json:
        emit_json(reply.doc)
    else:
        _print_outcome(what, reply)
    return EXIT_OK if reply.status == 200 else EXIT_PROFILE_ERROR


def cmd_reconcile(args: argparse.Namespace) -> int:
    """``secprof reconcile``: ask the daemon for a full reconcile now and wait for it."""
    return _mutate(args, "reconcile")


def cmd_reload(args: argparse.Namespace) -> int:
    """``secprof reload``: make the daemon reread its config, and wait for the verdict."""
    return _mutate(args, "reload")
