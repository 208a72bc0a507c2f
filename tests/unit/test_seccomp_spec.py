"""Field-by-field validation of a SeccompProfile spec: every message names the field."""

from __future__ import annotations

import pytest

from agent.errors import ManifestError
from agent.model.manifests import load_bytes
from agent.model.profile import Kind, ProfileKey
from agent.model.seccomp import Arg, SeccompProfile
from tests.conftest import seccomp_doc

KEY = ProfileKey(Kind.SECCOMP, "p")


def parse(body: str) -> SeccompProfile:
    desired = load_bytes(seccomp_doc("p", body).encode(), display="p.yaml", as_json=False,
                         plain_name="p")
    if desired.errors:
        raise desired.errors[0]
    return desired.profiles[KEY]


def error(body: str) -> str:
    with pytest.raises(ManifestError) as exc:
        parse(body)
    return str(exc.value)


RULE = "syscalls:\n  - {names: [read], action: SCMP_ACT_ERRNO, %s}"


@pytest.mark.parametrize(("body", "expected"), [
    ("syscalls: []", "p.yaml[0] spec.defaultAction: required field is missing"),
    ("defaultAction: SCMP_ACT_NOTIFY",
     "p.yaml[0] spec.defaultAction: SCMP_ACT_NOTIFY cannot be the default action"),
    ("defaultAction: SCMP_ACT_ERRNO\ndefaultActoin: x",
     "p.yaml[0] spec.defaultActoin: unknown field (did you mean defaultAction?)"),
    ("defaultAction: SCMP_ACT_ERRNO\narchitectures: [SCMP_ARCH_X86_46]",
     'p.yaml[0] spec.architectures[0]: unknown architecture "SCMP_ARCH_X86_46" '
     "(did you mean SCMP_ARCH_X86_64?)"),
    ("defaultAction: SCMP_ACT_ERRNO\narchitectures: [SCMP_ARCH_X86, SCMP_ARCH_X86]",
     'p.yaml[0] spec.architectures[1]: duplicate architecture "SCMP_ARCH_X86"'),
    ("defaultAction: SCMP_ACT_ERRNO\nflags: [SECCOMP_FILTER_FLAG_TSYN]",
     'p.yaml[0] spec.flags[0]: unknown flag "SECCOMP_FILTER_FLAG_TSYN" '
     "(did you mean SECCOMP_FILTER_FLAG_TSYNC?)"),
    ("defaultAction: SCMP_ACT_ERRNO\n" + RULE % "errnoRet: -1",
     "p.yaml[0] spec.syscalls[0].errnoRet: must not be negative, got -1"),
    ("defaultAction: SCMP_ACT_ERRNO\n" + RULE % "errnoRet: 4096",
     "p.yaml[0] spec.syscalls[0].errnoRet: must be at most 4095, got 4096"),
    ("defaultAction: SCMP_ACT_ERRNO\n" + RULE % "errnoRet: '1'",
     "p.yaml[0] spec.syscalls[0].errnoRet: expected an integer, got a string"),
    ("defaultAction: SCMP_ACT_ERRNO\n" + RULE % "errnoRet: 1.5",
     "p.yaml[0] spec.syscalls[0].errnoRet: expected an integer, got a number"),
    ("defaultAction: SCMP_ACT_ERRNO\n"
     "syscalls:\n  - {names: [read], action: SCMP_ACT_ALLOW, errnoRet: 1}",
     "p.yaml[0] spec.syscalls[0].errnoRet: has no effect with SCMP_ACT_ALLOW"),
    ("defaultAction: SCMP_ACT_ERRNO\n" + RULE % "args: [{index: 6, op: SCMP_CMP_EQ}]",
     "p.yaml[0] spec.syscalls[0].args[0].index: must be at most 5, got 6"),
    ("defaultAction: SCMP_ACT_ERRNO\n" + RULE % "args: [{index: 0, op: SCMP_CMP_EQUAL}]",
     'p.yaml[0] spec.syscalls[0].args[0].op: unknown operator "SCMP_CMP_EQUAL"'),
    ("defaultAction: SCMP_ACT_ERRNO\n" + RULE % "args: [{index: 0}]",
     "p.yaml[0] spec.syscalls[0].args[0].op: required field is missing"),
    ("defaultAction: SCMP_ACT_ERRNO\n" + RULE % "args: [{index: 0, value: -3, op: SCMP_CMP_EQ}]",
     "p.yaml[0] spec.syscalls[0].args[0].value: must not be negative, got -3"),
    ("defaultAction: SCMP_ACT_ERRNO\n" + RULE % ("args: [" + ", ".join(
        ["{index: 0, op: SCMP_CMP_EQ}"] * 7) + "]"),
     "p.yaml[0] spec.syscalls[0].args: at most 6 entries are allowed, got 7"),
    ("defaultAction: SCMP_ACT_ERRNO\nsyscalls:\n  - {names: [], action: SCMP_ACT_ALLOW}",
     "p.yaml[0] spec.syscalls[0].names: must list at least one syscall"),
    ("defaultAction: SCMP_ACT_ERRNO\nsyscalls:\n  - {names: [Read], action: SCMP_ACT_ALLOW}",
     'p.yaml[0] spec.syscalls[0].names[0]: "Read" is not a syscall name'),
    ("defaultAction: SCMP_ACT_ERRNO\nsyscalls:\n  - {names: [a, a], action: SCMP_ACT_ALLOW}",
     'p.yaml[0] spec.syscalls[0].names[1]: duplicate syscall "a"'),
    ("defaultAction: SCMP_ACT_ERRNO\nsyscalls:\n  - {names: [read]}",
     "p.yaml[0] spec.syscalls[0].action: required field is missing"),
    ("defaultAction: SCMP_ACT_ERRNO\nsyscalls: {names: [read]}",
     "p.yaml[0] spec.syscalls: expected a list, got a mapping"),
    ("defaultAction: SCMP_ACT_ERRNO\nlistenerPath: relative.sock",
     "p.yaml[0] spec.listenerPath: must be an absolute socket path"),
    ("defaultAction: SCMP_ACT_ERRNO\nbaseProfileName: ../etc",
     "p.yaml[0] spec.baseProfileName: '../etc' is not a valid name"),
    ("defaultAction: SCMP_ACT_ERRNO\nbaseProfileName: 'oci://'",
     "p.yaml[0] spec.baseProfileName: 'oci://' is not a valid OCI reference"),
    ("defaultAction: SCMP_ACT_ERRNO\nstate: Paused",
     'p.yaml[0] spec.state: unknown state "Paused"'),
    ("defaultAction: SCMP_ACT_ERRNO\ndisabled: 'yes'",
     "p.yaml[0] spec.disabled: expected true or false, got a string"),
])
def test_field_errors(body: str, expected: str) -> None:
    assert error(body).startswith(expected)


def test_spo_errno_zero_means_unset_and_args_parse() -> None:
    prof = parse("defaultAction: SCMP_ACT_ALLOW\ndefaultErrnoRet: 0\nsyscalls:\n"
                 "  - names: [personality]\n    action: SCMP_ACT_ERRNO\n    errnoRet: 0\n"
                 "    args: [{index: 0, value: 8, valueTwo: 18446744073709551615, "
                 "op: SCMP_CMP_MASKED_EQ}]\n")
    rule = prof.spec.syscalls[0]
    assert rule.errno_ret is None
    assert rule.args == (Arg(index=0, value=8, value_two=2**64 - 1, op="SCMP_CMP_MASKED_EQ"),)


def test_disabled_and_state_and_base() -> None:
    assert parse("defaultAction: SCMP_ACT_LOG\ndisabled: true").disabled
    assert parse("defaultAction: SCMP_ACT_LOG\nstate: Disabled").disabled
    assert not parse("defaultAction: SCMP_ACT_LOG\nstate: Enabled").disabled
    assert parse("defaultAction: SCMP_ACT_LOG\nbaseProfileName: base").base == "base"
    assert parse("defaultAction: SCMP_ACT_LOG\nbaseProfileName: ''").base is None
    oci = parse("defaultAction: SCMP_ACT_LOG\nbaseProfileName: oci://r.example/p:v1").base
    assert oci == "oci://r.example/p:v1"


def test_null_optional_fields_count_as_absent() -> None:
    prof = parse("defaultAction: SCMP_ACT_LOG\narchitectures: null\nsyscalls: ~")
    assert prof.spec.architectures == () and prof.spec.syscalls == ()
