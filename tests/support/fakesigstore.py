"""A throwaway, offline Sigstore instance: made per test session, keys in memory only.

* a Fulcio-like CA (P-384 root and intermediate) issuing short-lived leaves for an identity and
  OIDC issuer, with an embedded SCT from a CT log key (precertificate flow, RFC 6962 §3.2:
  the SCT signs the TBS without the SCT list; it is then added as the last extension);
* a Rekor-v1-like log: entries with a signed entry timestamp (SET), RFC 6962 inclusion proofs
  over an in-memory Merkle tree, and signed checkpoints;
* the ``trusted_root.json`` that sigstore-python accepts for all of that (research §4.2).

Helpers return the material a signer would push — legacy ``.sig`` layers and v0.3 bundles — and
take the knobs the negative tests turn (identity, issuer, times, log entry). Only ``cryptography``
and the project's own format builders are used; sigstore-python verifying these bundles is what
keeps the builders honest.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat import asn1
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from agent.oci.signatures import legacy
from agent.oci.signatures.bundle import BundleEntry, build_bundle
from agent.oci.signatures.legacy import LegacyLayer
from agent.oci.signatures.payload import INTOTO_PAYLOAD_TYPE, pae
from agent.oci.signatures.rekor import dsse_body, hashedrekord_body
from agent.oci.signatures.trustroot import TrustRoot
from tests.support.fakelog import FakeLog

ISSUER = "https://issuer.example.invalid"
IDENTITY = "release-bot@example.invalid"
_PEM = serialization.Encoding.PEM
_SPKI = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
_SCT_OID = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")


def _spki(key: Any) -> bytes:
    return bytes(key.public_bytes(*_SPKI))


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "test.invalid"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _ca(
    subject: x509.Name,
    key: Any,
    issuer: x509.Name,
    signer: Any,
    start: datetime,
    *,
    code_signing: bool,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=3650))
        .add_extension(
            x509.BasicConstraints(ca=True, path_length=None if not code_signing else 0),
            critical=True,
        )
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False
        )
    )
    if code_signing:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False
        )
    return builder.sign(signer, hashes.SHA384())


@dataclass
class FakeSigstore:
    """One offline Sigstore instance; ``trusted_root`` is what a verifier trusts for it."""

    name: str = "fake"
    start: datetime = field(default_factory=lambda: datetime.now(UTC) - timedelta(days=1))
    log: FakeLog = field(default_factory=FakeLog)
    ct_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )

    def __post_init__(self) -> None:
        self.root_key = ec.generate_private_key(ec.SECP384R1())
        self.intermediate_key = ec.generate_private_key(ec.SECP384R1())
        root_name, mid_name = (
            _name(f"{self.name}-fulcio-root"),
            _name(f"{self.name}-fulcio-intermediate"),
        )
        self.root_cert = _ca(
            root_name, self.root_key, root_name, self.root_key, self.start, code_signing=False
        )
        self.intermediate = _ca(
            mid_name, self.intermediate_key, root_name, self.root_key, self.start, code_signing=True
        )

    # --- the trust root ---------------------------------------------------------------------
    def trusted_root_json(self) -> bytes:
        def log_doc(key: Any, url: str) -> dict[str, Any]:
            spki = _spki(key.public_key())
            return {
                "baseUrl": url,
                "hashAlgorithm": "SHA2_256",
                "publicKey": {
                    "rawBytes": base64.b64encode(spki).decode(),
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                    "validFor": {"start": _iso(self.start)},
                },
                "logId": {"keyId": base64.b64encode(hashlib.sha256(spki).digest()).decode()},
            }

        chain = [self.intermediate, self.root_cert]
        doc = {
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [log_doc(self.log.key, f"https://rekor.{self.name}.invalid")],
            "certificateAuthorities": [
                {
                    "subject": {
                        "organization": "test.invalid",
                        "commonName": f"{self.name}-fulcio",
                    },
                    "uri": f"https://fulcio.{self.name}.invalid",
                    "certChain": {
                        "certificates": [
                            {
                                "rawBytes": base64.b64encode(
                                    c.public_bytes(serialization.Encoding.DER)
                                ).decode()
                            }
                            for c in chain
                        ]
                    },
                    "validFor": {"start": _iso(self.start)},
                }
            ],
            "ctlogs": [log_doc(self.ct_key, f"https://ctfe.{self.name}.invalid")],
            "timestampAuthorities": [],
        }
        return json.dumps(doc, indent=1).encode()

    @property
    def trusted_root(self) -> TrustRoot:
        return TrustRoot.from_bytes(self.trusted_root_json(), source=f"{self.name} trusted root")

    def chain_pem(self) -> bytes:
        return self.intermediate.public_bytes(_PEM) + self.root_cert.public_bytes(_PEM)

    # --- Fulcio --------------------------------------------------------------------------------
    def issue(
        self,
        public_key: Any,
        *,
        identity: str = IDENTITY,
        issuer: str = ISSUER,
        not_before: datetime | None = None,
        lifetime: timedelta = timedelta(minutes=10),
        sct: bool = True,
        raw_issuer: str | None = None,
        code_signing: bool = True,
    ) -> x509.Certificate:
        """A Fulcio-style leaf for ``public_key``, with an embedded SCT unless ``sct=False``."""
        start = not_before or datetime.now(UTC) - timedelta(minutes=1)
        san: x509.GeneralName = (
            x509.UniformResourceIdentifier(identity)
            if "://" in identity
            else x509.RFC822Name(identity)
        )
        eku = ExtendedKeyUsageOID.CODE_SIGNING if code_signing else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self.intermediate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + lifetime)
            .add_extension(
                x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    self.intermediate_key.public_key()
                ),
                critical=False,
            )
            .add_extension(x509.SubjectAlternativeName([san]), critical=True)
            .add_extension(
                x509.UnrecognizedExtension(
                    x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1"), (raw_issuer or issuer).encode()
                ),
                critical=False,
            )
            .add_extension(
                x509.UnrecognizedExtension(
                    x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8"), asn1.encode_der(issuer)
                ),
                critical=False,
            )
        )
        if not sct:
            return builder.sign(self.intermediate_key, hashes.SHA384())
        precert = builder.sign(self.intermediate_key, hashes.SHA384())
        sct_list = self._sct(precert.tbs_certificate_bytes, start)
        return builder.add_extension(
            x509.UnrecognizedExtension(_SCT_OID, sct_list), critical=False
        ).sign(self.intermediate_key, hashes.SHA384())

    def _sct(self, tbs: bytes, when: datetime) -> bytes:
        millis = int(when.timestamp() * 1000)
        issuer_hash = hashlib.sha256(_spki(self.intermediate_key.public_key())).digest()
        signed = (
            struct.pack("!BBQH", 0, 0, millis, 1)
            + issuer_hash
            + len(tbs).to_bytes(3, "big")
            + tbs
            + struct.pack("!H", 0)
        )
        sig = self.ct_key.sign(signed, ec.ECDSA(hashes.SHA256()))
        log_id = hashlib.sha256(_spki(self.ct_key.public_key())).digest()
        sct = (
            struct.pack("!B", 0)
            + log_id
            + struct.pack("!QH", millis, 0)
            + struct.pack("!BBH", 4, 3, len(sig))
            + sig
        )
        tls_list = struct.pack("!HH", len(sct) + 2, len(sct)) + sct
        return bytes(asn1.encode_der(tls_list))

    # --- signatures ------------------------------------------------------------------------------
    def legacy_keyless(
        self,
        payload: bytes,
        *,
        identity: str = IDENTITY,
        issuer: str = ISSUER,
        logged_at: datetime | None = None,
        **cert: Any,
    ) -> LegacyLayer:
        """A keyless legacy ``.sig`` layer over ``payload``, logged with a SET."""
        key = ec.generate_private_key(ec.SECP256R1())
        leaf = self.issue(key.public_key(), identity=identity, issuer=issuer, **cert)
        signature = key.sign(payload, ec.ECDSA(hashes.SHA256()))
        body = hashedrekord_body(
            sha256_hex=hashlib.sha256(payload).hexdigest(),
            signature=signature,
            public_key_pem=leaf.public_bytes(_PEM),
        )
        entry, _ = self.log.append(body, integrated_time=logged_at or datetime.now(UTC))
        return legacy.build_layer(
            payload=payload,
            signature=signature,
            certificate_pem=leaf.public_bytes(_PEM),
            chain_pem=self.chain_pem(),
            entry=entry,
        )

    def log_key_signature(self, layer: LegacyLayer, key: ec.EllipticCurvePrivateKey) -> LegacyLayer:
        """``layer`` (signed with ``key``) plus a log entry, as ``cosign sign --key`` makes it."""
        signature = base64.b64decode(layer.annotations[legacy.SIGNATURE])
        pub_pem = key.public_key().public_bytes(
            _PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        body = hashedrekord_body(
            sha256_hex=hashlib.sha256(layer.payload).hexdigest(),
            signature=signature,
            public_key_pem=pub_pem,
        )
        entry, _ = self.log.append(body, integrated_time=datetime.now(UTC))
        return legacy.build_layer(payload=layer.payload, signature=signature, entry=entry)

    def bundle_keyless(
        self,
        statement: bytes,
        *,
        identity: str = IDENTITY,
        issuer: str = ISSUER,
        logged_at: datetime | None = None,
        **cert: Any,
    ) -> bytes:
        """A keyless v0.3 DSSE bundle over ``statement`` (dsse 0.0.1 entry, SET, proof)."""
        key = ec.generate_private_key(ec.SECP256R1())
        leaf = self.issue(key.public_key(), identity=identity, issuer=issuer, **cert)
        signature = key.sign(pae(INTOTO_PAYLOAD_TYPE, statement), ec.ECDSA(hashes.SHA256()))
        return self._dsse_bundle(
            statement,
            signature,
            leaf.public_bytes(_PEM),
            logged_at,
            certificate_der=leaf.public_bytes(serialization.Encoding.DER),
        )

    def bundle_with_key(
        self, statement: bytes, key: ec.EllipticCurvePrivateKey, *, hint: str = ""
    ) -> bytes:
        """A key-signed v0.3 DSSE bundle over ``statement``, logged (SET and proof)."""
        signature = key.sign(pae(INTOTO_PAYLOAD_TYPE, statement), ec.ECDSA(hashes.SHA256()))
        pub_pem = key.public_key().public_bytes(
            _PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return self._dsse_bundle(statement, signature, pub_pem, None, hint=hint or "none")

    def _dsse_bundle(
        self,
        statement: bytes,
        signature: bytes,
        verifier_pem: bytes,
        logged_at: datetime | None,
        *,
        certificate_der: bytes | None = None,
        hint: str | None = None,
    ) -> bytes:
        envelope = json.dumps(
            {"payload": base64.b64encode(statement).decode(), "payloadType": INTOTO_PAYLOAD_TYPE}
        ).encode()
        body = dsse_body(
            payload_sha256_hex=hashlib.sha256(statement).hexdigest(),
            envelope_sha256_hex=hashlib.sha256(envelope).hexdigest(),
            signature=signature,
            verifier_pem=verifier_pem,
        )
        entry, proof = self.log.append(body, integrated_time=logged_at or datetime.now(UTC))
        return build_bundle(
            payload_type=INTOTO_PAYLOAD_TYPE,
            payload=statement,
            signature=signature,
            certificate_der=certificate_der,
            public_key_hint=hint,
            entries=(BundleEntry(entry=entry, kind="dsse", version="0.0.1"),),
            inclusion_proofs=(proof,),
        )
