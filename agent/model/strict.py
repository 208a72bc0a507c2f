"""Strict YAML and JSON readers.

The default loaders accept inputs that hide mistakes: PyYAML keeps the last of two duplicate keys,
``json`` accepts ``NaN`` and ``Infinity`` and keeps the last duplicate key. Here each of those is
an error with a line number, so an operator never installs a profile other than the one they read.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

# libyaml's C parser is ~10x faster; the pure-Python one behaves the same.
_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class SyntaxProblem(Exception):
    """The input is not well-formed; ``index`` is the document it happened in."""

    message: str
    index: int


class _StrictLoader(_BaseLoader):  # type: ignore[misc,valid-type]
    pass


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str | int | bool | float | None):
            raise yaml.constructor.ConstructorError(
                None, None, "mapping keys must be scalars", key_node.start_mark
            )
        if key in seen:
            raise yaml.constructor.ConstructorError(
                "while reading a mapping",
                seen[key].start_mark,
                f"duplicate key {key!r}",
                key_node.start_mark,
            )
        seen[key] = key_node
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def _yaml_message(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        problem = exc.problem or "syntax error"
        context = f" ({exc.context} at line {exc.context_mark.line + 1})" if (
            exc.context and exc.context_mark is not None
        ) else ""
        return f"YAML error at line {mark.line + 1}, column {mark.column + 1}: {problem}{context}"
    return f"YAML error: {exc}"


def yaml_documents(text: str) -> Iterator[Any]:
    """Yield each document of a multi-document YAML stream.

    Raises :class:`SyntaxProblem` at the first malformed document; the documents before it
    have already been yielded.
    """
    loader = _StrictLoader(text)
    index = 0
    try:
        while loader.check_data():
            yield loader.get_data()
            index += 1
    except yaml.YAMLError as exc:
        raise SyntaxProblem(_yaml_message(exc), index) from None
    finally:
        loader.dispose()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def json_document(text: str) -> Any:
    """Parse one JSON document, rejecting NaN/Infinity and duplicate keys."""
    try:
        return json.loads(
            text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicates
        )
    except json.JSONDecodeError as exc:
        raise SyntaxProblem(
            f"JSON error at line {exc.lineno}, column {exc.colno}: {exc.msg}", 0
        ) from None
    except ValueError as exc:
        raise SyntaxProblem(f"JSON error: {exc}", 0) from None
