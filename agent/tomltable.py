"""Typed, path-aware reads from one TOML table, for :mod:`agent.config` and the sections it
delegates (``[[trust]]``, in :mod:`agent.oci.trust_config`).

Every message names where the value is (``[oci] timeout_s``, ``[[trust]][2] keyless.issuer``), and
:meth:`Table.finish` turns any key that was never read into an "unknown key" error: a silently
ignored typo in a security agent's config is a policy that is not applied.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from agent.errors import ConfigError, did_you_mean

T = TypeVar("T")


class Table:
    """One table; ``label`` names it in messages, ``prefix`` is put before each key (an inline
    table inside it: ``keyless.``). Relative paths are taken relative to ``base_dir``."""

    def __init__(self, data: Mapping[str, Any], label: str, base_dir: Path, *,
                 prefix: str = "") -> None:
        self._data = data
        self._label = label
        self._prefix = prefix
        self._base_dir = base_dir
        self._seen: set[str] = set()

    def where(self, key: str) -> str:
        """How messages name ``key``: ``[[trust]][2] keyless.identity``."""
        return f"{self._label} {self._prefix}{key}"

    def has(self, key: str) -> bool:
        return key in self._data

    def _get(self, key: str, default: T, check: Callable[[Any], bool], kind: str) -> T:
        self._seen.add(key)
        if key not in self._data:
            return default
        value = self._data[key]
        if not check(value):
            raise ConfigError(
                f"{self.where(key)}: expected {kind}, got {type(value).__name__} {value!r}"
            )
        return value  # type: ignore[no-any-return]

    def text(self, key: str, default: str) -> str:
        return self._get(key, default, lambda v: isinstance(v, str), "a string")

    def optional_text(self, key: str) -> str | None:
        return self._get(key, None, lambda v: isinstance(v, str), "a string")

    def integer(
        self, key: str, default: int, *, minimum: int = 0, maximum: int | None = None
    ) -> int:
        value = self._get(
            key, default, lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"
        )
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
            raise ConfigError(f"{self.where(key)}: must be {bound}, got {value}")
        return value

    def number(self, key: str, default: float, *, minimum: float, maximum: float) -> float:
        value = self._get(
            key, default, lambda v: isinstance(v, int | float) and not isinstance(v, bool),
            "a number",
        )
        if not minimum <= value <= maximum:
            raise ConfigError(
                f"{self.where(key)}: must be between {minimum} and {maximum}, got {value}"
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

    def table(self, key: str) -> Table | None:
        """The inline table under ``key`` (``None`` when absent), read with its own keys."""
        value = self._get(key, None, lambda v: isinstance(v, dict), "a table ({ ... })")
        if value is None:
            return None
        return Table(value, self._label, self._base_dir, prefix=f"{self._prefix}{key}.")

    def resolve_path(self, raw: str) -> Path:
        """``raw`` taken relative to the config file's directory."""
        return Path(os.path.normpath(self._base_dir / Path(raw)))

    def path(self, key: str, default: Path) -> Path:
        raw = self._get(key, None, lambda v: isinstance(v, str) and v != "", "a non-empty path")
        if raw is None:
            return default
        return self.resolve_path(raw)

    def optional_path(self, key: str) -> Path | None:
        """A path, or ``None`` when the key is absent or ``""``."""
        raw = self.text(key, "")
        return self.resolve_path(raw) if raw else None

    def fail(self, key: str, message: str, hint: str = "") -> ConfigError:
        """An error about ``key`` of this table, to raise."""
        return ConfigError(f"{self.where(key)}: {message}", hint=hint)

    def finish(self) -> None:
        unknown = sorted(set(self._data) - self._seen)
        if unknown:
            key = unknown[0]
            raise ConfigError(
                f"{self.where(key)}: unknown key{did_you_mean(key, sorted(self._seen))}",
                hint="every key is documented in config.example.toml",
            )


def section(data: Mapping[str, Any], name: str, base_dir: Path) -> Table:
    """The top-level table ``[name]`` (empty when absent)."""
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"[{name}]: expected a table, got {type(value).__name__}")
    return Table(value, f"[{name}]", base_dir)
