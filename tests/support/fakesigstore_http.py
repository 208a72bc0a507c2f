"""The fake Sigstore's Fulcio and Rekor (v1) as HTTP services on 127.0.0.1, plus an OIDC issuer.

Just enough of both APIs for sigstore-python's signer: ``POST /api/v2/signingCert`` (checks the
bearer token's signature, audience and expiry, and the CSR's proof of possession, then issues a
leaf with an embedded SCT) and ``POST /api/v1/log/entries`` (hashedrekord and dsse proposals,
answered with SET, inclusion proof and checkpoint). One server serves both; it stops on exit.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from agent.oci.signatures.rekor import dsse_body, hashedrekord_body
from tests.support.fakesigstore import IDENTITY, ISSUER, FakeSigstore

_PEM = serialization.Encoding.PEM


class FakeServices:
    """``with FakeServices(sigstore) as services: services.url, services.token()``."""

    def __init__(self, sigstore: FakeSigstore) -> None:
        self.sigstore = sigstore
        self.oidc_key = ec.generate_private_key(ec.SECP256R1())
        self.requests: list[str] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def token(
        self,
        *,
        identity: str = IDENTITY,
        issuer: str = ISSUER,
        lifetime: int = 300,
        key: ec.EllipticCurvePrivateKey | None = None,
    ) -> str:
        """An OIDC identity token for ``identity``, signed by this issuer (or by ``key``)."""
        now = int(datetime.now(UTC).timestamp())
        claims = {
            "iss": issuer,
            "aud": "sigstore",
            "sub": identity,
            "iat": now - 1,
            "exp": now + lifetime,
        }
        return jwt.encode(claims, key or self.oidc_key, algorithm="ES256")

    def __enter__(self) -> FakeServices:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # --- the two APIs ------------------------------------------------------------------------
    def signing_cert(self, request: dict[str, Any], authorization: str) -> tuple[int, Any]:
        try:
            claims = jwt.decode(
                authorization.removeprefix("Bearer "),
                self.oidc_key.public_key(),
                algorithms=["ES256"],
                audience="sigstore",
            )
        except jwt.PyJWTError as exc:
            return 401, {"code": 401, "message": f"invalid identity token: {exc}"}
        csr = x509.load_pem_x509_csr(base64.b64decode(request["certificateSigningRequest"]))
        if not csr.is_signature_valid:
            return 400, {"code": 400, "message": "CSR signature invalid"}
        leaf = self.sigstore.issue(csr.public_key(), identity=claims["sub"], issuer=claims["iss"])
        chain = [leaf, self.sigstore.intermediate, self.sigstore.root_cert]
        return 201, {
            "signedCertificateEmbeddedSct": {
                "chain": {"certificates": [c.public_bytes(_PEM).decode() for c in chain]}
            }
        }

    def log_entry(self, proposed: dict[str, Any]) -> tuple[int, Any]:
        spec = proposed["spec"]
        if proposed["kind"] == "hashedrekord":
            body = hashedrekord_body(
                sha256_hex=spec["data"]["hash"]["value"],
                signature=base64.b64decode(spec["signature"]["content"]),
                public_key_pem=base64.b64decode(spec["signature"]["publicKey"]["content"]),
            )
        elif proposed["kind"] == "dsse":
            content = spec["proposedContent"]
            envelope = json.loads(content["envelope"])
            body = dsse_body(
                payload_sha256_hex=hashlib.sha256(
                    base64.b64decode(envelope["payload"])
                ).hexdigest(),
                envelope_sha256_hex=hashlib.sha256(content["envelope"].encode()).hexdigest(),
                signature=base64.b64decode(envelope["signatures"][0]["sig"]),
                verifier_pem=base64.b64decode(content["verifiers"][0]),
            )
        else:
            return 400, {"code": 400, "message": f"unsupported kind {proposed['kind']}"}
        entry, proof = self.sigstore.log.append(body, integrated_time=datetime.now(UTC))
        assert entry.signed_entry_timestamp is not None
        return 201, {
            uuid.uuid4().hex: {
                "body": base64.b64encode(body).decode(),
                "integratedTime": entry.integrated_time,
                "logID": entry.log_id.hex(),
                "logIndex": entry.log_index,
                "verification": {
                    "signedEntryTimestamp": base64.b64encode(entry.signed_entry_timestamp).decode(),
                    "inclusionProof": {
                        "logIndex": entry.log_index,
                        "rootHash": base64.b64decode(proof["rootHash"]).hex(),
                        "treeSize": int(proof["treeSize"]),
                        "hashes": [base64.b64decode(h).hex() for h in proof["hashes"]],
                        "checkpoint": proof["checkpoint"]["envelope"],
                    },
                },
            }
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        services = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                services.requests.append(self.path)
                length = int(self.headers.get("Content-Length", "0"))
                request = json.loads(self.rfile.read(length))
                if self.path == "/api/v2/signingCert":
                    status, answer = services.signing_cert(
                        request, self.headers.get("Authorization", "")
                    )
                elif self.path == "/api/v1/log/entries":
                    status, answer = services.log_entry(request)
                else:
                    status, answer = 404, {"code": 404, "message": "not found"}
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
