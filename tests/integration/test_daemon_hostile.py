"""The real daemon next to a hostile manifest: READY=1 after the first reconcile all the same,
the other profiles installed, and the file installed once it is fixed."""

from __future__ import annotations

from tests.conftest import Host, seccomp_doc
from tests.integration.daemon_support import api, running, wait_for

GOOD = seccomp_doc("good", "defaultAction: SCMP_ACT_ERRNO\nsyscalls:\n"
                           "  - {names: [read], action: SCMP_ACT_ALLOW}")
DATED = seccomp_doc("dated", "defaultAction: SCMP_ACT_ERRNO").replace(
    "metadata:\n  name: dated\n", "metadata:\n  name: dated\n  creationTimestamp: 2024-02-30\n")


def test_ready_and_serving_next_to_a_file_the_loader_cannot_read(host: Host) -> None:
    host.write("good.yaml", GOOD)
    host.write("dated.yaml", DATED)
    host.write("deep.json", "[" * 100_000 + "]" * 100_000)
    with running(host) as daemon:  # waits for READY=1
        assert daemon.notify.seen("READY", "1")
        assert host.installed("good").exists()
        status, body = api(host, "GET", "/v1/status")
        assert status == 200
        codes = sorted(e["code"] for e in body["errors"])
        assert codes == ["syntax-error", "syntax-error"]
        host.write("dated.yaml", DATED.replace("  creationTimestamp: 2024-02-30\n", ""))
        wait_for(lambda: host.installed("dated").exists(), what="the fixed file installed")
