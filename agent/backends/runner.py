"""The one place that runs host tools: argv lists, a timeout, captured output, never a shell.

Backends take a :class:`Runner`; the daemon passes :class:`SubprocessRunner`, tests and
benchmarks wrap it in :class:`CountingRunner` to count and record the real calls.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from agent.codes import Code
from agent.errors import BackendError

DEFAULT_TIMEOUT_S = 120.0
_TAIL = 2000  # characters of stderr kept in an error


@dataclass(frozen=True, slots=True, kw_only=True)
class Completed:
    """A finished command: what ran, its exit status and what it printed."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def failure(self, message: str, *, code: str, hint: str = "") -> BackendError:
        """A :class:`BackendError` for this command, carrying argv, status and stderr tail."""
        return BackendError(
            message, argv=self.argv, exit_code=self.returncode,
            stderr_tail=self.stderr[-_TAIL:], code=code, hint=hint,
        )


class Runner(Protocol):
    def run(
        self, argv: Sequence[str], *, timeout_s: float = DEFAULT_TIMEOUT_S,
        stdin: str | None = None,
    ) -> Completed:
        """Run ``argv`` to completion. A missing program or a timeout raises
        :class:`~agent.errors.BackendError`; a non-zero exit is returned, not raised."""
        ...


class SubprocessRunner:
    """:class:`Runner` on :func:`subprocess.run`, with a fixed C locale so that messages are
    parseable whatever the host's language."""

    def __init__(self, *, env: Mapping[str, str] | None = None) -> None:
        base = dict(os.environ if env is None else env)
        base.update(LC_ALL="C", LANG="C")
        self._env = base

    def run(
        self, argv: Sequence[str], *, timeout_s: float = DEFAULT_TIMEOUT_S,
        stdin: str | None = None,
    ) -> Completed:
        args = tuple(argv)
        try:
            if stdin is None:  # never inherit the daemon's stdin
                proc = subprocess.run(
                    args, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                    errors="replace", timeout=timeout_s, env=self._env, check=False,
                )
            else:
                proc = subprocess.run(
                    args, input=stdin, capture_output=True, text=True, errors="replace",
                    timeout=timeout_s, env=self._env, check=False,
                )
        except FileNotFoundError as exc:
            raise BackendError(f"{args[0]} is not installed ({exc.strerror})", argv=args,
                               code=Code.COMMAND_MISSING) from exc
        except PermissionError as exc:
            raise BackendError(f"{args[0]} cannot be run ({exc.strerror})", argv=args,
                               code=Code.COMMAND_MISSING) from exc
        except subprocess.TimeoutExpired as exc:
            raise BackendError(f"{args[0]} did not finish within {timeout_s:g} s", argv=args,
                               code=Code.COMMAND_TIMEOUT) from exc
        return Completed(argv=args, returncode=proc.returncode, stdout=proc.stdout,
                         stderr=proc.stderr)


@dataclass(slots=True)
class CountingRunner:
    """Wraps a real runner and records every command it ran (benchmarks, tests)."""

    inner: Runner
    calls: list[tuple[str, ...]] = field(default_factory=list)

    def run(
        self, argv: Sequence[str], *, timeout_s: float = DEFAULT_TIMEOUT_S,
        stdin: str | None = None,
    ) -> Completed:
        self.calls.append(tuple(argv))
        return self.inner.run(argv, timeout_s=timeout_s, stdin=stdin)
