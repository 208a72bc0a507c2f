"""Aligned tables and JSON on stdout, with nothing heavy imported.

Kept apart from :mod:`agent.cli.output` (which renders reconcile reports and so imports the
reconcile pipeline) so that the commands that only talk to the daemon start fast.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO


def table(rows: Sequence[Sequence[str]], out: TextIO | None = None) -> None:
    """Print ``rows`` (the first is the header) in aligned columns; the last is not padded.

    Streams default to the ``sys.stdout`` of the call, not of the import, so that a caller
    that swaps it (tests running the CLI in-process) gets what it expects.
    """
    out = out or sys.stdout
    if not rows:
        return
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        print("  ".join([*cells, row[-1]]).rstrip(), file=out)


def emit_json(doc: Any, out: TextIO | None = None) -> None:
    """``doc`` as JSON: indented on a terminal, compact (and much faster) into a pipe."""
    out = out or sys.stdout
    indent = 2 if out.isatty() else None
    out.write(json.dumps(doc, indent=indent, separators=None if indent else (",", ":")) + "\n")
