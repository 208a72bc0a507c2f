"""The one module that imports sigstore-python: keyless bundle verification and keyless signing.

Imported lazily (only a keyless policy or keyless signing gets here): sigstore's imports cost
about 300 ms and 25 MiB, which the key-only path never pays.

sigstore-python APIs used beyond its documented surface — the project pins ``sigstore<4.6``:

* ``sigstore.models.TrustedRoot(inner)`` — the plain constructor (docstring says "@api private")
  over ``sigstore_models``' public ``TrustedRoot.from_json``: exactly what ``TrustedRoot.from_file``
  does, minus re-reading the file, so sigstore verifies with the bytes the policy id hashed;
* ``SigningContext.from_trust_config`` (docstring "@api private"), the way sigstore's own CLI builds
  a signing context for a custom Fulcio/Rekor.

sigstore reports every failure as one exception type with a message; :func:`_classify` maps the
messages to our codes (tests pin each mapping). An unknown message still fails — as
``signature-invalid`` — so a sigstore upgrade can blur a code but never let a signature through.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache
from typing import Any

from cryptography import x509
from pydantic import ValidationError
from sigstore import dsse
from sigstore.errors import CertValidationError
from sigstore.errors import Error as SigstoreError
from sigstore.models import Bundle as SigstoreBundle
from sigstore.models import ClientTrustConfig, TrustedRoot
from sigstore.oidc import IdentityToken
from sigstore.sign import SigningContext
from sigstore.verify import Verifier
from sigstore_models.trustroot import v1 as trustroot_v1

from agent.codes import Code
from agent.errors import AgentError
from agent.oci.signatures.payload import INTOTO_PAYLOAD_TYPE
from agent.oci.signatures.policy import Keyless
from agent.oci.signatures.refuse import refuse
from agent.oci.signatures.trustroot import TrustRoot

# (message fragment, code), first match wins; fragments are sigstore 4.x's own wording.
_MESSAGES = (
    ("SCT", Code.SCT_INVALID),
    ("expired at time of signing", Code.CERTIFICATE_EXPIRED),
    ("Key usage", Code.CERTIFICATE_INVALID),
    ("Extended usage", Code.CERTIFICATE_INVALID),
    ("payload hash does not match", Code.PAYLOAD_TAMPERED),
    ("signatures do not match", Code.TLOG_INCONSISTENT),
    ("inconsistent", Code.TLOG_INCONSISTENT),
    ("Unsupported DSSE log entry", Code.TLOG_INCONSISTENT),
    ("invalid log entry", Code.TLOG_INVALID),
    ("verified time", Code.TLOG_INVALID),
    ("Integrated time", Code.TLOG_INVALID),
    ("DSSE", Code.SIGNATURE_INVALID),
)


@lru_cache(maxsize=8)
def _verifier(root: TrustRoot) -> Verifier:
    try:
        trusted = TrustedRoot(trustroot_v1.TrustedRoot.from_json(root.data))
        return Verifier(trusted_root=trusted)
    except (ValidationError, SigstoreError, ValueError) as exc:
        refuse(Code.TRUST_ROOT_INVALID, f"trusted root {root.source}: {exc}")


def verify_keyless_dsse(data: bytes, policy: Keyless) -> tuple[str, bytes, x509.Certificate]:
    """Verify a keyless DSSE bundle with sigstore-python.

    Returns what sigstore verified: the payload type, the payload and the signing certificate.

    ``policy`` doubles as sigstore's identity policy: its own ``identity-``/``issuer-mismatch``
    errors pass through sigstore unchanged.
    """
    verifier = _verifier(policy.root)
    try:
        bundle = SigstoreBundle.from_json(data)
    except (ValidationError, SigstoreError, ValueError) as exc:
        refuse(Code.SIGNATURE_MALFORMED, f"sigstore bundle: {_first_line(exc)}")
    try:
        payload_type, payload = verifier.verify_dsse(bundle, policy)
    except AgentError:
        raise
    except CertValidationError as exc:
        refuse(Code.CERTIFICATE_UNTRUSTED, f"sigstore: {_first_line(exc)}")
    except SigstoreError as exc:
        refuse(_classify(str(exc)), f"sigstore: {_first_line(exc)}")
    return payload_type, payload, bundle.signing_certificate


def _classify(message: str) -> Code:
    return next(
        (code for fragment, code in _MESSAGES if fragment in message), Code.SIGNATURE_INVALID
    )


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def sign_keyless(
    *,
    payload_type: str,
    payload: bytes,
    identity_token: str,
    trusted_root: TrustRoot,
    fulcio_url: str,
    rekor_url: str,
    artifact: bool = False,
) -> bytes:
    """Sign through a Fulcio and a Rekor (v1) with an OIDC token; return sigstore bundle JSON.

    ``artifact=False`` signs ``payload`` as a DSSE envelope of ``payload_type`` (an in-toto
    statement); ``artifact=True`` signs the raw bytes (a hashedrekord message signature — the
    form a legacy ``.sig`` layer is cut from).
    """
    config = ClientTrustConfig.from_json(
        json.dumps(
            {
                "mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json",
                "trustedRoot": json.loads(trusted_root.data),
                "signingConfig": _signing_config(fulcio_url, rekor_url),
            }
        )
    )
    context = SigningContext.from_trust_config(config)
    with context.signer(IdentityToken(identity_token), cache=True) as signer:
        if artifact:
            result = signer.sign_artifact(payload)
        else:
            if payload_type != INTOTO_PAYLOAD_TYPE:
                raise ValueError(f"sigstore signs DSSE envelopes of {INTOTO_PAYLOAD_TYPE} only")
            result = signer.sign_dsse(dsse.Statement(payload))
    return result.to_json().encode()


def _signing_config(fulcio_url: str, rekor_url: str) -> dict[str, Any]:
    start = {"start": datetime(2020, 1, 1).strftime("%Y-%m-%dT%H:%M:%SZ")}
    service = {"majorApiVersion": 1, "validFor": start, "operator": "secprof"}
    return {
        "mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
        "caUrls": [{"url": fulcio_url, **service}],
        "oidcUrls": [],
        "rekorTlogUrls": [{"url": rekor_url, **service}],
        "tsaUrls": [],
        "rekorTlogConfig": {"selector": "ANY"},
        "tsaConfig": {"selector": "ANY"},
    }
