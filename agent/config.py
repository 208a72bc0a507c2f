"""``config.toml`` → frozen dataclasses.

Every key has a default, every path can point anywhere (tests point them all at a tmp dir), and an
unknown key is an error that names its path (``[seccomp] max_base_dept``), because a silently
ignored typo in a security agent's config is a policy that is not applied. Relative paths are
taken relative to the directory of the config file. Every key is documented in
``config.example.toml``.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.errors import ConfigError, did_you_mean
from agent.fsutil import name_problem
from agent.tomltable import Table
from agent.tomltable import section as toml_section

if TYPE_CHECKING:
    from agent.oci.trust import TrustPolicy

DEFAULT_CONFIG_PATH = Path("/etc/secprof/config.toml")
CONFIG_ENV = "SECPROF_CONFIG"



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
    # Docker-format templates are flattened for these capabilities (empty: Docker's defaults).
    template_capabilities: tuple[str, ...] = ()
    layout: str = "flat"  # or "namespaced": <subdir>/<namespace>/<name>.json, as SPO v0.8

    @property
    def install_dir(self) -> Path:
        return self.root / self.subdir


@dataclass(frozen=True, slots=True, kw_only=True)
class ApparmorSection:
    mode: str = "auto"  # auto | load | compile-only | off
    profiles_dir: Path = Path("/etc/apparmor.d")
    securityfs: Path = Path("/sys/kernel/security/apparmor")
    kernel_features: Path | None = None  # a features file or dir to compile against


@dataclass(frozen=True, slots=True, kw_only=True)
class SelinuxSection:
    mode: str = "auto"  # auto | on | off
    priority: int = 370  # semodule priority of secprof's modules (selinuxd uses 350)
    store_root: Path = Path("/")  # passed to semodule -p
    allowed_system_profiles: tuple[str, ...] = ()  # empty: the templates secprof ships
    timeout_s: float = 600.0  # one semodule transaction


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
class SigningSection:
    """Where keyless signing (``secprof push --identity-token``) gets its certificate and log
    entry; ``trusted_root`` vouches for both (``None``: the production root in the sigstore
    wheel)."""

    fulcio_url: str = "https://fulcio.sigstore.dev"
    rekor_url: str = "https://rekor.sigstore.dev"
    trusted_root: Path | None = None
    timeout_s: float = 120.0  # sigstore's own HTTP clients set no timeout


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """The whole configuration; ``source`` is the file it came from (``None``: built-in)."""

    agent: AgentSection = field(default_factory=AgentSection)
    seccomp: SeccompSection = field(default_factory=SeccompSection)
    apparmor: ApparmorSection = field(default_factory=ApparmorSection)
    selinux: SelinuxSection = field(default_factory=SelinuxSection)
    oci: OciSection = field(default_factory=OciSection)
    signing: SigningSection = field(default_factory=SigningSection)
    trust: tuple[TrustPolicy, ...] = ()
    source: Path | None = None


def _agent(data: Mapping[str, Any], base_dir: Path) -> AgentSection:
    t = toml_section(data, "agent", base_dir)
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
    t = toml_section(data, "seccomp", base_dir)
    d = SeccompSection()
    subdir = t.text("subdir", d.subdir)
    problem = name_problem(subdir)
    if problem:
        raise ConfigError(f"[seccomp] subdir: {problem}")
    section = SeccompSection(
        root=t.path("root", d.root),
        subdir=subdir,
        max_base_depth=t.integer("max_base_depth", d.max_base_depth, minimum=1, maximum=64),
        template_capabilities=_capabilities(t),
        layout=t.text("layout", d.layout),
    )
    if section.layout not in LAYOUTS:
        raise t.fail("layout", f"{section.layout!r} is not one of {', '.join(LAYOUTS)}")
    t.finish()
    return section


def _mode(t: Any, default: str, choices: tuple[str, ...]) -> str:
    mode = t.text("mode", default)
    if mode not in choices:
        raise t.fail("mode", f"{mode!r} is not one of {', '.join(choices)}"
                     f"{did_you_mean(mode, choices)}")
    return str(mode)


def _apparmor(data: Mapping[str, Any], base_dir: Path) -> ApparmorSection:
    t = toml_section(data, "apparmor", base_dir)
    d = ApparmorSection()
    section = ApparmorSection(
        mode=_mode(t, d.mode, ("auto", "load", "compile-only", "off")),
        profiles_dir=t.path("profiles_dir", d.profiles_dir),
        securityfs=t.path("securityfs", d.securityfs),
        kernel_features=t.optional_path("kernel_features"),
    )
    t.finish()
    return section


def _selinux(data: Mapping[str, Any], base_dir: Path) -> SelinuxSection:
    t = toml_section(data, "selinux", base_dir)
    d = SelinuxSection()
    section = SelinuxSection(
        mode=_mode(t, d.mode, ("auto", "on", "off")),
        priority=t.integer("priority", d.priority, minimum=1, maximum=999),
        store_root=t.path("store_root", d.store_root),
        allowed_system_profiles=_template_names(t),
        timeout_s=t.number("timeout_s", d.timeout_s, minimum=1, maximum=3600),
    )
    t.finish()
    return section


LAYOUTS = ("flat", "namespaced")


def _capabilities(t: Table) -> tuple[str, ...]:
    caps = t.texts("template_capabilities", ())
    for cap in caps:
        if not re.fullmatch(r"CAP_[A-Z_]+", cap):
            raise t.fail("template_capabilities", f"{cap!r} is not a capability name (CAP_…)")
    return caps
def _template_names(t: Any) -> tuple[str, ...]:
    names = tuple(t.texts("allowed_system_profiles", ()))
    for name in names:
        if not re.match(r"^[a-zA-Z][a-zA-Z0-9_-]*$", name):
            raise t.fail("allowed_system_profiles", f"{name!r} is not a CIL block name")
    return names


def _trust(data: Mapping[str, Any], base_dir: Path) -> tuple[TrustPolicy, ...]:
    """``[[trust]]``: its modules (OCI references, trust policies: ~4 ms of imports) only for
    a config that has some; a host with local profiles only never needs them."""
    if "trust" not in data:
        return ()
    from agent.oci.trust_config import parse_trust  # noqa: PLC0415

    return parse_trust(data, base_dir)


def _oci(data: Mapping[str, Any], base_dir: Path) -> OciSection:
    t = toml_section(data, "oci", base_dir)
    d = OciSection()
    insecure = []
    for entry in t.texts("insecure_registries", d.insecure_registries):
        from agent.oci.reference import parse_host  # noqa: PLC0415 -- see _trust

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


def _signing(data: Mapping[str, Any], base_dir: Path) -> SigningSection:
    t = toml_section(data, "signing", base_dir)
    d = SigningSection()
    urls = {}
    for key in ("fulcio_url", "rekor_url"):
        url = t.text(key, getattr(d, key))
        if not url.startswith(("https://", "http://")):
            raise t.fail(key, f"{url!r} is not an http(s) URL")
        urls[key] = url.rstrip("/")
    result = SigningSection(
        **urls,
        trusted_root=t.optional_path("trusted_root"),
        timeout_s=t.number("timeout_s", d.timeout_s, minimum=1, maximum=3600),
    )
    t.finish()
    return result


_SECTIONS = ("agent", "seccomp", "apparmor", "selinux", "oci", "signing", "trust")


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
            apparmor=_apparmor(data, base_dir), selinux=_selinux(data, base_dir),
            oci=_oci(data, base_dir), signing=_signing(data, base_dir),
            trust=_trust(data, base_dir), source=source,
        )
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc.message}", code=exc.code, hint=exc.hint) from None


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
