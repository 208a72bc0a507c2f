"""Who a Fulcio certificate says signed: its SAN identities and its OIDC issuer.

Fulcio writes the issuer twice: raw bytes in 1.3.6.1.4.1.57264.1.1 (deprecated) and a DER
UTF8String in …1.8. A certificate whose two issuer extensions disagree is refused: a check that
reads one of them must not be fooled by the other.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat import asn1

from agent.codes import Code
from agent.oci.signatures.refuse import refuse

ISSUER_V1 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
ISSUER_V2 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
SIGSTORE_OTHERNAME = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.7")


def identities(cert: x509.Certificate) -> tuple[str, ...]:
    """The SAN values an identity policy may match: emails, URIs and Sigstore's otherName."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        refuse(Code.CERTIFICATE_INVALID, "certificate has no subject alternative name")
    found = [*san.get_values_for_type(x509.RFC822Name)]
    found += san.get_values_for_type(x509.UniformResourceIdentifier)
    for other in san.get_values_for_type(x509.OtherName):
        if other.type_id == SIGSTORE_OTHERNAME:
            found.append(_der_utf8(other.value, "otherName"))
    return tuple(found)


def issuer(cert: x509.Certificate) -> str | None:
    """The OIDC issuer the certificate names, or ``None`` if it names none."""
    v1 = _extension(cert, ISSUER_V1)
    v2 = _extension(cert, ISSUER_V2)
    raw = None if v1 is None else _text(v1, "issuer (1.1)")
    der = None if v2 is None else _der_utf8(v2, "issuer (1.8)")
    if raw is not None and der is not None and raw != der:
        refuse(Code.CERTIFICATE_INVALID, f"certificate names two issuers: {raw!r} and {der!r}")
    return der if der is not None else raw


def _extension(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> bytes | None:
    try:
        value = cert.extensions.get_extension_for_oid(oid).value
    except x509.ExtensionNotFound:
        return None
    if not isinstance(value, x509.UnrecognizedExtension):
        refuse(Code.CERTIFICATE_INVALID, f"unexpected extension type for {oid.dotted_string}")
    return value.value


def _text(value: bytes, what: str) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        refuse(Code.CERTIFICATE_INVALID, f"certificate {what} is not UTF-8")


def _der_utf8(value: bytes, what: str) -> str:
    try:
        return asn1.decode_der(str, value)
    except ValueError:
        refuse(Code.CERTIFICATE_INVALID, f"certificate {what} is not a DER UTF8String")
