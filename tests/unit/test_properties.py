"""Property-based tests (hypothesis): the merge's laws over chains, and a parser that never
raises whatever it is given."""

from __future__ import annotations

import json
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.model.manifests import load_bytes
from agent.model.seccomp import ACTION_RANK, ERRNO_ACTIONS, Arg, SeccompSpec, SyscallRule
from agent.seccomp.merge import Merged, union
from agent.seccomp.render import render, spec_json

NAMES = ("read", "write", "mkdir", "chmod", "socket", "ptrace")
ARGS = ((), (Arg(index=0, value=8, value_two=0, op="SCMP_CMP_EQ"),),
        (Arg(index=1, value=2, value_two=0, op="SCMP_CMP_NE"),))
ACTIONS = tuple(a for a in ACTION_RANK if a != "SCMP_ACT_KILL")  # KILL aliases KILL_THREAD


@st.composite
def specs(draw: st.DrawFn) -> SeccompSpec:
    """A spec whose rules never name one (syscall, args) twice: within one profile a conflict
    is the parser's business; across a chain it is the merge's, which is what is tested."""
    used: set[tuple[str, tuple[Arg, ...]]] = set()
    rules = []
    for _ in range(draw(st.integers(0, 5))):
        args = draw(st.sampled_from(ARGS))
        names = [n for n in draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=4,
                                          unique=True)) if (n, args) not in used]
        if not names:
            continue
        used.update((n, args) for n in names)
        action = draw(st.sampled_from(ACTIONS))
        errno = draw(st.one_of(st.none(), st.integers(1, 40))) if action in ERRNO_ACTIONS \
            else None
        rules.append(SyscallRule(names=tuple(names), action=action, errno_ret=errno,
                                 args=args))
    return SeccompSpec(default_action="SCMP_ACT_ERRNO", syscalls=tuple(rules))


def fold(chain: list[SeccompSpec]) -> Merged:
    """``chain[0]`` is the child, the last element the deepest base."""
    merged = None
    for spec in reversed(chain):
        merged = union(spec, merged)
    assert merged is not None
    return merged


def reference(chain: list[SeccompSpec]) -> dict[tuple[str, tuple[Arg, ...]], tuple[str, Any]]:
    """One decision per (name, args): the least restrictive action; on a tie the deeper."""
    out: dict[tuple[str, tuple[Arg, ...]], tuple[str, Any]] = {}
    for spec in reversed(chain):
        for rule in spec.syscalls:
            for name in rule.names:
                old = out.get((name, rule.args))
                if old is None or ACTION_RANK[rule.action] > ACTION_RANK[old[0]]:
                    out[(name, rule.args)] = (rule.action, rule.errno_ret)
    return out


def decisions(merged: Merged) -> dict[tuple[str, tuple[Arg, ...]], tuple[str, Any]]:
    return {(name, rule.args): (rule.action, rule.errno_ret)
            for rule in merged.spec.syscalls for name in rule.names}


@settings(max_examples=120, deadline=None)
@given(st.lists(specs(), min_size=1, max_size=5))
def test_the_merge_is_the_least_restrictive_union_over_the_chain(chain: list[SeccompSpec]) -> None:
    want = reference(chain)
    unconditional = {name for name, args in want if not args}
    # libseccomp lets an unconditional rule override conditional ones: those are dropped
    want = {k: v for k, v in want.items() if not (k[1] and k[0] in unconditional)}
    assert decisions(fold(chain)) == want


@settings(max_examples=80, deadline=None)
@given(st.lists(specs(), min_size=1, max_size=4), st.randoms(use_true_random=False))
def test_the_merge_never_loses_a_name_and_is_deterministic(
    chain: list[SeccompSpec], rnd: Any
) -> None:
    merged = fold(chain)
    named = {n for spec in chain for rule in spec.syscalls for n in rule.names}
    assert {n for rule in merged.spec.syscalls for n in rule.names} == named
    shuffled = []
    for spec in chain:  # rule order within a spec (names unique) must not matter
        rules = list(spec.syscalls)
        rnd.shuffle(rules)
        shuffled.append(SeccompSpec(default_action=spec.default_action, syscalls=tuple(rules)))
    assert render(fold(shuffled).spec) == render(merged.spec)


@settings(max_examples=80, deadline=None)
@given(st.lists(specs(), min_size=2, max_size=4))
def test_a_child_never_tightens_its_base(chain: list[SeccompSpec]) -> None:
    base = decisions(fold(chain[1:]))
    merged = decisions(fold(chain))
    for key, (action, _) in base.items():
        if key in merged:
            assert ACTION_RANK[merged[key][0]] >= ACTION_RANK[action]


JSONISH = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
              st.text(max_size=20)),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=30,
)
FIELDS = ("apiVersion", "kind", "metadata", "name", "spec", "defaultAction", "syscalls",
          "names", "action", "args", "index", "value", "op", "errnoRet", "baseProfileName",
          "architectures", "flags", "disabled", "state", "items")


def manifest_like(draw: st.DrawFn) -> dict[str, Any]:
    spec = draw(st.dictionaries(st.sampled_from(FIELDS), JSONISH, max_size=5))
    return {"apiVersion": "security-profiles-operator.x-k8s.io/v1",
            "kind": draw(st.sampled_from(["SeccompProfile", "AppArmorProfile", "List", "x"])),
            "metadata": draw(st.one_of(st.just({"name": "p"}), JSONISH)), "spec": spec}


@settings(max_examples=120, deadline=None)
@given(st.one_of(JSONISH, st.composite(manifest_like)()), st.booleans())
def test_the_parser_never_raises_on_structured_input(doc: Any, as_json: bool) -> None:
    data = json.dumps(doc) if as_json else yaml.safe_dump(doc)
    state = load_bytes(data.encode(), display="f", as_json=as_json, plain_name="p")
    assert all(e.code for e in state.errors)


@settings(max_examples=120, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode), st.booleans())
def test_the_parser_never_raises_on_noise(data: bytes, as_json: bool) -> None:
    state = load_bytes(data, display="f", as_json=as_json, plain_name="p")
    assert all(e.code for e in state.errors)


TEXT = st.text(max_size=6) | st.sampled_from(NAMES)  # quotes, backslashes, DEL, non-ASCII, ""
INT = st.integers(0, 2**64 - 1)


@st.composite
def any_specs(draw: st.DrawFn) -> SeccompSpec:
    """Any field values the model can hold, not only valid ones: the bytes must still be
    json's."""
    rules = tuple(
        SyscallRule(names=tuple(draw(st.lists(TEXT, max_size=4))), action=draw(TEXT),
                    errno_ret=draw(st.none() | INT),
                    args=tuple(Arg(index=draw(INT), value=draw(INT), value_two=draw(INT),
                                   op=draw(TEXT)) for _ in range(draw(st.integers(0, 2)))))
        for _ in range(draw(st.integers(0, 3))))
    return SeccompSpec(default_action=draw(TEXT), default_errno_ret=draw(st.none() | INT),
                       architectures=tuple(draw(st.lists(TEXT, max_size=3))),
                       flags=tuple(draw(st.lists(TEXT, max_size=2))),
                       listener_path=draw(TEXT), listener_metadata=draw(TEXT), syscalls=rules)


@settings(max_examples=300, deadline=None)
@given(any_specs())
def test_the_rendered_bytes_are_jsons(spec: SeccompSpec) -> None:
    """render() uses its own prebuilt encoder: the bytes are exactly json.dumps' compact form
    of spec_json, odd strings included."""
    want = json.dumps(spec_json(spec), separators=(",", ":"), ensure_ascii=True) + "\n"
    assert render(spec) == want.encode()
