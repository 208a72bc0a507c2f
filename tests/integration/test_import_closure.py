"""What the node runs never loads the publishing side (issue 8, deliverable 7).

``secprof apply`` and ``secprof daemon`` run in a fresh interpreter, through a real ``oci://``
base fetched from the real registry (so the registry, signature and cache code really ran);
then the interpreter's ``sys.modules`` is read: ``agent.publish`` (packing, signing, keys,
transparency-log upload, registry writes) must not be in it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Host, seccomp_doc
from tests.support.registry import RegistryServer

PROBE = textwrap.dedent("""
    import json, os, signal, sys, threading, time
    from pathlib import Path
    from agent.cli.main import main

    config, target, command, out = sys.argv[1:5]

    def loaded():
        return sorted(m for m in sys.modules if m.startswith(("agent.publish", "agent.oci.")))

    def installed():
        return Path(target).exists() and '"futex"' in Path(target).read_text()

    def watch():
        deadline = time.monotonic() + 30
        while not installed() and time.monotonic() < deadline:
            time.sleep(0.05)
        Path(out).write_text(json.dumps({"installed": installed(), "modules": loaded()}))
        os.kill(os.getpid(), signal.SIGTERM)

    if command == "daemon":
        threading.Thread(target=watch, daemon=True).start()
    code = main([command, "--config", config])
    if command == "apply":
        Path(out).write_text(json.dumps({"installed": installed(), "modules": loaded()}))
""")


def probe(host: Host, command: str, tmp_path: Path) -> dict[str, Any]:
    out = tmp_path / f"{command}.json"
    subprocess.run([sys.executable, "-c", PROBE, str(host.config_path),
                    str(host.installed("app")), command, str(out)],
                   check=False, timeout=60, capture_output=True)
    result: dict[str, Any] = json.loads(out.read_text())
    return result


@pytest.mark.parametrize("command", ["apply", "daemon"])
def test_apply_and_the_daemon_never_import_the_publishing_side(
        host: Host, registry: RegistryServer, tmp_path: Path, command: str) -> None:
    with host.config_path.open("a") as fh:
        fh.write(f'[oci]\ninsecure_registries = ["{registry.host}"]\n'
                 f'[[trust]]\nscope = "{registry.host}/profiles"\nverify = false\n')
    ref = f"oci://{registry.host}/profiles/base:v1"
    base = tmp_path / "base.yaml"
    base.write_text(seccomp_doc("base", """
        defaultAction: SCMP_ACT_ERRNO
        syscalls:
          - {names: [futex], action: SCMP_ACT_ALLOW}
        """))
    host.cli("push", "--sign=none", "-f", str(base), ref, check=True)
    host.write("app.yaml", seccomp_doc("app", f"""
        baseProfileName: {ref}
        defaultAction: SCMP_ACT_ERRNO
        """))

    result = probe(host, command, tmp_path)
    assert result["installed"], result
    assert "agent.oci.registry" in result["modules"]  # the registry path really ran
    assert "agent.oci.source" in result["modules"]
    assert [m for m in result["modules"] if m.startswith("agent.publish")] == []


def test_cache_commands_load_neither_publishing_nor_the_http_stack(host: Host) -> None:
    """``secprof cache list`` talks to no registry: no oras-py, no requests, no agent.publish."""
    probe = ("import sys\nfrom agent.cli.main import main\n"
             f"main(['cache', 'list', '--config', {str(host.config_path)!r}])\n"
             "print('LOADED=' + ','.join(sorted(m for m in sys.modules if m.split('.')[0] in "
             "('oras', 'requests') or m.startswith('agent.publish'))))\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.splitlines()[-1] == "LOADED="


# The modules only AppArmor and SELinux profiles need: their models and renderers.
KIND_MODULES = ("agent.model.apparmor", "agent.apparmor.render", "agent.model.selinux",
                "agent.selinux.render")


def kind_modules_after_apply(host: Host) -> list[str]:
    probe = ("import sys\nfrom agent.cli.main import main\n"
             f"main(['apply', '--config', {str(host.config_path)!r}])\n"
             f"print('LOADED=' + ','.join(m for m in {KIND_MODULES!r} if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, timeout=60)
    return [m for m in out.stdout.splitlines()[-1].removeprefix("LOADED=").split(",") if m]


def test_an_apply_of_seccomp_profiles_only_never_imports_the_other_kinds(host: Host) -> None:
    """Twice: the first run parses the file, the second reads it from the parse cache."""
    host.write("app.yaml", seccomp_doc("app", "defaultAction: SCMP_ACT_ERRNO\n"))
    assert kind_modules_after_apply(host) == []
    assert kind_modules_after_apply(host) == []
    assert host.installed("app").exists()


def test_an_apply_with_apparmor_and_selinux_profiles_imports_their_modules(host: Host) -> None:
    """The counter-check: the same probe sees the modules when there is something to build.
    (The SELinux backend is unavailable here, with no policy store under the test's root, so
    its profile is parsed but never rendered.)"""
    host.write("app.yaml", seccomp_doc("app", "defaultAction: SCMP_ACT_ERRNO\n"))
    api = "apiVersion: security-profiles-operator.x-k8s.io/v1alpha1"
    host.write("aa.yaml", f"{api}\nkind: AppArmorProfile\nmetadata:\n  name: aa\n"
               "spec:\n  abstract:\n    network:\n      allowRaw: false\n")
    host.write("se.yaml", f"{api}\nkind: SelinuxProfile\nmetadata:\n  name: se\n"
               "spec:\n  inherit: [{kind: System, name: container}]\n  allow: {}\n")
    for _ in range(2):  # parsed, then from the parse cache
        assert kind_modules_after_apply(host) == [
            "agent.model.apparmor", "agent.apparmor.render", "agent.model.selinux"]
