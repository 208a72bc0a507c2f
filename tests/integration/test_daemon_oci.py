"""The daemon with oci:// bases: boot never waits on the network, and an outage keeps working."""

from __future__ import annotations

import time

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
        fh.write(f'[oci]\ninsecure_registries = ["{registry.host}"]\ntag_ttl_s = {tag_ttl_s}\n'
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


def test_cold_boot_is_ready_at_once_then_fetches(host: Host, registry: RegistryServer) -> None:
    connect(host, registry)
    with running(host) as daemon:
        # The boot reconcile uses the (empty) cache only, so READY came without the base...
        ready = daemon.notify.seen("READY", "1")[0]
        assert "1 error" in ready["STATUS"]
        # ...and the follow-up reconcile fetched it at once, not at the next resync.
        wait_for(lambda: installed(host), 10, "the oci:// base fetched after READY")
        # The status snapshot follows the file once every driver's part of the run is done.
        wait_for(lambda: "chain" in api(host, "GET", "/v1/profiles/SeccompProfile/app")[1][
            "profile"], 10, "the status of that reconcile")
        body = api(host, "GET", "/v1/profiles/SeccompProfile/app")[1]
        chain = body["profile"]["chain"]
        assert chain[1]["reference"].endswith("/profiles/base:v1")
        assert chain[1]["digest"].startswith("sha256:")


def test_boot_and_outage_with_the_registry_down(host: Host, registry: RegistryServer) -> None:
    connect(host, registry, tag_ttl_s=1)
    host.cli("apply", check=True)  # fills the disk cache
    registry.stop()
    time.sleep(1.1)  # the tag's TTL is over: the daemon must ask the registry, which is down
    host.installed("app").unlink()  # needs a real install from the cache, not the old file
    started = time.monotonic()
    daemon = DaemonProcess(host)
    try:
        daemon.ready()
        assert time.monotonic() - started < 10
        assert installed(host)
        body = api(host, "GET", "/v1/profiles/SeccompProfile/app")[1]
        assert body["profile"]["state"] in ("Installed", "Stale")
        wait_for(lambda: api(host, "GET", "/v1/profiles/SeccompProfile/app")[1]["profile"]
                 ["state"] == "Stale", 10, "marked Stale once the registry was tried")
        assert installed(host)
        message = api(host, "GET", "/v1/profiles/SeccompProfile/app")[1]["profile"]["message"]
        assert "registry" in message or "connect" in message, message
    finally:
        daemon.stop()
