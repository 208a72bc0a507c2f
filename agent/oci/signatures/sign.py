"""Signing: produce what ``secprof push`` pushes — a legacy ``.sig`` layer or a sigstore bundle.

Pure over their inputs except keyless signing, which talks to the configured Fulcio and Rekor
through sigstore-python, bounded by :attr:`KeylessConfig.timeout_s` (sigstore's HTTP clients set
no timeout: a silent service would hang ``secprof push`` for ever). Key-based signatures carry no
log entry (the air-gapped case; verify them with ``require_tlog = false``). What comes out is
exactly what cosign would write, so cosign can verify it, and our verifiers accept cosign's.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from agent.codes import Code
from agent.errors import SigningError
from agent.oci.signatures import legacy
from agent.oci.signatures.bundle import build_bundle, key_hint, parse_bundle
from agent.oci.signatures.legacy import LegacyLayer
from agent.oci.signatures.payload import (
    INTOTO_PAYLOAD_TYPE,
    intoto_statement,
    pae,
    simple_signing_payload,
)
from agent.oci.signatures.trustroot import TrustRoot

_PEM = serialization.Encoding.PEM


@dataclass(frozen=True, slots=True, kw_only=True)
class KeylessConfig:
    """Where keyless signing goes: a Fulcio, a Rekor v1, and the trusted root vouching for them."""

    fulcio_url: str
    rekor_url: str
    trusted_root: TrustRoot
    timeout_s: float = 120.0  # the whole exchange: certificate, then log entry


def sign_legacy_with_key(
    key: ec.EllipticCurvePrivateKey,
    *,
    digest: str,
    repository: str,
    optional: dict[str, str] | None = None,
) -> LegacyLayer:
    """A legacy ``.sig`` layer signing ``repository@digest`` with ``key`` (no log entry)."""
    payload = simple_signing_payload(docker_reference=repository, digest=digest, optional=optional)
    signature = key.sign(payload, ec.ECDSA(hashes.SHA256()))
    return legacy.build_layer(payload=payload, signature=signature)


def sign_bundle_with_key(key: ec.EllipticCurvePrivateKey, *, digest: str, repository: str) -> bytes:
    """A v0.3 DSSE bundle signing ``digest`` with ``key`` (no log entry).

    The statement's subject is named after ``repository``, so our verifier binds the repository
    too (cosign ignores the name and checks the digest).
    """
    statement = intoto_statement(digest=digest, name=repository)
    signature = key.sign(pae(INTOTO_PAYLOAD_TYPE, statement), ec.ECDSA(hashes.SHA256()))
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return build_bundle(
        payload_type=INTOTO_PAYLOAD_TYPE,
        payload=statement,
        signature=signature,
        public_key_hint=key_hint(spki),
    )


def sign_bundle_keyless(
    *, digest: str, repository: str, identity_token: str, config: KeylessConfig
) -> bytes:
    """A keyless v0.3 DSSE bundle: Fulcio certificate for the token's identity, Rekor entry."""
    statement = intoto_statement(digest=digest, name=repository)
    return _keyless(config, payload_type=INTOTO_PAYLOAD_TYPE, payload=statement,
                    identity_token=identity_token)


def sign_legacy_keyless(
    *, digest: str, repository: str, identity_token: str, config: KeylessConfig
) -> LegacyLayer:
    """A keyless legacy ``.sig`` layer, as ``cosign sign`` (v2) and ``spoc push`` write it.

    sigstore-python signs the payload as a blob (a hashedrekord entry, the same entry cosign
    makes); its bundle is then cut into the layer's annotations.
    """
    payload = simple_signing_payload(docker_reference=repository, digest=digest)
    raw = _keyless(config, payload_type="", payload=payload, identity_token=identity_token,
                   artifact=True)
    signed = parse_bundle(raw)
    if signed.certificate is None or signed.message_signature is None or len(signed.entries) != 1:
        raise SigningError("sigstore returned an unexpected bundle", code=Code.SIGNING_FAILED)
    cert = signed.certificate
    return legacy.build_layer(
        payload=payload,
        signature=signed.message_signature,
        certificate_pem=cert.public_bytes(_PEM),
        chain_pem=_chain_pem(cert, config.trusted_root),
        entry=signed.entries[0].entry,
    )


def _chain_pem(cert: x509.Certificate, root: TrustRoot) -> bytes | None:
    # cosign puts the issuing CA chain next to the leaf; verifiers build the path from the
    # trusted root anyway, so a CA we cannot match just leaves the annotation out.
    for ca in root.authorities:
        if ca.chain[0].subject == cert.issuer:
            return b"".join(c.public_bytes(_PEM) for c in ca.chain)
    return None


def _keyless(
    config: KeylessConfig, *, payload_type: str, payload: bytes, identity_token: str,
    artifact: bool = False,
) -> bytes:
    """Sign through sigstore-python against ``config``'s Fulcio and Rekor, within its timeout."""
    from agent.oci.signatures import _sigstore  # noqa: PLC0415 - sigstore only when signing keyless

    return _guarded(config.timeout_s, lambda: _sigstore.sign_keyless(
        payload_type=payload_type, payload=payload, identity_token=identity_token,
        artifact=artifact, trusted_root=config.trusted_root, fulcio_url=config.fulcio_url,
        rekor_url=config.rekor_url,
    ))


def _guarded(timeout_s: float, call: Callable[[], bytes]) -> bytes:
    """Run ``call`` in a worker thread for at most ``timeout_s``; any failure is a
    :class:`SigningError`. A call that overruns is abandoned, not stopped (Python cannot stop a
    thread): the thread is a daemon, and the command that signs ends soon after."""
    outcome: list[bytes | BaseException] = []

    def run() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:  # handed to the caller's thread below
            outcome.append(exc)

    worker = threading.Thread(target=run, name="keyless-signing", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if not outcome:
        raise SigningError(
            f"keyless signing did not finish within {timeout_s:g} s",
            code=Code.SIGNING_TIMEOUT,
            hint="check that the Fulcio and Rekor of [signing] are reachable, or raise "
            "[signing] timeout_s",
        )
    result = outcome[0]
    if isinstance(result, bytes):
        return result
    if isinstance(result, SigningError):
        raise result
    raise SigningError(
        f"keyless signing failed: {type(result).__name__}: {result}", code=Code.SIGNING_FAILED
    ) from result
