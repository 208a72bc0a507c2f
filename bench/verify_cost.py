"""What signature verification costs: per signature, per import, in memory.

    .venv/bin/python bench/verify_cost.py [--rounds 300] [--imports 7]

Per-signature figures are warm (verifier objects and trusted roots already built), median of
``--rounds`` calls, over material from the offline fake Sigstore (and the real public-good legacy
signature when shared/ is present). Import figures are whole ``python -c`` processes, median of
``--imports`` runs, with the child's VmRSS at exit; "importtime" sums ``-X importtime``'s
cumulative time of the top-level imports.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for tests.support (the fake Sigstore)

DIGEST = "sha256:" + "ab" * 32
REPO = "registry.invalid/profiles/runc"

CHILD_PROBE = """
import sys, time
{body}
rss = next(l for l in open('/proc/self/status') if l.startswith('VmRSS')).split()[1]
print(int(rss))
"""
KEY_BODY = """
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives import serialization
from agent.oci.signatures import PublicKeys, verify_legacy
from agent.publish.sign import sign_legacy_with_key
k = ec.generate_private_key(ec.SECP256R1())
pem = k.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
d = "sha256:" + "ab" * 32
layer = sign_legacy_with_key(k, digest=d, repository="r.invalid/x")
verify_legacy(layer.payload, layer.annotations, PublicKeys(keys=(pem,)), expected_digest=d,
              expected_repository="r.invalid/x")
"""
IMPORTS = {
    "bare interpreter": "pass",
    "key-only path (import + one key verify)": KEY_BODY,
    "import agent.oci.signatures": "import agent.oci.signatures",
    "keyless path (+ sigstore verifier import)": "import agent.oci.signatures._sigstore",
}


def median_ms(call: Callable[[], object], rounds: int) -> float:
    call()  # warm: caches, lazily built verifiers
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def per_signature(rounds: int) -> dict[str, float]:
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415

    from agent.oci.signatures import (  # noqa: PLC0415
        Keyless,
        LegacyLayer,
        Policy,
        PublicKeys,
        verify_bundle,
        verify_legacy,
    )
    from agent.oci.signatures.payload import intoto_statement, simple_signing_payload  # noqa: PLC0415
    from agent.publish.sign import sign_bundle_with_key, sign_legacy_with_key  # noqa: PLC0415
    from tests.support.fakesigstore import IDENTITY, ISSUER, FakeSigstore  # noqa: PLC0415
    from tests.support.vectors import VECTORS  # noqa: PLC0415

    fake = FakeSigstore()
    keyless = Keyless(identity=IDENTITY, issuer=ISSUER, trusted_root=fake.trusted_root)
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    keys = PublicKeys(keys=(pem,))
    keys_tlog = PublicKeys(keys=(pem,), require_tlog=True, trusted_root=fake.trusted_root)
    legacy_kl = fake.legacy_keyless(simple_signing_payload(docker_reference=REPO, digest=DIGEST))
    legacy_key = sign_legacy_with_key(key, digest=DIGEST, repository=REPO)
    legacy_key_log = fake.log_key_signature(legacy_key, key)
    bundle_kl = fake.bundle_keyless(intoto_statement(digest=DIGEST))
    bundle_key = sign_bundle_with_key(key, digest=DIGEST, repository=REPO)
    bundle_key_log = fake.bundle_with_key(intoto_statement(digest=DIGEST), key)

    def legacy(layer: LegacyLayer, policy: Policy) -> Callable[[], object]:
        return lambda: verify_legacy(
            layer.payload,
            layer.annotations,
            policy,
            expected_digest=DIGEST,
            expected_repository=REPO,
        )

    def bundle(data: bytes, policy: Policy) -> Callable[[], object]:
        return lambda: verify_bundle(data, policy, expected_digest=DIGEST, expected_repository=REPO)

    cases = {
        "legacy keyless (own SET/SCT/chain checks)": legacy(legacy_kl, keyless),
        "legacy key, no tlog": legacy(legacy_key, keys),
        "legacy key + SET": legacy(legacy_key_log, keys_tlog),
        "bundle keyless (sigstore-python verify_dsse)": bundle(bundle_kl, keyless),
        "bundle key, no tlog": bundle(bundle_key, keys),
        "bundle key + SET": bundle(bundle_key_log, keys_tlog),
    }
    if VECTORS is not None:
        manifest = json.loads((VECTORS / "real-cosign-legacy/sig-manifest.json").read_text())
        real_payload = (VECTORS / "real-cosign-legacy/payload.json").read_bytes()
        real_policy = Keyless(
            identity="https://github.com/salrashid123/go-bazel-github-workflow/.github/workflows/"
            "release.yaml@refs/tags/v0.0.30",
            issuer="https://token.actions.githubusercontent.com",
        )
        annotations = manifest["layers"][0]["annotations"]
        cases["legacy keyless, real public-good signature"] = lambda: verify_legacy(
            real_payload,
            annotations,
            real_policy,
            expected_digest="sha256:c05263d2ff654c3a94243662440913f045075d59c436e2c69e9145ec2b87a321",
            expected_repository="index.docker.io/salrashid123/server_image",
        )
    return {name: median_ms(call, rounds) for name, call in cases.items()}


def import_cost(runs: int) -> dict[str, tuple[float, float, float]]:
    out = {}
    for name, body in IMPORTS.items():
        walls, rss = [], []
        for _ in range(runs):
            start = time.perf_counter()
            child = subprocess.run(
                [sys.executable, "-c", CHILD_PROBE.format(body=body)],
                capture_output=True,
                text=True,
                check=True,
                cwd=ROOT,
            )
            walls.append((time.perf_counter() - start) * 1000)
            rss.append(int(child.stdout.split()[-1]) / 1024)
        out[name] = (statistics.median(walls), _importtime(body), statistics.median(rss))
    bare = out["bare interpreter"][1]
    return {name: (wall, itime - bare, mib) for name, (wall, itime, mib) in out.items()}


def _importtime(body: str) -> float:
    """Milliseconds of top-level imports (cumulative), as ``-X importtime`` reports them."""
    trace = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", body],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stderr
    total = 0
    for line in trace.splitlines():
        fields = line.split("|")
        if len(fields) == 3 and fields[2].startswith(" ") and not fields[2].startswith("  "):
            cumulative = fields[1].strip()
            total += int(cumulative) if cumulative.isdigit() else 0
    return total / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--imports", type=int, default=7)
    args = parser.parse_args()
    print(f"per signature, warm, median of {args.rounds} (ms)")
    for name, ms in per_signature(args.rounds).items():
        print(f"  {ms:8.3f}  {name}")
    with open("/proc/self/status") as status:
        rss = next(line for line in status if line.startswith("VmRSS"))
    print(f"  benchmark process after all of it: {int(rss.split()[1]) / 1024:.1f} MiB RSS")
    print(
        f"\nimports, median of {args.imports} processes: wall ms | importtime ms "
        "(beyond the bare interpreter) | RSS MiB"
    )
    for name, (wall, itime, mib) in import_cost(args.imports).items():
        print(f"  {wall:7.1f} | {itime:7.1f} | {mib:6.1f}  {name}")


if __name__ == "__main__":
    main()
