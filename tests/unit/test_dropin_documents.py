"""Files people already have: kubectl List exports, mixed cluster directories, SPO v0.8
namespaces, names ending in .json, conflicting rules, every error of a document."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from agent.model.docker_format import DOCKER_DEFAULT_CAPABILITIES, TemplateHost
from agent.model.manifests import load_directory
from agent.model.options import LoadOptions
from agent.model.profile import Kind, ProfileKey
from agent.model.seccomp import SeccompSpec, SyscallRule
from agent.seccomp.libseccomp import exists_on
from agent.seccomp.validate import name_warnings
from tests.conftest import seccomp_doc

API = "security-profiles-operator.x-k8s.io/v1"
AMD64 = TemplateHost(arch="amd64", kernel=(6, 1),
                     capabilities=frozenset(DOCKER_DEFAULT_CAPABILITIES))


def key(name: str) -> ProfileKey:
    return ProfileKey(Kind.SECCOMP, name)


@pytest.fixture
def pdir(tmp_path: Path) -> Path:
    d = tmp_path / "profiles.d"
    d.mkdir()
    return d


KUBECTL_LIST = f"""\
apiVersion: v1
kind: List
metadata:
  resourceVersion: ""
items:
- apiVersion: {API}
  kind: SeccompProfile
  metadata:
    annotations:
      kubectl.kubernetes.io/last-applied-configuration: '{{"x": 1}}'
    creationTimestamp: "2026-11-30T10:00:00Z"
    finalizers: [node-1-deleted]
    generation: 1
    labels: {{spo.x-k8s.io/profile-id: SeccompProfile-web}}
    name: web
    resourceVersion: "1234"
    uid: 5d5f6c3e-0000-4000-8000-000000000001
  spec:
    defaultAction: SCMP_ACT_ERRNO
    syscalls:
    - {{names: [read], action: SCMP_ACT_ALLOW}}
  status:
    conditions: [{{type: Ready, status: "True"}}]
    localhostProfile: operator/web.json
    status: Installed
- apiVersion: {API}
  kind: SeccompProfile
  metadata: {{name: broken}}
  spec:
    defaultAction: SCMP_ACT_ERRNO
    syscalls:
    - {{names: [read], action: SCMP_ACT_ALOW}}
- apiVersion: {API}
  kind: ProfileBinding
  metadata: {{name: bind-web, namespace: apps}}
  spec: {{profileRef: {{kind: SeccompProfile, name: web}}, image: nginx}}
"""


def test_kubectl_list_export_is_unpacked_item_by_item(pdir: Path) -> None:
    (pdir / "all.yaml").write_text(KUBECTL_LIST)
    desired = load_directory(pdir)
    assert list(desired.profiles) == [key("web")]
    assert str(desired.profiles[key("web")].origin) == "profiles.d/all.yaml[0].items[0]"
    (error,) = desired.key_errors[key("broken")]
    assert str(error).startswith('profiles.d/all.yaml[0] items[1].spec.syscalls[0].action: '
                                 'unknown action "SCMP_ACT_ALOW"')
    assert desired.notes == ("profiles.d/all.yaml[0].items[2]: ProfileBinding bind-web skipped: "
                             "it only means something to Kubernetes (secprof installs profiles, "
                             "not bindings or recordings)",)
    assert not desired.file_errors


def test_typed_list_kind_and_mixed_directory(pdir: Path) -> None:
    (pdir / "list.yaml").write_text(KUBECTL_LIST.replace("kind: List", "kind: SeccompProfileList"))
    (pdir / "rec.yaml").write_text(textwrap.dedent(f"""\
        apiVersion: {API.replace("v1", "v1alpha1")}
        kind: ProfileRecording
        metadata: {{name: rec}}
        spec: {{kind: SeccompProfile, recorder: logs}}
        ---
        apiVersion: {API.replace("v1", "v1alpha1")}
        kind: SecurityProfileNodeStatus
        metadata: {{name: web-node-1}}
        ---
        apiVersion: {API.replace("v1", "v1alpha1")}
        kind: SecurityProfilesOperatorDaemon
        metadata: {{name: spod}}
        ---
        apiVersion: {API}
        kind: Frobnicator
        metadata: {{name: x}}
        """))
    desired = load_directory(pdir)
    assert key("web") in desired.profiles
    assert len(desired.notes) == 4
    assert [str(e) for e in desired.file_errors["rec.yaml"]] == [
        'profiles.d/rec.yaml[3] kind: unknown kind "Frobnicator"']


def test_every_error_of_a_document_is_reported(pdir: Path) -> None:
    (pdir / "bad.yaml").write_text(textwrap.dedent(f"""\
        apiVersion: {API.replace("v1", "v9")}
        kind: SeccompProfile
        metadata: {{name: bad}}
        extra: 1
        spec:
          defaultAction: SCMP_ACT_ERRNO
          architectures: [SCMP_ARCH_X86_65]
          syscalls:
            - {{names: [read], action: SCMP_ACT_ALOW}}
            - {{names: [write], action: SCMP_ACT_ALLOW, args: [{{index: 9, op: SCMP_CMP_EQ}}]}}
        """))
    errors = load_directory(pdir).key_errors[key("bad")]
    assert [e.field for e in errors] == ["extra", "apiVersion", "spec.architectures[0]",
                                         "spec.syscalls[0].action",
                                         "spec.syscalls[1].args[0].index"]


def test_metadata_name_ending_in_json_installs_as_spo_does(pdir: Path) -> None:
    (pdir / "a.yaml").write_text(seccomp_doc("web.json", "defaultAction: SCMP_ACT_LOG"))
    desired = load_directory(pdir)
    assert list(desired.profiles) == [key("web")]
    assert desired.notes == ("profiles.d/a.yaml[0]: metadata.name 'web.json' ends in .json: "
                             "installed as web.json (as SPO does), not web.json.json",)


def test_docker_template_fields_in_a_seccompprofile_spec_say_where_they_belong(
        pdir: Path) -> None:
    (pdir / "a.yaml").write_text(seccomp_doc("t", """\
        defaultAction: SCMP_ACT_ERRNO
        syscalls:
          - {names: [read], action: SCMP_ACT_ALLOW}
          - {names: [mount], action: SCMP_ACT_ALLOW, includes: {caps: [CAP_SYS_ADMIN]}}
        """))
    (error,) = load_directory(pdir).key_errors[key("t")]
    assert (error.code, error.field) == ("template-in-spec", "spec.syscalls[1].includes")
    assert "plain .json file" in error.hint


def namespaced(name: str, namespace: str | None, base: str = "") -> str:
    ns = f"\n  namespace: {namespace}" if namespace else ""
    spec = f"baseProfileName: {base}\n" if base else ""
    return seccomp_doc(name, spec + "defaultAction: SCMP_ACT_LOG").replace(
        f"name: {name}\n", f"name: {name}{ns}\n")


def test_namespaces_are_ignored_by_default_so_same_names_collide(pdir: Path) -> None:
    (pdir / "a.yaml").write_text(namespaced("web", "team-a"))
    (pdir / "b.yaml").write_text(namespaced("web", "team-b"))
    errors = load_directory(pdir).key_errors[key("web")]
    assert {e.code for e in errors} == {"duplicate-profile"}
    assert 'layout = "namespaced"' in errors[0].hint


def test_namespaced_layout_keeps_them_apart_and_resolves_bases_in_the_namespace(
        pdir: Path) -> None:
    (pdir / "a.yaml").write_text(namespaced("web", "team-a", base="base") + "---\n"
                                 + namespaced("base", "team-a"))
    (pdir / "b.yaml").write_text(namespaced("web", "team-b"))
    (pdir / "c.yaml").write_text(namespaced("web", None))
    desired = load_directory(pdir, options=LoadOptions(template=AMD64, namespaced=True))
    assert not desired.errors
    assert sorted(k.name for k in desired.profiles) == ["default/web", "team-a/base",
                                                        "team-a/web", "team-b/web"]
    assert desired.profiles[key("team-a/web")].base == "team-a/base"


CONFLICT = """\
defaultAction: SCMP_ACT_ALLOW
syscalls:
  - {names: [mkdir, mkdirat], action: SCMP_ACT_ERRNO}
  - {names: [mkdir], action: SCMP_ACT_LOG}
"""


def test_conflicting_rules_first_wins_with_a_warning_naming_both(pdir: Path) -> None:
    (pdir / "a.yaml").write_text(seccomp_doc("c", CONFLICT))
    profile = load_directory(pdir).profiles[key("c")]
    assert profile.spec.syscalls == (
        SyscallRule(names=("mkdir", "mkdirat"), action="SCMP_ACT_ERRNO"),)
    assert profile.warnings == ("'mkdir': syscalls[1] (SCMP_ACT_LOG) has no effect, "
                                "syscalls[0] (SCMP_ACT_ERRNO) applies (the first rule for a "
                                "syscall wins in libseccomp)",)


def test_reversed_conflict_gives_the_other_result(pdir: Path) -> None:
    (pdir / "a.yaml").write_text(seccomp_doc("c", """\
        defaultAction: SCMP_ACT_ALLOW
        syscalls:
          - {names: [mkdir], action: SCMP_ACT_LOG}
          - {names: [mkdir, mkdirat], action: SCMP_ACT_ERRNO}
        """))
    profile = load_directory(pdir).profiles[key("c")]
    assert profile.spec.syscalls == (
        SyscallRule(names=("mkdir",), action="SCMP_ACT_LOG"),
        SyscallRule(names=("mkdirat",), action="SCMP_ACT_ERRNO"))


def test_a_rule_equal_to_the_default_is_skipped_as_runc_does(pdir: Path) -> None:
    (pdir / "a.yaml").write_text(seccomp_doc("c", """\
        defaultAction: SCMP_ACT_LOG
        syscalls:
          - {names: [mkdir], action: SCMP_ACT_LOG}
          - {names: [mkdir], action: SCMP_ACT_ERRNO}
          - {names: [mkdir], action: SCMP_ACT_ERRNO}
        """))
    profile = load_directory(pdir).profiles[key("c")]
    assert profile.spec.syscalls == (SyscallRule(names=("mkdir",), action="SCMP_ACT_ERRNO"),)
    assert profile.warnings == ("'mkdir': syscalls[0] (SCMP_ACT_LOG) has no effect, "
                                "syscalls[1] (SCMP_ACT_ERRNO) applies (it equals defaultAction, "
                                "which runc skips)",)  # the identical third rule is silent


def test_same_arguments_different_actions_is_an_error_as_in_runc(pdir: Path) -> None:
    (pdir / "a.yaml").write_text(seccomp_doc("c", """\
        defaultAction: SCMP_ACT_ALLOW
        syscalls:
          - {names: [mkdir], action: SCMP_ACT_ERRNO, args: [{index: 1, value: 493, op: EQ}]}
          - {names: [mkdir], action: SCMP_ACT_LOG, args: [{index: 1, value: 493, op: EQ}]}
        """.replace("op: EQ", "op: SCMP_CMP_EQ")))
    (error,) = load_directory(pdir).key_errors[key("c")]
    assert error.code == "rule-conflict"
    assert error.field == "spec.syscalls[1]"
    assert "runc would not start the container" in error.message


def test_recv_and_send_exist_on_32_bit_x86_through_socketcall() -> None:
    assert exists_on("recv", ("SCMP_ARCH_X86",))
    assert not exists_on("recv", ("SCMP_ARCH_X86_64",))
    spec_rules = (SyscallRule(names=("recv", "send"), action="SCMP_ACT_ALLOW"),)
    spec = SeccompSpec(default_action="SCMP_ACT_ERRNO", syscalls=spec_rules)
    assert name_warnings(spec, ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86")) == ()
    assert len(name_warnings(spec, ("SCMP_ARCH_X86_64",))) == 2


def test_a_list_inside_a_list_is_an_error_of_that_document(pdir: Path) -> None:
    inner = "{apiVersion: v1, kind: List, items: []}"
    (pdir / "n.yaml").write_text(f"apiVersion: v1\nkind: List\nitems:\n- {inner}\n")
    (error,) = load_directory(pdir).file_errors["n.yaml"]
    assert (error.code, error.field) == ("list-nested", "items[0].kind")


def test_errors_of_one_document_are_capped(pdir: Path) -> None:
    rules = "\n".join(f"  - {{names: [BAD{i}], action: SCMP_ACT_ALLOW}}" for i in range(80))
    (pdir / "a.yaml").write_text(seccomp_doc("many", "defaultAction: SCMP_ACT_LOG\nsyscalls:\n"
                                             + rules))
    errors = load_directory(pdir).key_errors[key("many")]
    assert len(errors) == 50
    assert errors[-1].message == "… and 31 more errors in this document"
