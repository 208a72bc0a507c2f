"""Docker's template format flattened for a given host, rule by rule (our own fixtures in the
format of moby's default.json: arch maps, capability gates, kernel gates)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.errors import ManifestError
from agent.model.decode import DocContext, Node
from agent.model.docker_format import (
    DOCKER_DEFAULT_CAPABILITIES,
    TemplateHost,
    flatten,
    host_template,
    is_template,
    parse_release,
)
from agent.model.seccomp_parse import Dialect, SpecErrors, parse_spec
from agent.seccomp.render import spec_json
from agent.seccomp.validate import check_merged
from tests.conftest import SHARED

AMD64 = TemplateHost(arch="amd64", kernel=(5, 10),
                     capabilities=frozenset(DOCKER_DEFAULT_CAPABILITIES))

TEMPLATE: dict[str, Any] = {
    "defaultAction": "SCMP_ACT_ERRNO",
    "defaultErrnoRet": 1,
    "archMap": [
        {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86",
                                                                  "SCMP_ARCH_X32"]},
        {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
        {"architecture": "SCMP_ARCH_LOONGARCH64", "subArchitectures": None},
    ],
    "syscalls": [
        {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW", "comment": "always"},
        {"name": "getpid", "action": "SCMP_ACT_ALLOW"},
        {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW",
         "includes": {"arches": ["amd64", "x32"]}},
        {"names": ["arm_fadvise64_64"], "action": "SCMP_ACT_ALLOW",
         "includes": {"arches": ["arm", "arm64"]}},
        {"names": ["mount", "unshare"], "action": "SCMP_ACT_ALLOW",
         "includes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["chroot"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_CHROOT"]}},
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
         "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
        {"names": ["futex_waitv"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "5.16"}},
        {"names": ["uselib"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "5.0"}},
        {"names": ["modify_ldt"], "action": "SCMP_ACT_ALLOW", "excludes": {"arches": ["amd64"]}},
        {"names": ["kcmp"], "action": "SCMP_ACT_ALLOW",
         "includes": {"caps": ["CAP_SYS_PTRACE", "CAP_KILL"]}},
    ],
}


def flat(doc: dict[str, Any], host: TemplateHost = AMD64) -> tuple[dict[str, Any], tuple[str, ...]]:
    parsed = parse_spec(Node(json.loads(json.dumps(doc)), "", DocContext("t.json", 0)),
                        Dialect.OCI, template=host)
    return spec_json(parsed.spec), parsed.notes


def names(spec: dict[str, Any]) -> list[list[str]]:
    return [rule["names"] for rule in spec["syscalls"]]


def test_amd64_with_dockers_default_capabilities_rule_by_rule() -> None:
    spec, notes = flat(TEMPLATE)
    assert spec["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    assert spec["defaultErrnoRet"] == 1
    assert spec["syscalls"] == [
        {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},  # comment dropped
        {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"},  # singular name
        {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW"},  # amd64 is listed
        {"names": ["chroot"], "action": "SCMP_ACT_ALLOW"},  # CAP_SYS_CHROOT is a default cap
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},  # no CAP_SYS_ADMIN
        {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW"},  # 5.10 >= 4.8
    ]
    assert notes == (
        "archMap: architectures SCMP_ARCH_X86_64, SCMP_ARCH_X86, SCMP_ARCH_X32 for this host "
        "(amd64); entries for SCMP_ARCH_AARCH64, SCMP_ARCH_LOONGARCH64 dropped",
        "template rule syscalls[3] (arm_fadvise64_64) dropped: only for arm, arm64 "
        "(this host is amd64)",
        "template rule syscalls[4] (mount, unshare) dropped: needs CAP_SYS_ADMIN, which "
        "template_capabilities does not grant",
        "template rule syscalls[8] (futex_waitv) dropped: needs kernel 5.16 or later "
        "(this kernel is 5.10)",
        "template rule syscalls[9] (uselib) dropped: excluded from kernel 5.0 on "
        "(this kernel is 5.10)",
        "template rule syscalls[10] (modify_ldt) dropped: excluded on amd64",
        "template rule syscalls[11] (kcmp) dropped: needs CAP_SYS_PTRACE, which "
        "template_capabilities does not grant",
    )


def test_capabilities_from_config_and_another_host() -> None:
    host = TemplateHost(arch="arm64", kernel=(6, 1),
                        capabilities=frozenset({"CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_KILL"}))
    spec, _ = flat(TEMPLATE, host)
    assert spec["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert names(spec) == [["read", "write"], ["getpid"], ["arm_fadvise64_64"],
                           ["mount", "unshare"], ["ptrace"], ["futex_waitv"],
                           ["modify_ldt"], ["kcmp"]]
    # chroot needs CAP_SYS_CHROOT (not granted); clone3's ERRNO is excluded by CAP_SYS_ADMIN.


def test_every_capability_of_includes_is_needed_any_of_excludes_drops() -> None:
    both = TemplateHost(arch="amd64", kernel=(5, 10),
                        capabilities=frozenset({"CAP_SYS_PTRACE", "CAP_KILL"}))
    only_one = TemplateHost(arch="amd64", kernel=(5, 10), capabilities=frozenset({"CAP_KILL"}))
    assert ["kcmp"] in names(flat(TEMPLATE, both)[0])
    assert ["kcmp"] not in names(flat(TEMPLATE, only_one)[0])
    doc = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
         "excludes": {"caps": ["CAP_SYS_ADMIN", "CAP_KILL"]}}]}
    assert names(flat(doc, only_one)[0]) == []


def test_no_archmap_entry_for_this_host_keeps_the_native_architecture_only() -> None:
    host = TemplateHost(arch="ppc64le", kernel=(5, 10), capabilities=frozenset())
    spec, notes = flat(TEMPLATE, host)
    assert "architectures" not in spec
    assert notes[0] == ("archMap has no entry for this host (ppc64le): only the native "
                        "architecture is filtered (as Docker does)")


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"architectures": ["SCMP_ARCH_X86_64"]}, "archMap",
     "both architectures and archMap are set (Docker refuses this too)"),
    ({"syscalls": [{"name": "read", "names": ["write"], "action": "SCMP_ACT_ALLOW"}]},
     "syscalls[0].name", "both name and names are set (Docker refuses this too)"),
    ({"syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                    "includes": {"minKernel": "4"}}]},
     "syscalls[0].includes.minKernel", '"4" is not a kernel version'),
    ({"syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                    "includes": {"arches": ["x86_64"]}}]},
     "syscalls[0].includes.arches[0]", 'unknown template architecture "x86_64"'),
    ({"syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                    "excludes": {"caps": ["SYS_ADMIN"]}}]},
     "syscalls[0].excludes.caps[0]", '"SYS_ADMIN" is not a capability name'),
    ({"syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                    "includes": {"kernel": "5.1"}}]},
     "syscalls[0].includes.kernel", "unknown field"),
])
def test_fields_that_cannot_be_flattened_are_named(change: dict[str, Any], field: str,
                                                  message: str) -> None:
    with pytest.raises(ManifestError) as caught:
        flat({**TEMPLATE, **change})
    assert caught.value.field == field
    assert caught.value.message.startswith(message)


def test_plain_runtime_spec_passes_through_untouched() -> None:
    node = Node({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": []}, "", DocContext("x", 0))
    assert not is_template(node.value)
    result = flatten(node, AMD64)
    assert result.node is node and result.notes == ()


def test_host_detection() -> None:
    assert parse_release("6.1.0-13-amd64") == (6, 1)
    assert parse_release("3.12-1-amd64") == (3, 12)
    host = host_template()
    assert host.capabilities == frozenset(DOCKER_DEFAULT_CAPABILITIES)
    assert host.kernel > (3, 0)
    assert host_template(("CAP_SYS_ADMIN",)).capabilities == {"CAP_SYS_ADMIN"}
    assert host.fingerprint() != host_template(("CAP_SYS_ADMIN",)).fingerprint()


def test_errors_of_a_template_are_all_reported() -> None:
    doc = {"defaultAction": "SCMP_ACT_ALOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ALLOW", "comment": "ok"},
        {"names": ["Bad"], "action": "SCMP_ACT_NOPE"},
        {"names": ["write"], "action": "SCMP_ACT_ALLOW", "errnoRet": 3}]}
    with pytest.raises(SpecErrors) as caught:
        flat(doc)
    assert [(e.field, e.message.split(" (")[0]) for e in caught.value.errors] == [
        ("defaultAction", 'unknown action "SCMP_ACT_ALOW"'),
        ("syscalls[1].names[0]", '"Bad" is not a syscall name'),
        ("syscalls[1].action", 'unknown action "SCMP_ACT_NOPE"'),
        ("syscalls[2].errnoRet", "has no effect with SCMP_ACT_ALLOW: only SCMP_ACT_ERRNO and "
         "SCMP_ACT_TRACE return an errno"),
    ]


def test_an_error_in_a_template_says_what_the_file_is() -> None:
    with pytest.raises(ManifestError) as caught:
        flat({**TEMPLATE, "archMap": [{"architecture": "SCMP_ARCH_X86_64",
                                       "subArchitectures": ["SCMP_ARCH_X87"]}]})
    assert caught.value.field == "archMap[0].subArchitectures[0]"
    assert caught.value.hint.startswith("the file is a Docker-format seccomp template")


def test_the_parse_cache_never_answers_for_another_capability_set(tmp_path: Path) -> None:
    from agent.model.manifests import load_directory  # noqa: PLC0415
    from agent.model.options import LoadOptions  # noqa: PLC0415
    from agent.model.parsecache import ParseCache  # noqa: PLC0415
    from agent.model.profile import Kind, ProfileKey  # noqa: PLC0415

    pdir = tmp_path / "profiles.d"
    pdir.mkdir()
    (pdir / "t.json").write_text(json.dumps(TEMPLATE))
    admin = TemplateHost(arch="amd64", kernel=(5, 10), capabilities=frozenset({"CAP_SYS_ADMIN"}))
    key = ProfileKey(Kind.SECCOMP, "t")
    seen = []
    for host in (AMD64, AMD64, admin):
        cache = ParseCache(tmp_path / "state")
        desired = load_directory(pdir, cache=cache, options=LoadOptions(template=host))
        cache.save()
        seen.append((["mount", "unshare"] in [list(r.names) for r in
                                              desired.profiles[key].spec.syscalls], cache.hits))
    assert seen == [(False, 0), (False, 1), (True, 0)]  # the same bytes, parsed again


def test_podmans_errno_names_become_this_hosts_numbers() -> None:
    doc = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1, "defaultErrno": "ENOSYS",
           "syscalls": [
               {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errno": "EACCES",
                "args": [], "comment": "", "includes": {}, "excludes": {}},
               {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "errno": "13"},
               {"names": ["read"], "action": "SCMP_ACT_ALLOW", "errno": ""}]}
    spec, _ = flat(doc)
    assert spec["defaultErrnoRet"] == 38  # defaultErrno wins, as in containers/common
    assert [r.get("errnoRet") for r in spec["syscalls"]] == [13, 13, None]
    with pytest.raises(ManifestError) as caught:
        flat({**doc, "defaultErrno": "ENOPE"})
    assert caught.value.field == "defaultErrno"
    assert caught.value.message.startswith('"ENOPE" is not an errno name')


SPO_PROFILES = SHARED / "spo" / "deploy-profiles"


@pytest.mark.skipif(not SPO_PROFILES.is_dir(), reason="needs ../shared")
@pytest.mark.parametrize("name", ["bpf-recorder", "security-profiles-operator"])
def test_spos_shipped_docker_format_profiles_flatten_and_compile(name: str) -> None:
    """SPO's own deploy/base/profiles are Docker templates (archMap, includes/excludes)."""
    doc = json.loads((SPO_PROFILES / f"{name}.json").read_text())
    assert is_template(doc)
    parsed = parse_spec(Node(doc, "", DocContext(name, 0)), Dialect.OCI, template=AMD64)
    assert parsed.spec.architectures == ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32")
    assert parsed.notes[0].startswith("archMap: ")
    check_merged(parsed.spec)  # libseccomp, as runc, accepts the flattened profile
