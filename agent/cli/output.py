"""Human output: aligned tables and short sections, no colour, stable order."""

from __future__ import annotations

import sys
from typing import TextIO

from agent.cli.text import emit_json, table
from agent.reconcile.status import ProfileStatus, Report, State

__all__ = ["emit_json", "print_report", "table"]


def _detail(status: ProfileStatus) -> str:
    if status.state in (State.ERROR, State.REMOVING, State.DISABLED):
        return f"{status.source} {status.message}".strip()
    return status.location


def print_report(report: Report, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    rows = [["KIND", "NAME", "STATE", "CHANGE", "DETAIL"]]
    for p in report.profiles:
        rows.append([p.key.kind.short, p.key.name, p.state.value,
                     p.step.value if p.step else "-", _detail(p)])
    for key in report.removed:
        rows.append([key.kind.short, key.name, "Removed", "remove", ""])
    if len(rows) > 1:
        table(rows, out)
    else:
        print("no profiles in the desired state", file=out)

    for error in report.file_errors:
        print(f"error: {error}", file=out)
    for p in report.profiles:
        for warning in p.warnings:
            print(f"warning: {p.key}: {warning}", file=out)
        for note in p.notes:
            print(f"note: {p.key}: {note}", file=out)

    counts = report.counts()
    parts = [f"{n} {state.lower()}" for state, n in sorted(counts.items())]
    if report.removed:
        parts.append(f"{len(report.removed)} removed")
    summary = ", ".join(parts) or "nothing to do"
    if report.applied:
        summary += f"; {report.files_written} file(s) written in {report.duration_s:.2f} s"
    else:
        changes = sum(1 for p in report.profiles if p.step and p.step.mutates)
        summary += f"; {changes} change(s) planned, nothing written"
    print(summary, file=out)
