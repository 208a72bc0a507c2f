"""``/metrics`` text, read back by a strict parser of the Prometheus text format 0.0.4."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import pytest

from agent.api.metrics import render
from agent.daemon.state import DURATION_BUCKETS
from tests.support.control import T0, running, starting

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SAMPLE = re.compile(rf"({_NAME})(?:\{{(.*)\}})? (\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\\\|\\"|\\n)*)"(,|$)')
_FLOAT = re.compile(r"[+-]?(?:Inf|NaN|[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?)")
Labels = tuple[tuple[str, str], ...]


@dataclass
class Family:
    type: str
    help: str
    samples: dict[tuple[str, Labels], float] = field(default_factory=dict)


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), text)


def _labels(text: str) -> Labels:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        match = _LABEL.match(text, pos)
        assert match, f"bad labels at {text[pos:]!r}"
        out.append((match.group(1), _unescape(match.group(2))))
        pos = match.end()
    names = [name for name, _ in out]
    assert len(set(names)) == len(names), "duplicate label name"
    return tuple(out)


def parse(text: str) -> dict[str, Family]:
    """Families by name; fails on anything the format does not allow."""
    assert text.endswith("\n")
    families: dict[str, Family] = {}
    help_for: dict[str, str] = {}
    current: tuple[str, Family] | None = None
    for line in text[:-1].split("\n"):
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            assert re.fullmatch(_NAME, name), line
            assert name not in help_for, f"HELP {name} twice"
            help_for[name] = help_text
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped")
            assert name not in families, f"TYPE {name} twice"
            current = (name, Family(type=kind, help=help_for.get(name, "")))
            families[name] = current[1]
        else:
            match = _SAMPLE.fullmatch(line)
            assert match, f"bad sample line {line!r}"
            assert _FLOAT.fullmatch(match.group(3)), line
            assert current is not None, f"sample before any TYPE: {line!r}"
            family_name, family = current
            suffixes = ("_bucket", "_sum", "_count") if family.type == "histogram" else ("",)
            assert match.group(1) in {family_name + s for s in suffixes}, line
            key = (match.group(1), _labels(match.group(2) or ""))
            assert key not in family.samples, f"duplicate series {line!r}"
            family.samples[key] = float(match.group(3))
    return families


def test_every_family_is_prefixed_typed_and_documented() -> None:
    families = parse(render(running()))
    assert set(families) == {
        "secprof_build_info", "secprof_start_time_seconds", "secprof_ready",
        "secprof_profiles", "secprof_backend_availability",
        "secprof_reconcile_duration_seconds", "secprof_errors_total",
        "secprof_drift_repairs_total", "secprof_last_success_timestamp_seconds",
    }
    for name, family in families.items():
        assert family.help, name
        assert name.endswith("_total") == (family.type == "counter"), name


def test_values() -> None:
    families = parse(render(running()))

    def one(name: str) -> float:
        (value,) = families[name].samples.values()
        return value

    assert one("secprof_ready") == 1
    assert one("secprof_start_time_seconds") == T0 - 3600
    assert one("secprof_drift_repairs_total") == 2
    assert one("secprof_last_success_timestamp_seconds") == T0 - 600
    ((_, labels),) = families["secprof_build_info"].samples
    assert dict(labels)["version"] == "0.1.0"
    assert families["secprof_errors_total"].samples == {
        ("secprof_errors_total", (("code", "manifest-invalid"),)): 4,
        ("secprof_errors_total", (("code", 'we"ird\\code\n'),)): 1,  # escaped, read back
    }


def test_profiles_by_kind_and_state_zeros_included() -> None:
    samples = parse(render(running()))["secprof_profiles"].samples
    assert len(samples) == 4 * 7
    nonzero = {dict(labels)["kind"] + "/" + dict(labels)["state"]: value
               for (_, labels), value in samples.items() if value}
    assert nonzero == {"SeccompProfile/Stale": 1, "SeccompProfile/Error": 1,
                       "AppArmorProfile/Validated": 1}


def test_backend_availability_is_a_state_set() -> None:
    samples = parse(render(running()))["secprof_backend_availability"].samples
    on = sorted(dict(labels)["kind"] + "=" + dict(labels)["availability"]
                for (_, labels), value in samples.items() if value == 1)
    assert on == ["AppArmorProfile=compile-only", "SeccompProfile=installed"]
    assert len(samples) == 2 * 3


def test_duration_histogram_is_cumulative_and_consistent() -> None:
    family = parse(render(running()))["secprof_reconcile_duration_seconds"]
    buckets = [(dict(labels)["le"], value) for (name, labels), value in family.samples.items()
               if name.endswith("_bucket")]
    bounds = [float(le) for le, _ in buckets]
    assert bounds == [*DURATION_BUCKETS, math.inf]
    counts = [value for _, value in buckets]
    assert counts == sorted(counts)  # never decreasing
    # per bucket 2 at 0.005, 3 at 0.25, 1 at 30, and one of the 7 above the last bound
    assert counts == [2, 2, 2, 2, 2, 5, 5, 5, 5, 5, 5, 6, 7]
    count = family.samples[("secprof_reconcile_duration_seconds_count", ())]
    assert count == counts[-1] == 7
    assert family.samples[("secprof_reconcile_duration_seconds_sum", ())] == 75.5


def test_before_the_first_reconcile() -> None:
    families = parse(render(starting()))
    assert families["secprof_last_success_timestamp_seconds"].samples == {}  # no fake 1970
    assert set(families["secprof_profiles"].samples.values()) == {0}
    assert families["secprof_ready"].samples == {("secprof_ready", ()): 0}
    assert families["secprof_reconcile_duration_seconds"].samples[
        ("secprof_reconcile_duration_seconds_count", ())] == 0


@pytest.mark.parametrize("bad", [
    "secprof_x 1",  # no TYPE
    "# TYPE secprof_x gauge\nsecprof_x{a=\"b\" } 1",
    "# TYPE secprof_x gauge\nsecprof_x 1 2 3",
    "# TYPE secprof_x gauge\nsecprof_x{a=\"b\",a=\"c\"} 1",
    "# TYPE secprof_x gauge\nsecprof_x one",
    "# TYPE secprof_x gauge\nsecprof_x 1\nsecprof_x 2",
    "# TYPE secprof_x gauge\nsecprof_y 1",
])
def test_the_parser_itself_rejects_what_the_format_does_not_allow(bad: str) -> None:
    with pytest.raises(AssertionError):
        parse(bad + "\n")
