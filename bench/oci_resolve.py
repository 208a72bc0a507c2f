"""Resolve 100 distinct oci:// bases cold (local registry) and warm (cache), in one run.

    .venv/bin/python bench/oci_resolve.py [--count N] [--json]

Starts a real docker-registry on a free 127.0.0.1 port (tests/support/registry.py), pushes N
distinct SPO artifacts, then times OciSource.fetch over all N references three times:

* cold: empty cache; every base is resolved, its manifest and layer fetched and checked;
* warm: the same source again, within the TTL (the daemon's steady state);
* warm from disk: a new source on the same cache directory (a restarted daemon).

HTTP requests are counted at the seam, with a response hook on every session the registry
client makes. Targets: 0 requests per warm resolve within the TTL; warm >= 50x faster than cold.
Results also go to bench/results/oci_resolve.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agent.oci.artifact import Format, Platform  # noqa: E402
from agent.oci.cache import OciCache  # noqa: E402
from agent.oci.reference import parse, parse_scope  # noqa: E402
from agent.oci.registry import RegistryClient  # noqa: E402
from agent.oci.source import OciSource, SourceSettings  # noqa: E402
from agent.oci.transport import HttpPolicy  # noqa: E402
from agent.oci.trust import TrustPolicy, TrustStore  # noqa: E402
from agent.oci.verification import Verifier  # noqa: E402
from agent.publish.pack import pack  # noqa: E402
from agent.publish.upload import Uploader  # noqa: E402
from tests.support.registry import available, start_registry  # noqa: E402


def profile(i: int) -> bytes:
    names = "".join(f"        - bench_call_{i}_{j}\n" for j in range(20))
    return (
        "apiVersion: security-profiles-operator.x-k8s.io/v1\nkind: SeccompProfile\n"
        f"metadata:\n  name: base-{i}\nspec:\n  defaultAction: SCMP_ACT_ERRNO\n"
        f"  syscalls:\n    - action: SCMP_ACT_ALLOW\n      names:\n{names}"
    ).encode()


class Counter:
    def __init__(self) -> None:
        self.requests = 0

    def session(self) -> requests.Session:
        session = requests.Session()

        def count(response: requests.Response, *args: Any, **kwargs: Any) -> None:
            self.requests += 1

        session.hooks["response"].append(count)
        return session


def run(count: int, work: Path) -> dict[str, Any]:
    registry = start_registry(work / "registry")
    try:
        policy = HttpPolicy(plain_http=frozenset({registry.host}))
        pusher = Uploader(RegistryClient(policy=policy, credentials={}))
        refs = []
        for i in range(count):
            ref = parse(f"oci://{registry.host}/profiles/base-{i}:v1")
            pusher.push(ref, pack(Format.SPO, [(Platform.host(), profile(i))], {},
                                  "2026-01-01T00:00:00Z"))
            refs.append(str(ref))
        counter = Counter()
        trust = TrustStore([TrustPolicy(scope=parse_scope(f"{registry.host}/profiles"),
                                        terms=None)])

        def source() -> OciSource:
            cache = OciCache(work / "cache", max_entries=1000, max_bytes=64 << 20)
            return OciSource(
                trust=trust,
                cache=cache,
                verifier=Verifier(trust=trust, cache=cache),
                registry=lambda: RegistryClient(policy=policy, credentials={},
                                                session_factory=counter.session),
                settings=SourceSettings(), platform=Platform.host(),
            )

        def timed(src: OciSource) -> tuple[float, int]:
            before = counter.requests
            started = time.perf_counter()
            for ref in refs:
                src.fetch(ref)
            return time.perf_counter() - started, counter.requests - before

        first = source()
        cold_s, cold_requests = timed(first)
        warm_s, warm_requests = timed(first)
        disk_s, disk_requests = timed(source())
    finally:
        registry.stop()
    return {
        "count": count,
        "cold": {"seconds": cold_s, "per_resolve_ms": 1000 * cold_s / count,
                 "requests_per_resolve": cold_requests / count},
        "warm": {"seconds": warm_s, "per_resolve_ms": 1000 * warm_s / count,
                 "requests_per_resolve": warm_requests / count,
                 "speedup": cold_s / warm_s},
        "warm_from_disk": {"seconds": disk_s, "per_resolve_ms": 1000 * disk_s / count,
                           "requests_per_resolve": disk_requests / count,
                           "speedup": cold_s / disk_s},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not available():
        print("docker-registry is not installed", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="secprof-bench-") as tmp:
        result = run(args.count, Path(tmp))
    results = REPO / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / "oci_resolve.json").write_text(json.dumps(result, indent=2) + "\n")
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{'':16} {'total s':>9} {'ms/resolve':>11} {'requests/resolve':>17} "
              f"{'speedup':>8}")
        for name in ("cold", "warm", "warm_from_disk"):
            row = result[name]
            speedup = f"{row['speedup']:.0f}x" if "speedup" in row else "-"
            print(f"{name:16} {row['seconds']:9.3f} {row['per_resolve_ms']:11.3f} "
                  f"{row['requests_per_resolve']:17.2f} {speedup:>8}")
    warm = result["warm"]
    met = warm["requests_per_resolve"] == 0 and warm["speedup"] >= 50
    print(f"targets (0 requests within the TTL, warm >= 50x cold): "
          f"{'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
