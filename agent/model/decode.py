"""Typed, path-aware access to a parsed document.

A :class:`Node` is a value plus where it sits (``spec.syscalls[3].action``); every accessor
checks the type and raises a :class:`~agent.errors.ManifestError` that names the file, the
document index and the field, so parsers read like the schema they enforce.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from agent.errors import ManifestError, did_you_mean, shown


@dataclass(frozen=True, slots=True)
class DocContext:
    file: str
    index: int


def _type_name(value: object) -> str:
    return {
        dict: "a mapping",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        type(None): "null",
    }.get(type(value), type(value).__name__)


class Node:
    __slots__ = ("ctx", "path", "value")

    def __init__(self, value: Any, path: str, ctx: DocContext) -> None:
        self.value = value
        self.path = path
        self.ctx = ctx

    def fail(self, message: str, *, code: str | None = None, hint: str = "") -> NoReturn:
        raise ManifestError(
            message, file=self.ctx.file, index=self.ctx.index, field=self.path, code=code,
            hint=hint,
        )

    def _expected(self, what: str) -> NoReturn:
        self.fail(f"expected {what}, got {_type_name(self.value)}")

    def child(self, key: str, value: Any) -> Node:
        return Node(value, f"{self.path}.{key}" if self.path else key, self.ctx)

    def fields(
        self, allowed: Collection[str], *, required: Collection[str] = ()
    ) -> dict[str, Node]:
        """The mapping's entries as nodes; unknown and missing keys are errors.

        A ``null`` value counts as absent, as in the Kubernetes API.
        """
        if not isinstance(self.value, dict):
            self._expected("a mapping")
        for key in self.value:
            if not isinstance(key, str):
                self.fail(f"keys must be strings, got {shown(repr(key))}")
            if key not in allowed:
                self.child(shown(key), None).fail(
                    f"unknown field{did_you_mean(key, sorted(allowed))}"
                )
        present = {key: value for key, value in self.value.items() if value is not None}
        for key in required:
            if key not in present:
                self.child(key, None).fail("required field is missing")
        return {key: self.child(key, value) for key, value in present.items()}

    def items(self, *, max_items: int | None = None) -> list[Node]:
        if not isinstance(self.value, list):
            self._expected("a list")
        if max_items is not None and len(self.value) > max_items:
            self.fail(f"at most {max_items} entries are allowed, got {len(self.value)}")
        return [Node(v, f"{self.path}[{i}]", self.ctx) for i, v in enumerate(self.value)]

    def string(self, *, allow_empty: bool = True) -> str:
        if not isinstance(self.value, str):
            self._expected("a string")
        if not allow_empty and not self.value:
            self.fail("must not be empty")
        return self.value

    def boolean(self) -> bool:
        if not isinstance(self.value, bool):
            self._expected("true or false")
        return self.value

    def integer(self, *, minimum: int, maximum: int) -> int:
        value = self.value
        if isinstance(value, bool) or not isinstance(value, int):
            self._expected("an integer")
        if value < minimum:
            self.fail(
                f"must not be negative, got {shown(value)}" if minimum == 0
                else f"must be at least {minimum}, got {shown(value)}"
            )
        if value > maximum:
            self.fail(f"must be at most {maximum}, got {shown(value)}")
        return value

    def choice(self, choices: Sequence[str], *, what: str) -> str:
        value = self.string()
        if value not in choices:
            self.fail(f'unknown {what} "{shown(value)}"{did_you_mean(value, choices)}')
        return value

    def unique_choices(self, choices: Sequence[str], *, what: str) -> tuple[str, ...]:
        seen: dict[str, None] = {}  # ordered, and O(1) membership however long the list
        for item in self.items():
            value = item.choice(choices, what=what)
            if value in seen:
                item.fail(f'duplicate {what} "{value}"')
            seen[value] = None
        return tuple(seen)
