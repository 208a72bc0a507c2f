"""The AppArmor backend against the real ``apparmor_parser`` (3.0.8 on Debian 12).

This kernel has no AppArmor, so compile-only runs the real parser with ``-Q -K``, and the load
and remove paths run the real parser against a fake securityfs given with ``--subdomainfs``
(research/host-backends.md §1); the kernel's bookkeeping (``profiles``) is done by the wrapper
in :mod:`tests.support.apparmor_kernel`. ``/proc`` is a staged tree of ``<pid>/attr/current``.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from agent.apparmor.render import render_abstract
from agent.backends.apparmor import AppArmorBackend, AppArmorSettings, Mode
from agent.backends.apparmor_parser import Source
from agent.backends.base import Availability, Batch, Install
from agent.backends.runner import SubprocessRunner
from agent.codes import Code
from agent.fsutil import sha256_hex
from agent.model.apparmor import Abstract, Filesystem
from agent.model.apparmor import Mode as ProfileMode
from agent.model.profile import Kind, ProfileKey
from tests.support.apparmor_kernel import FEATURES, make_parser, make_securityfs
from tests.support.counting import CountingRunner

pytestmark = pytest.mark.skipif(shutil.which("apparmor_parser") is None,
                                reason="apparmor_parser is not installed")


def key(name: str) -> ProfileKey:
    return ProfileKey(Kind.APPARMOR, name)


def abstract(name: str, *, mode: ProfileMode = ProfileMode.ENFORCE,
             paths: tuple[str, ...] = ("/etc/hostname",)) -> Install:
    content = render_abstract(name, mode, Abstract(
        filesystem=Filesystem(read_only_paths=paths))).content
    return Install(key=key(name), content=content, digest=sha256_hex(content))


def raw(name: str, text: str) -> Install:
    return Install(key=key(name), content=text.encode(), digest=sha256_hex(text.encode()))


class Rig:
    """A backend whose every path is under ``root``, on a counting real runner."""

    def __init__(self, root: Path, *, mode: Mode, loaded: dict[str, str] | None = None) -> None:
        self.root = root
        self.runner = CountingRunner(SubprocessRunner())
        self.proc = root / "proc"
        self.proc.mkdir(parents=True)
        self.fs = make_securityfs(root, loaded=loaded)
        self.settings = AppArmorSettings(
            mode=mode, profiles_dir=root / "etc/apparmor.d", securityfs=self.fs,
            kernel_features=FEATURES if FEATURES.exists() else None,
            state_dir=root / "state", cache_dir=root / "cache", proc_root=self.proc,
            enabled_file=root / "sys/module/apparmor/parameters/enabled",
            parser=str(make_parser(root)) if mode is Mode.LOAD else "apparmor_parser",
        )
        self.backend = AppArmorBackend(self.settings, self.runner)

    def apply(self, *installs: Install, removals: tuple[ProfileKey, ...] = ()) -> dict[str, str]:
        """name → error code ("" when it worked)."""
        results = self.backend.apply(Batch(installs=installs, removals=removals))
        return {r.key.name: r.error.code if r.error else "" for r in results}

    def loaded(self) -> dict[str, str]:
        lines = (self.fs / "profiles").read_text().splitlines()
        return {n: m.rstrip(")") for n, _, m in (ln.rpartition(" (") for ln in lines)}

    def file(self, name: str) -> Path:
        return self.settings.profiles_dir / f"secprof.{name}"


GOOD_RAW = "#include <tunables/global>\nprofile {name} {{\n  #include <abstractions/base>\n" \
    "  file,\n  deny /** w,\n}}\n"


# --- compile-only ---------------------------------------------------------------------------

def test_auto_is_compile_only_without_apparmor_in_the_kernel(tmp_path: Path) -> None:
    rig = Rig(tmp_path, mode=Mode.AUTO)
    probe = rig.backend.probe()
    assert probe.availability is Availability.COMPILE_ONLY
    assert "the kernel has no AppArmor" in probe.reason and "not loaded" in probe.reason
    assert rig.runner.calls == []  # probing runs nothing


@pytest.mark.skipif(Path("/sys/module/apparmor/parameters/enabled").exists(),
                    reason="this host's kernel has AppArmor")
def test_auto_reads_the_real_kernel_here() -> None:
    """The defaults, probed for real (reading only): this kernel has no AppArmor."""
    probe = AppArmorBackend(AppArmorSettings(), SubprocessRunner()).probe()
    assert probe.availability is Availability.COMPILE_ONLY
    assert "/sys/module/apparmor/parameters/enabled is missing" in probe.reason


def test_compile_only_writes_files_for_the_next_boot_in_one_call(tmp_path: Path) -> None:
    rig = Rig(tmp_path, mode=Mode.COMPILE_ONLY)
    installs = [abstract(f"web-{i}") for i in range(5)]
    assert rig.apply(*installs) == {f"web-{i}": "" for i in range(5)}
    assert len(rig.runner.calls) == 1 and "-Q" in rig.runner.calls[0]  # no -N: rendered shape
    for install in installs:
        assert rig.file(install.key.name).read_bytes() == install.content
    assert rig.backend.actual([i.key for i in installs]) == {i.key: i.digest for i in installs}
    assert len(rig.runner.calls) == 1  # drift check reads files, runs nothing


def test_raw_policy_names_are_checked_with_dash_n(tmp_path: Path) -> None:
    rig = Rig(tmp_path, mode=Mode.COMPILE_ONLY)
    result = rig.apply(
        raw("good", GOOD_RAW.format(name="good")),
        raw("renamed", GOOD_RAW.format(name="something-else")),
        raw("two", GOOD_RAW.format(name="two") + "profile docker-default {\n}\n"),
    )
    assert result == {"good": "", "renamed": "profile-name-mismatch",
                      "two": "profile-name-mismatch"}
    assert rig.file("good").exists() and not rig.file("renamed").exists()
    assert not rig.file("two").exists()
    assert not list((tmp_path / "state/staging").iterdir())
    results = rig.backend.apply(Batch(installs=(raw("renamed", GOOD_RAW.format(name="x")),)))
    assert "declares x" in results[0].error.message  # type: ignore[union-attr]


def test_a_syntax_error_is_found_and_mapped_to_the_manifest(tmp_path: Path) -> None:
    """One bad profile among six: the others are installed; the message names the field."""
    rig = Rig(tmp_path, mode=Mode.COMPILE_ONLY)
    good = [abstract(f"ok-{i}") for i in range(5)]
    bad_text = GOOD_RAW.format(name="bad").replace("  file,\n", "  file\n  capability chown,\n")
    bad = raw("bad", bad_text)
    rig.backend.sources = {bad.digest: Source(origin="p.yaml[2]", fields={},
                                              raw_field="spec.policy")}
    results = {r.key.name: r for r in rig.backend.apply(Batch(installs=(*good, bad)))}
    assert all(results[f"ok-{i}"].ok for i in range(5))
    error = results["bad"].error
    assert error is not None and error.code == "policy-invalid"
    assert error.message.startswith("p.yaml[2] spec.policy line 5: syntax error")
    assert not rig.file("bad").exists()


def test_abstract_errors_name_the_abstract_field(tmp_path: Path) -> None:
    """SPO accepts ``DAC_OVERRIDE`` and renders it as written; the parser refuses it."""
    rig = Rig(tmp_path, mode=Mode.COMPILE_ONLY)
    rendered = render_abstract("caps", ProfileMode.ENFORCE, Abstract(
        capabilities=("chown", "DAC_OVERRIDE")))
    install = Install(key=key("caps"), content=rendered.content, digest=rendered.digest)
    rig.backend.sources = {rendered.digest: Source(origin="c.yaml[0]", fields=rendered.fields)}
    (result,) = rig.backend.apply(Batch(installs=(install,)))
    assert result.error is not None
    assert result.error.message.startswith(
        "c.yaml[0] spec.abstract.capability.allowedCapabilities[1] (line ")
    assert "Invalid capability DAC_OVERRIDE" in result.error.message


def test_a_bad_update_keeps_the_last_good_file(tmp_path: Path) -> None:
    rig = Rig(tmp_path, mode=Mode.COMPILE_ONLY)
    first = raw("keep", GOOD_RAW.format(name="keep"))
    assert rig.apply(first) == {"keep": ""}
    assert rig.apply(raw("keep", "profile keep {\n  bogus\n}\n")) == {"keep": "policy-invalid"}
    assert rig.file("keep").read_bytes() == first.content


def test_an_error_in_an_included_file_names_that_file(tmp_path: Path) -> None:
    """Eight good profiles and one whose include is bad, in one call: the parser reports the
    included file and its line; the eight are installed."""
    rig = Rig(tmp_path, mode=Mode.COMPILE_ONLY)
    included = tmp_path / "bad-abstraction"
    included.write_text("  capability bogus_cap,\n")
    installs = [abstract(f"p{i}") for i in range(8)]
    bad = raw("inc", GOOD_RAW.format(name="inc").replace(
        "#include <abstractions/base>", f'#include "{included}"'))
    results = {r.key.name: r for r in rig.backend.apply(
        Batch(installs=(*installs[:4], bad, *installs[4:])))}
    error = results["inc"].error
    assert error is not None and error.code == "policy-invalid"
    assert error.message == (f"{included} line 1 (included): Invalid capability bogus_cap.")
    assert sum(r.ok for r in results.values()) == 8
    # -N reads includes too: the batch -N fails, the raw file alone fails, the 8 compile once
    assert [c[1] for c in rig.runner.calls] == ["-N", "-N", "-Q"]


# --- load (fake securityfs) -----------------------------------------------------------------

def test_load_replaces_in_one_call_and_the_kernel_lists_each_profile(tmp_path: Path) -> None:
    rig = Rig(tmp_path, mode=Mode.LOAD)
    assert rig.backend.probe().availability is Availability.INSTALLED
    installs = [abstract("web"), abstract("db", mode=ProfileMode.COMPLAIN)]
    assert rig.apply(*installs) == {"web": "", "db": ""}
    assert [c[1] for c in rig.runner.calls] == ["--replace"]
    assert rig.loaded() == {"web": "enforce", "db": "complain"}
    assert (rig.fs / ".replace").stat().st_size > 0  # a compiled blob reached "the kernel"
    assert (tmp_path / "state/owned/secprof.web").exists()
    keys = [i.key for i in installs]
    assert rig.backend.actual(keys) == {i.key: i.digest for i in installs}


def test_drift_is_seen_without_running_the_parser(tmp_path: Path) -> None:
    rig = Rig(tmp_path, mode=Mode.LOAD)
    web, db, api = abstract("web"), abstract("db"), abstract("api")
    rig.apply(web, db, api)
    calls = len(rig.runner.calls)
    (rig.fs / "profiles").write_text("db (enforce)\napi (complain)\n")  # web unloaded, api mode
    rig.file("db").write_text("edited by someone\n")
    actual = rig.backend.actual([web.key, db.key, api.key])
    assert actual == {web.key: None, db.key: sha256_hex(b"edited by someone\n"), api.key: None}
    assert len(rig.runner.calls) == calls
    assert rig.apply(web, db, api) == {"web": "", "db": "", "api": ""}  # the repair
    assert rig.loaded() == {"web": "enforce", "db": "enforce", "api": "enforce"}


def test_a_profile_secprof_does_not_own_is_never_replaced(tmp_path: Path) -> None:
    rig = Rig(tmp_path, mode=Mode.LOAD, loaded={"docker-default": "enforce"})
    assert rig.apply(abstract("docker-default"), abstract("mine")) == {
        "docker-default": "profile-not-owned", "mine": ""}
    assert rig.loaded()["docker-default"] == "enforce"
    assert not rig.file("docker-default").exists()
    assert all("secprof.docker-default" not in " ".join(c) for c in rig.runner.calls)
    assert rig.apply(removals=(key("docker-default"),)) == {"docker-default": "profile-not-owned"}


def test_a_raw_policy_cannot_smuggle_a_foreign_name_into_the_kernel(tmp_path: Path) -> None:
    rig = Rig(tmp_path, mode=Mode.LOAD, loaded={"docker-default": "enforce"})
    sneaky = raw("sneaky", GOOD_RAW.format(name="sneaky") + "profile docker-default {\n}\n")
    assert rig.apply(sneaky) == {"sneaky": "profile-name-mismatch"}
    assert [c[1] for c in rig.runner.calls] == ["-N", "-N"]  # never --replace
    assert rig.loaded() == {"docker-default": "enforce"}


def test_removal_waits_while_a_process_runs_under_the_profile(tmp_path: Path) -> None:
    rig = Rig(tmp_path, mode=Mode.LOAD)
    rig.apply(abstract("web"), abstract("db"))
    for pid, label in (("4242", "web (enforce)\n"), ("77", "web//child (enforce)\n"),
                       ("5", "unconfined\n")):
        (rig.proc / pid / "attr").mkdir(parents=True)
        (rig.proc / pid / "attr/current").write_text(label)
    results = rig.backend.apply(Batch(removals=(key("web"), key("db"))))
    web, db = results
    assert web.error is not None and web.error.code == Code.PROFILE_IN_USE
    assert "PIDs 77, 4242" in web.error.message
    assert db.ok and db.changed
    assert rig.loaded() == {"web": "enforce"} and rig.file("web").exists()
    assert not rig.file("db").exists() and not (tmp_path / "state/owned/secprof.db").exists()
    shutil.rmtree(rig.proc / "4242")
    shutil.rmtree(rig.proc / "77")
    assert rig.apply(removals=(key("web"),)) == {"web": ""}
    assert rig.loaded() == {} and not rig.file("web").exists()


def test_load_mode_without_an_interface_is_unavailable(tmp_path: Path) -> None:
    rig = Rig(tmp_path, mode=Mode.LOAD)
    backend = AppArmorBackend(replace(rig.settings, securityfs=tmp_path / "nowhere"), rig.runner)
    probe = backend.probe()
    assert probe.availability is Availability.UNAVAILABLE and "not mounted" in probe.reason
    (result,) = backend.apply(Batch(installs=(abstract("x"),)))
    assert result.error is not None and result.error.code == "backend-unavailable"
    assert rig.runner.calls == []


def test_a_failed_batch_is_split_and_the_rest_installed(tmp_path: Path) -> None:
    rig = Rig(tmp_path, mode=Mode.COMPILE_ONLY)
    rendered = render_abstract("caps", ProfileMode.ENFORCE, Abstract(capabilities=("CHOWN",)))
    bad = Install(key=key("caps"), content=rendered.content, digest=rendered.digest)
    good = [abstract(f"g{i}") for i in range(5)]
    assert rig.apply(*good[:2], bad, *good[2:]) == {
        "g0": "", "g1": "", "caps": "policy-invalid", "g2": "", "g3": "", "g4": ""}
    assert [len(c) for c in rig.runner.calls][1] == len(rig.runner.calls[0]) - 1
    assert len(rig.runner.calls) == 2  # the batch, then the five without the culprit


def test_what_the_kernel_refuses_is_an_error_of_that_profile(tmp_path: Path) -> None:
    rig = Rig(tmp_path, mode=Mode.LOAD)
    (rig.fs / ".replace").unlink()
    (rig.fs / ".replace").mkdir()  # writes to it fail, as a kernel refusal would
    (result,) = rig.backend.apply(Batch(installs=(abstract("web"),)))
    assert result.error is not None and result.error.code == "profile-load-failed"
    assert "the kernel refused 'web'" in result.error.message
    assert not rig.file("web").exists() and not (tmp_path / "state/owned/secprof.web").exists()


def test_modes_resolve_as_configured(tmp_path: Path) -> None:
    rig = Rig(tmp_path, mode=Mode.AUTO)
    enabled = rig.settings.enabled_file
    enabled.parent.mkdir(parents=True)

    def probe(**changes: object) -> tuple[Availability, str]:
        result = AppArmorBackend(replace(rig.settings, **changes), rig.runner).probe()
        return result.availability, result.reason

    enabled.write_text("Y\n")
    assert probe() == (Availability.INSTALLED, "")  # the fake securityfs stands in
    enabled.write_text("N\n")
    availability, reason = probe()
    assert availability is Availability.COMPILE_ONLY and "disabled in this kernel" in reason
    assert probe(mode=Mode.OFF) == (Availability.UNAVAILABLE, "[apparmor] mode = off")
    availability, reason = probe(parser=str(tmp_path / "no-parser"))
    assert availability is Availability.UNAVAILABLE and "not installed" in reason
    availability, reason = probe(mode=Mode.COMPILE_ONLY)
    assert availability is Availability.COMPILE_ONLY and "mode = compile-only" in reason
    assert rig.runner.calls == []


def test_apparmor_4_syntax_is_refused_by_this_parser_with_a_hint(tmp_path: Path) -> None:
    """Debian 12's parser is 3.0.8 (research/host-backends.md §1, the version trap)."""
    rig = Rig(tmp_path, mode=Mode.COMPILE_ONLY)
    (result,) = rig.backend.apply(Batch(installs=(
        raw("new", "abi <abi/4.0>,\nprofile new {\n  userns,\n}\n"),)))
    assert result.error is not None and result.error.code == Code.POLICY_INVALID
    assert "line 1: Could not open 'abi/4.0'" in result.error.message
    assert "apparmor_parser 4 or later" in result.error.hint
