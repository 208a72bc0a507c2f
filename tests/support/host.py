"""A host laid out in a tmp dir for end-to-end tests: config, desired state, seccomp root."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agent.cli.main import main


@dataclass
class Host:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.toml"

    @property
    def profiles(self) -> Path:
        return self.root / "profiles.d"

    def installed(self, name: str) -> Path:
        return self.root / "seccomp" / "secprof" / f"{name}.json"

    def write_config(self, *, insecure: Sequence[str] = (), trust: Sequence[str] = (),
                     oci: Mapping[str, Any] | None = None, extra: str = "") -> None:
        """``trust``: scopes taken unsigned (verify = false); ``extra``: more TOML, verbatim
        (other [[trust]] entries, [signing])."""
        lines = ["[agent]", 'profiles_dir = "profiles.d"', 'state_dir = "state"',
                 'cache_dir = "cache"', "[seccomp]", 'root = "seccomp"', "[oci]",
                 f"insecure_registries = {json.dumps(list(insecure))}"]
        lines += [f"{key} = {json.dumps(value)}" for key, value in (oci or {}).items()]
        for scope in trust:
            lines += ["[[trust]]", f"scope = {json.dumps(scope)}", "verify = false"]
        self.config.write_text("\n".join(lines) + "\n" + extra)

    def write_profile(self, name: str, text: str) -> None:
        self.profiles.mkdir(exist_ok=True)
        (self.profiles / f"{name}.yaml").write_text(text)

    def run(self, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
        """Run the CLI in-process with this host's config; returns (exit code, out, err)."""
        capsys.readouterr()
        code = main([*argv, "--config", str(self.config)])
        out, err = capsys.readouterr()
        return code, out, err

    def run_json(self, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
        code, out, err = self.run(capsys, *argv, "--json")
        assert out, err
        return code, json.loads(out)


def seccomp_profile(name: str, *, base: str = "", allow: Sequence[str] = ("read",)) -> str:
    """A SeccompProfile manifest allowing ``allow``, optionally stacked on ``base``."""
    base_line = f"  baseProfileName: {base}\n" if base else ""
    names = "".join(f"        - {n}\n" for n in allow)
    return (
        "apiVersion: security-profiles-operator.x-k8s.io/v1\nkind: SeccompProfile\n"
        f"metadata:\n  name: {name}\nspec:\n{base_line}  defaultAction: SCMP_ACT_ERRNO\n"
        f"  architectures: [SCMP_ARCH_X86_64]\n  syscalls:\n    - action: SCMP_ACT_ALLOW\n"
        f"      names:\n{names}"
    )
