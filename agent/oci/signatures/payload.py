"""What a signature claims: cosign's simple-signing payload and the in-toto statement of bundles.

Both bind a signature to one artifact digest; the simple-signing payload also names the repository
(``docker-reference``). Parsing is strict (exact types, no duplicate keys: a signed document must
read the same in every parser) and building is byte-exact with cosign, which writes the payload with
Go's ``json.Marshal`` (struct field order, compact, HTML-escaped strings).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agent.codes import Code
from agent.oci.signatures.refuse import refuse

SIMPLE_SIGNING_TYPE = "cosign container image signature"
SIMPLE_SIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
INTOTO_STATEMENT_V1 = "https://in-toto.io/Statement/v1"
COSIGN_SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"

MAX_PAYLOAD_BYTES = 64 * 1024
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
# Docker Hub has several names; cosign writes index.docker.io into docker-reference.
_HUB_ALIASES = ("docker.io/", "registry-1.docker.io/", "registry.hub.docker.com/")


@dataclass(frozen=True, slots=True, kw_only=True)
class SimpleSigning:
    """The claims of a cosign simple-signing payload."""

    docker_reference: str
    digest: str
    optional: Mapping[str, str] | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Statement:
    """An in-toto statement's claims: (name, sha256 hex) per subject, and the predicate type."""

    subjects: tuple[tuple[str | None, str | None], ...]
    predicate_type: str


def check_digest(digest: str) -> str:
    """Return ``digest`` if it is ``sha256:<64 lowercase hex>``; anything else is a caller bug."""
    if not _DIGEST.fullmatch(digest):
        raise ValueError(f"not a sha256 digest: {digest!r}")
    return digest


def repository_of(reference: str) -> str:
    """The repository part of a reference (no tag, no digest; Docker Hub as index.docker.io)."""
    name = reference.split("@", 1)[0]
    slash = name.rfind("/")
    if ":" in name[slash + 1 :]:
        name = name[: slash + 1] + name[slash + 1 :].split(":", 1)[0]
    host, sep, rest = name.partition("/")
    name = host.lower() + sep + rest
    for alias in _HUB_ALIASES:
        if name.startswith(alias):
            return "index.docker.io/" + name[len(alias) :]
    return name


def check_repository(signed_reference: str, expected_repository: str) -> str:
    """The signed reference's repository, after checking it is the expected one: a signature
    made for another repository must not be accepted here."""
    repository = repository_of(signed_reference)
    if repository != repository_of(expected_repository):
        refuse(
            Code.REPOSITORY_MISMATCH,
            f"signature is for repository {repository}, not {expected_repository}",
        )
    return repository


def simple_signing_payload(
    *, docker_reference: str, digest: str, optional: Mapping[str, str] | None = None
) -> bytes:
    """The payload ``cosign sign`` writes for ``docker_reference@digest``, byte for byte."""
    check_digest(digest)
    opt = "null"
    if optional is not None:
        items = sorted(optional.items())  # Go marshals map keys sorted
        opt = "{" + ",".join(f"{_go_string(k)}:{_go_string(v)}" for k, v in items) + "}"
    return (
        '{"critical":{"identity":{"docker-reference":'
        + _go_string(docker_reference)
        + '},"image":{"docker-manifest-digest":'
        + _go_string(digest)
        + '},"type":'
        + _go_string(SIMPLE_SIGNING_TYPE)
        + '},"optional":'
        + opt
        + "}"
    ).encode()


def parse_simple_signing(payload: bytes) -> SimpleSigning:
    """The claims of a simple-signing payload; ``payload-invalid`` if it is not one."""
    doc = _load(payload, "simple-signing payload")
    critical = _obj(doc, "critical")
    if critical.get("type") != SIMPLE_SIGNING_TYPE:
        refuse(Code.PAYLOAD_INVALID, f"payload type is not {SIMPLE_SIGNING_TYPE!r}")
    reference = _obj(critical, "identity").get("docker-reference")
    digest = _obj(critical, "image").get("docker-manifest-digest")
    optional = doc.get("optional")
    if not isinstance(reference, str) or not isinstance(digest, str):
        refuse(
            Code.PAYLOAD_INVALID, "payload lacks docker-reference or docker-manifest-digest"
        )
    if optional is not None and not isinstance(optional, dict):
        refuse(Code.PAYLOAD_INVALID, "payload 'optional' is neither null nor an object")
    opt = None if optional is None else {str(k): str(v) for k, v in optional.items()}
    return SimpleSigning(docker_reference=reference, digest=digest, optional=opt)


def intoto_statement(*, digest: str, name: str | None = None) -> bytes:
    """The in-toto statement cosign signs into a bundle for ``digest`` (compact, sorted keys)."""
    subject: dict[str, Any] = {"digest": {"sha256": check_digest(digest).removeprefix("sha256:")}}
    if name is not None:
        subject["name"] = name
    doc = {
        "_type": INTOTO_STATEMENT_V1,
        "predicate": {},
        "predicateType": COSIGN_SIGN_PREDICATE,
        "subject": [subject],
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def parse_statement(payload: bytes) -> Statement:
    """The claims of an in-toto v1 statement; ``payload-invalid`` if it is not one."""
    doc = _load(payload, "in-toto statement")
    if doc.get("_type") != INTOTO_STATEMENT_V1:
        refuse(Code.PAYLOAD_INVALID, f"statement _type is not {INTOTO_STATEMENT_V1}")
    raw = doc.get("subject")
    if not isinstance(raw, list) or not raw or not all(isinstance(s, dict) for s in raw):
        refuse(Code.PAYLOAD_INVALID, "statement has no subject list")
    subjects = []
    for s in raw:
        name, digests = s.get("name"), s.get("digest")
        if not isinstance(digests, dict) or (name is not None and not isinstance(name, str)):
            refuse(Code.PAYLOAD_INVALID, "statement subject is malformed")
        sha = digests.get("sha256")
        subjects.append((name or None, sha if isinstance(sha, str) else None))
    ptype = doc.get("predicateType")
    if not isinstance(ptype, str):
        refuse(Code.PAYLOAD_INVALID, "statement has no predicateType")
    return Statement(subjects=tuple(subjects), predicate_type=ptype)


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what a DSSE signature is computed over."""
    ptype = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(ptype), ptype, len(payload), payload)


def _go_string(text: str) -> str:
    # Go's encoding/json escapes <, >, & and U+2028/2029 (HTML-safe) where Python's does not.
    out = json.dumps(text, ensure_ascii=False)
    for char, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        out = out.replace(char, esc)
    return out.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate key in signed JSON")
    return dict(pairs)


def _load(payload: bytes, what: str) -> dict[str, Any]:
    if len(payload) > MAX_PAYLOAD_BYTES:
        refuse(Code.PAYLOAD_INVALID, f"{what} is larger than {MAX_PAYLOAD_BYTES} bytes")
    try:
        doc = json.loads(payload, object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError) as exc:
        refuse(Code.PAYLOAD_INVALID, f"{what} is not valid JSON: {exc}")
    if not isinstance(doc, dict):
        refuse(Code.PAYLOAD_INVALID, f"{what} is not a JSON object")
    return doc


def _obj(doc: dict[str, Any], key: str) -> dict[str, Any]:
    value = doc.get(key)
    if not isinstance(value, dict):
        refuse(Code.PAYLOAD_INVALID, f"payload field {key!r} is not an object")
    return value
