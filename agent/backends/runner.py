"""The one place secprof runs other programs: argv lists, timeouts, captured output, no shell.

Backends take a :class:`Runner`; tests of their logic pass a fake one (and say so), tests of
the real thing pass :class:`SubprocessRunner`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from agent.codes import Code
from agent.errors import BackendError

_TAIL = 4000  # characters of output an error carries


@dataclass(frozen=True, slots=True, kw_only=True)
class RunResult:
    """What one program run did. ``returncode`` is the program's own exit status."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str = ""
    stderr: str = ""
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def output(self) -> str:
        """stdout and stderr together, for messages (tools split them arbitrarily)."""
        return "\n".join(part for part in (self.stdout.strip(), self.stderr.strip()) if part)


class Runner(Protocol):
    def run(self, argv: Sequence[str], *, timeout_s: float) -> RunResult:
        """Run ``argv`` (no shell) and wait at most ``timeout_s``.

        Raises :class:`~agent.errors.BackendError` (``tool-missing``, ``tool-timeout``) when the
        program cannot be started or does not finish; a non-zero exit is a result, not an error.
        """
        ...


class SubprocessRunner:
    """:class:`Runner` on :mod:`subprocess`: stdin is ``/dev/null``, output is captured as text.

    ``env`` adds to (or overrides) the agent's environment; ``LC_ALL=C`` is always set, because
    callers parse the tools' English messages.
    """

    def __init__(self, *, env: Mapping[str, str] | None = None) -> None:
        self._env = {**os.environ, **(env or {}), "LC_ALL": "C"}

    def run(self, argv: Sequence[str], *, timeout_s: float) -> RunResult:
        # Imported by the first run (5 ms of imports): a no-op apply runs no program.
        import subprocess  # noqa: PLC0415

        args = [str(a) for a in argv]
        start = time.monotonic()
        try:
            done = subprocess.run(
                args, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                errors="replace", timeout=timeout_s, env=self._env, check=False,
            )
        except FileNotFoundError as exc:
            raise BackendError(
                f"cannot run {args[0]}: not found", argv=args, code=Code.TOOL_MISSING,
                hint="install the package that provides it (see the README)",
            ) from exc
        except PermissionError as exc:
            raise BackendError(
                f"cannot run {args[0]}: permission denied", argv=args, code=Code.TOOL_MISSING,
            ) from exc
        except subprocess.TimeoutExpired as exc:
            raise BackendError(
                f"{args[0]} did not finish within {timeout_s:g} s and was killed", argv=args,
                code=Code.TOOL_TIMEOUT, stderr_tail=_text(exc.stderr)[-_TAIL:],
            ) from exc
        return RunResult(
            argv=tuple(args), returncode=done.returncode, stdout=done.stdout,
            stderr=done.stderr, duration_s=time.monotonic() - start,
        )


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode("utf-8", "replace")


def failure(message: str, result: RunResult, *, code: str, hint: str = "") -> BackendError:
    """A :class:`BackendError` for a run that exited non-zero, carrying its argv and output."""
    return BackendError(
        message, argv=result.argv, exit_code=result.returncode,
        stderr_tail=result.output[-_TAIL:], code=code, hint=hint,
    )
