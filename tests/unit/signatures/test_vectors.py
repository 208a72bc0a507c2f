"""Real signatures from elsewhere, verified offline (skipped where ``shared/`` is not beside us).

* ``real-cosign-legacy``: a public-good keyless cosign ``.sig`` (GitHub Actions, Rekor SET) of
  ``index.docker.io/salrashid123/server_image``, checked against the production trusted root that
  ships in the sigstore wheel — our own SET/SCT/chain code on data we did not make;
* ``generated``: material from the research prototype's independent fake Sigstore;
* ``sigstore-python``: a staging Rekor v2 + TSA DSSE bundle, through the sigstore-python path.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from agent.errors import VerificationError
from agent.oci.signatures import Keyless, TrustRoot, verify_bundle, verify_legacy
from tests.support.vectors import VECTORS

pytestmark = pytest.mark.skipif(VECTORS is None, reason="shared/sigstore-vectors is not available")

REAL_DIGEST = "sha256:c05263d2ff654c3a94243662440913f045075d59c436e2c69e9145ec2b87a321"
REAL_REPO = "docker.io/salrashid123/server_image"
REAL_IDENTITY = (
    "https://github.com/salrashid123/go-bazel-github-workflow/.github/workflows/"
    "release.yaml@refs/tags/v0.0.30"
)
GITHUB = "https://token.actions.githubusercontent.com"


def refused(call: Callable[[], object]) -> str:
    with pytest.raises(VerificationError) as info:
        call()
    return info.value.code


@pytest.fixture(scope="module")
def real() -> tuple[bytes, dict[str, str]]:
    assert VECTORS is not None
    manifest = json.loads((VECTORS / "real-cosign-legacy/sig-manifest.json").read_text())
    (layer,) = manifest["layers"]
    return (VECTORS / "real-cosign-legacy/payload.json").read_bytes(), layer["annotations"]


def verify_real(real: tuple[bytes, dict[str, str]], policy: Keyless, **kw: str) -> object:
    payload, annotations = real
    return verify_legacy(
        payload,
        annotations,
        policy,
        expected_digest=kw.get("digest", REAL_DIGEST),
        expected_repository=kw.get("repository", REAL_REPO),
    )


def test_real_legacy_signature_verifies_with_the_wheel_root(
    real: tuple[bytes, dict[str, str]],
) -> None:
    verified = verify_real(real, Keyless(identity=REAL_IDENTITY, issuer=GITHUB))
    assert verified.identity == REAL_IDENTITY
    assert verified.issuer == GITHUB
    assert verified.repository == "index.docker.io/salrashid123/server_image"  # type: ignore[attr-defined]
    assert verified.tlog_index == 1004096555  # type: ignore[attr-defined]


def test_real_legacy_signature_with_anchored_regex(real: tuple[bytes, dict[str, str]]) -> None:
    policy = Keyless(
        identity_regex=r"https://github\.com/salrashid123/go-bazel-github-workflow/\.github/"
        r"workflows/release\.yaml@refs/tags/v[0-9.]+",
        issuer_regex=r"https://token\.actions\.githubusercontent\.com",
    )
    assert verify_real(real, policy)


def test_real_legacy_signature_refusals(real: tuple[bytes, dict[str, str]]) -> None:
    payload, annotations = real
    assert VECTORS is not None
    staging = TrustRoot.from_file(VECTORS / "trusted-roots/staging.trusted_root.json")
    other_identity = REAL_IDENTITY.replace("v0.0.30", "v0.0.31")
    got = {
        "identity": refused(
            lambda: verify_real(real, Keyless(identity=other_identity, issuer=GITHUB))
        ),
        "issuer": refused(
            lambda: verify_real(
                real, Keyless(identity=REAL_IDENTITY, issuer="https://accounts.google.com")
            )
        ),
        "digest": refused(
            lambda: verify_real(
                real, Keyless(identity=REAL_IDENTITY, issuer=GITHUB), digest="sha256:" + "0" * 64
            )
        ),
        "repository": refused(
            lambda: verify_real(
                real,
                Keyless(identity=REAL_IDENTITY, issuer=GITHUB),
                repository="ghcr.io/salrashid123/server_image",
            )
        ),
        "root": refused(
            lambda: verify_real(
                real, Keyless(identity=REAL_IDENTITY, issuer=GITHUB, trusted_root=staging)
            )
        ),
        "payload": refused(
            lambda: verify_legacy(
                payload.replace(b"server_image", b"server_imagf"),
                annotations,
                Keyless(identity=REAL_IDENTITY, issuer=GITHUB),
                expected_digest=REAL_DIGEST,
                expected_repository=REAL_REPO,
            )
        ),
    }
    assert got == {
        "identity": "identity-mismatch",
        "issuer": "issuer-mismatch",
        "digest": "digest-mismatch",
        "repository": "repository-mismatch",
        "root": "certificate-untrusted",
        "payload": "payload-tampered",
    }


def test_prototype_generated_legacy_layer() -> None:
    assert VECTORS is not None
    layer = json.loads((VECTORS / "generated/legacy-layer-annotations.json").read_text())
    root = TrustRoot.from_file(VECTORS / "generated/trusted_root.json")
    policy = Keyless(
        identity="release-bot@example.invalid",
        issuer="https://issuer.example.invalid",
        trusted_root=root,
    )
    verified = verify_legacy(
        (VECTORS / "generated/legacy-payload.json").read_bytes(),
        layer["annotations"],
        policy,
        expected_digest="sha256:" + "ab" * 32,
        expected_repository="registry.invalid/profiles/runc",
    )
    assert verified.identity == "release-bot@example.invalid"


def test_blob_bundle_is_not_an_image_signature() -> None:
    assert VECTORS is not None
    root = TrustRoot.from_file(VECTORS / "generated/trusted_root.json")
    policy = Keyless(
        identity="release-bot@example.invalid",
        issuer="https://issuer.example.invalid",
        trusted_root=root,
    )
    bundle = (VECTORS / "generated/artifact.txt.sigstore.json").read_bytes()
    assert (
        refused(
            lambda: verify_bundle(
                bundle, policy, expected_digest="sha256:" + "ab" * 32, expected_repository="x/y"
            )
        )
        == "policy-unsupported"
    )


def test_rekor_v2_tsa_dsse_bundle_through_sigstore() -> None:
    """Verified by sigstore-python (Rekor v2 entry, TSA time), then refused: it is provenance."""
    assert VECTORS is not None
    base = VECTORS / "sigstore-python"
    bundle = (base / "a.dsse.staging-rekor-v2.txt.sigstore.json").read_bytes()
    staging = TrustRoot.from_file(VECTORS / "trusted-roots/staging.trusted_root.json")
    identity = (
        "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
        ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
    )
    digest = "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf"

    def verify(policy: Keyless) -> object:
        return verify_bundle(bundle, policy, expected_digest=digest, expected_repository="x/a.txt")

    assert refused(
        lambda: verify(Keyless(identity=identity, issuer=GITHUB, trusted_root=staging))
    ) == ("payload-invalid")
    assert (
        refused(
            lambda: verify(Keyless(identity=identity + "x", issuer=GITHUB, trusted_root=staging))
        )
        == "identity-mismatch"
    )
    # Under the production root its staging TSA is unknown: no verified signing time at all.
    assert refused(lambda: verify(Keyless(identity=identity, issuer=GITHUB))) == "tlog-invalid"
