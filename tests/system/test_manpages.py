"""The man pages the package ships are generated from the parser and config.example.toml."""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agent.cli.main import build_parser
from tests.system.conftest import REPO


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("man")
    subprocess.run([sys.executable, str(REPO / "scripts/manpages.py"), str(out)], check=True,
                   timeout=60)
    return out


def _plain(page: Path) -> str:
    """The page as man renders it, or its roff source without man."""
    if shutil.which("man"):
        proc = subprocess.run(["man", "-l", str(page)], capture_output=True, text=True,
                              env={"MANWIDTH": "200", "PATH": "/usr/bin:/bin"}, timeout=60)
        assert proc.returncode == 0 and not proc.stderr, proc.stderr
        return proc.stdout
    return page.read_text().replace("\\-", "-")


def test_every_command_and_option_is_in_secprof_8(pages: Path) -> None:
    text = _plain(pages / "secprof.8")
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for name, parser in sub.choices.items():  # type: ignore[union-attr]
        assert re.search(rf"^\s*secprof {name} ", text, re.M), name
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):  # every command has it
                continue
            for option in action.option_strings:
                assert option in text, (name, option)
    assert "78" in text and "config-invalid" in text


def test_every_config_key_is_in_secprof_toml_5(pages: Path) -> None:
    text = _plain(pages / "secprof.toml.5")
    example = (REPO / "config.example.toml").read_text()
    for section in re.findall(r"^(\[\w+\])$", example, re.M):
        assert f"SECTION {section}" in text, section
    for key, default in re.findall(r"^(\w+) = (.*)$", example, re.M):
        assert re.search(rf"^\s*{key} = {re.escape(default)}$", text, re.M), key
