"""The key-only path must not load sigstore-python (≈300 ms, 25 MiB); keyless loads it on use."""

from __future__ import annotations

import subprocess
import sys
import textwrap

PROBE = textwrap.dedent(
    """
    import sys
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives import serialization
    from agent.oci.signatures import PublicKeys, verify_legacy, verify_bundle
    from agent.publish.sign import sign_legacy_with_key
    from agent.publish.sign import sign_bundle_with_key
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    digest = "sha256:" + "ab" * 32
    layer = sign_legacy_with_key(key, digest=digest, repository="r.invalid/x")
    verify_legacy(layer.payload, layer.annotations, PublicKeys(keys=(pem,)),
                  expected_digest=digest, expected_repository="r.invalid/x")
    bundle = sign_bundle_with_key(key, digest=digest, repository="r.invalid/x")
    verify_bundle(bundle, PublicKeys(keys=(pem,)), expected_digest=digest,
                  expected_repository="r.invalid/x")
    heavy = sorted(m for m in sys.modules
                   if m.split(".")[0] in {"sigstore", "sigstore_models", "pydantic", "requests"})
    print(",".join(heavy))
    """
)


def test_key_only_path_never_imports_sigstore() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
