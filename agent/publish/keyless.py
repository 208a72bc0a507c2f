"""Keyless signing through sigstore-python, for ``secprof push`` only (the hosts never sign).

Imported lazily, by :func:`agent.publish.sign._keyless`: sigstore's imports cost about 300 ms.
sigstore-python API used beyond its documented surface (the project pins ``sigstore<4.6``):
``SigningContext.from_trust_config`` (docstring "@api private"), the way sigstore's own CLI builds
a signing context for a custom Fulcio/Rekor.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sigstore import dsse
from sigstore.models import ClientTrustConfig
from sigstore.oidc import IdentityToken
from sigstore.sign import SigningContext

from agent.oci.signatures.payload import INTOTO_PAYLOAD_TYPE
from agent.oci.signatures.trustroot import TrustRoot


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
