"""What verifying oci:// bases costs: per base cold and from the cache, and the memory of a
process that verifies under a keyless policy against one under a key policy.

    .venv/bin/python bench/verify_bench.py [--count N] [--rss-runs N] [--json]

Starts a real docker-registry on a free 127.0.0.1 port and an offline fake Sigstore, pushes N
distinct artifacts per mode, signed as the mode says, and times OciSource.fetch over them:

* cold: empty cache: resolve, discover the signatures, verify, fetch manifest and layer;
* warm: the same source again within the TTL (the daemon's steady state: in-memory verdicts);
* from disk: a new source on the same cache (a restarted daemon, or one whose registry is down):
  no request at all, each signature re-verified from the material stored with its record.

The cost of verification is each mode's time minus the unsigned mode's (verify = false).
Then, per mode, a fresh ``secprof apply`` process resolves one such base cold; its peak RSS
(VmHWM) and whether it imported sigstore are reported (median of --rss-runs).
Results also go to bench/results/verify_bench.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from oci_resolve import Counter, profile  # noqa: E402 - same artifacts, same request counter

from agent.oci.artifact import Format, Platform  # noqa: E402
from agent.oci.cache import OciCache  # noqa: E402
from agent.oci.reference import Reference, parse, parse_scope  # noqa: E402
from agent.oci.registry import RegistryClient  # noqa: E402
from agent.oci.signatures.payload import intoto_statement, simple_signing_payload  # noqa: E402
from agent.oci.source import OciSource, SourceSettings  # noqa: E402
from agent.oci.transport import HttpPolicy  # noqa: E402
from agent.oci.trust import (  # noqa: E402
    Document,
    KeylessTerms,
    KeyTerms,
    Terms,
    TrustPolicy,
    TrustStore,
)
from agent.oci.verification import Verifier  # noqa: E402
from agent.publish.attach import publish_bundle, publish_legacy  # noqa: E402
from agent.publish.pack import pack  # noqa: E402
from agent.publish.sign import sign_legacy_with_key  # noqa: E402
from agent.publish.upload import Uploader  # noqa: E402
from tests.support.fakesigstore import IDENTITY, ISSUER, FakeSigstore  # noqa: E402
from tests.support.registry import available, start_registry  # noqa: E402

MODES = ("verify-false", "key-legacy", "keyless-legacy", "keyless-bundle")
PROBE = """
import json, sys
from agent.cli.main import main
code = main(['apply', '--config', sys.argv[1], '--json'])
status = dict(l.split(':', 1) for l in open('/proc/self/status') if ':' in l)
print(json.dumps({'code': code, 'sigstore': 'sigstore' in sys.modules,
                  'hwm_kib': int(status['VmHWM'].split()[0])}))
"""


class Bench:
    def __init__(self, work: Path, host: str, sigstore: FakeSigstore) -> None:
        self.work, self.host, self.sigstore = work, host, sigstore
        self.policy = HttpPolicy(plain_http=frozenset({host}))
        self.client = Uploader(RegistryClient(policy=self.policy, credentials={}))
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.root = work / "trusted_root.json"
        self.root.write_bytes(sigstore.trusted_root_json())
        self.public = work / "cosign.pub"
        self.public.write_bytes(self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))

    def terms(self, mode: str) -> Terms:
        if mode == "verify-false":
            return None
        if mode == "key-legacy":
            return KeyTerms(keys=(Document(path=self.public, data=self.public.read_bytes()),))
        return KeylessTerms(identity=IDENTITY, issuer=ISSUER, trusted_root=Document(
            path=self.root, data=self.root.read_bytes()))

    def publish(self, mode: str, count: int) -> list[str]:
        refs = []
        for i in range(count):
            ref = parse(f"oci://{self.host}/{mode}/base-{i}:v1")
            packed = pack(Format.SPO, [(Platform.host(), profile(i))], {},
                          "2026-01-01T00:00:00Z")
            digest = self.client.push(ref, packed)
            self.sign(mode, ref, digest, len(packed.manifest))
            refs.append(str(ref))
        return refs

    def sign(self, mode: str, ref: Reference, digest: str, size: int) -> None:
        if mode == "key-legacy":
            publish_legacy(self.client, ref, digest,
                           sign_legacy_with_key(self.key, digest=digest, repository=ref.name))
        elif mode == "keyless-legacy":
            payload = simple_signing_payload(docker_reference=ref.name, digest=digest)
            publish_legacy(self.client, ref, digest, self.sigstore.legacy_keyless(payload))
        elif mode == "keyless-bundle":
            bundle = self.sigstore.bundle_keyless(intoto_statement(digest=digest,
                                                                   name=ref.name))
            publish_bundle(self.client, ref, subject=digest, subject_size=size, bundle=bundle,
                           created="2026-01-01T00:00:00Z")

    def source(self, mode: str, counter: Counter) -> OciSource:
        trust = TrustStore([TrustPolicy(scope=parse_scope(f"{self.host}/{mode}"),
                                        terms=self.terms(mode))])
        cache = OciCache(self.work / "cache" / mode, max_entries=1000, max_bytes=64 << 20)
        return OciSource(
            trust=trust, cache=cache,
            verifier=Verifier(trust=trust, cache=cache),
            registry=lambda: RegistryClient(policy=self.policy, credentials={},
                                            session_factory=counter.session),
            settings=SourceSettings(), platform=Platform.host())

    def config(self, mode: str, ref: str) -> Path:
        """A host whose one profile stands on ``ref``, trusting ``mode``'s repositories."""
        root = self.work / "hosts" / mode
        (root / "profiles.d").mkdir(parents=True, exist_ok=True)
        (root / "profiles.d" / "app.yaml").write_text(
            "apiVersion: security-profiles-operator.x-k8s.io/v1\nkind: SeccompProfile\n"
            f"metadata:\n  name: app\nspec:\n  baseProfileName: {ref}\n"
            "  defaultAction: SCMP_ACT_ERRNO\n  syscalls:\n    - action: SCMP_ACT_ALLOW\n"
            "      names: [read]\n")
        entry = {"verify-false": "verify = false",
                 "key-legacy": f'public_keys = ["{self.public}"]'}.get(
            mode, f'keyless = {{ issuer = "{ISSUER}", identity = "{IDENTITY}" }}\n'
                  f'trusted_root = "{self.root}"')
        config = root / "config.toml"
        config.write_text(
            f'[agent]\nprofiles_dir = "profiles.d"\nstate_dir = "state"\ncache_dir = "cache"\n'
            f'[seccomp]\nroot = "seccomp"\n[oci]\ninsecure_registries = ["{self.host}"]\n'
            f'[[trust]]\nscope = "{self.host}/{mode}"\n{entry}\n')
        return config


def timed(source: OciSource, refs: list[str], counter: Counter) -> tuple[float, float]:
    """(ms per base, HTTP requests per base)."""
    before, started = counter.requests, time.perf_counter()
    for ref in refs:
        link = source.fetch(ref).link
        assert not link.stale, link
    elapsed = time.perf_counter() - started
    return elapsed * 1000 / len(refs), (counter.requests - before) / len(refs)


def rss(bench: Bench, mode: str, refs: list[str], runs: int) -> dict[str, Any]:
    samples, imported = [], set()
    for run in range(runs):
        config = bench.config(mode, refs[run % len(refs)])
        for leftover in ("cache", "state", "seccomp"):
            subprocess.run(["rm", "-rf", str(config.parent / leftover)], check=True)
        out = subprocess.run([sys.executable, "-c", PROBE, str(config)], capture_output=True,
                             text=True, timeout=120, check=True, cwd=REPO)
        doc = json.loads(out.stdout.strip().splitlines()[-1])
        assert doc["code"] == 0, out.stdout
        samples.append(doc["hwm_kib"] / 1024)
        imported.add(doc["sigstore"])
    return {"peak_rss_mib": round(statistics.median(samples), 1),
            "imports_sigstore": imported == {True}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=50, help="bases per mode (default 50)")
    parser.add_argument("--rss-runs", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not available():
        sys.exit("docker-registry is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        registry = start_registry(work / "registry")
        try:
            bench = Bench(work, registry.host, FakeSigstore(name="bench"))
            results: dict[str, Any] = {"count": args.count, "modes": {}}
            for mode in MODES:
                refs = bench.publish(mode, args.count)
                counter = Counter()
                first = bench.source(mode, counter)
                cold, cold_requests = timed(first, refs, counter)
                warm, _ = timed(first, refs, counter)
                disk, disk_requests = timed(bench.source(mode, counter), refs, counter)
                results["modes"][mode] = {
                    "cold_ms": round(cold, 3), "cold_requests": cold_requests,
                    "warm_ms": round(warm, 4), "from_disk_ms": round(disk, 3),
                    "from_disk_requests": disk_requests,
                    **rss(bench, mode, refs, args.rss_runs)}
            base = results["modes"]["verify-false"]
            for values in results["modes"].values():
                values["verify_cold_ms"] = round(values["cold_ms"] - base["cold_ms"], 3)
                values["verify_from_disk_ms"] = round(
                    values["from_disk_ms"] - base["from_disk_ms"], 3)
        finally:
            registry.stop()
    out = REPO / "bench" / "results" / "verify_bench.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    if args.json:
        print(json.dumps(results, indent=2))
        return
    _table(results, print)


def _table(results: dict[str, Any], say: Callable[[str], None]) -> None:
    say(f"{results['count']} bases per mode; ms per base (verification = mode - verify-false)")
    say(f"{'mode':<16}{'cold':>8}{'req':>6}{'verify':>8}{'warm':>8}{'disk':>8}"
        f"{'verify':>8}{'peak RSS':>10}  sigstore")
    for mode, v in results["modes"].items():
        say(f"{mode:<16}{v['cold_ms']:>8.2f}{v['cold_requests']:>6.1f}"
            f"{v['verify_cold_ms']:>8.2f}{v['warm_ms']:>8.3f}{v['from_disk_ms']:>8.2f}"
            f"{v['verify_from_disk_ms']:>8.2f}{v['peak_rss_mib']:>8.1f} MiB  "
            f"{'imported' if v['imports_sigstore'] else 'not imported'}")


if __name__ == "__main__":
    main()
