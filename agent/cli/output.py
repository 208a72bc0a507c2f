"""Human output: aligned tables and short sections, no colour, stable order."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from agent.reconcile.status import ProfileStatus, Report, State


def table(rows: Sequence[Sequence[str]], out: TextIO = sys.stdout) -> None:
    if not rows:
        return
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        print("  ".join([*cells, row[-1]]).rstrip(), file=out)


def emit_json(doc: Any, out: TextIO = sys.stdout) -> None:
    json.dump(doc, out, indent=2, sort_keys=False)
    out.write("\n")


def _detail(status: ProfileStatus) -> str:
    if status.state in (State.ERROR, State.REMOVING, State.DISABLED):
        return f"{status.source} {status.message}".strip()
    return status.location


def print_report(report: Report, out: TextIO = sys.stdout) -> None:
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
