"""SelinuxDriver.build (pure): both kinds from one desired state, inheritance between
SelinuxProfiles (order, missing, invalid, disabled, cycles), notes and details. The backend is
constructed but never runs anything here (its runner is a FAKE that fails if called)."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

from agent.backends.runner import RunResult
from agent.backends.selinux import SelinuxBackend
from agent.errors import AgentError
from agent.model.manifests import load_directory
from agent.model.profile import Kind, ProfileKey
from agent.reconcile.driver import Built
from agent.selinux.driver import SelinuxDriver
from agent.selinux.rules import Rules


class NoRunner:
    def run(self, argv: Sequence[str], *, timeout_s: float) -> RunResult:
        raise AssertionError(f"build ran {argv}")


def driver(tmp_path: Path) -> SelinuxDriver:
    backend = SelinuxBackend(runner=NoRunner(), store_root=tmp_path, priority=370,
                             selinuxfs=tmp_path / "nosefs")
    return SelinuxDriver(backend, rules=Rules(allowed_system_profiles=frozenset(
        {"container", "net_container"})), priority=370)


def build(tmp_path: Path, text: str) -> dict[ProfileKey, Built | AgentError]:
    profiles = tmp_path / "profiles.d"
    profiles.mkdir(exist_ok=True)
    (profiles / "all.yaml").write_text(textwrap.dedent(text))
    return driver(tmp_path).build(load_directory(profiles), validated=())


def doc(kind: str, name: str, spec: str) -> str:
    return (f"---\napiVersion: security-profiles-operator.x-k8s.io/v1\nkind: {kind}\n"
            f"metadata: {{name: {name}}}\nspec: {spec}\n")


def sel(name: str) -> ProfileKey:
    return ProfileKey(Kind.SELINUX, name)


def test_both_kinds_and_inheritance(tmp_path: Path) -> None:
    out = build(tmp_path, "".join([
        doc("SelinuxProfile", "child", "{inherit: [{kind: SelinuxProfile, name: parent}]}"),
        doc("SelinuxProfile", "parent", "{inherit: [{name: net_container}]}"),
        doc("RawSelinuxProfile", "parent", "{policy: '(allow process self (file (read)))'}"),
    ]))
    child, parent = out[sel("child")], out[sel("parent")]
    raw = out[ProfileKey(Kind.RAW_SELINUX, "parent")]
    assert isinstance(child, Built) and isinstance(parent, Built) and isinstance(raw, Built)
    assert child.content == b"(block child\n(blockinherit parent)\n)\n"
    assert raw.content == b"(block parent_\n    (allow process self (file (read)))\n)"
    assert any("use parent_.process" in n for n in raw.notes)
    assert any("policy is not active" in n for n in child.notes)
    d = driver(tmp_path)
    assert d.usage(sel("child")) == "child.process"
    details = d.details(child)
    assert details["module"] == "child" and details["inherits"] == ["parent"]
    assert details["policyActive"] is False and details["priority"] == 370


def test_inherit_failures_name_the_reason(tmp_path: Path) -> None:
    out = build(tmp_path, "".join([
        doc("SelinuxProfile", "a", "{inherit: [{kind: SelinuxProfile, name: b}]}"),
        doc("SelinuxProfile", "b", "{inherit: [{kind: SelinuxProfile, name: a}]}"),
        doc("SelinuxProfile", "dis", "{disabled: true}"),
        doc("SelinuxProfile", "uses-off", "{inherit: [{kind: SelinuxProfile, name: dis}]}"),
        doc("SelinuxProfile", "bad", "{allow: {shadow_t: {file: [read]}}}"),
        doc("SelinuxProfile", "uses-bad", "{inherit: [{kind: SelinuxProfile, name: bad}]}"),
        doc("SelinuxProfile", "typo", "{mode: Enforced}"),
        doc("SelinuxProfile", "uses-typo", "{inherit: [{kind: SelinuxProfile, name: typo}]}"),
        doc("SelinuxProfile", "ok", "{}"),
    ]))
    messages = {k.name: v.message for k, v in out.items() if isinstance(v, AgentError)}
    assert "inherit cycle" in messages["a"] and "inherit cycle" in messages["b"]
    assert "disabled" in messages["uses-off"]
    assert "type shadow_t is denied" in messages["uses-bad"]
    assert "its manifest is invalid" in messages["uses-typo"]
    assert isinstance(out[sel("ok")], Built)
    off = out[sel("dis")]
    assert isinstance(off, Built) and off.disabled


def test_parse_cache_round_trip(tmp_path: Path) -> None:
    from agent.model.parsecache import ParseCache  # noqa: PLC0415

    profiles = tmp_path / "profiles.d"
    profiles.mkdir()
    (profiles / "all.yaml").write_text("".join([
        doc("SelinuxProfile", "web", "{mode: Permissive, inherit: [{name: net_container}, "
            "{kind: SelinuxProfile, name: base}], allow: {'@self': {tcp_socket: [listen]}, "
            "var_log_t: {file: [read, open], dir: [search]}}}"),
        doc("SelinuxProfile", "base", "{disabled: true}"),
        doc("RawSelinuxProfile", "web", "{policy: '(allow process self (file (read)))'}"),
    ]))
    first_cache = ParseCache(tmp_path / "state")
    first = load_directory(profiles, cache=first_cache)
    first_cache.save()
    stored = (tmp_path / "state/parse-cache.json").read_text()
    assert "RawSelinuxProfile" in stored and "net_container" in stored
    second = load_directory(profiles, cache=ParseCache(tmp_path / "state"))
    assert len(first.profiles) == 3
    assert second.profiles == first.profiles
