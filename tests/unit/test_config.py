"""config.toml: defaults, relative paths, strict keys and types."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

from agent.config import CONFIG_ENV, AgentSection, Config, SeccompSection, load, parse
from agent.errors import ConfigError


def test_defaults_match_the_house_plan() -> None:
    c = Config()
    assert c.agent.profiles_dir == Path("/etc/secprof/profiles.d")
    assert c.agent.socket == Path("/run/secprof/secprof.sock")
    assert c.seccomp.install_dir == Path("/var/lib/kubelet/seccomp/secprof")
    assert c.seccomp.max_base_depth == 15
    assert c.agent.resync_interval_s == 300
    assert c.seccomp.template_capabilities == ()  # Docker's default set
    assert c.seccomp.layout == "flat"


def test_relative_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    cfg = parse('[agent]\nprofiles_dir = "p.d"\n[seccomp]\nroot = "../r"\n',
                source=tmp_path / "etc" / "c.toml")
    assert cfg.agent.profiles_dir == tmp_path / "etc" / "p.d"
    assert cfg.seccomp.root == tmp_path / "r"


@pytest.mark.parametrize(("text", "message"), [
    ("[seccomp]\nmax_base_dept = 3\n",
     "c.toml: [seccomp] max_base_dept: unknown key (did you mean max_base_depth?)"),
    ("[agnet]\n", "c.toml: unknown section [agnet] (did you mean agent?)"),
    ("[seccomp]\nmax_base_depth = '3'\n",
     "c.toml: [seccomp] max_base_depth: expected an integer, got str '3'"),
    ("[seccomp]\nmax_base_depth = 0\n",
     "c.toml: [seccomp] max_base_depth: must be between 1 and 64, got 0"),
    ("[seccomp]\nsubdir = '../up'\n", "c.toml: [seccomp] subdir: '../up' is not a valid name"),
    ("[agent]\nresync_interval_s = true\n",
     "c.toml: [agent] resync_interval_s: expected an integer, got bool True"),
    ("[agent\n", "c.toml: not valid TOML"),
    ("[seccomp]\nlayout = 'nested'\n",
     "c.toml: [seccomp] layout: 'nested' is not one of flat, namespaced"),
    ("[seccomp]\ntemplate_capabilities = ['SYS_ADMIN']\n",
     "c.toml: [seccomp] template_capabilities: 'SYS_ADMIN' is not a capability name"),
    ("agent = 3\n", "c.toml: [agent]: expected a table, got int"),
])
def test_errors_name_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse(text, source=Path("c.toml"))
    assert str(exc.value).startswith(message)


def test_missing_default_file_means_defaults_but_explicit_file_must_exist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    with pytest.raises(ConfigError, match="config file not found"):
        load(tmp_path / "nope.toml")
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError, match="config file not found"):
        load(None)


def test_example_config_documents_every_key_with_its_default() -> None:
    text = (Path(__file__).resolve().parents[2] / "config.example.toml").read_text()
    cfg = parse(text, source=Path("/etc/secprof/config.toml"))
    assert cfg.agent == AgentSection()
    assert cfg.seccomp == SeccompSection()
    for section in (AgentSection, SeccompSection):
        for f in fields(section):
            assert re.search(rf"^{f.name} = ", text, re.MULTILINE), f.name
