"""The strict YAML reader (imported only when YAML really has to be parsed: a run served
from the parse cache never loads PyYAML)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

from agent.model.strict import MAX_DOCUMENTS, SyntaxProblem

# libyaml's C parser and composer are ~10x faster; the pure-Python ones behave the same.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR_TAG = "tag:yaml.org,2002:str"

MAX_DEPTH = 64  # a manifest nests about 8 deep; deeper is an attack or a mistake
# Values a document may expand to, aliases counted at every use: the file cap bounds what a
# file holds, this bounds what it means (aliases of aliases multiply, "billion laughs").
MAX_VALUES = 1_000_000


def _refuse(message: str, node: yaml.Node) -> yaml.constructor.ConstructorError:
    return yaml.constructor.ConstructorError(None, None, message, node.start_mark)


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
        self._sizes: dict[int, int] = {}  # values under each built collection node
        self._values = 0

    def _count(self, n: int, node: yaml.Node) -> None:
        self._values += n
        if self._values > MAX_VALUES:
            raise _refuse(f"the document expands to more than {MAX_VALUES} values "
                          "(through YAML aliases)", node)

    def build(self, node: yaml.Node, depth: int = 0) -> Any:
        known = self._built.get(id(node))
        if known is not None:  # an alias: its values count again, as every reader sees them
            self._count(self._sizes.get(id(node), 1), node)
            return known
        if depth > MAX_DEPTH:
            raise _refuse(f"nested deeper than {MAX_DEPTH} levels", node)
        self._count(1, node)
        if isinstance(node, yaml.ScalarNode):
            if node.tag == _STR_TAG:
                return node.value
            try:
                return self._loader.construct_object(node, deep=True)
            except yaml.YAMLError:
                raise
            except (ValueError, OverflowError, TypeError) as exc:  # 2024-02-30, 5000 digits
                raise _refuse(f"cannot read the value {node.value[:40]!r}: {exc}",
                              node) from None
        before = self._values
        if isinstance(node, yaml.SequenceNode):
            items: list[Any] = []
            self._built[id(node)] = items
            items.extend(self.build(child, depth + 1) for child in node.value)
            self._sizes[id(node)] = self._values - before + 1
            return items
        if isinstance(node, yaml.MappingNode):
            out = self._mapping(node, depth)
            self._sizes[id(node)] = self._values - before + 1
            return out
        raise _refuse(f"unexpected node {type(node).__name__}", node)  # pragma: no cover

    def _mapping(self, node: yaml.MappingNode, depth: int) -> dict[Any, Any]:
        self._loader.flatten_mapping(node)  # resolves "<<" merge keys
        out: dict[Any, Any] = {}
        self._built[id(node)] = out
        first: dict[Any, yaml.Node] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise _refuse("mapping keys must be scalars", key_node)
            key = self.build(key_node, depth + 1)
            if key in first:
                raise yaml.constructor.ConstructorError(
                    "first defined", first[key].start_mark,
                    f"duplicate key {key_node.value[:80]!r}", key_node.start_mark,
                )
            first[key] = key_node
            out[key] = self.build(value_node, depth + 1)
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
            if index >= MAX_DOCUMENTS:
                raise SyntaxProblem(f"more than {MAX_DOCUMENTS} documents in one file", index)
            node = loader.get_node()
            yield None if node is None else _Builder(loader).build(node)
            index += 1
    except yaml.YAMLError as exc:
        raise SyntaxProblem(_yaml_message(exc), index) from None
    except RecursionError:
        raise SyntaxProblem("YAML error: nested too deeply", index) from None
    finally:
        loader.dispose()
