"""Hostile manifests: each is that file's (or that profile's) error, and the others still load.

Every input is generated here. Each shape once ended every apply with exit 70 (an exception
escaping the loader) or cost work far out of proportion to its size.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.errors import ManifestError
from agent.model.desired import DesiredState
from agent.model.manifests import load_directory
from agent.model.profile import Kind, ProfileKey
from agent.model.seccomp import SeccompSpec, SyscallRule
from agent.model.seccomp_parse import MAX_NAMES_PER_RULE, MAX_RULES
from agent.model.specs import SPEC_PARSERS
from agent.model.strict import MAX_DOCUMENTS
from agent.model.yamlread import MAX_DEPTH
from agent.seccomp.merge import union
from agent.seccomp.resolve import MAX_DECISIONS, Resolver
from tests.conftest import seccomp_doc

GOOD = seccomp_doc("good", "defaultAction: SCMP_ACT_ERRNO\nsyscalls:\n"
                           "  - {names: [read], action: SCMP_ACT_ALLOW}")
HEADER = "apiVersion: security-profiles-operator.x-k8s.io/v1\nkind: SeccompProfile\n"


@pytest.fixture
def pdir(tmp_path: Path) -> Path:
    d = tmp_path / "profiles.d"
    d.mkdir()
    (d / "good.yaml").write_text(GOOD)
    return d


def load_with(pdir: Path, name: str, text: str) -> tuple[DesiredState, list[ManifestError]]:
    (pdir / name).write_text(text)
    desired = load_directory(pdir)
    assert ProfileKey(Kind.SECCOMP, "good") in desired.profiles  # the neighbour is untouched
    return desired, [e for e in desired.errors if name in e.file]


def only_error(pdir: Path, name: str, text: str) -> ManifestError:
    _, errors = load_with(pdir, name, text)
    [error] = errors
    assert len(str(error)) < 400  # a bounded message, whatever the input
    return error


def test_an_impossible_date_in_metadata(pdir: Path) -> None:
    error = only_error(pdir, "date.yaml", HEADER + "metadata:\n  name: d\n"
                       "  creationTimestamp: 2024-02-30T00:00:00Z\nspec: {defaultAction: "
                       "SCMP_ACT_ERRNO}\n")
    assert "day is out of range for month" in error.message
    assert error.code == "syntax-error"


@pytest.mark.parametrize("number", ["1" * 5000, "0x" + "f" * 20000])
def test_a_very_long_integer(pdir: Path, number: str) -> None:
    _, errors = load_with(pdir, "long.yaml", seccomp_doc(
        "long", f"defaultAction: SCMP_ACT_ERRNO\ndefaultErrnoRet: {number}"))
    messages = [str(e) for e in errors]
    assert messages, "refused"
    assert all(len(m) < 400 for m in messages)


def test_a_very_long_integer_in_json(pdir: Path) -> None:
    error = only_error(pdir, "long.json", '{"defaultAction": "SCMP_ACT_ERRNO", '
                       '"defaultErrnoRet": ' + "9" * 5000 + "}")
    assert "JSON error" in error.message


@pytest.mark.parametrize("depth", [MAX_DEPTH + 2, 990, 100_000])
def test_deep_nesting_in_yaml(pdir: Path, depth: int) -> None:
    error = only_error(pdir, "deep.yaml", HEADER + "metadata: {name: deep}\nspec: "
                       + "[" * depth + "]" * depth + "\n")
    assert "nest" in error.message


def test_deep_nesting_in_json(pdir: Path) -> None:
    error = only_error(pdir, "deep.json", "[" * 100_000 + "]" * 100_000)
    assert "nested too deeply" in error.message


def test_an_alias_bomb(pdir: Path) -> None:
    lines = [HEADER + "metadata: {name: bomb}\nx0: &a0 [read, read, read, read, read, read, "
             "read, read, read, read]"]
    lines += [f"x{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    error = only_error(pdir, "bomb.yaml", "\n".join(lines) + "\nspec: {defaultAction: "
                       "SCMP_ACT_ERRNO}\n")
    assert "expands to more than" in error.message


def test_aliases_of_modest_size_still_work(pdir: Path) -> None:
    desired, errors = load_with(pdir, "ok.yaml", HEADER + "metadata: {name: ok}\nspec:\n"
                                "  defaultAction: SCMP_ACT_ERRNO\n  syscalls:\n"
                                "    - {names: &n [read, write], action: SCMP_ACT_ALLOW}\n"
                                "    - {names: *n, action: SCMP_ACT_LOG}\n")
    assert ProfileKey(Kind.SECCOMP, "ok") in desired.profiles and not errors


def test_many_documents_with_one_name_stay_linear(pdir: Path) -> None:
    n = 4000
    text = "---\n".join(seccomp_doc("same", "defaultAction: SCMP_ACT_ERRNO") for _ in range(n))
    desired, errors = load_with(pdir, "dups.yaml", text)
    errors = list(desired.key_errors[ProfileKey(Kind.SECCOMP, "same")])
    assert len(errors) == n
    assert all("and 3995 more" in e.message and len(e.message) < 400 for e in errors)


def test_documents_per_file_are_capped(pdir: Path) -> None:
    _, errors = load_with(pdir, "many.yaml", "---\nx\n" * (MAX_DOCUMENTS + 1))
    assert len(errors) == MAX_DOCUMENTS + 1  # one per document read, then the cap
    assert f"more than {MAX_DOCUMENTS} documents" in errors[-1].message


def test_names_per_rule_and_rules_per_profile_are_capped(pdir: Path) -> None:
    names = ", ".join(f"s{i}" for i in range(MAX_NAMES_PER_RULE + 1))
    desired, _ = load_with(pdir, "names.yaml", seccomp_doc(
        "names", f"defaultAction: SCMP_ACT_ERRNO\nsyscalls:\n"
                 f"  - {{names: [{names}], action: SCMP_ACT_ALLOW}}"))
    [error] = desired.key_errors[ProfileKey(Kind.SECCOMP, "names")]
    assert error.field == "spec.syscalls[0].names"
    assert f"at most {MAX_NAMES_PER_RULE} entries" in error.message
    rules = "\n".join("  - {names: [read], action: SCMP_ACT_ALLOW}"
                      for _ in range(MAX_RULES + 1))
    desired, _ = load_with(pdir, "rules.yaml", seccomp_doc(
        "rules", f"defaultAction: SCMP_ACT_ERRNO\nsyscalls:\n{rules}"))
    [error] = desired.key_errors[ProfileKey(Kind.SECCOMP, "rules")]
    assert error.field == "spec.syscalls"


def test_a_hundred_thousand_distinct_names_are_checked_in_linear_time(pdir: Path) -> None:
    # Within the caps, duplicate checks are set lookups (once a list scan: 100k names > 60 s).
    rules = "\n".join(
        "  - {names: [" + ", ".join(f"n{r}x{i}" for i in range(MAX_NAMES_PER_RULE)) + "], "
        "action: SCMP_ACT_ALLOW}" for r in range(25))
    desired, errors = load_with(pdir, "wide.yaml", seccomp_doc(
        "wide", f"defaultAction: SCMP_ACT_ERRNO\nsyscalls:\n{rules}"))
    assert not errors
    profile = desired.profiles[ProfileKey(Kind.SECCOMP, "wide")]
    assert sum(len(r.names) for r in profile.spec.syscalls) == 25 * MAX_NAMES_PER_RULE


def test_a_megabyte_long_unknown_value_gives_a_short_message(pdir: Path) -> None:
    error_text = seccomp_doc("huge", "defaultAction: SCMP_ACT_" + "X" * 1_000_000)
    desired, _ = load_with(pdir, "huge.yaml", error_text)
    [error] = desired.key_errors[ProfileKey(Kind.SECCOMP, "huge")]
    assert len(error.message) < 300 and "(1000009 characters)" in error.message


def test_a_fifo_in_the_directory_never_blocks(pdir: Path) -> None:
    os.mkfifo(pdir / "pipe.yaml")
    os.symlink("pipe.yaml", pdir / "link.yaml")
    desired = load_directory(pdir)  # would hang forever on open() without O_NONBLOCK
    assert ProfileKey(Kind.SECCOMP, "good") in desired.profiles


def test_an_unexpected_exception_is_that_files_error(
    pdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A parser bug stands in for any bug an input may meet: registered through the seam the
    loader reads kinds from (SPEC_PARSERS), it must stay that file's error."""

    def buggy(*_: object) -> object:
        raise KeyError("a bug")

    monkeypatch.setitem(SPEC_PARSERS, Kind.APPARMOR, buggy)  # type: ignore[arg-type]
    error = only_error(pdir, "aa.yaml", "apiVersion: security-profiles-operator.x-k8s.io/v1\n"
                       "kind: AppArmorProfile\nmetadata: {name: x}\nspec: {}\n")
    assert error.code == "parse-failed" and "KeyError" in error.message


def test_overriding_forty_thousand_names_in_a_merge() -> None:
    names = tuple(f"n{i}" for i in range(40_000))
    base = union(SeccompSpec(default_action="SCMP_ACT_ERRNO",
                             syscalls=(SyscallRule(names=names, action="SCMP_ACT_ERRNO"),)), None)
    merged = union(SeccompSpec(default_action="SCMP_ACT_ERRNO",
                               syscalls=(SyscallRule(names=names, action="SCMP_ACT_ALLOW"),)),
                   base)
    [rule] = merged.spec.syscalls
    assert rule.action == "SCMP_ACT_ALLOW" and len(rule.names) == 40_000
    assert list(merged.groups) == [("SCMP_ACT_ALLOW", None, ())]  # the emptied group is gone


def test_a_merged_profile_is_bounded(pdir: Path) -> None:
    rules = tuple(SyscallRule(names=tuple(f"r{r}n{i}" for i in range(4000)),
                              action="SCMP_ACT_ALLOW") for r in range(3))
    spec = SeccompSpec(default_action="SCMP_ACT_ERRNO", syscalls=rules)
    from agent.model.profile import Origin  # noqa: PLC0415
    from agent.model.seccomp import SeccompProfile  # noqa: PLC0415

    profile = SeccompProfile(name="big", origin=Origin(file="f", display="f", index=0),
                             spec=spec)
    with pytest.raises(Exception, match=f"at most {MAX_DECISIONS}") as info:
        Resolver({"big": profile}).resolve("big")
    assert getattr(info.value, "code", "") == "profile-too-large"
