"""The parse cache never serves an answer that other code would not give.

The cache keeps validated profiles between runs (it is most of what makes a no-op apply fast).
Here the real CLI runs from a copy of the package; a validation rule is then made stricter in
that copy, and the next run must see the profile fail, not the cached "valid" from before.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from agent.model.parsecache import CACHE_FILE, ParseCache, code_fingerprint
from tests.conftest import Host, seccomp_doc

AGENT = Path(__file__).resolve().parents[2] / "agent"


def run_copy(pkg: Path, host: Host, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "import sys; from agent.cli.main import main; sys.exit(main())",
         *args, "--config", str(host.config_path)],
        cwd=pkg, capture_output=True, text=True, timeout=120,
    )


def test_a_stricter_rule_is_not_answered_from_the_cache(host: Host, tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    shutil.copytree(AGENT, pkg / "agent", ignore=shutil.ignore_patterns("__pycache__"))
    host.write("logger.yaml", seccomp_doc("logger", """
        defaultAction: SCMP_ACT_ERRNO
        syscalls:
          - {names: [write], action: SCMP_ACT_LOG}
    """))
    first = run_copy(pkg, host, "apply")
    assert first.returncode == 0, first.stderr
    assert (host.state_dir / CACHE_FILE).exists()

    # The copy now knows no SCMP_ACT_LOG: the file's bytes are unchanged, the code is not.
    model = pkg / "agent/model/seccomp.py"
    text = model.read_text()
    assert '    "SCMP_ACT_LOG": 6,\n' in text
    model.write_text(text.replace('    "SCMP_ACT_LOG": 6,\n', ""))

    plan = run_copy(pkg, host, "plan", "--json")
    assert plan.returncode == 1, plan.stdout + plan.stderr
    [profile] = json.loads(plan.stdout)["profiles"]
    assert profile["state"] == "Error"
    assert "spec.syscalls[0].action" in profile["message"]


def test_entries_are_keyed_by_the_code_that_wrote_them(tmp_path: Path) -> None:
    old = ParseCache(tmp_path, fingerprint="old-code")
    old.put("file-digest", [{"kind": "SeccompProfile"}])
    old.save()
    assert ParseCache(tmp_path, fingerprint="old-code").get("file-digest") is not None
    assert ParseCache(tmp_path, fingerprint="new-code").get("file-digest") is None


def test_the_fingerprint_covers_every_module(tmp_path: Path) -> None:
    pkg = tmp_path / "agent"
    shutil.copytree(AGENT, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    before = code_fingerprint.__wrapped__(str(pkg))
    assert before == code_fingerprint.__wrapped__(str(pkg))
    (pkg / "oci" / "reference.py").write_text((pkg / "oci" / "reference.py").read_text() + "#\n")
    assert code_fingerprint.__wrapped__(str(pkg)) != before
