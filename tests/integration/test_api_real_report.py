"""The API over what the real reconciler reports for the example desired state: real chains,
real merged syscalls, and install times from the real ledger."""

from __future__ import annotations

import json
import time
from pathlib import Path

from agent import __version__, app
from agent.api.client import Client
from agent.api.server import ApiServer
from agent.config import parse
from agent.daemon.state import Snapshot
from tests.integration.conftest import GROUP
from tests.support.control import MemoryControl

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "profiles.d"


def test_detail_and_install_time_of_really_reconciled_profiles(short_tmp: Path) -> None:
    config = parse(f'[agent]\nprofiles_dir = "{EXAMPLES}"\nstate_dir = "{short_tmp}/state"\n'
                   f'socket = "{short_tmp}/run/secprof.sock"\n'
                   f'[seccomp]\nroot = "{short_tmp}/seccomp"\n')
    reconciler = app.build_reconciler(config)
    before = time.time()
    first = reconciler.reconcile(app.load_desired(config))
    after = time.time()
    second = reconciler.reconcile(app.load_desired(config))  # nothing changes
    assert first.ok
    assert second.files_written == 0

    control = MemoryControl(Snapshot(version=__version__, started_at=before, ready=True,
                                     report=second, last_reconcile_at=time.time()))
    with ApiServer(config.agent.socket, GROUP, control) as server:
        client = Client(server.path)
        detail = client.get("/v1/profiles/seccomp/web-frontend")["profile"]
        listed = client.get("/v1/profiles?kind=seccomp")["profiles"]

    assert detail["state"] == "Installed"
    assert detail["step"] == "unchanged"
    assert [link["reference"] for link in detail["chain"]] == ["web-frontend", "runtime-base"]
    assert all(link["digest"].startswith("sha256:") for link in detail["chain"])
    names = {name for rule in detail["syscalls"] for name in rule["names"]}
    assert {"accept4", "brk", "clone3"} <= names  # the child's and the base's, merged
    installed = Path(detail["location"]).read_bytes()
    assert json.loads(installed)["syscalls"] == detail["syscalls"]
    # installedAt is when the bytes were written (the first run), not the latest reconcile.
    ledger = json.loads((short_tmp / "state" / "ledger.json").read_text())
    written = {e["name"]: e["installed_at"] for e in ledger["entries"]}
    for profile in listed:
        assert profile["installedAt"] == written[profile["name"]]
        assert before <= profile["installedAt"] <= after
