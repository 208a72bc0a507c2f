"""Signing keys, cosign's encrypted key format included."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from agent.errors import SigningError
from agent.publish.keys import encrypted_key_pem, load_signing_key, open_sealed, seal

# Known answer from go-securesystemslib's encrypted package tests (MIT; the envelope format cosign
# keys use): "reallyimportant" sealed under "supersecret" with the Legacy scrypt strength.
GO_VECTOR = (
    b'{"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},'
    b'"salt":"N9a7x5JFGbrtB2uBR81jPwp0eiLR4A7FV3mjVAQrg1g="},'
    b'"cipher":{"name":"nacl/secretbox","nonce":"2h8HxMmgRfuYdpswZBQaU3xJ1nkA/5Ik"},'
    b'"ciphertext":"SEW6sUh0jf2wfdjJGPNS9+bkk2uB+Cxamf32zR8XkQ=="}'
)


def test_opens_what_go_sealed() -> None:
    assert open_sealed(GO_VECTOR, b"supersecret") == b"reallyimportant"


def test_wrong_password_and_damage() -> None:
    with pytest.raises(SigningError) as info:
        open_sealed(GO_VECTOR, b"supersecreT")
    assert info.value.code == "signing-key-password"
    with pytest.raises(SigningError) as info:
        open_sealed(GO_VECTOR.replace(b"SEW6", b"SEW7"), b"supersecret")
    assert info.value.code == "signing-key-password"


def test_refuses_costly_or_unknown_parameters() -> None:
    for bad in (
        GO_VECTOR.replace(b'"N":32768', b'"N":1048576'),
        GO_VECTOR.replace(b"nacl/secretbox", b"aes-gcm"),
        b"{}",
        b"not json",
    ):
        with pytest.raises(SigningError) as info:
            open_sealed(bad, b"supersecret")
        assert info.value.code == "signing-key-invalid"


def test_cosign_key_file_round_trip() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = encrypted_key_pem(key, b"pw")
    assert pem.startswith(b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
    loaded = load_signing_key(pem, b"pw")
    assert loaded.private_numbers() == key.private_numbers()
    legacy_name = pem.replace(b"SIGSTORE", b"COSIGN")
    assert load_signing_key(legacy_name, b"pw").private_numbers() == key.private_numbers()
    with pytest.raises(SigningError):
        load_signing_key(pem, b"wrong")


def test_seal_round_trip_and_fresh_salt() -> None:
    one, two = seal(b"x", b"p", params=(32768, 8, 1)), seal(b"x", b"p", params=(32768, 8, 1))
    assert one != two
    assert open_sealed(one, b"p") == open_sealed(two, b"p") == b"x"


def test_plain_pem_keys() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    for fmt in (serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL):
        pem = key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())
        assert load_signing_key(pem).private_numbers() == key.private_numbers()


@pytest.mark.parametrize(
    "pem",
    [
        ec.generate_private_key(ec.SECP384R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        b"garbage",
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n",
    ],
)
def test_refused_keys(pem: bytes) -> None:
    with pytest.raises(SigningError) as info:
        load_signing_key(pem)
    assert info.value.code == "signing-key-invalid"
