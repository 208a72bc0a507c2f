"""The one error tree of secprof.

Every failure the agent can explain is an :class:`AgentError` with a stable kebab-case ``code``
(used in logs, metrics labels, the status API and ``--json`` output), a one-line ``message`` and
an optional ``hint`` that tells the operator what to do next::

    AgentError
    ├── UsageError            bad command line (exit 2)
    ├── ConfigError           config.toml unreadable or invalid (exit 78)
    ├── ManifestError         one document of the desired state is invalid (file, index, field path)
    ├── ResolveError          a seccomp base chain cannot be resolved (missing base, cycle, depth)
    ├── ValidationError       a merged profile is rejected (libseccomp, runtime constraints)
    ├── RegistryError         an OCI registry could not serve what was asked
    │   └── RegistryUnreachable   … because it could not be reached (network, timeout, 5xx):
    │                             the one case where a cached last known good may stand in
    ├── VerificationError     an OCI artifact's signature does not verify under its trust policy
    ├── SigningError          an artifact cannot be signed (key, password, signing services)
    ├── BackendError          a host mutation failed (argv, exit code, stderr tail)
    ├── ApiError              the status API refused a request (carries the HTTP status)
    └── DaemonUnavailable     the CLI cannot reach the daemon's socket (exit 69)

Every code is a member of :class:`agent.codes.Code`, the one registry, which also says the exit
code each gives. Only the CLI entry point and the daemon entry point turn these into exit codes
(:mod:`agent.cli.main`, by that registry); everything else raises or records them.
"""

from __future__ import annotations

from collections.abc import Sequence

from agent.codes import Code


class AgentError(Exception):
    """Base class: an error the agent understands and can explain to an operator."""

    default_code = Code.AGENT_ERROR

    def __init__(self, message: str, *, code: str | None = None, hint: str = "") -> None:
        super().__init__(message)
        self.code = code or self.default_code
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, object]:
        """The error as the JSON object the API and ``--json`` output use."""
        out: dict[str, object] = {"code": self.code, "message": self.message}
        if self.hint:
            out["hint"] = self.hint
        return out


class UsageError(AgentError):
    default_code = Code.USAGE


class ConfigError(AgentError):
    default_code = Code.CONFIG_INVALID


class ManifestError(AgentError):
    """A problem with one document of the desired state.

    ``file`` is the path as shown to the operator, ``index`` the 0-based document index inside a
    multi-document file (``None`` for file-level problems), ``field`` a path such as
    ``spec.syscalls[3].action``.
    """

    default_code = Code.MANIFEST_INVALID

    def __init__(
        self,
        message: str,
        *,
        file: str,
        index: int | None = None,
        field: str = "",
        code: str | None = None,
        hint: str = "",
    ) -> None:
        super().__init__(message, code=code, hint=hint)
        self.file = file
        self.index = index
        self.field = field

    @property
    def location(self) -> str:
        where = self.file if self.index is None else f"{self.file}[{self.index}]"
        return f"{where} {self.field}" if self.field else where

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"

    def to_dict(self) -> dict[str, object]:
        out = super().to_dict()
        out["file"] = self.file
        if self.index is not None:
            out["index"] = self.index
        if self.field:
            out["field"] = self.field
        return out


class ResolveError(AgentError):
    default_code = Code.RESOLVE_FAILED


class ValidationError(AgentError):
    default_code = Code.PROFILE_INVALID


class RegistryError(AgentError):
    default_code = Code.REGISTRY_ERROR


class RegistryUnreachable(RegistryError):
    """The registry did not answer usefully (connection, timeout, 429/5xx after retries).

    Distinct from every other :class:`RegistryError` because it says nothing about the artifact:
    a cached last known good may be used instead. A refusal (401/403/404) or a digest mismatch
    is an answer, and never falls back.
    """

    default_code = Code.REGISTRY_UNREACHABLE


class VerificationError(AgentError):
    default_code = Code.SIGNATURE_INVALID


class SigningError(AgentError):
    default_code = Code.SIGNING_FAILED


class BackendError(AgentError):
    """A host mutation failed; carries what ran and what it said."""

    default_code = Code.BACKEND_FAILED

    def __init__(
        self,
        message: str,
        *,
        argv: Sequence[str] = (),
        exit_code: int | None = None,
        stderr_tail: str = "",
        code: str | None = None,
        hint: str = "",
    ) -> None:
        super().__init__(message, code=code, hint=hint)
        self.argv = tuple(argv)
        self.exit_code = exit_code
        self.stderr_tail = stderr_tail


class ApiError(AgentError):
    """A status API request that was refused or failed, with its HTTP ``status``.

    The server raises it to answer ``{"error": {"code", "message"}}`` with that status; the
    client raises it when the daemon answered that way, so both ends speak the same error.
    """

    default_code = Code.API_ERROR

    def __init__(self, status: int, message: str, *, code: str | None = None,
                 hint: str = "") -> None:
        super().__init__(message, code=code, hint=hint)
        self.status = status


class DaemonUnavailable(AgentError):
    default_code = Code.DAEMON_UNAVAILABLE


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    """A ``" (did you mean X?)"`` suffix for the closest of ``choices``, or ``""``.

    Only for words of a plausible length: difflib is quadratic, and a typo is short."""
    if len(word) > 64:
        return ""
    import difflib  # noqa: PLC0415 -- only a misspelling pays for it

    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def shown(value: object, limit: int = 80) -> str:
    """``value`` as an error message quotes it: at most ``limit`` characters, so that a hostile
    input (a megabyte-long name, an integer of ten thousand digits) never makes a message, a
    log line or a status row as large as itself."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"an integer of {value.bit_length()} bits"
    text = str(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"
