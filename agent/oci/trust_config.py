"""``[[trust]]`` entries of the config → :class:`~agent.oci.trust.TrustPolicy`.

Each entry names a ``scope`` and exactly one mode::

    keyless = { issuer = "…", identity = "…" }   # or issuer_regex / identity_regex (anchored)
    public_keys = ["/etc/secprof/keys/release.pub"]   # with require_tlog = true|false
    verify = false

``trusted_root`` (a ``trusted_root.json``) goes with ``keyless`` (a private Sigstore) or with
``public_keys`` and ``require_tlog = true`` (whose Rekor keys check the log entry); without it, the
production root that ships in the sigstore wheel is used (never fetched through TUF). Files are
read here, so that a missing one is an error of the config; their contents are parsed on first
use (:mod:`agent.oci.trust`). Messages name entry and key: ``[[trust]][2] keyless.identity_regex``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agent.errors import ConfigError
from agent.oci.reference import parse_scope
from agent.oci.trust import Document, KeylessTerms, KeyTerms, Terms, TrustPolicy
from agent.tomltable import Table

MAX_DOCUMENT_BYTES = 1 << 20  # a key or trusted root larger than this is not one
MAX_KEYS = 64
_MODES = ("keyless", "public_keys", "verify")
_EXAMPLE = 'keyless = { issuer = "https://issuer.example", identity = "release@example.com" }'


def parse_trust(data: Mapping[str, Any], base_dir: Path) -> tuple[TrustPolicy, ...]:
    """Every ``[[trust]]`` entry of the parsed TOML ``data``, in order."""
    entries = data.get("trust", [])
    if not isinstance(entries, list):
        raise ConfigError("[[trust]]: expected an array of tables (write [[trust]], with double "
                          "brackets), got " + type(entries).__name__)
    policies: list[TrustPolicy] = []
    seen: dict[str, str] = {}
    for index, entry in enumerate(entries, 1):
        label = f"[[trust]][{index}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{label}: expected a table")
        t = Table(entry, label, base_dir)
        scope_text = t.text("scope", "")
        if not scope_text:
            raise t.fail("scope", "required: the registry or repository prefix it covers",
                         hint='scope = "registry.example:5000/profiles"')
        try:
            scope = parse_scope(scope_text)
        except ValueError as exc:
            raise t.fail("scope", f"{scope_text!r}: {exc}") from None
        if str(scope) in seen:
            raise t.fail("scope", f"{scope} is already covered by {seen[str(scope)]}")
        seen[str(scope)] = label
        terms = _terms(t)
        t.finish()
        policies.append(TrustPolicy(scope=scope, terms=terms, label=label))
    return tuple(policies)


def _terms(t: Table) -> Terms:
    modes = [mode for mode in _MODES if t.has(mode)]
    if not modes:
        raise t.fail("keyless", "missing: an entry says how its artifacts are verified, with "
                     "keyless, public_keys, or verify = false to take them unsigned",
                     hint=_EXAMPLE)
    if len(modes) > 1:
        raise t.fail(modes[1], f"{' and '.join(modes)} exclude each other: give exactly one "
                     "mode per entry (a second scope can have the other)")
    mode = modes[0]
    if mode == "verify":
        if t.boolean("verify", None) is not False:
            raise t.fail("verify", "only verify = false is meaningful: signatures are checked "
                         "under keyless or public_keys", hint=_EXAMPLE)
        for key in ("trusted_root", "require_tlog"):
            if t.has(key):
                raise t.fail(key, "nothing is verified under verify = false")
        return None
    root = _document(t, "trusted_root")
    if mode == "keyless":
        if t.has("require_tlog"):
            raise t.fail("require_tlog", "keyless signatures always need their log entry")
        return _keyless(t, root)
    require_tlog = bool(t.boolean("require_tlog", False))
    if root is not None and not require_tlog:
        raise t.fail("trusted_root", "with public_keys, a trusted root only serves to check "
                     "log entries: add require_tlog = true, or remove it")
    paths = t.texts("public_keys", ())
    if not paths or len(paths) > MAX_KEYS:
        raise t.fail("public_keys", f"give 1 to {MAX_KEYS} PEM public key files")
    keys = tuple(_read(t, f"public_keys[{i}]", t.resolve_path(p)) for i, p in enumerate(paths))
    return KeyTerms(keys=keys, require_tlog=require_tlog, trusted_root=root)


def _keyless(t: Table, root: Document | None) -> KeylessTerms:
    k = t.table("keyless")
    assert k is not None
    values: dict[str, str | None] = {}
    for name in ("identity", "issuer"):
        exact, regex = k.optional_text(name), k.optional_text(f"{name}_regex")
        if (exact is None) == (regex is None):
            raise k.fail(name, f"give exactly one of {name} and {name}_regex (both are required "
                         "and an empty value matches nothing)", hint=_EXAMPLE)
        if exact == "" or regex == "":
            raise k.fail(name if exact == "" else f"{name}_regex", "must not be empty")
        if regex is not None:
            try:
                re.compile(regex)
            except re.error as exc:
                raise k.fail(f"{name}_regex", f"{regex!r} is not a regular expression: {exc}",
                             hint="it is matched against the whole value, as if "
                             "between ^ and $") from None
        values[name], values[f"{name}_regex"] = exact, regex
    k.finish()
    return KeylessTerms(**values, trusted_root=root)


def _document(t: Table, key: str) -> Document | None:
    """The file ``key`` names, read; ``None`` when absent or ``""`` (the default)."""
    path = t.optional_path(key)
    return None if path is None else _read(t, key, path)


def _read(t: Table, key: str, path: Path) -> Document:
    try:
        with path.open("rb") as f:
            data = f.read(MAX_DOCUMENT_BYTES + 1)
    except OSError as exc:
        raise t.fail(key, f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_DOCUMENT_BYTES:
        raise t.fail(key, f"{path} is larger than {MAX_DOCUMENT_BYTES} bytes")
    return Document(path=path, data=data)
