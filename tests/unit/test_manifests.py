"""Reading the desired-state directory: formats, strictness, error locations, isolation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.model.manifests import FileMemo, load_directory
from agent.model.profile import Kind, ProfileKey
from tests.conftest import seccomp_doc

SECCOMP = Kind.SECCOMP


def key(name: str, kind: Kind = SECCOMP) -> ProfileKey:
    return ProfileKey(kind, name)


@pytest.fixture
def pdir(tmp_path: Path) -> Path:
    d = tmp_path / "profiles.d"
    d.mkdir()
    return d


def good(name: str, api: str = "v1") -> str:
    return seccomp_doc(name, "defaultAction: SCMP_ACT_ERRNO\nsyscalls:\n"
                       "  - {names: [read], action: SCMP_ACT_ALLOW}", api=api)


def messages(d: Path) -> list[str]:
    return [str(e) for e in load_directory(d).errors]


def test_multi_document_yaml_and_all_api_versions(pdir: Path) -> None:
    (pdir / "a.yaml").write_text("---\n".join([good("one"), "", good("two", "v1beta1"),
                                                good("three", "v1alpha1")]))
    desired = load_directory(pdir)
    assert list(desired.profiles) == [key("one"), key("three"), key("two")]
    assert desired.errors == ()
    assert desired.profiles[key("three")].origin.index == 3  # the empty document counts


def test_error_names_file_document_and_field(pdir: Path) -> None:
    body = """
        defaultAction: SCMP_ACT_ERRNO
        syscalls:
          - {names: [read], action: SCMP_ACT_ALLOW}
          - {names: [write], action: SCMP_ACT_ALLOW}
          - {names: [openat], action: SCMP_ACT_ALLOW}
          - {names: [close], action: SCMP_ACT_ALOW}
        """
    (pdir / "app.yaml").write_text(good("first") + "---\n" + seccomp_doc("app", body))
    desired = load_directory(pdir)
    assert [str(e) for e in desired.errors] == [
        'profiles.d/app.yaml[1] spec.syscalls[3].action: unknown action "SCMP_ACT_ALOW" '
        "(did you mean SCMP_ACT_ALLOW?)"
    ]
    assert key("first") in desired.profiles  # a bad document affects only itself
    assert key("app") in desired.key_errors
    assert desired.file_errors == {}


@pytest.mark.parametrize(("body", "expected"), [
    ("defaultAction: SCMP_ACT_ERRNO\ndefaultAction: SCMP_ACT_ALLOW",
     "YAML error at line 7, column 3: duplicate key 'defaultAction' (first defined at line 6)"),
    ("defaultAction: SCMP_ACT_ERRNO\nsyscalls:\n  - {names: [a], names: [b], action: SCMP_ACT_LOG}",
     "YAML error at line 8, column 20: duplicate key 'names' (first defined at line 8)"),
])
def test_duplicate_yaml_keys_are_errors(pdir: Path, body: str, expected: str) -> None:
    (pdir / "dup.yaml").write_text(seccomp_doc("dup", body))
    desired = load_directory(pdir)
    assert messages(pdir) == [f"profiles.d/dup.yaml[0]: {expected}"]
    assert desired.profiles == {}
    assert "dup.yaml" in desired.file_errors


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_json_nan_and_infinity_are_errors(pdir: Path, constant: str) -> None:
    (pdir / "p.json").write_text(
        '{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], '
        f'"action": "SCMP_ACT_ERRNO", "errnoRet": {constant}}}]}}'
    )
    assert messages(pdir) == [f"profiles.d/p.json[0]: JSON error: {constant} is not valid JSON"]


def test_json_duplicate_keys_are_errors(pdir: Path) -> None:
    (pdir / "p.json").write_text('{"defaultAction": "SCMP_ACT_ERRNO", '
                                 '"defaultAction": "SCMP_ACT_ALLOW"}')
    assert messages(pdir) == ["profiles.d/p.json[0]: JSON error: duplicate key 'defaultAction'"]


def test_plain_json_profile_is_named_after_the_file(pdir: Path) -> None:
    (pdir / "log-all.json").write_text('{"defaultAction": "SCMP_ACT_LOG", "syscalls": '
                                       '[{"names": ["read"], "action": "SCMP_ACT_ERRNO", '
                                       '"errnoRet": 0}]}')
    desired = load_directory(pdir)
    prof = desired.profiles[key("log-all")]
    assert prof.spec.syscalls[0].errno_ret == 0  # OCI keeps an explicit 0; SPO would unset it


def test_plain_json_names_are_kept_as_kubelet_references_them(pdir: Path) -> None:
    for name in ("my_profile", "Chrome", "v1.2"):
        (pdir / f"{name}.json").write_text('{"defaultAction": "SCMP_ACT_LOG"}')
    desired = load_directory(pdir)
    assert not desired.errors
    assert sorted(k.name for k in desired.profiles) == ["Chrome", "my_profile", "v1.2"]


def test_plain_json_with_unusable_file_name_says_which_rename(pdir: Path) -> None:
    (pdir / "my profile!.json").write_text('{"defaultAction": "SCMP_ACT_LOG"}')
    (pdir / "-x.json").write_text('{"defaultAction": "SCMP_ACT_LOG"}')
    errors = load_directory(pdir).errors
    assert [e.hint for e in errors] == ["rename the file to x.json",
                                        "rename the file to my-profile-.json"]
    assert str(errors[1]).startswith("profiles.d/my profile!.json: file name gives the profile "
                                     "name, and 'my profile!' is not usable")


def test_json_manifest_document(pdir: Path) -> None:
    (pdir / "m.json").write_text(
        '{"apiVersion": "security-profiles-operator.x-k8s.io/v1", "kind": "SeccompProfile", '
        '"metadata": {"name": "from-json"}, "spec": {"defaultAction": "SCMP_ACT_ERRNO"}}'
    )
    assert key("from-json") in load_directory(pdir).profiles


@pytest.mark.parametrize("name", ["../x", "a/b", "UPPER", "-dash", "dot.", "a..b", "", "x" * 254])
def test_names_are_checked_before_any_path_is_built(pdir: Path, name: str) -> None:
    (pdir / "n.yaml").write_text(good("placeholder").replace("placeholder", repr(name)))
    desired = load_directory(pdir)
    assert desired.profiles == {}
    (error,) = desired.errors
    assert error.field == "metadata.name"
    assert error.code in ("name-invalid", "manifest-invalid")
    assert "n.yaml" in desired.file_errors  # identity unknown: the file holds what it installed


def test_same_identity_twice_puts_both_in_error(pdir: Path) -> None:
    (pdir / "a.yaml").write_text(good("twin"))
    (pdir / "b.yaml").write_text(good("other") + "---\n" + good("twin"))
    desired = load_directory(pdir)
    assert key("twin") not in desired.profiles
    assert key("other") in desired.profiles
    errs = desired.key_errors[key("twin")]
    assert [e.code for e in errs] == ["duplicate-profile", "duplicate-profile"]
    for e in errs:
        assert "profiles.d/a.yaml[0]" in e.message and "profiles.d/b.yaml[1]" in e.message


def test_json_and_yaml_with_the_same_name_conflict(pdir: Path) -> None:
    (pdir / "twin.json").write_text('{"defaultAction": "SCMP_ACT_LOG"}')
    (pdir / "a.yaml").write_text(good("twin"))
    assert key("twin") in load_directory(pdir).key_errors


def test_syntax_error_keeps_earlier_documents_and_marks_the_file(pdir: Path) -> None:
    (pdir / "a.yaml").write_text(good("one") + "---\n" + good("two") + "---\nspec: [unclosed\n")
    desired = load_directory(pdir)
    assert set(desired.profiles) == {key("one"), key("two")}
    (error,) = desired.errors
    assert error.index == 2 and error.code == "syntax-error"
    assert "a.yaml" in desired.file_errors


def test_unknown_kind_suggests_the_right_one(pdir: Path) -> None:
    (pdir / "a.yaml").write_text(good("x").replace("kind: SeccompProfile", "kind: SecompProfile"))
    assert messages(pdir) == ['profiles.d/a.yaml[0] kind: unknown kind "SecompProfile" '
                              "(did you mean SeccompProfile?)"]


def test_every_kind_is_read(pdir: Path) -> None:
    (pdir / "aa.yaml").write_text(
        "apiVersion: security-profiles-operator.x-k8s.io/v1beta1\nkind: AppArmorProfile\n"
        "metadata: {name: aa}\nspec: {abstract: {}}\n---\n"
        "apiVersion: security-profiles-operator.x-k8s.io/v1\nkind: SelinuxProfile\n"
        "metadata: {name: se}\nspec: {allow: {}}\n"
    )
    desired = load_directory(pdir)
    assert key("aa", Kind.APPARMOR) in desired.profiles
    assert key("se", Kind.SELINUX) in desired.profiles


def test_unknown_api_version(pdir: Path) -> None:
    (pdir / "a.yaml").write_text(good("x").replace("x-k8s.io/v1", "x-k8s.io/v2"))
    assert 'unknown apiVersion "security-profiles-operator.x-k8s.io/v2"' in messages(pdir)[0]


def test_leftovers_and_hidden_files_are_ignored(pdir: Path) -> None:
    for name in [".hidden.yaml", "a.yaml~", "a.yaml.dpkg-old", "a.yaml.dpkg-new", ".a.yaml.swp",
                 "#a.yaml#", "README.md", "a.yaml.bak"]:
        (pdir / name).write_text("not: [valid")
    (pdir / "real.yml").write_text(good("real"))
    desired = load_directory(pdir)
    assert list(desired.profiles) == [key("real")]
    assert desired.errors == ()


def test_subdirectories_are_read(pdir: Path) -> None:
    (pdir / "team-a").mkdir()
    (pdir / "team-a" / "p.yaml").write_text(good("nested"))
    desired = load_directory(pdir)
    assert desired.profiles[key("nested")].origin.file == "team-a/p.yaml"


def test_configmap_layout_with_data_symlinks(pdir: Path) -> None:
    ts = pdir / "..2026_11_29_00_00_00.000000001"
    ts.mkdir()
    (ts / "p.yaml").write_text(good("from-configmap"))
    os.symlink(ts.name, pdir / "..data")
    os.symlink("..data/p.yaml", pdir / "p.yaml")
    desired = load_directory(pdir)
    assert list(desired.profiles) == [key("from-configmap")]
    assert desired.profiles[key("from-configmap")].origin.file == "p.yaml"


def test_symlink_out_of_the_directory_is_not_followed(pdir: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.yaml"
    outside.write_text(good("outsider"))
    os.symlink(outside, pdir / "link.yaml")
    desired = load_directory(pdir)
    assert desired.profiles == {}
    assert desired.errors[0].code == "symlink-escapes"


def test_missing_directory_makes_the_state_incomplete(tmp_path: Path) -> None:
    desired = load_directory(tmp_path / "nope")
    assert not desired.complete
    assert desired.holds(key("anything"), "any.yaml")


def test_metadata_bookkeeping_is_accepted_and_status_ignored(pdir: Path) -> None:
    (pdir / "a.yaml").write_text(good("x").replace(
        "metadata:\n  name: x\n",
        "metadata:\n  name: x\n  namespace: default\n  labels: {a: b}\n  uid: abc\n"
    ) + "status:\n  status: Installed\n")
    assert key("x") in load_directory(pdir).profiles


def test_oversized_file_is_refused(pdir: Path) -> None:
    (pdir / "big.yaml").write_text("# " + "x" * (4 * 1024 * 1024) + "\n")
    assert load_directory(pdir).errors[0].code == "file-too-large"


def test_memo_reuses_unchanged_files_and_sees_changes(pdir: Path) -> None:
    memo = FileMemo()
    (pdir / "a.yaml").write_text(good("a"))
    (pdir / "b.yaml").write_text(good("b"))
    first = load_directory(pdir, memo=memo)
    (pdir / "b.yaml").write_text(good("b").replace("read", "write"))
    second = load_directory(pdir, memo=memo)
    assert second.profiles[key("a")] is first.profiles[key("a")]  # not re-parsed
    assert second.profiles[key("b")].spec.syscalls[0].names == ("write",)
    (pdir / "a.yaml").unlink()
    (pdir / "c.yaml").write_text(good("b"))  # a conflict with b.yaml must still be detected
    third = load_directory(pdir, memo=memo)
    assert key("a") not in third.profiles
    assert key("b") in third.key_errors


def test_parse_cache_returns_exactly_what_parsing_returns(pdir: Path, tmp_path: Path) -> None:
    from agent.model.parsecache import ParseCache  # noqa: PLC0415

    body = """
        baseProfileName: base
        disabled: true
        defaultAction: SCMP_ACT_ERRNO
        defaultErrnoRet: 38
        architectures: [SCMP_ARCH_X86_64]
        flags: [SECCOMP_FILTER_FLAG_LOG]
        listenerPath: /run/agent.sock
        listenerMetadata: meta
        syscalls:
          - {names: [read, write], action: SCMP_ACT_ALLOW}
          - {names: [socket], action: SCMP_ACT_ERRNO, errnoRet: 97,
             args: [{index: 0, value: 10, valueTwo: 3, op: SCMP_CMP_MASKED_EQ}]}
          - {names: [openat], action: SCMP_ACT_NOTIFY}
        """
    (pdir / "a.yaml").write_text(seccomp_doc("full", body) + "---\n" + good("other"))
    (pdir / "plain.json").write_text('{"defaultAction": "SCMP_ACT_LOG", "syscalls": '
                                     '[{"names": ["read"], "action": "SCMP_ACT_ERRNO", '
                                     '"errnoRet": 0}]}')
    (pdir / "bad.yaml").write_text(good("bad").replace("SCMP_ACT_ALLOW", "SCMP_ACT_ALOW"))
    fresh = load_directory(pdir)
    state = tmp_path / "state"
    first = ParseCache(state)
    load_directory(pdir, cache=first)
    first.save()
    second = ParseCache(state)
    cached = load_directory(pdir, cache=second)
    assert second.hits == 2  # a.yaml and plain.json; bad.yaml is never cached
    assert cached.profiles == fresh.profiles
    assert [str(e) for e in cached.errors] == [str(e) for e in fresh.errors]
    assert cached.key_errors.keys() == fresh.key_errors.keys()


def test_invalid_seccomp_names_only_seccomp_documents(pdir: Path) -> None:
    (pdir / "aa.yaml").write_text(
        "apiVersion: security-profiles-operator.x-k8s.io/v1\nkind: AppArmorProfile\n"
        "metadata: {name: shared}\nspec: {abstract: {}}\n"
    )
    (pdir / "bad.yaml").write_text(good("broken").replace("SCMP_ACT_ALLOW", "SCMP_ACT_ALOW"))
    desired = load_directory(pdir)
    assert list(desired.invalid_names(Kind.SECCOMP)) == ["broken"]
    assert desired.of_kinds({Kind.SECCOMP}) == {}
