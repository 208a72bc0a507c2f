"""SelinuxProfile/RawSelinuxProfile parsing and CIL rendering: SPO's vectors, deny lists,
injection attempts, determinism (pure; no semodule)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from agent.errors import ManifestError
from agent.model.decode import DocContext, Node
from agent.model.profile import Kind, Origin, ProfileKey
from agent.model.selinux import (
    DEFAULT_TEMPLATE,
    Mode,
    RawSelinuxProfile,
    SelinuxProfile,
    parse_raw_selinux_spec,
    parse_selinux_spec,
)
from agent.selinux.render import (
    raw_policy_problem,
    render_raw,
    render_selinux,
    source_field,
)
from agent.selinux.rules import Rules, block_name, module_name, usage
from agent.selinux.shipped import template_names
from tests.support.spo import SPO

RULES = Rules(allowed_system_profiles=frozenset({"container", "net_container"}))


def parse(name: str, spec: Any) -> SelinuxProfile:
    origin = Origin(file="p.yaml", display="p.yaml", index=0)
    return parse_selinux_spec(Node(spec, "spec", DocContext("p.yaml", 0)),
                              ProfileKey(Kind.SELINUX, name), origin)


def parse_raw(name: str, spec: Any) -> RawSelinuxProfile:
    origin = Origin(file="r.yaml", display="r.yaml", index=2)
    return parse_raw_selinux_spec(Node(spec, "spec", DocContext("r.yaml", 2)),
                                  ProfileKey(Kind.RAW_SELINUX, name), origin)


def render(name: str, spec: Any, *, rules: Rules = RULES,
           inherited: dict[str, str | None] | None = None) -> str:
    return render_selinux(parse(name, spec), rules, inherited=inherited or {}).decode()


def test_errorlogger_exact() -> None:
    spec = {"inherit": [{"name": "container"}], "allow": {"var_log_t": {
        "dir": ["open", "read", "getattr", "lock", "search", "ioctl", "add_name",
                "remove_name", "write"],
        "file": ["getattr", "read", "write", "append", "ioctl", "lock", "map", "open",
                 "create"],
        "sock_file": ["getattr", "read", "write", "append", "open"]}}}
    assert render("foo-bar", spec) == (
        "(block foo-bar\n"
        "(blockinherit container)\n"
        "(allow process var_log_t ( dir ( add_name getattr ioctl lock open read remove_name "
        "search write )))\n"
        "(allow process var_log_t ( file ( append create getattr ioctl lock map open read "
        "write )))\n"
        "(allow process var_log_t ( sock_file ( append getattr open read write )))\n"
        ")\n")


def test_self_sorts_first_and_names_own_process() -> None:
    spec = {"inherit": [{"kind": "System", "name": "container"}], "allow": {
        "node_t": {"tcp_socket": ["name_bind"]}, "http_port_t": {"tcp_socket": ["name_bind"]},
        "proc_t": {"filesystem": ["associate"]}, "@self": {"tcp_socket": ["listen"]}}}
    assert render("test-selinux-recording-nginx", spec).splitlines()[2:4] == [
        "(allow process test-selinux-recording-nginx.process ( tcp_socket ( listen )))",
        "(allow process http_port_t ( tcp_socket ( name_bind )))",
    ]


def test_inheriting_a_profile_drops_container() -> None:
    text = render("child", {"inherit": [{"kind": "SelinuxProfile", "name": "foo"}],
                            "allow": {"http_port_t": {"tcp_socket": ["name_bind"]}}},
                  inherited={"foo": None})
    assert "(blockinherit foo)" in text
    assert "(blockinherit container)" not in text


def test_permissive_and_net_container() -> None:
    text = render("foo", {"mode": "Permissive", "inherit": [{"name": "net_container"}]})
    assert text == ("(block foo\n(blockinherit container)\n(blockinherit net_container)\n"
                    "(typepermissive process)\n)\n")
    assert parse("foo", {"mode": "Enforcing"}).mode is Mode.ENFORCING
    assert "typepermissive" not in render("foo", {"mode": "Enforcing"})


def test_default_inherit_is_container() -> None:
    assert render("foo", {}) == "(block foo\n(blockinherit container)\n)\n"


def test_byte_deterministic_whatever_the_order_written() -> None:
    one = {"allow": {"b_t": {"file": ["write", "read", "read"], "dir": ["search"]},
                     "a_t": {"file": ["open"]}}}
    two = {"allow": {"a_t": {"file": ["open"]},
                     "b_t": {"dir": ["search"], "file": ["read", "write"]}}}
    assert render("x", one) == render("x", two)


@pytest.mark.parametrize(("allow", "field", "message"), [
    ({"shadow_t": {"file": ["read"]}}, "spec.allow.shadow_t", "type shadow_t is denied"),
    ({"var_log_t": {"capability": ["sys_admin"]}}, "spec.allow.var_log_t.capability",
     "class capability is denied"),
    ({"var_log_t": {"file": ["read", "relabelto"]}}, "spec.allow.var_log_t.file[1]",
     "permission relabelto is denied"),
])
def test_deny_lists(allow: Any, field: str, message: str) -> None:
    with pytest.raises(ManifestError) as info:
        render("x", {"allow": allow})
    assert info.value.field == field
    assert info.value.message == message
    assert str(info.value).startswith("p.yaml[0] ")


@pytest.mark.parametrize(("spec", "field", "fragment"), [
    ({"allow": {"var_log_t) (typeattribute container_runtime_domain (process))": {
        "file": ["read"]}}}, "spec.allow.var_log_t) (typeattribute", "invalid label key"),
    ({"allow": {"var_log_t": {"dir) (typeattribute container_runtime_domain (process))": [
        "read"]}}}, "spec.allow.var_log_t.dir)", "invalid object class"),
    ({"allow": {"var_log_t": {"dir": ["read )))(allow"]}}}, "spec.allow.var_log_t.dir[0]",
     "invalid permission"),
    ({"allow": {"var_log_t": {"dir": []}}}, "spec.allow.var_log_t.dir", "at least one"),
    ({"inherit": [{"kind": "InvalidKind", "name": "foo"}]}, "spec.inherit[0].kind",
     "InvalidKind/foo: unknown inherit kind"),
    ({"inherit": [{"name": "container) (allow"}]}, "spec.inherit[0].name", "not a valid"),
    ({"inherit": [{"name": "container"}, {"name": "container"}]}, "spec.inherit[1]",
     "duplicate"),
    ({"inherit": [{"kind": "SelinuxProfile", "name": "x"}]}, "spec.inherit[0].name",
     "cannot inherit itself"),
    ({"mode": "Enforced"}, "spec.mode", "did you mean Enforcing"),
    ({"alow": {}}, "spec.alow", "did you mean allow"),
])
def test_parse_errors_name_the_field(spec: Any, field: str, fragment: str) -> None:
    with pytest.raises(ManifestError) as info:
        parse("x", spec)
    assert info.value.field.startswith(field)
    assert fragment in info.value.message


@pytest.mark.parametrize("name", ["9lives", "a.b", "a_b"])
def test_names_that_cannot_be_cil_blocks(name: str) -> None:
    with pytest.raises(ManifestError) as info:
        parse(name, {})
    assert info.value.field == "metadata.name"
    with pytest.raises(ManifestError):
        parse_raw(name, {"policy": "(allow process self (file (read)))"})


def test_a_profile_cannot_take_a_template_name() -> None:
    with pytest.raises(ManifestError, match="name of a system template") as info:
        render("container", {})
    assert info.value.field == "metadata.name"


def test_inherit_errors_at_build() -> None:
    with pytest.raises(ManifestError, match="unexistent-system-ref not in"):
        render("x", {"inherit": [{"kind": "System", "name": "unexistent-system-ref"}]})
    with pytest.raises(ManifestError,
                       match="couldn't find inherit reference SelinuxProfile/unexistent-ref"):
        render("x", {"inherit": [{"kind": "SelinuxProfile", "name": "unexistent-ref"}]})
    with pytest.raises(ManifestError, match="SelinuxProfile/base cannot be used: disabled"):
        render("x", {"inherit": [{"kind": "SelinuxProfile", "name": "base"}]},
               inherited={"base": "disabled"})


def test_names_of_the_two_kinds_never_collide() -> None:
    sel, raw = ProfileKey(Kind.SELINUX, "x"), ProfileKey(Kind.RAW_SELINUX, "x")
    assert module_name(sel) == block_name(sel) == "x"
    assert module_name(raw) == block_name(raw) == "x_"
    assert usage(sel) == "x.process"
    assert usage(raw) == "x_.process"
    assert all("_" not in module_name(ProfileKey(Kind.SELINUX, n)) for n in ("a", "a-b"))


def test_raw_wrapped_as_spo() -> None:
    profile = parse_raw("errorlogger", {"policy": "\n(blockinherit container)\n"
                                        "(allow process var_log_t ( dir ( open ))) \n\n"})
    assert render_raw(profile, RULES) == (
        b"(block errorlogger_\n    (blockinherit container)\n"
        b"    (allow process var_log_t ( dir ( open )))\n)")


@pytest.mark.parametrize(("policy", "fragment"), [
    ("(allow process self (file (read))))\n(allow kernel_t self (file (read)))", "unmatched"),
    ("(allow process self (file (read))", "unbalanced"),
    ("(typepermissive process)", "restricted global directive 'typepermissive'"),
    ("(optional x (roletype system_r process))", "'optional'"),
    ("(allow process self (file (read)))\n(ROLE r)", "'ROLE' on line 2"),
    ("(in container (allow process shadow_t (file (read))))", "'in'"),
    ("(blockinherit unconfined)", "only the allowed system profiles"),
    ("", "must not be empty"),
])
def test_raw_policy_refused(policy: str, fragment: str) -> None:
    with pytest.raises(ManifestError) as info:
        render_raw(parse_raw("x", {"policy": policy}), RULES)
    assert info.value.field == "spec.policy"
    assert fragment in info.value.message


def test_raw_comments_and_strings_are_not_directives() -> None:
    policy = '; the role of this "(" is none\n(allow process self (file (read)))\n' \
             '(typetransition process tmp_t file "role)" tmp_t)'
    assert raw_policy_problem(policy, RULES) is None


def test_shipped_templates_include_spo_names() -> None:
    assert {"container", "net_container"} <= template_names()


@pytest.mark.skipif(SPO is None, reason="SPO reference data (../shared/spo) not here")
def test_spo_vectors() -> None:
    assert SPO is not None
    data = yaml.safe_load((SPO / "vectors/selinux-cil-vectors.yaml").read_text())
    for case in data["cases"]:
        if "profile" not in case:
            with pytest.raises(ManifestError, match=case["want_error"]):
                render("x", {"allow": case["allow"]})
            continue
        rules = Rules(allowed_system_profiles=frozenset(
            case.get("allowed_system_profiles", ["container"])))
        spec = case["profile"]["spec"]
        parents = {i["name"]: None for i in spec.get("inherit", ())
                   if i.get("kind") == "SelinuxProfile"}
        text = render(case["profile"]["metadata"]["name"], spec, rules=rules,
                      inherited=parents)
        if "want_exact" in case:
            assert text == case["want_exact"], case["name"]
        for want in case.get("want_contains", ()):
            assert want in text, case["name"]
        for unwanted in case.get("want_not_contains", ()):
            assert unwanted not in text, case["name"]
    restricted = set(data["raw_selinux_profile"]["restricted_top_level_directives"])
    for directive in sorted(restricted):
        problem = raw_policy_problem(f"({directive} x)", RULES)
        assert problem is not None and directive in problem, directive


def test_lines_of_a_module_map_back_to_manifest_fields() -> None:
    key = ProfileKey(Kind.SELINUX, "web")
    content = render_selinux(parse("web", {"mode": "Permissive", "allow": {
        "@self": {"tcp_socket": ["listen"]}, "var_log_t": {"file": ["read"]}}}), RULES,
        inherited={})
    fields = [source_field(key, content, n) for n in range(0, 8)]
    assert fields == [None, None, "spec.inherit", "spec.mode", "spec.allow.@self.tcp_socket",
                      "spec.allow.var_log_t.file", None, None]
    raw = ProfileKey(Kind.RAW_SELINUX, "web")
    assert source_field(raw, b"(block web_\n    (allow x)\n)", 2) == (
        "spec.policy, line 1 after leading blank lines")


def test_the_rules_default_template_is_the_models() -> None:
    """agent.selinux.rules spells it out rather than import the model (see its docstring)."""
    assert Rules().allowed_system_profiles == frozenset({DEFAULT_TEMPLATE})
