"""Deterministic OCI runtime-spec ``LinuxSeccomp`` JSON.

Only runtime-spec keys are written (no SPO-only ``baseProfileName``/``state``), in a fixed order,
with a trailing newline, so equal profiles are equal bytes and a digest comparison is enough to
know that nothing needs rewriting.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from agent.fsutil import sha256_hex
from agent.model.seccomp import Arg, SeccompSpec, SyscallRule


def arg_json(arg: Arg) -> dict[str, Any]:
    out: dict[str, Any] = {"index": arg.index, "value": arg.value}
    if arg.value_two:
        out["valueTwo"] = arg.value_two
    out["op"] = arg.op
    return out


def rule_json(rule: SyscallRule) -> dict[str, Any]:
    out: dict[str, Any] = {"names": list(rule.names), "action": rule.action}
    if rule.errno_ret is not None:
        out["errnoRet"] = rule.errno_ret
    if rule.args:
        out["args"] = [arg_json(a) for a in rule.args]
    return out


def spec_json(spec: SeccompSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"defaultAction": spec.default_action}
    if spec.default_errno_ret is not None:
        out["defaultErrnoRet"] = spec.default_errno_ret
    if spec.architectures:
        out["architectures"] = list(spec.architectures)
    if spec.flags:
        out["flags"] = list(spec.flags)
    if spec.listener_path:
        out["listenerPath"] = spec.listener_path
    if spec.listener_metadata:
        out["listenerMetadata"] = spec.listener_metadata
    out["syscalls"] = [rule_json(r) for r in spec.syscalls]
    return out


def render(spec: SeccompSpec) -> bytes:
    """The bytes installed for ``spec``: compact JSON (as SPO writes it; ``secprof resolve``
    pretty-prints), exactly ``json.dumps(spec_json(spec), separators=(",", ":"))`` and a newline.

    Written out here rather than by json.dumps, which spent most of its time on the syscall
    names (~14 us a profile, half of that saved: a tenth of a no-op apply's build);
    ``tests/unit/test_properties.py`` checks the bytes against json.dumps, odd strings
    included."""
    out = ['{"defaultAction":', _quote(spec.default_action)]
    if spec.default_errno_ret is not None:
        out += [',"defaultErrnoRet":', _int(spec.default_errno_ret)]
    if spec.architectures:
        out += [',"architectures":', _strings(spec.architectures)]
    if spec.flags:
        out += [',"flags":', _strings(spec.flags)]
    if spec.listener_path:
        out += [',"listenerPath":', _quote(spec.listener_path)]
    if spec.listener_metadata:
        out += [',"listenerMetadata":', _quote(spec.listener_metadata)]
    out.append(',"syscalls":[')
    for i, rule in enumerate(spec.syscalls):
        out += [',{"names":' if i else '{"names":', _strings(rule.names),
                ',"action":', _quote(rule.action)]
        if rule.errno_ret is not None:
            out += [',"errnoRet":', _int(rule.errno_ret)]
        if rule.args:
            out.append(',"args":[' + ",".join(_arg(a) for a in rule.args) + "]")
        out.append("}")
    out.append("]}\n")
    return "".join(out).encode()


# A string as json.dumps(ensure_ascii=True) writes it, quotes included.
_quote = json.encoder.encode_basestring_ascii


def _int(value: int) -> str:
    return int.__repr__(value)  # what json writes for an int (the parser refuses booleans)


def _strings(values: Sequence[str]) -> str:
    """A list of strings: joined as they are when none needs escaping (syscall names never
    do; checked at C speed), else each written as json would."""
    plain = "".join(values)
    if plain.isascii() and plain.isprintable() and '"' not in plain and "\\" not in plain:
        return '["' + '","'.join(values) + '"]' if values else "[]"
    return "[" + ",".join(map(_quote, values)) + "]"


def _arg(arg: Arg) -> str:
    two = f',"valueTwo":{_int(arg.value_two)}' if arg.value_two else ""
    return (f'{{"index":{_int(arg.index)},"value":{_int(arg.value)}{two},'
            f'"op":{_quote(arg.op)}}}')


def pretty(spec: SeccompSpec) -> str:
    """``spec`` indented for people."""
    return json.dumps(spec_json(spec), indent=2, ensure_ascii=True) + "\n"


def digest(data: bytes) -> str:
    """``sha256:<hex>``, the form every digest in secprof's output takes."""
    return f"sha256:{sha256_hex(data)}"
