"""Composition root: the only place where concrete backends, stores and sources are built.

Both the one-shot CLI commands and the daemon get their objects here, so they always agree on
paths and wiring; tests build the same objects from a config that points into a tmp dir.
"""

from __future__ import annotations

from agent.backends.base import Backend
from agent.backends.seccomp import SeccompBackend
from agent.config import Config
from agent.model.manifests import DesiredState, load_directory
from agent.model.parsecache import ParseCache
from agent.reconcile.ledger import LedgerStore
from agent.reconcile.reconciler import Reconciler


def build_backends(config: Config) -> list[Backend]:
    return [SeccompBackend(config.seccomp.root, config.seccomp.subdir)]


def build_reconciler(config: Config) -> Reconciler:
    (seccomp,) = build_backends(config)
    return Reconciler(
        backend=seccomp,
        ledger=LedgerStore(config.agent.state_dir),
        max_depth=config.seccomp.max_base_depth,
    )


def load_desired(config: Config, *, read_only: bool = False) -> DesiredState:
    """The desired state; parsed YAML is cached in the state dir unless ``read_only``."""
    cache = ParseCache(config.agent.state_dir)
    desired = load_directory(config.agent.profiles_dir, cache=cache)
    if not read_only:
        cache.save()
    return desired
