"""``secprof daemon``: the long-running service systemd starts.

Start-up: load the config, reconcile once from local state and caches only, tell systemd
``READY=1``, then watch the desired-state directory, resync periodically and answer on the
status socket. SIGHUP reloads the config (a bad one keeps the running one and says why); SIGTERM
and SIGINT stop it cleanly. Stopping never unloads or deletes any profile.
"""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from types import FrameType

from agent import __version__
from agent.api.server import ApiServer
from agent.codes import Code
from agent.config import Config, load
from agent.daemon.engine import Engine
from agent.daemon.loop import Loop, Watchdog
from agent.daemon.systemd import Notifier, setup_logging, watchdog_interval_s
from agent.daemon.watch import Watcher
from agent.fsutil import ensure_dir

log = logging.getLogger(__name__)


class Daemon:
    def __init__(self, config: Config, config_path: Path | None) -> None:
        self._config_path = config_path
        self._notifier = Notifier()
        _prepare(config.agent.profiles_dir)
        watchdog_s = watchdog_interval_s()
        self.loop = Loop(
            engine=Engine(config),
            load_config=lambda: load(self._config_path),
            make_engine=lambda new, old: Engine(new, previous=old),
            notifier=self._notifier,
            on_config_change=self._config_changed,
            # An idle worker still proves it is alive within each watchdog interval.
            heartbeat_s=min(10.0, watchdog_s or 10.0),
        )
        self._watcher = Watcher(config.agent.profiles_dir, self.loop.changed)
        self._api = ApiServer(config.agent.socket, config.agent.socket_group, self.loop)
        self._watchdog = Watchdog(alive=self.loop.alive, ping=self._notifier.watchdog,
                                  interval_s=watchdog_s, flush=self._notifier.flush)

    def _config_changed(self, old: Config, new: Config) -> None:
        if new.agent.profiles_dir != old.agent.profiles_dir:
            _prepare(new.agent.profiles_dir)
            self._watcher.stop()
            self._watcher = Watcher(new.agent.profiles_dir, self.loop.changed)
            self._watcher.start()
        if (new.agent.socket, new.agent.socket_group) != (old.agent.socket,
                                                          old.agent.socket_group):
            log.warning("[agent] socket and socket_group take effect at the next restart")

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            self.loop.reload_soon()
        else:
            self._watchdog.stop()

    def run(self) -> int:
        signals = {signal.SIGHUP, signal.SIGTERM, signal.SIGINT}
        for signum in signals:
            signal.signal(signum, self._on_signal)
        log.info("secprof %s starting", __version__)
        # Python runs handlers in the main thread only, and a signal the kernel hands to another
        # thread waits until the main thread next wakes. Threads inherit the signal mask of the
        # thread that starts them: start them all with these signals blocked, so that each one
        # reaches the main thread, and wakes it, at once.
        unblocked = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
        try:
            # Watch before the first reconcile, so that nothing written meanwhile is missed.
            self._watcher.start()
            self._api.start()
            self.loop.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, unblocked)
        try:
            self._watchdog.run()  # until SIGTERM or SIGINT
        finally:
            self._notifier.stopping()
            log.info("stopping; installed profiles stay as they are")
            self._watcher.stop()
            self.loop.stop()
            self._api.close()
        return 0


def _prepare(profiles_dir: Path) -> None:
    """Create the desired-state directory if it is missing (the package ships it). When that is
    impossible (a read-only /etc), the daemon still runs: nothing is removed while the directory
    cannot be read, the status says why, and the periodic resync picks it up once it exists."""
    try:
        ensure_dir(profiles_dir)
    except OSError as exc:
        log.error("cannot create the desired-state directory %s: %s", profiles_dir,
                  exc.strerror or exc, extra={"ERROR_CODE": Code.DIRECTORY_UNREADABLE})


def run(config_path: Path | None) -> int:
    """Entry point for ``secprof daemon``; config errors propagate to the CLI (exit 78)."""
    setup_logging()
    config = load(config_path)
    return Daemon(config, config_path).run()
