"""`secprof` as an operator runs it: a real process against a tmp root."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from tests.conftest import SHARED, Host, seccomp_doc

BASE = seccomp_doc("base", """
    defaultAction: SCMP_ACT_ERRNO
    architectures: [SCMP_ARCH_X86_64]
    syscalls:
      - {names: [read, write, exit_group], action: SCMP_ACT_ALLOW}
    """)
APP = seccomp_doc("app", """
    baseProfileName: base
    defaultAction: SCMP_ACT_ERRNO
    syscalls:
      - {names: [openat, close], action: SCMP_ACT_ALLOW}
      - {names: [ptrace], action: SCMP_ACT_ERRNO, errnoRet: 1}
    """)


def no_traceback(proc: object) -> None:
    assert "Traceback" not in getattr(proc, "stderr", "")
    assert "Traceback" not in getattr(proc, "stdout", "")


def test_apply_installs_merged_files_with_mode_and_ledger(host: Host) -> None:
    host.write("base.yaml", BASE)
    host.write("app.yaml", APP)
    proc = host.cli("apply")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert str(host.installed("app")) in proc.stdout
    merged = json.loads(host.installed("app").read_text())
    assert merged == {
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            {"names": ["close", "exit_group", "openat", "read", "write"],
             "action": "SCMP_ACT_ALLOW"},
            {"names": ["ptrace"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
        ],
    }  # no architectures: the child's (absent) top-level fields win, as in SPO
    assert "note: SeccompProfile/app: base base sets architectures" in proc.stdout
    assert stat.S_IMODE(host.installed("app").stat().st_mode) == 0o644
    ledger = json.loads((host.state_dir / "ledger.json").read_text())
    assert [e["name"] for e in ledger["entries"]] == ["app", "base"]
    assert stat.S_IMODE((host.state_dir / "ledger.json").stat().st_mode) == 0o600

    again = host.cli("apply")
    assert again.returncode == 0
    assert "0 file(s) written" in again.stdout


def test_json_output(host: Host) -> None:
    host.write("base.yaml", BASE)
    doc = json.loads(host.cli("apply", "--json").stdout)
    assert doc["schema_version"] == 1
    assert doc["ok"] is True
    assert doc["profiles"][0]["name"] == "base"
    assert doc["profiles"][0]["state"] == "Installed"
    assert doc["profiles"][0]["step"] == "add"
    assert doc["filesWritten"] == 1


def test_broken_manifest_exit_1_keeps_last_good_and_others_install(host: Host) -> None:
    host.write("base.yaml", BASE)
    host.write("app.yaml", APP)
    host.cli("apply", check=True)
    good = host.installed("app").read_bytes()

    host.write("app.yaml", APP.replace("action: SCMP_ACT_ALLOW}", "action: SCMP_ACT_ALOW}"))
    host.write("new.yaml", seccomp_doc("new", "defaultAction: SCMP_ACT_LOG"))
    proc = host.cli("apply")
    assert proc.returncode == 1
    no_traceback(proc)
    assert ('profiles.d/app.yaml[0] spec.syscalls[0].action: unknown action "SCMP_ACT_ALOW" '
            "(did you mean SCMP_ACT_ALLOW?)") in proc.stdout
    assert "the last good version (sha256:" in proc.stdout
    assert host.installed("app").read_bytes() == good
    assert host.installed("new").exists()


def test_removing_the_manifest_removes_the_file(host: Host) -> None:
    host.write("base.yaml", BASE)
    host.cli("apply", check=True)
    (host.profiles / "base.yaml").unlink()
    proc = host.cli("apply", check=True)
    assert "Removed" in proc.stdout
    assert not host.installed("base").exists()


def test_plan_shows_changes_and_writes_nothing(host: Host) -> None:
    host.write("base.yaml", BASE)
    proc = host.cli("plan")
    assert proc.returncode == 0
    assert "Pending" in proc.stdout and "add" in proc.stdout
    assert "1 change(s) planned, nothing written" in proc.stdout
    assert not host.seccomp_dir.exists()
    assert not host.state_dir.exists()
    host.cli("apply", check=True)
    host.write("base.yaml", BASE.replace("exit_group", "exit"))
    doc = json.loads(host.cli("plan", "--json").stdout)
    assert [p["step"] for p in doc["profiles"]] == ["update"]


def test_resolve_shows_chain_and_merged_profile(host: Host) -> None:
    host.write("base.yaml", BASE)
    host.write("app.yaml", APP)
    proc = host.cli("resolve", "app", check=True)
    assert "0  app " in proc.stdout and "1  base " in proc.stdout
    assert '"ptrace"' in proc.stdout
    doc = json.loads(host.cli("resolve", "app", "--json").stdout)
    assert [link["reference"] for link in doc["chain"]] == ["app", "base"]
    assert doc["merged"]["syscalls"][1] == {"names": ["ptrace"], "action": "SCMP_ACT_ERRNO",
                                            "errnoRet": 1}
    missing = host.cli("resolve", "nope")
    assert missing.returncode == 1
    assert "no SeccompProfile named 'nope'" in missing.stderr


def test_resolve_reports_a_cycle(host: Host) -> None:
    host.write("a.yaml", seccomp_doc("a", "baseProfileName: b\ndefaultAction: SCMP_ACT_LOG"))
    host.write("b.yaml", seccomp_doc("b", "baseProfileName: a\ndefaultAction: SCMP_ACT_LOG"))
    proc = host.cli("resolve", "a")
    assert proc.returncode == 1
    assert "base chain a → b → a: the chain has a cycle" in proc.stderr
    no_traceback(proc)


def test_validate_files(host: Host, tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(BASE + "---\n" + APP)
    proc = host.cli("validate", str(good))
    assert proc.returncode == 0, proc.stdout
    lonely = tmp_path / "lonely.yaml"
    lonely.write_text(APP.replace("openat", "opnat"))
    proc = host.cli("validate", str(lonely))
    assert proc.returncode == 0
    assert "the chain was not checked" in proc.stdout
    assert "syscall 'opnat' is unknown to libseccomp" in proc.stdout
    bad = tmp_path / "bad.json"
    bad.write_text('{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], '
                   '"action": "SCMP_ACT_ERRNO", "errnoRet": -1}]}')
    proc = host.cli("validate", str(bad), "--json")
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    assert doc["errors"] == [{
        "code": "manifest-invalid", "message": "must not be negative, got -1",
        "file": str(bad), "index": 0, "field": "syscalls[0].errnoRet",
        "text": f"{bad}[0] syscalls[0].errnoRet: must not be negative, got -1",
    }]


@pytest.mark.parametrize(("config", "code", "message"), [
    ("[seccomp]\nmax_base_dept = 3\n", 78, "unknown key (did you mean max_base_depth?)"),
    ("not toml [", 78, "not valid TOML"),
])
def test_config_errors_exit_78(host: Host, config: str, code: int, message: str) -> None:
    host.config_path.write_text(config)
    proc = host.cli("apply")
    assert proc.returncode == code
    assert message in proc.stderr
    no_traceback(proc)


def test_usage_errors_exit_2(host: Host) -> None:
    proc = host.cli("apply", "--bogus")
    assert proc.returncode == 2
    assert "unrecognized arguments: --bogus" in proc.stderr
    no_traceback(proc)


def test_unwritable_target_is_an_error_not_a_crash(host: Host) -> None:
    (host.root / "var/lib/kubelet").mkdir(parents=True)
    (host.root / "var/lib/kubelet/seccomp").write_text("a file where a directory should be")
    host.write("base.yaml", BASE)
    proc = host.cli("apply")
    assert proc.returncode == 1
    assert "cannot create" in proc.stdout
    no_traceback(proc)


def test_version(host: Host) -> None:
    proc = host.cli("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("secprof ")


@pytest.mark.skipif(not (SHARED / "spo" / "examples").is_dir(), reason="needs ../shared")
def test_spo_examples_install_with_a_child_on_the_runc_base(host: Host) -> None:
    examples = SHARED / "spo" / "examples"
    host.write("runc.yaml", (examples / "baseprofile-runc.yaml").read_text())
    host.write("spo.yaml", (examples / "seccompprofile.yaml").read_text())
    host.write("hello.yaml", seccomp_doc("hello", """
        defaultAction: SCMP_ACT_ERRNO
        baseProfileName: runc-v1.4.2
        syscalls:
          - {action: SCMP_ACT_ALLOW, names: [arch_prctl, set_tid_address, exit_group]}
        """))
    proc = host.cli("apply")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    merged = json.loads(host.installed("hello").read_text())
    assert "architectures" not in merged  # the base's SCMP_ARCH_X86_64 is not inherited (SPO)
    assert len(merged["syscalls"]) == 1
    assert len(merged["syscalls"][0]["names"]) == 40
    assert host.installed("profile-complain-block-high-risk").exists()


def test_spo_v08_layout_installs_per_namespace_and_prints_localhost_profiles(
        host: Host) -> None:
    with host.config_path.open("a") as fh:
        fh.write('subdir = "operator"\nlayout = "namespaced"\n')
    for ns in ("team-a", "team-b"):
        host.write(f"{ns}.yaml", seccomp_doc("web", "defaultAction: SCMP_ACT_LOG").replace(
            "name: web\n", f"name: web\n  namespace: {ns}\n"))
    host.write("Chrome.json", '{"defaultAction": "SCMP_ACT_LOG"}')
    plan = host.cli("plan")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    rows = [line.split()[:5] for line in plan.stdout.splitlines()[1:4]]
    assert rows == [
        ["seccomp", "Chrome", "Pending", "add", "operator/Chrome.json"],
        ["seccomp", "team-a/web", "Pending", "add", "operator/team-a/web.json"],
        ["seccomp", "team-b/web", "Pending", "add", "operator/team-b/web.json"],
    ]
    host.cli("apply", check=True)
    seccomp_root = host.root / "var/lib/kubelet/seccomp"
    for usage in ("operator/Chrome.json", "operator/team-a/web.json", "operator/team-b/web.json"):
        assert json.loads((seccomp_root / usage).read_text()) == {
            "defaultAction": "SCMP_ACT_LOG", "syscalls": []}
    (host.profiles / "team-b.yaml").unlink()
    host.cli("apply", check=True)
    assert not (seccomp_root / "operator/team-b/web.json").exists()


def test_a_cluster_directory_with_bindings_applies_cleanly_and_says_what_it_skipped(
        host: Host) -> None:
    host.write("web.yaml", seccomp_doc("web", "defaultAction: SCMP_ACT_LOG") + """---
apiVersion: security-profiles-operator.x-k8s.io/v1alpha1
kind: ProfileBinding
metadata: {name: bind-web, namespace: apps}
spec: {profileRef: {kind: SeccompProfile, name: web}, image: nginx}
""")
    run = host.cli("apply")
    assert run.returncode == 0, run.stdout + run.stderr
    assert ("note: profiles.d/web.yaml[1]: ProfileBinding bind-web skipped: it only means "
            "something to Kubernetes" in run.stdout)
    report = json.loads(host.cli("plan", "--json").stdout)
    assert report["ok"] and len(report["notes"]) == 1
