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
from agent.fsutil import name_problem
from agent.model.decode import DocContext, Node
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

    def file_error(self, rel: str, error: ManifestError) -> None:
        """An error that hides which profiles the file holds (syntax, unknown identity)."""
        self.errors.append(error)
        self.file_errors[rel].append(error)

    def key_error(self, key: ProfileKey, error: ManifestError) -> None:
        self.errors.append(error)
        self.key_errors[key].append(error)

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


def load_directory(directory: Path) -> DesiredState:
    """Read every manifest under ``directory``."""
    out = _Collector()
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
        _load_file(path, rel, f"{label}/{rel}", out)
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
    """Yield ``(relative path, path)`` of candidate files under ``root``."""
    real_root = os.path.realpath(root)
    visited = {real_root}
    stack = [Path(root)]
    while stack:
        directory = stack.pop()
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            if entry.name.startswith("."):
                continue  # hidden files, and the ..data / ..<timestamp> dirs of ConfigMaps
            path = Path(entry.path)
            rel = os.path.relpath(path, root)
            real = os.path.realpath(path)
            if entry.is_symlink() and os.path.commonpath([real, real_root]) != real_root:
                if is_candidate(entry.name):
                    out.file_error(rel, ManifestError(
                        "symlink points outside the desired-state directory; not followed",
                        file=f"{label}/{rel}", code="symlink-escapes",
                    ))
                continue
            if entry.is_dir():
                if real not in visited:
                    visited.add(real)
                    stack.append(path)
            elif entry.is_file() and is_candidate(entry.name):
                yield rel, path


def _load_file(path: Path, rel: str, display: str, out: _Collector) -> None:
    out.files.append(rel)
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
    _load_bytes(raw, rel, display, out, as_json=path.suffix == ".json",
                plain_name=path.name.removesuffix(".json"))


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
            for index, doc in enumerate(yaml_documents(text)):
                if doc is not None:  # an empty document between two "---"
                    _load_document(doc, Origin(file=rel, display=display, index=index), out)
    except SyntaxProblem as problem:
        out.file_error(rel, ManifestError(
            problem.message, file=display, index=problem.index, code="syntax-error"
        ))


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
