"""The daemon with oci:// bases: boot never waits on the network, and an outage keeps working."""

from __future__ import annotations

from typing import Any

from tests.conftest import Host, seccomp_doc
from tests.integration.daemon_support import DaemonProcess, api, running, wait_for
from tests.support.registry import RegistryServer

BASE = seccomp_doc("company-base", """
    defaultAction: SCMP_ACT_ERRNO
    syscalls:
      - {names: [read, write, futex], action: SCMP_ACT_ALLOW}
    """)


def connect(host: Host, registry: RegistryServer, *, tag_ttl_s: int = 86400) -> str:
    with host.config_path.open("a") as fh:
        # retries = 0: a registry that is down is told at once (retries: test_registry_http.py)
        fh.write(f'[oci]\ninsecure_registries = ["{registry.host}"]\ntag_ttl_s = {tag_ttl_s}\n'
                 'retries = 0\n'
                 f'[[trust]]\nscope = "{registry.host}/profiles"\nverify = false\n')
    ref = f"oci://{registry.host}/profiles/base:v1"
    base_file = host.root / "base.yaml"
    base_file.write_text(BASE)
    host.cli("push", "--sign=none", "-f", str(base_file), ref, check=True)
    host.write("app.yaml", seccomp_doc("app", f"""
        baseProfileName: {ref}
        defaultAction: SCMP_ACT_ERRNO
        syscalls:
          - {{names: [openat], action: SCMP_ACT_ALLOW}}
        """))
    return ref


def installed(host: Host) -> bool:
    path = host.installed("app")
    return path.exists() and '"futex"' in path.read_text()


def profile(host: Host) -> dict[str, Any]:
    return api(host, "GET", "/v1/profiles/SeccompProfile/app")[1]["profile"]


def test_cold_boot_is_ready_at_once_then_fetches(host: Host, registry: RegistryServer) -> None:
    connect(host, registry)
    with running(host) as daemon:
        # The boot reconcile uses the (empty) cache only, so READY came without the base...
        ready = daemon.notify.seen("READY", "1")[0]
        assert "1 error" in ready["STATUS"]
        # ...and the follow-up reconcile fetched it at once, not at the next resync.
        wait_for(lambda: installed(host), 10, "the oci:// base fetched after READY")
        # The file is written during the reconcile, the status swapped in after it.
        wait_for(lambda: profile(host)["state"] == "Installed", 10, "the status updated")
        chain = profile(host)["chain"]
        assert chain[1]["reference"].endswith("/profiles/base:v1")
        assert chain[1]["digest"].startswith("sha256:")


def test_boot_and_outage_with_the_registry_down(host: Host, registry: RegistryServer) -> None:
    # A TTL of 0: the tag is never fresh, so the daemon must ask the registry, which is down.
    connect(host, registry, tag_ttl_s=0)
    host.cli("apply", check=True)  # fills the disk cache
    registry.stop()
    host.installed("app").unlink()  # needs a real install from the cache, not the old file
    daemon = DaemonProcess(host)
    try:
        daemon.ready()
        # READY came from the boot reconcile, which takes bases from the disk cache only.
        assert "1 stale" in daemon.notify.seen("READY", "1")[0]["STATUS"]
        assert installed(host)
        # The follow-up reconcile asks the registry at once, and says it cannot be reached.
        wait_for(lambda: "cannot reach" in profile(host)["message"], 10, "the registry tried")
        assert profile(host)["state"] == "Stale"
        assert installed(host)
    finally:
        daemon.stop()
