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
class Config:
    """The whole configuration; ``source`` is the file it came from (``None``: built-in)."""

    agent: AgentSection = field(default_factory=AgentSection)
    seccomp: SeccompSection = field(default_factory=SeccompSection)
    source: Path | None = None


class _Table:
    """Typed, path-aware reads from one TOML table; :meth:`finish` rejects what was not read."""

    def __init__(self, data: Mapping[str, Any], path: str, base_dir: Path) -> None:
        self._data = data
        self._path = path
        self._base_dir = base_dir
        self._seen: set[str] = set()

    def _where(self, key: str) -> str:
        return f"[{self._path}] {key}"

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

    def path(self, key: str, default: Path) -> Path:
        raw = self._get(key, None, lambda v: isinstance(v, str) and v != "", "a non-empty path")
        if raw is None:
            return default
        return Path(os.path.normpath(self._base_dir / Path(raw)))

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
    return _Table(section, name, base_dir)


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


_SECTIONS = ("agent", "seccomp")


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
            agent=_agent(data, base_dir), seccomp=_seccomp(data, base_dir), source=source
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
