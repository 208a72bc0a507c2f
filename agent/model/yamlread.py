"""The strict YAML reader (imported only when YAML really has to be parsed: a run served
from the parse cache never loads PyYAML)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

from agent.model.strict import SyntaxProblem

# libyaml's C parser and composer are ~10x faster; the pure-Python ones behave the same.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR_TAG = "tag:yaml.org,2002:str"


class _Builder:
    """Turns composed nodes into plain values, refusing duplicate keys.

    Strings (nearly every scalar of a manifest) are taken straight from the node; other scalars
    (ints, bools, nulls, floats, timestamps) go through PyYAML's safe constructor, so their YAML
    1.1 meaning is exactly PyYAML's. Values are memoised per node, as PyYAML does, so aliases
    share one value and a self-referencing document terminates.
    """

    def __init__(self, loader: yaml.SafeLoader) -> None:
        self._loader = loader
        self._built: dict[int, Any] = {}

    def build(self, node: yaml.Node) -> Any:
        known = self._built.get(id(node))
        if known is not None:
            return known
        if isinstance(node, yaml.ScalarNode):
            if node.tag == _STR_TAG:
                return node.value
            return self._loader.construct_object(node, deep=True)
        if isinstance(node, yaml.SequenceNode):
            items: list[Any] = []
            self._built[id(node)] = items
            items.extend(self.build(child) for child in node.value)
            return items
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node)
        raise yaml.constructor.ConstructorError(  # pragma: no cover - no other node kinds
            None, None, f"unexpected node {type(node).__name__}", node.start_mark
        )

    def _mapping(self, node: yaml.MappingNode) -> dict[Any, Any]:
        self._loader.flatten_mapping(node)  # resolves "<<" merge keys
        out: dict[Any, Any] = {}
        self._built[id(node)] = out
        first: dict[Any, yaml.Node] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise yaml.constructor.ConstructorError(
                    None, None, "mapping keys must be scalars", key_node.start_mark
                )
            key = self.build(key_node)
            if key in first:
                raise yaml.constructor.ConstructorError(
                    "first defined", first[key].start_mark,
                    f"duplicate key {key_node.value!r}", key_node.start_mark,
                )
            first[key] = key_node
            out[key] = self.build(value_node)
        return out


def _yaml_message(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        problem = exc.problem or "syntax error"
        context = f" ({exc.context} at line {exc.context_mark.line + 1})" if (
            exc.context and exc.context_mark is not None
        ) else ""
        return f"YAML error at line {mark.line + 1}, column {mark.column + 1}: {problem}{context}"
    return f"YAML error: {exc}"


def documents(text: str) -> Iterator[Any]:
    """Yield each document of a multi-document YAML stream.

    Raises :class:`SyntaxProblem` at the first malformed document; the documents before it
    have already been yielded.
    """
    loader = _Loader(text)
    index = 0
    try:
        while loader.check_node():
            node = loader.get_node()
            yield None if node is None else _Builder(loader).build(node)
            index += 1
    except yaml.YAMLError as exc:
        raise SyntaxProblem(_yaml_message(exc), index) from None
    finally:
        loader.dispose()
