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

MAX_DOCUMENTS = 10_000  # per file: a kubectl export of a whole cluster is one List document


@dataclass(frozen=True, slots=True)
class SyntaxProblem(Exception):
    """The input is not well-formed; ``index`` is the document it happened in."""

    message: str
    index: int


def yaml_documents(text: str) -> Iterator[Any]:
    """Yield each document of a multi-document YAML stream.

    Raises :class:`SyntaxProblem` at the first malformed document; the documents before it
    have already been yielded.
    """
    from agent.model.yamlread import documents  # noqa: PLC0415 -- PyYAML only when needed

    return documents(text)


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
    except ValueError as exc:  # also integers past Python's 4300-digit conversion limit
        raise SyntaxProblem(f"JSON error: {exc}", 0) from None
    except RecursionError:
        raise SyntaxProblem("JSON error: nested too deeply", 0) from None
