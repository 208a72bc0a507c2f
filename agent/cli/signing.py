"""How ``secprof push`` signs: the flags pick a signer, which signs the artifact's digest before
anything is pushed (a failed signature leaves nothing behind), and the signature is published next
to the artifact once it is there.

* ``--key FILE``: an ECDSA P-256 key, PEM, or cosign's encrypted format with the password in
  ``$COSIGN_PASSWORD`` (which needs PyNaCl: ``pip install 'secprof[sign]'``); no log entry
  unless ``--tlog-upload`` (the Rekor of ``[signing]``: what ``require_tlog = true`` needs);
* ``--identity-token TOKEN`` (or ``$SIGSTORE_ID_TOKEN``): keyless, a Fulcio certificate for the
  token's identity and a Rekor entry, from ``[signing]``;
* ``--sign=none``: unsigned, said explicitly: hosts refuse it unless their policy says
  ``verify = false``.

``--bundle`` writes a sigstore bundle referrer (cosign v3's format) instead of the legacy ``.sig``
layer that ``spoc pull`` and SPO read.
"""

from __future__ import annotations

import argparse
import base64
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from agent.codes import Code
from agent.config import Config
from agent.errors import AgentError, SigningError, UsageError
from agent.oci.reference import Reference

if TYPE_CHECKING:  # all of these import cryptography: loaded when push really signs
    from cryptography.hazmat.primitives.asymmetric import ec

    from agent.oci.publish import Publisher
    from agent.oci.signatures.legacy import LegacyLayer
    from agent.oci.signatures.sign import KeylessConfig

# Names of environment variables (not secrets):
TOKEN_ENV = "SIGSTORE_ID_TOKEN"  # noqa: S105
PASSWORD_ENV = "COSIGN_PASSWORD"  # noqa: S105


@dataclass(frozen=True, slots=True, kw_only=True)
class Signer:
    """A signer chosen by the flags: a loaded key, or an identity token for keyless signing."""

    key: ec.EllipticCurvePrivateKey | None
    identity_token: str | None
    bundle: bool
    tlog_upload: bool = False  # key signatures: log them in the Rekor of [signing]

    @property
    def format(self) -> str:
        return "sigstore-bundle" if self.bundle else "cosign-legacy"


@dataclass(frozen=True, slots=True, kw_only=True)
class Signed:
    """A signature made for one digest, ready to publish."""

    format: str
    signer: str  # "key sha256:…" or "identity (issuer)"
    material: LegacyLayer | bytes  # a legacy layer, or a sigstore bundle


def choose(args: argparse.Namespace, environ: Mapping[str, str]) -> Signer | None:
    """The signer the flags ask for; ``None`` for ``--sign=none``. Usage errors first, before
    a byte is pushed; loads (and decrypts) a key now, so a wrong password costs nothing."""
    token = args.identity_token
    if args.sign == "none":
        given = [flag for flag, value in (("--key", args.key), ("--identity-token", token),
                                          ("--bundle", args.bundle),
                                          ("--tlog-upload", args.tlog_upload)) if value]
        if given:
            raise UsageError(f"--sign=none pushes unsigned: drop {' and '.join(given)}")
        return None
    if args.key and token:
        raise UsageError("--key and --identity-token exclude each other: sign with a key, or "
                         "keyless with an identity token")
    if args.tlog_upload and not args.key:
        raise UsageError("--tlog-upload logs key signatures; keyless signatures are always "
                         "logged")
    if not args.key:
        token = token or environ.get(TOKEN_ENV) or None
    if not args.key and not token:
        raise UsageError(
            "push signs what it pushes: give --key FILE, or an identity token for keyless "
            f"signing (--identity-token, or ${TOKEN_ENV})",
            hint="--sign=none pushes unsigned; hosts refuse it unless their [[trust]] entry "
            "says verify = false")
    key = _load_key(Path(args.key), environ) if args.key else None
    return Signer(key=key, identity_token=token, bundle=args.bundle,
                  tlog_upload=args.tlog_upload)


def _load_key(path: Path, environ: Mapping[str, str]) -> ec.EllipticCurvePrivateKey:
    from agent.oci.signatures.keys import load_signing_key  # noqa: PLC0415 - cryptography

    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"--key {path}: cannot read it: {exc.strerror or exc}") from None
    password = environ.get(PASSWORD_ENV)
    try:
        return load_signing_key(pem, None if password is None else password.encode())
    except SigningError as exc:
        hint = exc.hint
        if exc.code == Code.SIGNING_KEY_PASSWORD and password is None:
            hint = f"the key is encrypted: put its password in ${PASSWORD_ENV}"
        raise SigningError(f"--key {path}: {exc.message}", code=exc.code, hint=hint) from None


def sign(signer: Signer, config: Config, ref: Reference, digest: str) -> Signed:
    """Sign ``ref.name@digest`` (the repository is part of what is signed)."""
    from agent.oci.signatures import sign as signing  # noqa: PLC0415 - cryptography
    from agent.oci.signatures.checks import key_fingerprint  # noqa: PLC0415

    material: LegacyLayer | bytes
    if signer.key is not None:
        if signer.bundle:
            material = signing.sign_bundle_with_key(signer.key, digest=digest,
                                                    repository=ref.name)
        else:
            material = signing.sign_legacy_with_key(signer.key, digest=digest,
                                                    repository=ref.name)
        if signer.tlog_upload:
            material = _logged(material, signer.key, config)
        who = f"key {key_fingerprint(signer.key.public_key())}"
        return Signed(format=signer.format, signer=who, material=material)
    assert signer.identity_token is not None
    keyless = _keyless_config(config)
    if signer.bundle:
        material = signing.sign_bundle_keyless(digest=digest, repository=ref.name,
                                               identity_token=signer.identity_token,
                                               config=keyless)
    else:
        material = signing.sign_legacy_keyless(digest=digest, repository=ref.name,
                                               identity_token=signer.identity_token,
                                               config=keyless)
    return Signed(format=signer.format, signer=_certified(material), material=material)


def publish(client: Publisher, ref: Reference, signed: Signed, *, digest: str,
            subject_size: int, created: str) -> str:
    """Push ``signed`` next to the artifact; returns where it is (tag or referrer digest)."""
    from agent.oci.publish import publish_bundle, publish_legacy  # noqa: PLC0415

    if isinstance(signed.material, bytes):
        return publish_bundle(client, ref, subject=digest, subject_size=subject_size,
                              bundle=signed.material, created=created)
    return publish_legacy(client, ref, digest, signed.material)


def _logged(material: LegacyLayer | bytes, key: ec.EllipticCurvePrivateKey,
            config: Config) -> LegacyLayer | bytes:
    """``material`` (a key signature) with the log entry the Rekor of ``[signing]`` made."""
    from agent.oci import tlog  # noqa: PLC0415 - requests, only for --tlog-upload
    from agent.oci.signatures import legacy  # noqa: PLC0415
    from agent.oci.signatures.bundle import BundleEntry, build_bundle, parse_bundle  # noqa: PLC0415

    section = config.signing
    root = _keyless_config(config).trusted_root
    if isinstance(material, bytes):
        parsed = parse_bundle(material)
        assert parsed.payload_type is not None
        entry, proof = tlog.log_dsse(section.rekor_url, payload_type=parsed.payload_type,
                                     payload=parsed.payload, signature=parsed.signatures[0],
                                     key=key.public_key(), root=root,
                                     timeout_s=section.timeout_s)
        return build_bundle(payload_type=parsed.payload_type, payload=parsed.payload,
                            signature=parsed.signatures[0],
                            public_key_hint=parsed.public_key_hint,
                            entries=(BundleEntry(entry=entry, kind="dsse", version="0.0.1"),),
                            inclusion_proofs=(proof,))
    signature = base64.b64decode(material.annotations[legacy.SIGNATURE])
    entry = tlog.log_hashedrekord(section.rekor_url, payload=material.payload,
                                  signature=signature, key=key.public_key(), root=root,
                                  timeout_s=section.timeout_s)
    return legacy.build_layer(payload=material.payload, signature=signature, entry=entry)


def _keyless_config(config: Config) -> KeylessConfig:
    from agent.oci.signatures.sign import KeylessConfig  # noqa: PLC0415
    from agent.oci.signatures.trustroot import TrustRoot  # noqa: PLC0415

    section = config.signing
    try:
        root = (TrustRoot.from_file(section.trusted_root) if section.trusted_root
                else TrustRoot.production())
    except AgentError as exc:
        raise SigningError(f"[signing] trusted_root: {exc.message}",
                           code=Code.SIGNING_UNAVAILABLE) from None
    return KeylessConfig(fulcio_url=section.fulcio_url, rekor_url=section.rekor_url,
                         trusted_root=root, timeout_s=section.timeout_s)


def _certified(material: LegacyLayer | bytes) -> str:
    """``identity (issuer)`` of the certificate Fulcio issued for a keyless signature."""
    from agent.oci.signatures import identity  # noqa: PLC0415
    from agent.oci.signatures.bundle import parse_bundle  # noqa: PLC0415
    from agent.oci.signatures.legacy import parse_annotations  # noqa: PLC0415

    cert = (parse_bundle(material).certificate if isinstance(material, bytes)
            else parse_annotations(material.annotations).certificate)
    if cert is None:
        raise SigningError("keyless signing returned no certificate", code=Code.SIGNING_FAILED)
    return f"{', '.join(identity.identities(cert))} ({identity.issuer(cert)})"

