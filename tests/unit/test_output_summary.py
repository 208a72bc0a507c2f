"""Warnings and notes are summarised per profile; --verbose shows all."""

from __future__ import annotations

import io

from agent.cli.output import print_report, summarised
from agent.model.profile import Kind, ProfileKey
from agent.reconcile.status import ProfileStatus, Report, State


def test_summarised_keeps_the_first_three_and_counts_the_rest() -> None:
    lines = [f"w{i}" for i in range(9)]
    assert summarised("warning: ", lines, verbose=False) == [
        "warning: w0", "warning: w1", "warning: w2",
        "warning: … and 6 more (--verbose shows all)"]
    assert summarised("warning: ", lines, verbose=True) == [f"warning: w{i}" for i in range(9)]
    assert summarised("", ["a", "b", "c", "d"], verbose=False) == ["a", "b", "c", "d"]


def test_report_prints_usage_and_summaries() -> None:
    status = ProfileStatus(key=ProfileKey(Kind.SECCOMP, "web"), state=State.PENDING,
                           usage="secprof/web.json", location="/x/secprof/web.json",
                           warnings=tuple(f"w{i}" for i in range(10)), notes=("n",))
    out = io.StringIO()
    print_report(Report(profiles=(status,), notes=("a.yaml[0]: ProfileBinding b skipped",)), out)
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["KIND", "NAME", "STATE", "CHANGE", "USAGE", "DETAIL"]
    assert lines[1].split() == ["seccomp", "web", "Pending", "-", "secprof/web.json",
                                "/x/secprof/web.json"]
    assert lines[2:7] == [
        "warning: SeccompProfile/web: w0", "warning: SeccompProfile/web: w1",
        "warning: SeccompProfile/web: w2",
        "warning: SeccompProfile/web: … and 7 more (--verbose shows all)",
        "note: SeccompProfile/web: n"]
    assert lines[7] == "note: a.yaml[0]: ProfileBinding b skipped"
