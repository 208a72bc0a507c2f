"""Aligned tables and JSON on stdout, with nothing heavy imported.

Kept apart from :mod:`agent.cli.output` (which renders reconcile reports and so imports the
reconcile pipeline) so that the commands that only talk to the daemon start fast.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO


def table(rows: Sequence[Sequence[str]], out: TextIO = sys.stdout) -> None:
    """Print ``rows`` (the first is the header) in aligned columns; the last is not padded."""
    if not rows:
        return
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        print("  ".join([*cells, row[-1]]).rstrip(), file=out)


def emit_json(doc: Any, out: TextIO = sys.stdout) -> None:
    """``doc`` as indented JSON and a newline."""
    json.dump(doc, out, indent=2, sort_keys=False)
    out.write("\n")
