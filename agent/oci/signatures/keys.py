"""Signing keys: PEM private keys and cosign's password-encrypted key files.

``cosign generate-key-pair`` writes the private key as PEM ``ENCRYPTED SIGSTORE PRIVATE KEY``
(``ENCRYPTED COSIGN PRIVATE KEY`` before cosign v2) whose body is the JSON envelope of
go-securesystemslib's ``encrypted`` package::

    {"kdf": {"name": "scrypt", "params": {"N": 65536, "r": 8, "p": 1}, "salt": "<b64 32 bytes>"},
     "cipher": {"name": "nacl/secretbox", "nonce": "<b64 24 bytes>"},
     "ciphertext": "<b64 secretbox(PKCS#8 DER)>"}

The key is scrypt(password, salt) (32 bytes); the cipher is NaCl secretbox (XSalsa20-Poly1305,
tag first), which ``cryptography`` lacks: it comes from PyNaCl (pyca's libsodium binding), an
optional dependency (``pip install secprof[sign]``) needed only to sign with such a key. As in
go-securesystemslib, only its three scrypt parameter sets are accepted: a file cannot make us
spend unbounded memory or time.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from agent.codes import Code
from agent.errors import SigningError

COSIGN_PEM_TYPES = ("ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY")
# go-securesystemslib's Legacy, Standard and OWASP strengths (N, r, p).
SCRYPT_PARAMETERS = ((32768, 8, 1), (65536, 8, 1), (131072, 8, 1))
MAX_KEY_FILE_BYTES = 64 * 1024


def load_signing_key(pem: bytes, password: bytes | None = None) -> ec.EllipticCurvePrivateKey:
    """An ECDSA P-256 signing key from PEM: cosign's encrypted format, or PKCS#8/SEC1 PEM."""
    if len(pem) > MAX_KEY_FILE_BYTES:
        raise SigningError("signing key file is too large", code=Code.SIGNING_KEY_INVALID)
    kind, body = _pem_block(pem)
    try:
        if kind in COSIGN_PEM_TYPES:
            der = open_sealed(body, password or b"")
            key = serialization.load_der_private_key(der, password=None)
        else:
            key = serialization.load_pem_private_key(pem, password=password)
    except (ValueError, TypeError) as exc:
        raise SigningError(
            f"cannot load the signing key: {exc}", code=Code.SIGNING_KEY_INVALID
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise SigningError("the signing key is not an ECDSA P-256 key",
                           code=Code.SIGNING_KEY_INVALID)
    return key


def open_sealed(envelope: bytes, password: bytes) -> bytes:
    """Decrypt a go-securesystemslib ``encrypted`` envelope (what a cosign key PEM holds)."""
    try:
        doc = json.loads(envelope)
        kdf, cipher = doc["kdf"], doc["cipher"]
        params = (kdf["params"]["N"], kdf["params"]["r"], kdf["params"]["p"])
        if kdf["name"] != "scrypt" or cipher["name"] != "nacl/secretbox":
            raise ValueError(f"unsupported kdf/cipher {kdf['name']}/{cipher['name']}")
        if params not in SCRYPT_PARAMETERS:
            raise ValueError(f"unsupported scrypt parameters {params}")
        salt, nonce = _b64(kdf["salt"]), _b64(cipher["nonce"])
        ciphertext = _b64(doc["ciphertext"])
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise SigningError(
            f"not a cosign encrypted key: {exc}", code=Code.SIGNING_KEY_INVALID
        ) from None
    box = _secret_box(_derive(password, salt, params))
    from nacl.exceptions import CryptoError  # noqa: PLC0415 - optional dependency

    try:
        return bytes(box.decrypt(ciphertext, nonce))
    except CryptoError:
        raise SigningError(
            "wrong password for the signing key (or a damaged key file)",
            code=Code.SIGNING_KEY_PASSWORD,
        ) from None


def seal(
    plaintext: bytes, password: bytes, *, params: tuple[int, int, int] = (65536, 8, 1)
) -> bytes:
    """Encrypt ``plaintext`` into a go-securesystemslib ``encrypted`` envelope."""
    if params not in SCRYPT_PARAMETERS:
        raise ValueError(f"unsupported scrypt parameters {params}")
    salt, nonce = os.urandom(32), os.urandom(24)
    box = _secret_box(_derive(password, salt, params))
    sealed = bytes(box.encrypt(plaintext, nonce).ciphertext)
    doc = {
        "kdf": {
            "name": "scrypt",
            "params": dict(zip("Nrp", params, strict=True)),
            "salt": _enc(salt),
        },
        "cipher": {"name": "nacl/secretbox", "nonce": _enc(nonce)},
        "ciphertext": _enc(sealed),
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def encrypted_key_pem(key: ec.EllipticCurvePrivateKey, password: bytes) -> bytes:
    """``key`` as cosign writes it: PKCS#8 DER sealed under ``password``, PEM-armoured."""
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    body = base64.encodebytes(seal(der, password)).decode().replace("\n", "")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    kind = COSIGN_PEM_TYPES[0]
    return ("\n".join([f"-----BEGIN {kind}-----", *lines, f"-----END {kind}-----", ""])).encode()


def _derive(password: bytes, salt: bytes, params: tuple[int, int, int]) -> bytes:
    n, r, p = params
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(password)


def _secret_box(key: bytes) -> Any:
    try:
        from nacl.secret import SecretBox  # noqa: PLC0415 - optional dependency
    except ImportError:
        raise SigningError(
            "cosign encrypted keys need PyNaCl",
            code=Code.SIGNING_UNAVAILABLE,
            hint="pip install 'secprof[sign]', or convert the key to PKCS#8 PEM",
        ) from None
    return SecretBox(key)


def _pem_block(pem: bytes) -> tuple[str, bytes]:
    lines = pem.decode("ascii", errors="replace").strip().splitlines()
    if len(lines) < 2 or not lines[0].startswith("-----BEGIN ") or not lines[0].endswith("-----"):
        raise SigningError("the signing key is not PEM", code=Code.SIGNING_KEY_INVALID)
    kind = lines[0][len("-----BEGIN ") : -len("-----")]
    if lines[-1] != f"-----END {kind}-----":
        raise SigningError(
            f"the signing key's PEM block {kind} is not closed", code=Code.SIGNING_KEY_INVALID
        )
    try:
        return kind, base64.b64decode("".join(lines[1:-1]), validate=True)
    except binascii.Error:
        raise SigningError(
            "the signing key's PEM body is not base64", code=Code.SIGNING_KEY_INVALID
        ) from None


def _b64(value: Any) -> bytes:
    if not isinstance(value, str):
        raise TypeError("expected a base64 string")
    return base64.b64decode(value, validate=True)


def _enc(data: bytes) -> str:
    return base64.b64encode(data).decode()
