"""The error code registry (agent/codes.py) against the code that uses it, and the README.

The source checks read every module of ``agent/`` with :mod:`ast`. A code is "written" at:
a ``code=`` / ``*_code=`` keyword argument; an assignment to ``code``, ``default_code`` or
``*_code``; a default of a ``code`` / ``*_code`` parameter; a positional argument in the place of
such a parameter of a function or class defined in ``agent/``; a ``"code"`` or ``"ERROR_CODE"``
entry of a dict display; a string compared with ``.code`` / ``.*_code``. Conditional
expressions, ``or`` and ``str()`` are looked through. The empty string means "no code" and is
skipped.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent.codes import Code, Exit, exit_status

ROOT = Path(__file__).resolve().parents[2]
AGENT = ROOT / "agent"
REGISTRY = AGENT / "codes.py"
KEBAB = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


@dataclass(frozen=True, slots=True)
class Written:
    """A string literal written where a code belongs."""

    where: str  # "agent/x.py:12"
    value: str


def _is_code_name(name: str) -> bool:
    return name == "code" or (name.endswith("_code") and name != "exit_code")


def _strings(node: ast.expr | None) -> Iterator[ast.Constant]:
    """The string constants an expression can evaluate to (through ``a if c else b``,
    ``a or b``, ``str(x)`` and tuple/list/set displays, as used by ``in``)."""
    match node:
        case ast.Constant(value=str()):
            yield node
        case ast.IfExp(body=body, orelse=orelse):
            yield from _strings(body)
            yield from _strings(orelse)
        case ast.BoolOp(values=values):
            for value in values:
                yield from _strings(value)
        case ast.Call(func=ast.Name(id="str"), args=[arg]):
            yield from _strings(arg)
        case ast.Tuple(elts=elts) | ast.List(elts=elts) | ast.Set(elts=elts):
            for elt in elts:
                yield from _strings(elt)


def _names_code(node: ast.expr) -> bool:
    return (isinstance(node, ast.Attribute) and _is_code_name(node.attr)) or (
        isinstance(node, ast.Name) and _is_code_name(node.id))


def _modules() -> list[tuple[str, ast.Module]]:
    return [(str(path.relative_to(ROOT)), ast.parse(path.read_text(encoding="utf-8")))
            for path in sorted(AGENT.rglob("*.py"))]


def _definitions(tree: ast.Module) -> Iterator[tuple[str, set[int]]]:
    """(name, positional indexes of its code parameters) of each function and class in
    ``tree``; a class by its ``__init__``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            init = next((f for f in node.body
                         if isinstance(f, ast.FunctionDef) and f.name == "__init__"), None)
            if init is None:
                continue
            name, args = node.name, init.args
        elif isinstance(node, ast.FunctionDef):
            name, args = node.name, node.args
        else:
            continue
        params = [a.arg for a in (*args.posonlyargs, *args.args)]
        if params and params[0] in ("self", "cls"):
            params = params[1:]
        yield name, {i for i, p in enumerate(params) if _is_code_name(p)}


def _code_positions(modules: list[tuple[str, ast.Module]]) -> dict[str, set[int]]:
    """Function (and class) name -> positional indexes of its code parameters, over all of
    agent/; a name defined twice keeps only the indexes where every definition has a code
    parameter (a call by a bare name also looks at its own module first: see _written)."""
    positions: dict[str, set[int]] = {}
    for _, tree in modules:
        for name, found in _definitions(tree):
            positions[name] = positions[name] & found if name in positions else found
    return positions


def _written(path: str, tree: ast.Module, positions: dict[str, set[int]]) -> Iterator[Written]:
    def at(constants: Iterator[ast.Constant]) -> Iterator[Written]:
        for c in constants:
            if c.value:
                yield Written(f"{path}:{c.lineno}", c.value)

    local = dict(_definitions(tree))
    for node in ast.walk(tree):
        match node:
            case ast.keyword(arg=str(arg), value=value) if _is_code_name(arg):
                yield from at(_strings(value))
            case ast.Assign(targets=targets, value=value) if any(map(_names_code, targets)):
                yield from at(_strings(value))
            case ast.AnnAssign(target=target, value=value) if _names_code(target):
                yield from at(_strings(value))
            case ast.FunctionDef(args=args):
                positional = [*args.posonlyargs, *args.args]
                for arg, default in zip(positional[len(positional) - len(args.defaults):],
                                        args.defaults, strict=True):
                    if _is_code_name(arg.arg):
                        yield from at(_strings(default))
                for arg, kw_default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
                    if _is_code_name(arg.arg):
                        yield from at(_strings(kw_default))
            case ast.Call(func=func, args=call_args):
                if isinstance(func, ast.Name) and func.id in local:
                    indexes = local[func.id]
                else:
                    name = func.attr if isinstance(func, ast.Attribute) else ""
                    indexes = positions.get(name, set())
                for index in indexes:
                    if index < len(call_args):
                        yield from at(_strings(call_args[index]))
            case ast.Dict(keys=keys, values=values):
                for key, value in zip(keys, values, strict=True):
                    if isinstance(key, ast.Constant) and key.value in ("code", "ERROR_CODE"):
                        yield from at(_strings(value))
            case ast.Compare(left=left, comparators=comparators):
                operands = [left, *comparators]
                if any(map(_names_code, operands)):
                    for operand in operands:
                        yield from at(_strings(operand))


def _all_written() -> list[Written]:
    modules = _modules()
    positions = _code_positions(modules)
    return [w for path, tree in modules if path != "agent/codes.py"
            for w in _written(path, tree, positions)]


def _member_references() -> dict[str, list[str]]:
    """Code member name -> where ``Code.NAME`` is written outside the registry."""
    seen: dict[str, list[str]] = {}
    for path, tree in _modules():
        if path == "agent/codes.py":
            continue
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id == "Code"):
                seen.setdefault(node.attr, []).append(f"{path}:{node.lineno}")
    return seen


def test_every_code_written_in_agent_is_registered() -> None:
    registered = {c.value for c in Code}
    unknown = [f"{w.where}: {w.value!r}" for w in _all_written() if w.value not in registered]
    assert not unknown, ("codes not in agent/codes.py (add them there, with a meaning and an "
                         "exit code):\n" + "\n".join(unknown))


def test_codes_are_written_as_registry_members() -> None:
    """One style across agent/: ``Code.X``, so that a typo fails at import."""
    literal = [f"{w.where}: {w.value!r} -> write Code.{w.value.upper().replace('-', '_')}"
               for w in _all_written()]
    assert not literal, "code literals in agent/:\n" + "\n".join(literal)


def test_every_registered_code_is_used() -> None:
    seen = _member_references()
    unknown = sorted(set(seen) - set(Code.__members__))
    assert not unknown, f"Code has no member {unknown}: {[seen[n] for n in unknown]}"
    dead = [f"Code.{c.name} ({c.value})" for c in Code if c.name not in seen]
    assert not dead, "registered but never used in agent/:\n" + "\n".join(dead)


def test_the_registry_is_well_formed() -> None:
    for code in Code:
        assert KEBAB.match(code.value), code
        assert code.name == code.value.upper().replace("-", "_"), code
        assert code.meaning and "\n" not in code.meaning and len(code.meaning) <= 110, code
        assert isinstance(code.exit_code, Exit), code
        assert code.exit_code not in (Exit.OK, Exit.SOFTWARE), code


def test_the_scanner_sees_each_way_a_code_is_written(tmp_path: Path) -> None:
    """The checks above only mean something if the scanner finds literals; this feeds it one
    of each form it claims to see."""
    source = '''
def helper(message, status=400, code="bad-default"): ...
class Problem:
    def __init__(self, stack, reason, code, hint=""): ...
    default_code = "in-default"
raise AgentError("m", code="in-keyword")
raise AgentError("m", code="" if ok else "in-ifexp")
helper("m", 431, "in-positional")
Problem([], "r", "in-class-positional")
status = replace(status, error_code="in-error-code")
log.error("x", extra={"ERROR_CODE": "in-extra"})
doc = {"code": outcome.code or "in-or"}
ApiError(400, "m", code=str(error.get("code") or "in-str"))
if exc.code == "in-compare" or e.code in ("in-tuple", Code.FINE): pass
'''
    tree = ast.parse(source)
    found = {w.value for w in _written("x.py", tree, _code_positions([("x.py", tree)]))}
    assert found == {"bad-default", "in-default", "in-keyword", "in-ifexp", "in-positional",
                     "in-class-positional", "in-error-code", "in-extra", "in-or", "in-str",
                     "in-compare", "in-tuple"}


@pytest.mark.parametrize(("code", "status"), [
    (Code.USAGE, 2), (Code.CONFIG_INVALID, 78), (Code.TRUST_POLICY_INVALID, 78),
    (Code.DAEMON_UNAVAILABLE, 69), (Code.BASE_NOT_FOUND, 1), ("from-a-newer-daemon", 1),
])
def test_exit_status(code: str, status: int) -> None:
    assert exit_status(code) == status


def test_the_readme_table_is_current() -> None:
    script = ROOT / "scripts" / "error_codes.py"
    done = subprocess.run([sys.executable, str(script), "--check", str(ROOT / "README.md")],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
