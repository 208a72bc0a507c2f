"""The JSON shapes shared by ``--json`` output and the status API.

``schema_version`` changes only when a field changes meaning or disappears; new fields may be
added at any time. Lists are always lists (never ``null``), keys are camelCase like SPO's.
"""

from __future__ import annotations

from typing import Any

from agent.api.wire import SCHEMA_VERSION
from agent.errors import AgentError
from agent.reconcile.status import ProfileStatus, Report

__all__ = ["SCHEMA_VERSION", "error_json", "profile_json", "report_json"]


def profile_json(status: ProfileStatus, *, detail: bool = False) -> dict[str, Any]:
    """One profile; ``detail`` adds what its kind's driver shows (per-profile endpoints): for
    seccomp, ``chain`` (each link's reference, digest, source, signer, staleness) and the merged
    ``syscalls``. A profile that could not be built has no kind details."""
    out: dict[str, Any] = {
        "kind": status.key.kind.value,
        "name": status.key.name,
        "state": status.state.value,
        "step": status.step.value if status.step else None,
        "message": status.message,
        "errorCode": status.error_code,
        "source": status.source,
        "digest": status.digest,
        "installedDigest": status.installed_digest,
        "installedAt": status.installed_at,
        "location": status.location,
        "usage": status.usage,
        "warnings": list(status.warnings),
        "notes": list(status.notes),
    }
    if detail and status.details is not None:
        out.update(status.details.render())
    return out


def error_json(error: AgentError) -> dict[str, Any]:
    return {**error.to_dict(), "text": str(error)}


def report_json(report: Report) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "applied": report.applied,
        "ok": report.ok,
        "counts": dict(sorted(report.counts().items())),
        "filesWritten": report.files_written,
        "durationSeconds": round(report.duration_s, 6),
        "profiles": [profile_json(p) for p in report.profiles],
        "removed": [{"kind": k.kind.value, "name": k.name} for k in report.removed],
        "errors": [error_json(e) for e in report.file_errors],
        "notes": list(report.notes),
    }
