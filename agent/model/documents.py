"""Parse one file's bytes (YAML documents, an SPO JSON document, or a plain OCI profile) into a
:class:`~agent.model.desired.Collector`: identity first, then every field of the spec."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from agent.codes import Code
from agent.errors import ManifestError, did_you_mean
from agent.fsutil import name_problem, sha256_hex
from agent.model.decode import DocContext, Node
from agent.model.desired import Collector, DesiredState
from agent.model.profile import Kind, Origin, ProfileKey
from agent.model.seccomp import SeccompProfile
from agent.model.seccomp_parse import Dialect, parse_spec
from agent.model.specs import CACHE_CODECS, SPEC_PARSERS
from agent.model.strict import SyntaxProblem, json_document, yaml_documents

API_GROUP = "security-profiles-operator.x-k8s.io"
API_VERSIONS = tuple(f"{API_GROUP}/{v}" for v in ("v1", "v1beta1", "v1alpha1"))
_TOP_FIELDS = ("apiVersion", "kind", "metadata", "spec", "status")


def load_bytes(data: bytes, *, display: str, as_json: bool, plain_name: str) -> DesiredState:
    """Read one manifest file's content that does not come from the directory (an OCI
    artifact layer). ``plain_name`` names a plain OCI JSON profile."""
    out = Collector()
    load_into(data, display, display, out, as_json=as_json, plain_name=plain_name)
    return out.freeze()


def load_into(
    raw: bytes, rel: str, display: str, out: Collector, *, as_json: bool, plain_name: str
) -> None:
    """Add what one file's bytes hold to ``out``: ``rel`` is the file as the ledger records it,
    ``display`` as messages show it; ``plain_name`` names a plain OCI JSON profile.

    With a cache on ``out``, a file whose exact bytes were read cleanly before is not parsed
    or validated again; a file with any error is never cached (it is read every time).
    """
    cache = out.cache
    if cache is None:
        _parse_into(raw, rel, display, out, as_json=as_json, plain_name=plain_name)
        return
    key = sha256_hex(b"%s\0%s\0" % (b"json" if as_json else b"yaml", plain_name.encode()) + raw)
    cached = cache.get(key)
    if cached is not None:
        for entry in cached:
            origin = Origin(file=rel, display=display, index=entry["index"])
            out.add(CACHE_CODECS[Kind(entry["kind"])].load(entry, origin))
        return
    part = Collector()
    _parse_into(raw, rel, display, part, as_json=as_json, plain_name=plain_name)
    if not part.errors and all(p.key.kind in CACHE_CODECS for p in part.profiles):
        cache.put(key, [{**CACHE_CODECS[p.key.kind].dump(p), "kind": p.key.kind.value,
                         "index": p.origin.index} for p in part.profiles])
    out.merge(part)


def _parse_into(
    raw: bytes, rel: str, display: str, out: Collector, *, as_json: bool, plain_name: str
) -> None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        out.file_error(rel, ManifestError(
            f"not UTF-8 text (byte {exc.start})", file=display, code=Code.FILE_UNREADABLE
        ))
        return
    try:
        if as_json:
            doc = json_document(text)
            if isinstance(doc, dict) and ("kind" in doc or "apiVersion" in doc):
                _load_document(doc, Origin(file=rel, display=display, index=0), out)
            else:
                _load_plain_json(doc, plain_name, Origin(file=rel, display=display, index=0), out)
        else:
            for index, doc in enumerate(yaml_documents(text)):
                if doc is not None:  # an empty document between two "---"
                    _load_document(doc, Origin(file=rel, display=display, index=index), out)
    except SyntaxProblem as problem:
        out.file_error(rel, ManifestError(
            problem.message, file=display, index=problem.index, code=Code.SYNTAX_ERROR
        ))


def _load_plain_json(doc: Any, name: str, origin: Origin, out: Collector) -> None:
    ctx = DocContext(origin.display, origin.index)
    problem = name_problem(name)
    if problem:
        out.file_error(origin.file, ManifestError(
            f"file name gives the profile name, and {problem}", file=origin.display,
            code=Code.NAME_INVALID,
        ))
        return
    key = ProfileKey(Kind.SECCOMP, name)
    out.seen[key].append(origin)
    try:
        parsed = parse_spec(Node(doc, "", ctx), Dialect.OCI)
    except ManifestError as exc:
        out.key_error(key, exc)
        return
    out.profiles.append(SeccompProfile(name=name, origin=origin, spec=parsed.spec))


def _identity(node: Node) -> ProfileKey:
    """Kind and name, read before anything else: with them known, any later error in the
    document is held against that profile only (its last good version stays)."""
    if not isinstance(node.value, dict):
        node.fail("a manifest must be a mapping with apiVersion, kind, metadata and spec")
    kind_node = node.child("kind", node.value.get("kind"))
    if kind_node.value is None:
        kind_node.fail("required field is missing")
    kind_text = kind_node.string(allow_empty=False)
    try:
        kind = Kind(kind_text)
    except ValueError:
        kind_node.fail(
            f'unknown kind "{kind_text}"{did_you_mean(kind_text, [k.value for k in Kind])}'
        )
    meta = node.child("metadata", node.value.get("metadata"))
    if not isinstance(meta.value, dict) or meta.value.get("name") is None:
        meta.child("name", None).fail("required field is missing")
    name_node = meta.child("name", meta.value["name"])
    problem = name_problem(name_node.value)
    if problem:
        name_node.fail(problem, code=Code.NAME_INVALID)
    return ProfileKey(kind, name_node.value)


def _load_document(doc: Any, origin: Origin, out: Collector) -> None:
    node = Node(doc, "", DocContext(origin.display, origin.index))
    try:
        key = _identity(node)
    except ManifestError as exc:
        out.file_error(origin.file, exc)
        return
    out.seen[key].append(origin)
    try:
        fields = node.fields(_TOP_FIELDS, required=("apiVersion", "kind", "metadata", "spec"))
        fields["apiVersion"].choice(API_VERSIONS, what="apiVersion")
        fields["metadata"].fields(_any_keys(fields["metadata"].value))
        parser = SPEC_PARSERS.get(key.kind)
        if parser is None:
            fields["kind"].fail(
                f"{key.kind.value} is not supported by this version of secprof yet",
                code=Code.KIND_UNSUPPORTED,
            )
        profile = parser(fields["spec"], key, origin)
    except ManifestError as exc:
        out.key_error(key, exc)
        return
    out.profiles.append(profile)


def _any_keys(value: object) -> Collection[str]:
    """metadata is Kubernetes bookkeeping (labels, annotations, uid, …): any key is fine."""
    return [k for k in value if isinstance(k, str)] if isinstance(value, dict) else ()
