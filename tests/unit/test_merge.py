"""Merge semantics (DESIGN §5): one decision per syscall, conditional rules never AND-ed."""

from __future__ import annotations

import random
from typing import Any

from agent.model.decode import DocContext, Node
from agent.model.seccomp import SeccompSpec
from agent.model.seccomp_parse import Dialect, parse_spec
from agent.seccomp.merge import Merged, union
from agent.seccomp.render import render, spec_json


def spec(syscalls: list[dict[str, Any]], **top: Any) -> SeccompSpec:
    doc = {"defaultAction": "SCMP_ACT_ERRNO", **top, "syscalls": syscalls}
    return parse_spec(Node(doc, "", DocContext("test", 0)), Dialect.OCI).spec


def chain(*specs: SeccompSpec) -> Merged:
    """Merge ``specs`` given child first, deepest base last."""
    merged: Merged | None = None
    for s in reversed(specs):
        merged = union(s, merged)
    assert merged is not None
    return merged


def rules(merged: Merged) -> list[dict[str, Any]]:
    return spec_json(merged.spec)["syscalls"]  # type: ignore[no-any-return]


def allow(*names: str, **extra: Any) -> dict[str, Any]:
    return {"names": list(names), "action": "SCMP_ACT_ALLOW", **extra}


def errno(*names: str, ret: int | None = None, **extra: Any) -> dict[str, Any]:
    out = {"names": list(names), "action": "SCMP_ACT_ERRNO", **extra}
    if ret is not None:
        out["errnoRet"] = ret
    return out


def eq(index: int, value: int) -> dict[str, Any]:
    return {"index": index, "value": value, "op": "SCMP_CMP_EQ"}


def test_union_of_disjoint_names_groups_them_sorted_bytewise() -> None:
    merged = chain(spec([allow("write", "_llseek")]), spec([allow("read", "openat")]))
    assert rules(merged) == [allow("_llseek", "openat", "read", "write")]


def test_child_loosens_base() -> None:
    merged = chain(spec([allow("ptrace")]), spec([errno("ptrace", ret=1)]))
    assert rules(merged) == [allow("ptrace")]


def test_child_cannot_tighten_base() -> None:
    merged = chain(spec([errno("mount", ret=1)]), spec([allow("mount")]))
    assert rules(merged) == [allow("mount")]


def test_tie_keeps_deeper_base_and_its_errno() -> None:
    merged = chain(spec([errno("uname", ret=1)]), spec([errno("uname", ret=38)]))
    assert rules(merged) == [errno("uname", ret=38)]


def test_tie_three_deep_keeps_the_deepest() -> None:
    merged = chain(
        spec([errno("uname", ret=1)]), spec([errno("uname", ret=2)]), spec([errno("uname", ret=3)])
    )
    assert rules(merged) == [errno("uname", ret=3)]


def test_kill_alias_ranks_equal_to_kill_thread() -> None:
    merged = chain(
        spec([{"names": ["reboot"], "action": "SCMP_ACT_KILL_THREAD"}]),
        spec([{"names": ["reboot"], "action": "SCMP_ACT_KILL"}]),
    )
    assert rules(merged) == [{"names": ["reboot"], "action": "SCMP_ACT_KILL"}]


def test_full_ranking() -> None:
    order = ["SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP", "SCMP_ACT_ERRNO",
             "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_LOG", "SCMP_ACT_ALLOW"]
    for weaker, stronger in zip(order[1:], order, strict=False):
        for child, base in ((weaker, stronger), (stronger, weaker)):
            merged = chain(spec([{"names": ["x"], "action": child}]),
                           spec([{"names": ["x"], "action": base}]))
            assert rules(merged)[0]["action"] == weaker, (child, base)


def test_duplicate_name_inside_one_profile_takes_less_restrictive() -> None:
    merged = chain(spec([errno("read"), allow("read")]))
    assert rules(merged) == [allow("read")]


def test_conditional_rules_are_never_and_ed() -> None:
    # SPO would produce ALLOW socket(arg0==16 && arg0==1): the conditional deny becomes an allow.
    base = spec([errno("socket", ret=1, args=[eq(0, 16)])])
    child = spec([allow("socket", args=[eq(0, 1)])])
    assert rules(chain(child, base)) == [
        allow("socket", args=[eq(0, 1)]),
        errno("socket", ret=1, args=[eq(0, 16)]),
    ]


def test_identical_conditional_rules_are_kept_once() -> None:
    rule = allow("socket", args=[eq(0, 1)])
    assert rules(chain(spec([rule]), spec([rule]))) == [rule]


def test_same_condition_different_action_is_one_decision() -> None:
    # libseccomp refuses two rules with the same condition and different actions (EEXIST).
    base = spec([errno("personality", ret=1, args=[eq(0, 8)])])
    child = spec([allow("personality", args=[eq(0, 8)])])
    assert rules(chain(child, base)) == [allow("personality", args=[eq(0, 8)])]


def test_unconditional_rule_makes_conditional_rules_inert() -> None:
    base = spec([errno("socket", ret=97, args=[eq(0, 10)])])
    child = spec([allow("socket")])
    merged = chain(child, base)
    assert rules(merged) == [allow("socket")]
    assert merged.inert == {"socket"}


def test_conditional_names_with_same_args_group_together() -> None:
    merged = chain(spec([allow("b", args=[eq(1, 2)]), allow("a", args=[eq(1, 2)])]))
    assert rules(merged) == [allow("a", "b", args=[eq(1, 2)])]


def test_top_level_fields_come_from_the_child() -> None:
    child = spec([], defaultAction="SCMP_ACT_LOG", architectures=["SCMP_ARCH_X86_64"])
    base = spec([], defaultAction="SCMP_ACT_KILL", architectures=["SCMP_ARCH_AARCH64"],
                flags=["SECCOMP_FILTER_FLAG_LOG"])
    out = spec_json(chain(child, base).spec)
    assert out == {"defaultAction": "SCMP_ACT_LOG", "architectures": ["SCMP_ARCH_X86_64"],
                   "syscalls": []}


def test_output_is_deterministic_whatever_the_input_order() -> None:
    entries = [allow("read", "write"), errno("mkdir", ret=1), allow("openat"),
               errno("chmod", ret=13), allow("socket", args=[eq(0, 1)]),
               {"names": ["kill"], "action": "SCMP_ACT_LOG"}]
    expected = render(chain(spec(entries)).spec)
    rng = random.Random(7)
    for _ in range(20):
        shuffled = [dict(e, names=rng.sample(e["names"], len(e["names"]))) for e in entries]
        rng.shuffle(shuffled)
        assert render(chain(spec(shuffled)).spec) == expected


def test_groups_least_restrictive_first_then_by_errno() -> None:
    merged = chain(spec([errno("b", ret=13), errno("a", ret=1), allow("z"),
                         {"names": ["k"], "action": "SCMP_ACT_KILL_PROCESS"}]))
    assert [r["names"] for r in rules(merged)] == [["z"], ["a"], ["b"], ["k"]]


def test_three_link_chain() -> None:
    child = spec([allow("read"), errno("mkdir", ret=1), allow("socket", args=[eq(0, 1)])])
    middle = spec([errno("read", ret=5), allow("mkdir")])
    root = spec([errno("write", ret=2), allow("socket")])
    merged = chain(child, middle, root)
    assert rules(merged) == [allow("mkdir", "read", "socket"), errno("write", ret=2)]
    assert merged.inert == {"socket"}
