"""libseccomp's view: unknown names are warnings, filters a runtime would refuse are errors."""

from __future__ import annotations

import pytest

from agent.errors import ValidationError
from agent.model.decode import DocContext, Node
from agent.model.seccomp import SeccompSpec
from agent.model.seccomp_parse import Dialect, parse_spec
from agent.seccomp.merge import union
from agent.seccomp.validate import check_merged, name_warnings


def spec(doc: dict[str, object]) -> SeccompSpec:
    return parse_spec(Node(doc, "", DocContext("t", 0)), Dialect.OCI).spec


def test_unknown_and_misplaced_names_are_warnings() -> None:
    s = spec({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["read", "no_such_call", "recv"], "action": "SCMP_ACT_ALLOW"}]})
    assert name_warnings(s, ("SCMP_ARCH_X86_64",)) == (
        "syscall 'no_such_call' is unknown to libseccomp; runtimes ignore it silently",
        "syscall 'recv' does not exist on SCMP_ARCH_X86_64; the rule has no effect",
    )
    # recv is a real syscall on 32-bit ARM, so declaring it there silences the warning
    assert name_warnings(s, ("SCMP_ARCH_X86_64", "SCMP_ARCH_ARM")) == (
        "syscall 'no_such_call' is unknown to libseccomp; runtimes ignore it silently",
    )
    check_merged(union(s, None).spec)  # warnings only: the filter still compiles


def test_notify_needs_a_listener() -> None:
    s = spec({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["openat"], "action": "SCMP_ACT_NOTIFY"}]})
    with pytest.raises(ValidationError) as exc:
        check_merged(s)
    assert exc.value.code == "notify-without-listener"
    check_merged(spec({"defaultAction": "SCMP_ACT_ERRNO", "listenerPath": "/run/agent.sock",
                       "syscalls": [{"names": ["openat"], "action": "SCMP_ACT_NOTIFY"}]}))


def test_libseccomp_rejection_is_an_error() -> None:
    # On 32-bit x86 socket() goes through socketcall(): libseccomp cannot filter its arguments,
    # and the two rules collide. runc would refuse to start a container with this profile.
    s = spec({"defaultAction": "SCMP_ACT_ERRNO",
              "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
              "syscalls": [
                  {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
                   "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},
                  {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 97,
                   "args": [{"index": 0, "value": 10, "op": "SCMP_CMP_EQ"}]}]})
    with pytest.raises(ValidationError) as exc:
        check_merged(union(s, None).spec)
    assert exc.value.code == "libseccomp-rejected"
    assert "'socket'" in str(exc.value)


def test_rules_equal_to_the_default_action_are_skipped_like_runc() -> None:
    check_merged(spec({"defaultAction": "SCMP_ACT_ALLOW",
                       "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}))
