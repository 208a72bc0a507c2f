"""A profile whose BPF program is longer than the kernel loads is an error with the count, not
``Installed``. The hostile profile is generated here; the kernel's refusal is checked for real by
loading the same filter in a forked child."""

from __future__ import annotations

import os

import pytest

from agent.errors import ValidationError
from agent.model.decode import DocContext, Node
from agent.model.seccomp import SeccompSpec
from agent.model.seccomp_parse import Dialect, parse_spec
from agent.seccomp.libseccomp import BPF_MAXINSNS, compiled
from agent.seccomp.validate import check_merged


def _spec(conditions: int) -> SeccompSpec:
    """One rule per value pair of personality(2)'s first two arguments, the first with high
    bits set: about eight instructions each. The default allows, so that the child that loads
    it can still exit."""
    rules = [{"names": ["personality"], "action": "SCMP_ACT_ERRNO",
              "args": [{"index": 0, "value": (v << 32) | v, "op": "SCMP_CMP_EQ"},
                       {"index": 1, "value": v, "op": "SCMP_CMP_EQ"}]}
             for v in range(conditions)]
    doc = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules}
    return parse_spec(Node(doc, "", DocContext("t", 0)), Dialect.OCI).spec


def _kernel_loads(spec: SeccompSpec) -> int:
    """0 when the kernel accepts the filter, else the errno of seccomp_load, in a child."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 0
        try:
            with compiled(spec) as built:
                built.load()
        except OSError as exc:
            code = exc.errno or 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_a_program_past_the_kernel_limit_is_refused_with_its_count() -> None:
    big = _spec(600)
    with compiled(big) as built:
        count = built.instructions()
    assert count > BPF_MAXINSNS
    assert _kernel_loads(big) != 0  # the kernel really refuses it (EINVAL)

    with pytest.raises(ValidationError) as exc:
        check_merged(big)
    assert exc.value.code == "bpf-too-large"
    assert f"{count} instructions" in exc.value.message
    assert str(BPF_MAXINSNS) in exc.value.message


def test_a_program_under_the_limit_passes_and_loads() -> None:
    small = _spec(400)
    check_merged(small)
    with compiled(small) as built:
        assert 0 < built.instructions() <= BPF_MAXINSNS
    assert _kernel_loads(small) == 0
