"""``secprof daemon``: run the service in the foreground (what systemd starts)."""

from __future__ import annotations

import argparse
from pathlib import Path

from agent.daemon.main import run


def cmd_daemon(args: argparse.Namespace) -> int:
    return run(Path(args.config) if args.config else None)
