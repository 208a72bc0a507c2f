"""Composition root: the only place where concrete backends, stores and sources are built.

Both the one-shot CLI commands and the daemon get their objects here, so they always agree on
paths and wiring; tests build the same objects from a config that points into a tmp dir.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from agent.apparmor.driver import AppArmorDriver
from agent.backends.apparmor import AppArmorBackend, AppArmorSettings
from agent.backends.apparmor import Mode as ApparmorMode
from agent.backends.runner import SubprocessRunner
from agent.backends.seccomp import SeccompBackend
from agent.config import Config
from agent.model.docker_format import host_template
from agent.model.manifests import DesiredState, load_directory
from agent.model.options import LoadOptions
from agent.model.parsecache import ParseCache
from agent.reconcile.driver import Driver
from agent.reconcile.ledger import LedgerStore
from agent.reconcile.lock import StateLock
from agent.reconcile.reconciler import Reconciler
from agent.seccomp.build import BuildCache
from agent.seccomp.driver import SeccompDriver
from agent.seccomp.resolve import BaseSource, Fetched
from agent.selinux.driver import SelinuxDriver

log = logging.getLogger(__name__)

# The OCI modules bring diskcache/sqlite, cryptography, requests and oras: they are imported
# where an oci:// base is really resolved, so that a host with local profiles only (and every
# command that does not talk to a registry) never pays for them.
if TYPE_CHECKING:
    from agent.oci.auth import Credential
    from agent.oci.cache import OciCache
    from agent.oci.registry import RegistryClient
    from agent.oci.source import OciSource, Registry


class _OnFirstUse:
    """Builds the OCI source (disk cache, trust store) only when an ``oci://`` base is really
    resolved: a host with only local profiles never opens the cache."""

    def __init__(self, build: Callable[[], OciSource]) -> None:
        self._build = build
        self._source: OciSource | None = None

    def fetch(self, reference: str) -> Fetched:
        if self._source is None:
            self._source = self._build()
        return self._source.fetch(reference)


def build_drivers(
    config: Config, *, network: bool = True, build_cache: BuildCache | None = None
) -> list[Driver]:
    """One driver per backend, fastest first: a reconcile applies them in this order.

    ``network=False``: ``oci://`` bases come from the cache only (the daemon's first reconcile
    after boot must not wait for a registry); ``build_cache`` (the daemon's) carries seccomp
    builds from one reconcile to the next."""
    oci: BaseSource = _OnFirstUse(lambda: build_oci_source(config, network=network))
    return [
        SeccompDriver(SeccompBackend(config.seccomp.root, config.seccomp.subdir),
                      max_depth=config.seccomp.max_base_depth, oci=oci, cache=build_cache),
        AppArmorDriver(AppArmorBackend(apparmor_settings(config), SubprocessRunner())),
        SelinuxDriver.from_config(config.selinux),
    ]


def apparmor_settings(config: Config) -> AppArmorSettings:
    """The AppArmor backend's paths: ``[apparmor]``, with its records under the state dir and
    its compiled cache under the cache dir."""
    aa = config.apparmor
    return AppArmorSettings(
        mode=ApparmorMode(aa.mode), profiles_dir=aa.profiles_dir, securityfs=aa.securityfs,
        kernel_features=aa.kernel_features, state_dir=config.agent.state_dir / "apparmor",
        cache_dir=config.agent.cache_dir / "apparmor",
    )


def build_reconciler(
    config: Config, *, network: bool = True, build_cache: BuildCache | None = None
) -> Reconciler:
    """The reconciler over :func:`build_drivers` (same arguments)."""
    return Reconciler(
        drivers=build_drivers(config, network=network, build_cache=build_cache),
        ledger=LedgerStore(config.agent.state_dir),
    )


def load_options(config: Config) -> LoadOptions:
    """How documents are read on this host (Docker templates, namespaced identity)."""
    return LoadOptions(template=host_template(config.seccomp.template_capabilities),
                       namespaced=config.seccomp.layout == "namespaced")


def load_desired(config: Config, *, read_only: bool = False) -> DesiredState:
    """The desired state; parsed YAML is cached in the state dir unless ``read_only``."""
    cache = ParseCache(config.agent.state_dir)
    desired = load_directory(config.agent.profiles_dir, cache=cache,
                             options=load_options(config))
    if not read_only:
        try:
            cache.save()
        except OSError as exc:  # only a cache: a full or read-only state dir must not stop apply
            log.warning("cannot save the parse cache in %s: %s", config.agent.state_dir,
                        exc.strerror or exc)
    return desired


def state_lock(config: Config) -> StateLock:
    """The one-writer lock: ``secprof apply`` and each daemon reconcile hold it."""
    return StateLock(config.agent.state_dir)


def oci_cache(config: Config) -> OciCache:
    from agent.oci.cache import OciCache  # noqa: PLC0415 -- lazy, see the imports above

    return OciCache(config.agent.cache_dir / "oci", max_entries=config.oci.cache_max_entries,
                    max_bytes=config.oci.cache_max_bytes)


def build_registry(config: Config, *, login: tuple[str, Credential] | None = None
                   ) -> RegistryClient:
    """The registry client; ``login`` (host, credential) overrides the auth file for one host.

    Imported here, not at the top: it brings oras-py and requests, which only a command that
    really talks to a registry should pay for."""
    from agent.oci.auth import auth_file, load_credentials  # noqa: PLC0415 -- lazy, see above
    from agent.oci.registry import RegistryClient  # noqa: PLC0415
    from agent.oci.transport import HttpPolicy  # noqa: PLC0415
    from agent.oci.trust import scope_lookup  # noqa: PLC0415

    path, explicit = auth_file(config.oci.auth_file, os.environ, Path.home())
    credentials = load_credentials(path, explicit=explicit)
    if login is not None:
        credentials[login[0]] = login[1]
    policy = HttpPolicy(timeout_s=config.oci.timeout_s,
                        connect_timeout_s=config.oci.connect_timeout_s,
                        retries=config.oci.retries,
                        plain_http=frozenset(config.oci.insecure_registries))
    return RegistryClient(policy=policy, credentials=credentials,
                          scope_of=scope_lookup(config.trust))


def build_oci_source(config: Config, *, network: bool = True,
                     registry: Callable[[], Registry] | None = None) -> OciSource:
    """The ``oci://`` base source; the registry client is built on its first network use."""
    from agent.oci.artifact import Platform  # noqa: PLC0415 -- lazy, see the imports above
    from agent.oci.source import OciSource, SourceSettings  # noqa: PLC0415
    from agent.oci.trust import TrustStore  # noqa: PLC0415
    from agent.oci.verification import Verifier  # noqa: PLC0415 -- imports cryptography

    oci = config.oci
    trust = TrustStore(config.trust)
    cache = oci_cache(config)
    return OciSource(
        trust=trust,
        cache=cache,
        verifier=Verifier(trust=trust, cache=cache),
        registry=registry or (lambda: build_registry(config)),
        settings=SourceSettings(tag_ttl_s=oci.tag_ttl_s, max_profile_bytes=oci.max_profile_bytes,
                                failure_backoff_s=oci.failure_backoff_s,
                                failure_backoff_max_s=oci.failure_backoff_max_s),
        platform=Platform.host(),
        network=network,
    )
