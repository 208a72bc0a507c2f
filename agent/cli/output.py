"""Human output: aligned tables and short sections, no colour, stable order."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import TextIO

from agent.cli.text import emit_json, table
from agent.reconcile.status import ProfileStatus, Report, State

__all__ = ["emit_json", "print_report", "summarised", "table"]

SHOWN = 3  # warnings (or notes) printed per profile without --verbose


def summarised(label: str, lines: Sequence[str], *, verbose: bool) -> list[str]:
    """``lines`` of one profile, prefixed with ``label``: all of them with ``verbose`` or when
    there are few, else the first :data:`SHOWN` and a count of the rest (a real multi-arch
    profile can carry dozens, which would bury everything else)."""
    if verbose or len(lines) <= SHOWN + 1:
        return [f"{label}{line}" for line in lines]
    return [*(f"{label}{line}" for line in lines[:SHOWN]),
            f"{label}… and {len(lines) - SHOWN} more (--verbose shows all)"]


def print_lines(lines: Iterable[str], out: TextIO) -> None:
    for line in lines:
        print(line, file=out)


def _detail(status: ProfileStatus) -> str:
    if status.state in (State.ERROR, State.REMOVING, State.DISABLED):
        return f"{status.source} {status.message}".strip()
    return status.location


def print_report(report: Report, out: TextIO | None = None, *, verbose: bool = False) -> None:
    """The report as a table, then errors, each profile's warnings and notes (summarised
    unless ``verbose``), notes about the desired state itself, and a summary line."""
    out = out or sys.stdout
    # USAGE: what a workload sets to use the profile (a pod's localhostProfile, …).
    rows = [["KIND", "NAME", "STATE", "CHANGE", "USAGE", "DETAIL"]]
    for p in report.profiles:
        rows.append([p.key.kind.short, p.key.name, p.state.value,
                     p.step.value if p.step else "-", p.usage or "-", _detail(p)])
    for key in report.removed:
        rows.append([key.kind.short, key.name, "Removed", "remove", "-", ""])
    if len(rows) > 1:
        table(rows, out)
    else:
        print("no profiles in the desired state", file=out)

    for error in report.file_errors:
        print(f"error: {error}", file=out)
    for p in report.profiles:
        print_lines(summarised(f"warning: {p.key}: ", p.warnings, verbose=verbose), out)
        print_lines(summarised(f"note: {p.key}: ", p.notes, verbose=verbose), out)
    print_lines((f"note: {note}" for note in report.notes), out)

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
