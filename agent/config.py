"""``config.toml`` → frozen dataclasses.

Every key has a default, every path can point anywhere (tests point them all at a tmp dir), and an
unknown key is an error that names its path (``[seccomp] max_base_dept``), because a silently
ignored typo in a security agent's config is a policy that is not applied. Relative paths are
taken relative to the directory of the config file. Every key is documented in
``config.example.toml``.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from agent.errors import ConfigError, did_you_mean
from agent.fsutil import name_problem
from agent.oci.reference import parse_host, parse_scope
from agent.oci.trust import TrustPolicy

DEFAULT_CONFIG_PATH = Path("/etc/secprof/config.toml")
CONFIG_ENV = "SECPROF_CONFIG"

T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentSection:
    profiles_dir: Path = Path("/etc/secprof/profiles.d")
    state_dir: Path = Path("/var/lib/secprof")
    cache_dir: Path = Path("/var/cache/secprof")
    socket: Path = Path("/run/secprof/secprof.sock")
    socket_group: str = "secprof"
    resync_interval_s: int = 300


@dataclass(frozen=True, slots=True, kw_only=True)
class SeccompSection:
    root: Path = Path("/var/lib/kubelet/seccomp")
    subdir: str = "secprof"
    max_base_depth: int = 15

    @property
    def install_dir(self) -> Path:
        return self.root / self.subdir


@dataclass(frozen=True, slots=True, kw_only=True)
class OciSection:
    tag_ttl_s: int = 86400
    cache_max_entries: int = 1000
    cache_max_bytes: int = 64 * 1024 * 1024
    max_profile_bytes: int = 1024 * 1024
    timeout_s: float = 30.0  # per registry operation, retries included
    connect_timeout_s: float = 5.0
    retries: int = 2
    failure_backoff_s: int = 30
    failure_backoff_max_s: int = 900
    insecure_registries: tuple[str, ...] = ()
    auth_file: Path | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """The whole configuration; ``source`` is the file it came from (``None``: built-in)."""

    agent: AgentSection = field(default_factory=AgentSection)
    seccomp: SeccompSection = field(default_factory=SeccompSection)
    oci: OciSection = field(default_factory=OciSection)
    trust: tuple[TrustPolicy, ...] = ()
    source: Path | None = None


class _Table:
    """Typed, path-aware reads from one TOML table; :meth:`finish` rejects what was not read."""

    def __init__(self, data: Mapping[str, Any], label: str, base_dir: Path) -> None:
        self._data = data
        self._label = label  # how messages name the table: "[oci]", "[[trust]] #2"
        self._base_dir = base_dir
        self._seen: set[str] = set()

    def _where(self, key: str) -> str:
        return f"{self._label} {key}"

    def _get(self, key: str, default: T, check: Callable[[Any], bool], kind: str) -> T:
        self._seen.add(key)
        if key not in self._data:
            return default
        value = self._data[key]
        if not check(value):
            raise ConfigError(
                f"{self._where(key)}: expected {kind}, got {type(value).__name__} {value!r}"
            )
        return value  # type: ignore[no-any-return]

    def text(self, key: str, default: str) -> str:
        return self._get(key, default, lambda v: isinstance(v, str), "a string")

    def integer(
        self, key: str, default: int, *, minimum: int = 0, maximum: int | None = None
    ) -> int:
        value = self._get(
            key, default, lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"
        )
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
            raise ConfigError(f"{self._where(key)}: must be {bound}, got {value}")
        return value

    def number(self, key: str, default: float, *, minimum: float, maximum: float) -> float:
        value = self._get(
            key, default, lambda v: isinstance(v, int | float) and not isinstance(v, bool),
            "a number",
        )
        if not minimum <= value <= maximum:
            raise ConfigError(
                f"{self._where(key)}: must be between {minimum} and {maximum}, got {value}"
            )
        return float(value)

    def boolean(self, key: str, default: bool | None) -> bool | None:
        return self._get(key, default, lambda v: isinstance(v, bool), "true or false")

    def texts(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self._get(
            key, default, lambda v: isinstance(v, list | tuple) and all(
                isinstance(item, str) for item in v
            ), "a list of strings",
        )
        return tuple(value)

    def path(self, key: str, default: Path) -> Path:
        raw = self._get(key, None, lambda v: isinstance(v, str) and v != "", "a non-empty path")
        if raw is None:
            return default
        return Path(os.path.normpath(self._base_dir / Path(raw)))

    def optional_path(self, key: str) -> Path | None:
        """A path, or ``None`` when the key is absent or ``""``."""
        raw = self.text(key, "")
        return Path(os.path.normpath(self._base_dir / Path(raw))) if raw else None

    def fail(self, key: str, message: str, hint: str = "") -> ConfigError:
        """An error about ``key`` of this table, to raise."""
        return ConfigError(f"{self._where(key)}: {message}", hint=hint)

    def finish(self) -> None:
        unknown = sorted(set(self._data) - self._seen)
        if unknown:
            key = unknown[0]
            raise ConfigError(
                f"{self._where(key)}: unknown key{did_you_mean(key, sorted(self._seen))}",
                hint="every key is documented in config.example.toml",
            )


def _table(data: Mapping[str, Any], name: str, base_dir: Path) -> _Table:
    section = data.get(name, {})
    if not isinstance(section, dict):
        raise ConfigError(f"[{name}]: expected a table, got {type(section).__name__}")
    return _Table(section, f"[{name}]", base_dir)


def _agent(data: Mapping[str, Any], base_dir: Path) -> AgentSection:
    t = _table(data, "agent", base_dir)
    d = AgentSection()
    section = AgentSection(
        profiles_dir=t.path("profiles_dir", d.profiles_dir),
        state_dir=t.path("state_dir", d.state_dir),
        cache_dir=t.path("cache_dir", d.cache_dir),
        socket=t.path("socket", d.socket),
        socket_group=t.text("socket_group", d.socket_group),
        resync_interval_s=t.integer("resync_interval_s", d.resync_interval_s, minimum=1),
    )
    t.finish()
    return section


def _seccomp(data: Mapping[str, Any], base_dir: Path) -> SeccompSection:
    t = _table(data, "seccomp", base_dir)
    d = SeccompSection()
    subdir = t.text("subdir", d.subdir)
    problem = name_problem(subdir)
    if problem:
        raise ConfigError(f"[seccomp] subdir: {problem}")
    section = SeccompSection(
        root=t.path("root", d.root),
        subdir=subdir,
        max_base_depth=t.integer("max_base_depth", d.max_base_depth, minimum=1, maximum=64),
    )
    t.finish()
    return section


def _oci(data: Mapping[str, Any], base_dir: Path) -> OciSection:
    t = _table(data, "oci", base_dir)
    d = OciSection()
    insecure = []
    for entry in t.texts("insecure_registries", d.insecure_registries):
        host = parse_host(entry)
        if host is None:
            raise t.fail("insecure_registries", f"{entry!r} is not a registry host[:port]")
        insecure.append(host)
    backoff = t.integer("failure_backoff_s", d.failure_backoff_s, minimum=1)
    section = OciSection(
        tag_ttl_s=t.integer("tag_ttl_s", d.tag_ttl_s),
        cache_max_entries=t.integer("cache_max_entries", d.cache_max_entries, minimum=1),
        cache_max_bytes=t.integer("cache_max_bytes", d.cache_max_bytes, minimum=1024),
        max_profile_bytes=t.integer("max_profile_bytes", d.max_profile_bytes, minimum=1,
                                    maximum=64 * 1024 * 1024),
        timeout_s=t.number("timeout_s", d.timeout_s, minimum=0.1, maximum=600),
        connect_timeout_s=t.number("connect_timeout_s", d.connect_timeout_s, minimum=0.1,
                                   maximum=600),
        retries=t.integer("retries", d.retries, maximum=5),
        failure_backoff_s=backoff,
        failure_backoff_max_s=t.integer("failure_backoff_max_s", d.failure_backoff_max_s,
                                        minimum=backoff),
        insecure_registries=tuple(sorted(set(insecure))),
        auth_file=t.optional_path("auth_file"),
    )
    t.finish()
    return section


# Keys the signatures work will accept; named here so that a config written for it fails with
# "not supported yet" instead of a bare "unknown key".
_SIGNATURE_KEYS = ("keyless", "public_keys", "trusted_root")


def _trust(data: Mapping[str, Any], base_dir: Path) -> tuple[TrustPolicy, ...]:
    entries = data.get("trust", [])
    if not isinstance(entries, list):
        raise ConfigError("[[trust]]: expected an array of tables (write [[trust]], with double "
                          "brackets), got " + type(entries).__name__)
    policies: list[TrustPolicy] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ConfigError(f"[[trust]] #{index + 1}: expected a table")
        t = _Table(entry, f"[[trust]] #{index + 1}", base_dir)
        scope_text = t.text("scope", "")
        if not scope_text:
            raise t.fail("scope", "required: the registry or repository prefix it covers",
                         hint='scope = "registry.example:5000/profiles"')
        try:
            scope = parse_scope(scope_text)
        except ValueError as exc:
            raise t.fail("scope", f"{scope_text!r}: {exc}") from None
        if str(scope) in seen:
            raise t.fail("scope", f"{scope} is already covered by [[trust]] #{seen[str(scope)]}")
        seen[str(scope)] = index + 1
        for key in _SIGNATURE_KEYS:
            if key in entry:
                raise t.fail(key, "signature verification is not supported yet; for now "
                             "only verify = false is accepted")
        verify = t.boolean("verify", None)
        if verify is None:
            raise t.fail("verify", "required: artifacts are taken unsigned only when the entry "
                         "says verify = false explicitly")
        if verify:
            raise t.fail("verify", "verify = true needs keyless or public_keys, which are not "
                         "supported yet; for now only verify = false is accepted")
        t.finish()
        policies.append(TrustPolicy(scope=scope, verify=verify))
    return tuple(policies)


_SECTIONS = ("agent", "seccomp", "oci", "trust")


def parse(text: str, *, source: Path | None = None) -> Config:
    """Parse config text; relative paths are resolved against ``source``'s directory."""
    where = str(source) if source else "config"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML: {exc}") from None
    for key in data:
        if key not in _SECTIONS:
            raise ConfigError(
                f"{where}: unknown section [{key}]{did_you_mean(key, _SECTIONS)}",
                hint="every section is documented in config.example.toml",
            )
    base_dir = source.parent if source else Path.cwd()
    try:
        return Config(
            agent=_agent(data, base_dir), seccomp=_seccomp(data, base_dir),
            oci=_oci(data, base_dir), trust=_trust(data, base_dir), source=source,
        )
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc.message}", hint=exc.hint) from None


def load(path: Path | None) -> Config:
    """Load the config from ``path``, else ``$SECPROF_CONFIG``, else the default location.

    An explicitly named file must exist; a missing default file means built-in defaults.
    """
    explicit = path is not None or CONFIG_ENV in os.environ
    chosen = path or Path(os.environ.get(CONFIG_ENV, DEFAULT_CONFIG_PATH))
    try:
        text = chosen.read_text(encoding="utf-8")
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"{chosen}: config file not found") from None
        return Config()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{chosen}: cannot read config: {exc}") from None
    return parse(text, source=chosen.absolute())
