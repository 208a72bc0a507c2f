"""Read a desired-state directory into a :class:`DesiredState`.

Rules (DESIGN §4):

* ``*.yaml`` / ``*.yml`` hold any number of SPO documents; ``*.json`` holds one SPO document or a
  plain OCI seccomp profile named after the file.
* Hidden files, editor and package-manager leftovers are ignored; subdirectories are read;
  symlinks are followed only while they stay inside the directory (ConfigMap ``..data`` links).
* A bad document affects only itself. When its identity (kind and name) is known, the error is
  recorded against that key, so the last good version stays installed. When it is not (a syntax
  error, a missing name), the whole file is marked uncertain (``file_errors``): nothing it
  installed before is removed until it reads cleanly again. A directory that cannot be listed
  makes the whole state incomplete, for the same reason.
* Two documents with the same identity are both in error, and each message names the other.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.errors import ManifestError, did_you_mean
from agent.fsutil import name_problem, sha256_hex
from agent.model.decode import DocContext, Node
from agent.model.parsecache import ParseCache
from agent.model.profile import Kind, Origin, ProfileKey
from agent.model.seccomp import SeccompProfile
from agent.model.seccomp_parse import Dialect, parse_spec
from agent.model.strict import SyntaxProblem, json_document, yaml_documents

API_GROUP = "security-profiles-operator.x-k8s.io"
API_VERSIONS = tuple(f"{API_GROUP}/{v}" for v in ("v1", "v1beta1", "v1alpha1"))
YAML_SUFFIXES = (".yaml", ".yml")
SUFFIXES = (*YAML_SUFFIXES, ".json")
MAX_FILE_BYTES = 4 * 1024 * 1024
_LEFTOVER_MARKERS = (".dpkg-", ".ucf-", ".rpmnew", ".rpmsave", ".swp", ".swx", ".bak", ".orig")
_TOP_FIELDS = ("apiVersion", "kind", "metadata", "spec", "status")

Profile = SeccompProfile  # grows into a union as backends for other kinds arrive


@dataclass(frozen=True, slots=True, kw_only=True)
class DesiredState:
    """What the directory asks for, and what in it could not be read."""

    profiles: Mapping[ProfileKey, Profile] = field(default_factory=dict)
    errors: tuple[ManifestError, ...] = ()
    key_errors: Mapping[ProfileKey, tuple[ManifestError, ...]] = field(default_factory=dict)
    file_errors: Mapping[str, tuple[ManifestError, ...]] = field(default_factory=dict)
    complete: bool = True
    files: tuple[str, ...] = ()

    def holds(self, key: ProfileKey, source_file: str) -> bool:
        """Whether a profile last installed from ``source_file`` must be kept although it is
        not (validly) desired: its document is in error, or its file could not be read fully."""
        return (
            not self.complete or key in self.key_errors or source_file in self.file_errors
        )


def is_candidate(name: str) -> bool:
    """Whether a directory entry named ``name`` can hold manifests."""
    if name.startswith(".") or name.endswith("~") or name.startswith("#"):
        return False
    if any(marker in name for marker in _LEFTOVER_MARKERS):
        return False
    return name.endswith(SUFFIXES)


@dataclass(slots=True)
class _Collector:
    """Mutable accumulator used while reading; frozen into a DesiredState at the end."""

    profiles: list[Profile] = field(default_factory=list)
    errors: list[ManifestError] = field(default_factory=list)
    key_errors: dict[ProfileKey, list[ManifestError]] = field(
        default_factory=lambda: defaultdict(list)
    )
    seen: dict[ProfileKey, list[Origin]] = field(default_factory=lambda: defaultdict(list))
    file_errors: dict[str, list[ManifestError]] = field(default_factory=lambda: defaultdict(list))
    files: list[str] = field(default_factory=list)
    cache: ParseCache | None = None

    def file_error(self, rel: str, error: ManifestError) -> None:
        """An error that hides which profiles the file holds (syntax, unknown identity)."""
        self.errors.append(error)
        self.file_errors[rel].append(error)

    def key_error(self, key: ProfileKey, error: ManifestError) -> None:
        self.errors.append(error)
        self.key_errors[key].append(error)

    def merge(self, part: _Collector) -> None:
        """Add what one file produced (``part`` is left unchanged, so it can be reused)."""
        self.profiles.extend(part.profiles)
        self.errors.extend(part.errors)
        for key, errors in part.key_errors.items():
            self.key_errors[key].extend(errors)
        for key, origins in part.seen.items():
            self.seen[key].extend(origins)
        for rel, errors in part.file_errors.items():
            self.file_errors[rel].extend(errors)
        self.files.extend(part.files)

    def freeze(self, *, complete: bool = True) -> DesiredState:
        for key, origins in self.seen.items():
            if len(origins) > 1:
                where = ", ".join(str(o) for o in origins)
                for origin in origins:
                    self.key_error(key, ManifestError(
                        f"{key} is defined more than once ({where}); none of them is applied",
                        file=origin.display, index=origin.index, field="metadata.name",
                        code="duplicate-profile",
                        hint="keep exactly one document per kind and name",
                    ))
        profiles = {p.key: p for p in self.profiles if p.key not in self.key_errors}
        return DesiredState(
            profiles=dict(sorted(profiles.items())),
            errors=tuple(self.errors),
            key_errors={k: tuple(v) for k, v in sorted(self.key_errors.items())},
            file_errors={k: tuple(v) for k, v in sorted(self.file_errors.items())},
            complete=complete,
            files=tuple(self.files),
        )


class FileMemo:
    """What each file's exact bytes produced, kept between loads.

    The daemon re-reads the whole directory on every change (so no lost or reordered event can
    leave it wrong) but re-parses and re-validates only the files whose bytes changed.
    """

    def __init__(self) -> None:
        self._parts: dict[tuple[str, str], _Collector] = {}
        self._used: dict[tuple[str, str], _Collector] = {}
        self._stats: dict[_Stat, tuple[str, str]] = {}
        self._used_stats: dict[_Stat, tuple[str, str]] = {}

    def by_stat(self, stat: _Stat) -> _Collector | None:
        """The part of a file whose identity (inode, size, mtime, ctime) is unchanged."""
        key = self._stats.get(stat)
        part = self.get(key) if key is not None else None
        if part is not None and key is not None:
            self._used_stats[stat] = key
        return part

    def remember_stat(self, stat: _Stat, key: tuple[str, str]) -> None:
        self._used_stats[stat] = key

    def get(self, key: tuple[str, str]) -> _Collector | None:
        part = self._parts.get(key)
        if part is not None:
            self._used[key] = part
        return part

    def put(self, key: tuple[str, str], part: _Collector) -> None:
        self._used[key] = part

    def finish(self) -> None:
        """Forget the files that were not seen in this load."""
        self._parts, self._used = self._used, {}
        self._stats, self._used_stats = self._used_stats, {}


def load_directory(
    directory: Path,
    *,
    cache: ParseCache | None = None,
    memo: FileMemo | None = None,
    trust_stat: bool = False,
) -> DesiredState:
    """Read every manifest under ``directory``; ``cache`` skips re-parsing unchanged YAML,
    ``memo`` skips re-validating unchanged files, and with ``trust_stat`` a file whose inode,
    size, mtime and ctime are unchanged is not even read again (a full resync reads all)."""
    out = _Collector(cache=cache)
    label = directory.name or str(directory)
    try:
        entries = sorted(_walk(directory, out, label))
    except OSError as exc:
        out.errors.append(ManifestError(
            f"cannot read the desired-state directory: {exc.strerror or exc}",
            file=str(directory), code="directory-unreadable",
            hint="nothing installed is removed until the directory can be read again",
        ))
        return out.freeze(complete=False)
    for rel, path in entries:
        if memo is not None and trust_stat:
            stat = _stat(path, rel)
            part = memo.by_stat(stat) if stat else None
            if part is not None:
                out.files.append(rel)
                out.merge(part)
                continue
        _load_file(path, rel, f"{label}/{rel}", out, memo)
    if memo is not None:
        memo.finish()
    return out.freeze()


def load_paths(paths: Sequence[Path]) -> DesiredState:
    """Read the given files and directories together (``secprof validate``)."""
    out = _Collector()
    for path in paths:
        if path.is_dir():
            try:
                entries = sorted(_walk(path, out, str(path)))
            except OSError as exc:
                out.errors.append(ManifestError(
                    f"cannot read directory: {exc.strerror or exc}", file=str(path),
                    code="directory-unreadable",
                ))
                continue
            for rel, file_path in entries:
                _load_file(file_path, f"{path}/{rel}", f"{path}/{rel}", out)
        else:
            _load_file(path, str(path), str(path), out)
    return out.freeze()


def _walk(root: Path, out: _Collector, label: str) -> Iterator[tuple[str, Path]]:
    """Yield ``(relative path, path)`` of candidate files under ``root``.

    Only symlinks can lead outside ``root``, so only they (and directories, to avoid walking
    one twice) are resolved.
    """
    real_root = os.path.realpath(root)
    visited = {real_root}
    stack = [(str(root), "")]
    while stack:
        directory, prefix = stack.pop()
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            if entry.name.startswith("."):
                continue  # hidden files, and the ..data / ..<timestamp> dirs of ConfigMaps
            rel = prefix + entry.name
            if entry.is_symlink():
                real = os.path.realpath(entry.path)
                if os.path.commonpath([real, real_root]) != real_root:
                    if is_candidate(entry.name):
                        out.file_error(rel, ManifestError(
                            "symlink points outside the desired-state directory; not followed",
                            file=f"{label}/{rel}", code="symlink-escapes",
                        ))
                    continue
            if entry.is_dir():
                real = os.path.realpath(entry.path)
                if real not in visited:
                    visited.add(real)
                    stack.append((entry.path, rel + "/"))
            elif entry.is_file() and is_candidate(entry.name):
                yield rel, Path(entry.path)


def _load_file(
    path: Path, rel: str, display: str, out: _Collector, memo: FileMemo | None = None
) -> None:
    out.files.append(rel)
    before = _stat(path, rel) if memo is not None else None
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        out.file_error(rel, ManifestError(
            f"cannot read file: {exc.strerror or exc}", file=display, code="file-unreadable"
        ))
        return
    if len(raw) > MAX_FILE_BYTES:
        out.file_error(rel, ManifestError(
            f"file is larger than {MAX_FILE_BYTES} bytes", file=display, code="file-too-large"
        ))
        return
    if memo is None:
        _load_bytes(raw, rel, display, out, as_json=path.suffix == ".json",
                    plain_name=path.name.removesuffix(".json"))
        return
    key = (rel, sha256_hex(raw))
    part = memo.get(key)
    if part is None:
        part = _Collector(cache=out.cache)
        _load_bytes(raw, rel, display, part, as_json=path.suffix == ".json",
                    plain_name=path.name.removesuffix(".json"))
        memo.put(key, part)
    if before is not None and before == _stat(path, rel):  # not changed while being read
        memo.remember_stat(before, key)
    out.merge(part)


_Stat = tuple[str, int, int, int, int, int]


def _stat(path: Path, rel: str) -> _Stat | None:
    """A file's identity: a rename over it, an edit or a ConfigMap swap all change it."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (rel, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def load_bytes(data: bytes, *, display: str, as_json: bool, plain_name: str) -> DesiredState:
    """Read one manifest file's content that does not come from the directory (an OCI
    artifact layer). ``plain_name`` names a plain OCI JSON profile."""
    out = _Collector()
    _load_bytes(data, display, display, out, as_json=as_json, plain_name=plain_name)
    return out.freeze()


def _load_bytes(
    raw: bytes, rel: str, display: str, out: _Collector, *, as_json: bool, plain_name: str
) -> None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        out.file_error(rel, ManifestError(
            f"not UTF-8 text (byte {exc.start})", file=display, code="file-unreadable"
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
            for index, doc in enumerate(_yaml(raw, text, out.cache)):
                if doc is not None:  # an empty document between two "---"
                    _load_document(doc, Origin(file=rel, display=display, index=index), out)
    except SyntaxProblem as problem:
        out.file_error(rel, ManifestError(
            problem.message, file=display, index=problem.index, code="syntax-error"
        ))


def _yaml(raw: bytes, text: str, cache: ParseCache | None) -> Iterator[Any]:
    """The documents of ``text``, from ``cache`` when this exact content was parsed before.

    Documents before a syntax error are yielded (and applied) before it is raised; only a
    file that parses completely is cached.
    """
    if cache is None:
        yield from yaml_documents(text)
        return
    key = sha256_hex(raw)
    cached = cache.get(key)
    if cached is not None:
        yield from cached
        return
    docs: list[Any] = []
    for doc in yaml_documents(text):
        docs.append(doc)
        yield doc
    cache.put(key, docs)


def _load_plain_json(doc: Any, name: str, origin: Origin, out: _Collector) -> None:
    ctx = DocContext(origin.display, origin.index)
    problem = name_problem(name)
    if problem:
        out.file_error(origin.file, ManifestError(
            f"file name gives the profile name, and {problem}", file=origin.display,
            code="name-invalid",
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
    if not isinstance(node.value, dict):
        node.fail("a manifest must be a mapping with apiVersion, kind, metadata and spec")
    kind_node = node.child("kind", node.value.get("kind"))
    kind_text = kind_node.string(allow_empty=False) if "kind" in node.value else kind_node.fail(
        "required field is missing"
    )
    try:
        kind = Kind(kind_text)
    except ValueError:
        kind_node.fail(
            f'unknown kind "{kind_text}"{did_you_mean(kind_text, [k.value for k in Kind])}'
        )
    meta = node.child("metadata", node.value.get("metadata"))
    if meta.value is None:
        meta.fail("required field is missing")
    name_node = meta.child("name", None)
    if not isinstance(meta.value, dict) or "name" not in meta.value:
        name_node.fail("required field is missing")
    name_node = meta.child("name", meta.value["name"])
    problem = name_problem(name_node.value)
    if problem:
        name_node.fail(problem, code="name-invalid")
    return ProfileKey(kind, name_node.value)


def _load_document(doc: Any, origin: Origin, out: _Collector) -> None:
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
        if key.kind is not Kind.SECCOMP:
            fields["kind"].fail(
                f"{key.kind.value} is not supported by this version of secprof yet",
                code="kind-unsupported",
            )
        parsed = parse_spec(fields["spec"], Dialect.SPO)
    except ManifestError as exc:
        out.key_error(key, exc)
        return
    out.profiles.append(SeccompProfile(
        name=key.name, origin=origin, spec=parsed.spec, base=parsed.base,
        disabled=parsed.disabled,
    ))


def _any_keys(value: object) -> Collection[str]:
    """metadata is Kubernetes bookkeeping (labels, annotations, uid, …): any key is fine."""
    return [k for k in value if isinstance(k, str)] if isinstance(value, dict) else ()
