"""Parse one file's bytes (YAML documents, an SPO JSON document, or a plain OCI profile) into a
:class:`~agent.model.desired.Collector`: identity first, then every field of the spec.

* ``kind: List`` and ``…List`` documents (``kubectl get -o yaml``) are unpacked: each item is a
  document of its own, with its own identity and errors (``file[i].items[j]``).
* SPO kinds that only mean something to Kubernetes (bindings, recordings, node status, the
  operator's own configuration) are skipped with a note; other unknown kinds are errors.
* Identity: ``(kind, metadata.name)``; with ``LoadOptions.namespaced`` the name is
  ``<namespace>/<name>`` (SPO v0.8's layout). A ``metadata.name`` ending in ``.json`` names
  the file ``<name>``, as SPO does (``web.json`` is installed as ``web.json``).
* A plain JSON profile is named after its file, kept exactly as kubelet would reference it
  (``my_profile.json`` is ``my_profile``); a file name that cannot be one is refused with the
  rename to make.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from agent.codes import Code
from agent.errors import ManifestError, did_you_mean, shown
from agent.fsutil import name_problem, sha256_hex
from agent.model.decode import DocContext, Node
from agent.model.desired import Collector, DesiredState
from agent.model.names import plain_name_problem, rename_hint
from agent.model.options import DEFAULT_NAMESPACE, LoadOptions
from agent.model.profile import Kind, Origin, Profile, ProfileKey
from agent.model.seccomp import SeccompProfile
from agent.model.seccomp_parse import Dialect, SpecErrors, parse_spec
from agent.model.specs import CACHE_CODECS, SPEC_PARSERS
from agent.model.strict import SyntaxProblem, json_document, yaml_documents

API_GROUP = "security-profiles-operator.x-k8s.io"
API_VERSIONS = tuple(f"{API_GROUP}/{v}" for v in ("v1", "v1beta1", "v1alpha1"))
_TOP_FIELDS = ("apiVersion", "kind", "metadata", "spec", "status")
_LIST_FIELDS = ("apiVersion", "kind", "metadata", "items")
# SPO kinds a node agent has nothing to do with: they act on pods or describe the operator.
K8S_ONLY_KINDS = frozenset({
    "ProfileBinding", "ProfileRecording", "SecurityProfileNodeStatus",
    "SecurityProfilesOperatorDaemon",
})


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
    options = out.options.fingerprint() if out.options else b""
    key = sha256_hex(b"%s\0%s\0%s\0" % (b"json" if as_json else b"yaml", plain_name.encode(),
                                        options) + raw)
    cached = cache.get(key)
    if cached is not None:
        for entry in cached:
            origin = Origin(file=rel, display=display, index=entry["index"],
                            item=entry["item"])
            out.add(CACHE_CODECS[Kind(entry["kind"])].load(entry, origin))
        return
    part = Collector(options=out.options)
    _parse_into(raw, rel, display, part, as_json=as_json, plain_name=plain_name)
    # Notes (skipped documents) live outside the profiles: such files are simply read again.
    if not part.errors and not part.notes and all(
            p.key.kind in CACHE_CODECS for p in part.profiles):
        cache.put(key, [{**CACHE_CODECS[p.key.kind].dump(p), "kind": p.key.kind.value,
                         "index": p.origin.index, "item": p.origin.item}
                        for p in part.profiles])
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
    problem = plain_name_problem(name)
    if problem:
        out.file_error(origin.file, ManifestError(
            f"file name gives the profile name, and {problem}", file=origin.display,
            code=Code.NAME_INVALID, hint=rename_hint(name),
        ))
        return
    key = ProfileKey(Kind.SECCOMP, name)
    out.seen[key].append(origin)
    options = out.options or LoadOptions()
    try:
        parsed = parse_spec(Node(doc, "", ctx), Dialect.OCI, template=options.template)
    except ManifestError as exc:
        _key_errors(out, key, exc)
        return
    out.profiles.append(SeccompProfile(name=name, origin=origin, spec=parsed.spec,
                                       notes=parsed.notes, warnings=parsed.warnings))


def _key_errors(out: Collector, key: ProfileKey, exc: ManifestError) -> None:
    for error in exc.errors if isinstance(exc, SpecErrors) else (exc,):
        out.key_error(key, error)


def _identity(node: Node, options: LoadOptions) -> ProfileKey:
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
    name = name_node.string(allow_empty=False)
    if name.endswith(".json") and kind is Kind.SECCOMP:
        name = name.removesuffix(".json")  # SPO appends .json only when it is missing
    problem = name_problem(name)
    if problem:
        name_node.fail(problem, code=Code.NAME_INVALID)
    if not options.namespaced:
        return ProfileKey(kind, name)
    ns_node = meta.child("namespace", meta.value.get("namespace") or DEFAULT_NAMESPACE)
    namespace = ns_node.string(allow_empty=False)
    problem = name_problem(namespace)
    if problem:
        ns_node.fail(problem, code=Code.NAME_INVALID)
    return ProfileKey(kind, f"{namespace}/{name}")


def _load_document(doc: Any, origin: Origin, out: Collector, path: str = "") -> None:
    node = Node(doc, path, DocContext(origin.display, origin.index))
    if _is_list(doc):
        if origin.item is not None:  # kubectl never nests them; a hostile file might, deeply
            out.file_error(origin.file, ManifestError(
                "a List inside a List is not read", file=origin.display, index=origin.index,
                field=node.child("kind", None).path, code=Code.LIST_NESTED))
            return
        _load_list(node, origin, out)
        return
    if _skipped(doc, origin, out):
        return
    options = out.options or LoadOptions()
    try:
        key = _identity(node, options)
    except ManifestError as exc:
        out.file_error(origin.file, exc)
        return
    out.seen[key].append(origin)
    problems: list[ManifestError] = []
    fields: dict[str, Node] = {}
    try:
        fields = node.fields(_TOP_FIELDS, required=("apiVersion", "kind", "metadata", "spec"))
    except ManifestError as exc:
        problems.append(exc)
        fields = {k: node.child(k, v) for k, v in doc.items()
                  if k in _TOP_FIELDS and v is not None}
    try:
        if "apiVersion" in fields:
            fields["apiVersion"].choice(API_VERSIONS, what="apiVersion")
        fields["metadata"].fields(_any_keys(fields["metadata"].value))
    except ManifestError as exc:
        problems.append(exc)
    parser = SPEC_PARSERS.get(key.kind)
    profile: Profile | None = None
    if parser is None:
        problems.append(ManifestError(
            f"{key.kind.value} is not supported by this version of secprof yet",
            file=origin.display, index=origin.index, field=node.child("kind", None).path,
            code=Code.KIND_UNSUPPORTED,
        ))
    elif "spec" in fields:  # parsed even after other errors: every error is reported
        try:
            profile = parser(fields["spec"], key, origin)
        except ManifestError as exc:
            problems.extend(exc.errors if isinstance(exc, SpecErrors) else (exc,))
    for problem in problems:
        out.key_error(key, problem)
    if problems or profile is None:
        return
    out.profiles.append(profile)
    raw_name = doc["metadata"]["name"]
    if key.kind is Kind.SECCOMP and raw_name.endswith(".json"):
        out.notes.append(f"{origin}: metadata.name {raw_name!r} ends in .json: installed as "
                         f"{raw_name} (as SPO does), not {raw_name}.json")


def _is_list(doc: Any) -> bool:
    kind = doc.get("kind") if isinstance(doc, dict) else None
    return isinstance(kind, str) and (kind == "List" or kind.endswith("List")) and (
        "items" in doc)


def _load_list(node: Node, origin: Origin, out: Collector) -> None:
    """``kubectl get … -o yaml``: every item is read as a document of its own."""
    try:
        fields = node.fields(_LIST_FIELDS, required=("items",))
        items = fields["items"].items()
    except ManifestError as exc:
        out.file_error(origin.file, exc)
        return
    for j, item in enumerate(items):
        item_origin = Origin(file=origin.file, display=origin.display, index=origin.index,
                             item=j)
        _load_document(item.value, item_origin, out, path=item.path)


def _skipped(doc: Any, origin: Origin, out: Collector) -> bool:
    """SPO kinds that act only inside Kubernetes: noted, never an error."""
    if not isinstance(doc, dict) or doc.get("kind") not in K8S_ONLY_KINDS:
        return False
    api = doc.get("apiVersion")
    if not (isinstance(api, str) and api.startswith(API_GROUP + "/")):
        return False
    meta = doc.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    out.notes.append(f"{origin}: {doc['kind']} {shown(name or '')} skipped: it only means "
                     "something to Kubernetes (secprof installs profiles, not bindings or "
                     "recordings)")
    return True


def _any_keys(value: object) -> Collection[str]:
    """metadata is Kubernetes bookkeeping (labels, annotations, uid, …): any key is fine."""
    return [k for k in value if isinstance(k, str)] if isinstance(value, dict) else ()
