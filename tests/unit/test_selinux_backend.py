"""SelinuxBackend's logic against a FAKE semodule (a scripted Runner): argv shape, one
transaction per batch, splitting a failed one, refusing foreign names, templates, reload.
The real semodule is exercised in tests/integration/test_selinux_semodule.py; a fake is used
here to count and order calls that would cost 5-6 s each for real."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from agent.backends.base import Availability, Batch, Install
from agent.backends.runner import RunResult
from agent.backends.selinux import SelinuxBackend
from agent.errors import BackendError
from agent.model.profile import Kind, ProfileKey
from agent.seccomp.render import digest
from agent.selinux.semodule import explain, named_modules, parse_listing
from agent.selinux.shipped import Template

PRIO = 370
TEMPLATE = Template(block="container", content=b"(block container (type process))\n")


class FakeSemodule:
    """A scripted stand-in for semodule: a store as a dict, atomic transactions that fail
    when they hold a module listed in ``bad`` (naming it in the message, as semodule does,
    unless ``anonymous``)."""

    def __init__(self, store: dict[tuple[int, str], str] | None = None,
                 root: str = "/store") -> None:
        self.root = root
        self.store = dict(store or {})
        self.bad: set[str] = set()
        self.anonymous = False
        self.calls: list[list[str]] = []
        self.load_policy_output = ("", 0)

    def run(self, argv: Sequence[str], *, timeout_s: float) -> RunResult:
        args = list(argv)
        self.calls.append(args)
        if args[0] == "load_policy":
            out, rc = self.load_policy_output
            return RunResult(argv=tuple(args), returncode=rc, stderr=out)
        assert args[:3] == ["semodule", "-p", self.root]
        if "-lfull" in args:
            lines = [f"{p} {n} cil {c}" for (p, n), c in sorted(self.store.items())]
            return RunResult(argv=tuple(args), returncode=0, stdout="\n".join(lines) + "\n",
                             stderr="libsemanage.add_user: user sddm not in password file\n")
        assert args[3:6] == ["-n", "-X", str(PRIO)]
        assert "-S" not in args and "-v" not in args
        installs = {Path(a).stem: Path(a).read_bytes() for a in _after(args, "-i")}
        removals = _after(args, "-r")
        culprit = sorted(set(installs) & self.bad)
        if culprit:
            where = "somewhere" if self.anonymous else \
                f"/store/var/lib/selinux/default/tmp/modules/{PRIO}/{culprit[0]}/cil:2"
            return RunResult(argv=tuple(args), returncode=1, stderr=(
                f"Failed to resolve allow statement at {where}\nFailed to resolve AST\n"
                "semodule:  Failed!\n"))
        for name, content in installs.items():
            self.store[(PRIO, name)] = digest(content)
        for name in removals:
            del self.store[(PRIO, name)]
        return RunResult(argv=tuple(args), returncode=0)

    @property
    def transactions(self) -> list[list[str]]:
        return [c for c in self.calls if "-n" in c]


def _after(args: list[str], flag: str) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args) if a == flag]


def key(name: str, kind: Kind = Kind.SELINUX) -> ProfileKey:
    return ProfileKey(kind, name)


def cil(name: str) -> bytes:
    return f"(block {name}\n(allow process x_t ( file ( read )))\n)\n".encode()


def install(name: str, kind: Kind = Kind.SELINUX) -> Install:
    content = cil(name)
    return Install(key=key(name, kind), content=content, digest=digest(content))


def backend(fake: FakeSemodule, tmp_path: Path, **kw: object) -> SelinuxBackend:
    return SelinuxBackend(runner=fake, store_root=Path("/store"), priority=PRIO,
                          templates=(TEMPLATE,), selinuxfs=tmp_path / "nosefs",
                          scratch_dir=tmp_path, **kw)  # type: ignore[arg-type]


BASE = {(100, "base"): "sha256:0", (100, "apache"): "sha256:1"}


def test_one_transaction_for_installs_removals_and_templates(tmp_path: Path) -> None:
    fake = FakeSemodule({**BASE, (PRIO, "old"): "sha256:2"})
    be = backend(fake, tmp_path)
    results = be.apply(Batch(installs=(install("a"), install("b", Kind.RAW_SELINUX)),
                             removals=(key("old"),)))
    assert [(str(r.key), r.ok, r.changed) for r in results] == [
        ("SelinuxProfile/a", True, True), ("RawSelinuxProfile/b", True, True),
        ("SelinuxProfile/old", True, True)]
    [call] = fake.transactions
    files = [Path(p).name for p in _after(call, "-i")]
    assert files == ["secprof_container.cil", "a.cil", "b_.cil"]  # templates first
    assert _after(call, "-r") == ["old"]
    assert be.transactions == 1
    assert be.actual([key("a"), key("b", Kind.RAW_SELINUX), key("old")]) == {
        key("a"): digest(cil("a")), key("b", Kind.RAW_SELINUX): digest(cil("b")),
        key("old"): None}
    assert list(tmp_path.iterdir()) == []  # scratch files are gone


def test_unchanged_and_absent_make_no_transaction(tmp_path: Path) -> None:
    fake = FakeSemodule({**BASE, (PRIO, "a"): digest(cil("a"))})
    be = backend(fake, tmp_path)
    results = be.apply(Batch(installs=(install("a"),), removals=(key("gone"),)))
    assert all(r.ok and not r.changed for r in results)
    assert fake.transactions == []


def test_named_bad_module_set_aside_rest_installed_in_one_more(tmp_path: Path) -> None:
    fake = FakeSemodule(BASE)
    fake.bad = {"c"}
    be = backend(fake, tmp_path)
    names = [f"m{i:02}" for i in range(10)] + ["c"]
    results = be.apply(Batch(installs=tuple(install(n) for n in names)))
    by = {r.key.name: r for r in results}
    assert not by["c"].ok and not by["c"].changed
    assert by["c"].error is not None
    assert by["c"].error.code == "selinux-module-rejected"
    assert ("module c line 2 `(allow process x_t ( file ( read )))` (from spec.allow.x_t.file)"
            in by["c"].error.message)
    assert "/store/" not in by["c"].error.message
    assert "Failed!" not in by["c"].error.message
    assert all(by[n].ok and by[n].changed for n in names[:-1])
    assert len(fake.transactions) == 2


def test_anonymous_failure_is_bisected_in_order(tmp_path: Path) -> None:
    fake = FakeSemodule(BASE)
    fake.bad = {"m5"}
    fake.anonymous = True
    be = backend(fake, tmp_path)
    names = [f"m{i}" for i in range(8)]
    results = be.apply(Batch(installs=tuple(install(n) for n in names)))
    assert [r.key.name for r in results if not r.ok] == ["m5"]
    sets = [[Path(p).stem for p in _after(c, "-i")] for c in fake.transactions]
    assert sets == [
        ["secprof_container", *names],                      # all: fails
        ["secprof_container", "m0", "m1", "m2"],            # left half: committed
        ["m3", "m4", "m5", "m6", "m7"],                     # right half: fails
        ["m3", "m4"], ["m5", "m6", "m7"], ["m5"], ["m6", "m7"],
    ]
    assert set(fake.store) >= {(PRIO, n) for n in names if n != "m5"}


def test_names_at_other_priorities_are_refused(tmp_path: Path) -> None:
    fake = FakeSemodule(BASE)
    be = backend(fake, tmp_path)
    [apache, ok] = be.apply(Batch(installs=(install("apache"), install("ok"))))
    assert apache.error is not None
    assert apache.error.code == "selinux-name-taken"
    assert "priority 100" in apache.error.message
    assert ok.ok
    assert (PRIO, "apache") not in fake.store


def test_templates_left_to_the_host_and_removed_with_the_last_profile(tmp_path: Path) -> None:
    fake = FakeSemodule({**BASE, (400, "base_container"): "sha256:9"})
    be = backend(fake, tmp_path)
    be.apply(Batch(installs=(install("a"),)))
    assert (PRIO, "secprof_container") not in fake.store  # udica's provides the block

    fake = FakeSemodule(BASE)
    be = backend(fake, tmp_path)
    be.apply(Batch(installs=(install("a"), install("b"))))
    be.apply(Batch(removals=(key("a"),)))
    assert (PRIO, "secprof_container") in fake.store
    be.apply(Batch(removals=(key("b"),)))
    assert not [k for k in fake.store if k[0] == PRIO]
    assert len(fake.transactions) == 3


def test_reload_only_where_the_kernel_has_selinux_and_the_store_is_the_hosts(
        tmp_path: Path) -> None:
    selinuxfs = tmp_path / "selinuxfs"
    selinuxfs.mkdir()
    (selinuxfs / "enforce").write_text("0")
    fake = FakeSemodule(BASE)
    private = SelinuxBackend(runner=fake, store_root=Path("/store"), priority=PRIO,
                             selinuxfs=selinuxfs, scratch_dir=tmp_path)
    private.apply(Batch(installs=(install("a"),)))
    assert not private.policy_active
    assert not [c for c in fake.calls if c[0] == "load_policy"]

    # The host's store on a kernel with SELinux (all FAKE: no semodule or load_policy runs).
    fake = FakeSemodule(BASE, root="/")
    host = SelinuxBackend(runner=fake, store_root=Path("/"), priority=PRIO,
                          selinuxfs=selinuxfs, scratch_dir=tmp_path)
    assert host.policy_active
    [ok] = host.apply(Batch(installs=(install("a"), )))
    assert ok.ok and ok.changed
    assert [c for c in fake.calls if c[0] == "load_policy"] == [["load_policy"]]
    # load_policy's message counts, not only its exit status.
    fake.load_policy_output = ("Can't load policy: No such file or directory", 0)
    [failed] = host.apply(Batch(installs=(install("b"),)))
    assert failed.changed
    assert failed.error is not None and failed.error.code == "selinux-reload-failed"
    assert len([c for c in fake.calls if c[0] == "load_policy"]) == 2
    host.apply(Batch(installs=(install("b"),)))  # nothing to do: no reload either
    assert len([c for c in fake.calls if c[0] == "load_policy"]) == 2


def test_probe_runs_nothing(tmp_path: Path) -> None:
    fake = FakeSemodule(BASE, root=str(tmp_path))
    with_store = SelinuxBackend(runner=fake, store_root=tmp_path, priority=PRIO,
                                selinuxfs=tmp_path / "nosefs")
    probe = with_store.probe()
    assert probe.availability is Availability.UNAVAILABLE
    assert "no SELinux policy store" in probe.reason
    (tmp_path / "var/lib/selinux/default/active/modules").mkdir(parents=True)
    probe = with_store.probe()
    assert probe.availability is Availability.INSTALLED
    assert "private policy store" in probe.reason and "not active" in probe.reason
    off = SelinuxBackend(runner=fake, store_root=tmp_path, priority=PRIO, mode="off")
    assert off.probe().availability is Availability.UNAVAILABLE
    gone = SelinuxBackend(runner=fake, store_root=tmp_path, priority=PRIO,
                          semodule=str(tmp_path / "no-semodule"))
    probe = gone.probe()
    assert probe.availability is Availability.UNAVAILABLE
    assert "no-semodule not found" in probe.reason and "mode = auto" in probe.reason
    assert fake.calls == []


def test_a_timeout_fails_the_batch_without_splitting(tmp_path: Path) -> None:
    class Slow(FakeSemodule):
        def run(self, argv: Sequence[str], *, timeout_s: float) -> RunResult:
            if "-n" in argv:
                self.calls.append(list(argv))
                raise BackendError("semodule did not finish", code="tool-timeout")
            return super().run(argv, timeout_s=timeout_s)

    fake = Slow(BASE)
    results = backend(fake, tmp_path).apply(Batch(installs=(install("a"), install("b"))))
    assert [r.error.code if r.error else None for r in results] == ["tool-timeout"] * 2
    assert len(fake.transactions) == 1


def test_parse_listing() -> None:
    text = ("100 amtu            pp  disabled\n"
            "370 probe1          cil          sha256:b4 \n"
            "libsemanage.add_user: user sddm not in password file\n")
    mods = parse_listing(text)
    assert [(m.priority, m.name, m.checksum, m.disabled) for m in mods] == [
        (100, "amtu", None, True), (370, "probe1", "sha256:b4", False)]


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="sometimes"):
        SelinuxBackend(runner=FakeSemodule(), store_root=Path("/"), priority=1,
                       mode="sometimes")


def test_a_rejected_module_is_not_retried_until_it_or_the_store_changes(
        tmp_path: Path) -> None:
    fake = FakeSemodule(BASE)
    fake.bad = {"c"}
    be = backend(fake, tmp_path)
    first = be.apply(Batch(installs=(install("a"), install("c"))))
    assert len(fake.transactions) == 2
    again = be.apply(Batch(installs=(install("c"),)))
    assert len(fake.transactions) == 2  # same bytes, same store: the same answer
    assert again[0].error is first[1].error
    fake.store[(200, "other")] = "sha256:7"  # the store changed: worth another try
    be.apply(Batch(installs=(install("c"),)))
    assert len(fake.transactions) == 3


def test_parents_are_installed_before_the_profiles_that_inherit_them(tmp_path: Path) -> None:
    fake = FakeSemodule(BASE)
    be = backend(fake, tmp_path)
    child = b"(block a-child\n(blockinherit z-parent)\n)\n"
    parent = b"(block z-parent\n(blockinherit container)\n)\n"
    be.apply(Batch(installs=(
        Install(key=key("a-child"), content=child, digest=digest(child)),
        Install(key=key("z-parent"), content=parent, digest=digest(parent)))))
    [call] = fake.transactions
    assert [Path(p).stem for p in _after(call, "-i")] == [
        "secprof_container", "z-parent", "a-child"]


def test_our_template_gives_way_when_the_host_gets_its_own(tmp_path: Path) -> None:
    fake = FakeSemodule(BASE)
    be = backend(fake, tmp_path)
    be.apply(Batch(installs=(install("a"),)))
    assert (PRIO, "secprof_container") in fake.store
    fake.store[(400, "base_container")] = "sha256:9"  # udica's templates installed
    be.apply(Batch(installs=(install("b"),)))
    [call] = fake.transactions[1:]
    assert _after(call, "-r") == ["secprof_container"]
    assert (PRIO, "secprof_container") not in fake.store


def test_messages_of_both_shapes_are_pinned_and_quoted() -> None:
    text = ("Open parenthesis without matching close at line 2 of "
            "/r/var/lib/selinux/default/tmp/modules/370/web/cil\n"
            "libsemanage.semanage_load_files: Error while reading "
            "/r/var/lib/selinux/default/tmp/modules/370/web/cil.\n"
            "Previous declaration of type at /r/var/lib/selinux/default/tmp/modules/100/base/"
            "cil:2153\nsemodule:  Failed!\n")
    assert named_modules(text, 370) == {"web"}
    assert named_modules("semodule:  Failed on /tmp/secprof-selinux-x/web_.cil!", 370) == {
        "web_"}
    assert explain(text, "web", b"(block web\n(allow process x\n)\n") == (
        "Open parenthesis without matching close at module web line 2 `(allow process x`; "
        "libsemanage.semanage_load_files: Error while reading module web.; "
        "Previous declaration of type at module base line 2153")


def test_a_busy_store_fails_the_batch_once_without_splitting(tmp_path: Path) -> None:
    class Busy(FakeSemodule):
        def run(self, argv: Sequence[str], *, timeout_s: float) -> RunResult:
            if "-n" in argv:
                self.calls.append(list(argv))
                return RunResult(argv=tuple(argv), returncode=1, stderr=(
                    "libsemanage.semanage_get_lock: Could not get direct transaction lock at "
                    "/var/lib/selinux/default/semanage.trans.LOCK.\nsemodule:  Failed!\n"))
            return super().run(argv, timeout_s=timeout_s)

    fake = Busy(BASE)
    be = backend(fake, tmp_path)
    results = be.apply(Batch(installs=(install("a"), install("b"), install("c"))))
    assert {r.error.code for r in results if r.error} == {"selinux-store-busy"}
    assert len(fake.transactions) == 1
    be.apply(Batch(installs=(install("a"),)))  # not remembered as a rejection
    assert len(fake.transactions) == 2
