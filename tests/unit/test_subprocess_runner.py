"""SubprocessRunner runs real programs: argv without a shell, captured output, exit status as
a result, missing programs and timeouts as BackendErrors."""

from __future__ import annotations

import sys
import time

import pytest

from agent.backends.runner import SubprocessRunner, failure
from agent.errors import BackendError


def test_output_and_status_are_captured() -> None:
    result = SubprocessRunner(env={"SECPROF_X": "1"}).run(
        [sys.executable, "-c", "import os, sys; print(os.environ['SECPROF_X'], "
         "os.environ['LC_ALL']); print('oops', file=sys.stderr); sys.exit(3)"],
        timeout_s=30)
    assert (result.returncode, result.stdout, result.stderr) == (3, "1 C\n", "oops\n")
    assert not result.ok
    assert result.output == "1 C\noops"
    error = failure("it failed", result, code="tool-missing")
    assert error.exit_code == 3 and error.argv[0] == sys.executable
    assert error.stderr_tail == "1 C\noops"


def test_no_shell_is_involved() -> None:
    result = SubprocessRunner().run([sys.executable, "-c", "import sys; print(sys.argv[1])",
                                     "$HOME; echo x"], timeout_s=30)
    assert result.stdout == "$HOME; echo x\n"


def test_missing_program() -> None:
    with pytest.raises(BackendError) as info:
        SubprocessRunner().run(["/nonexistent/semodule", "-l"], timeout_s=5)
    assert info.value.code == "tool-missing"
    assert info.value.argv == ("/nonexistent/semodule", "-l")


def test_timeout_kills() -> None:
    start = time.monotonic()
    with pytest.raises(BackendError) as info:
        SubprocessRunner().run([sys.executable, "-c", "import time; time.sleep(30)"],
                               timeout_s=0.5)
    assert info.value.code == "tool-timeout"
    assert time.monotonic() - start < 20
