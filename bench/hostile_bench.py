"""Benchmark: hostile manifest shapes, input size against time and peak RSS.

Each shape is generated at growing sizes, up to the 4 MiB file cap, and read by a fresh
`secprof validate DIR` process (parse, validate, resolve, merge and compile, as apply does
before it writes anything). Work should grow linearly with the input, and a shape past a cap
should be refused quickly with its error, never crash or stall the process.

    .venv/bin/python bench/hostile_bench.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

SECPROF = Path(sys.executable).with_name("secprof")
HEADER = "apiVersion: security-profiles-operator.x-k8s.io/v1\nkind: SeccompProfile\n"


def doc(name: str, body: str) -> str:
    return HEADER + f"metadata:\n  name: {name}\nspec:\n" + body


def names_rule(prefix: str, n: int, action: str = "SCMP_ACT_ALLOW") -> str:
    names = ", ".join(f"{prefix}{i}" for i in range(n))
    return f"    - {{names: [{names}], action: {action}}}\n"


def duplicate_names(n: int) -> dict[str, str]:
    return {"dups.yaml": "---\n".join(doc("same", "  defaultAction: SCMP_ACT_ERRNO\n")
                                      for _ in range(n))}


def many_names(n: int) -> dict[str, str]:
    rules = "".join(names_rule(f"r{r}n", min(4096, n - r * 4096))
                    for r in range((n + 4095) // 4096))
    return {"wide.yaml": doc("wide", "  defaultAction: SCMP_ACT_ERRNO\n  syscalls:\n" + rules)}


def override(n: int) -> dict[str, str]:
    def rules(action: str) -> str:
        return "".join(names_rule(f"r{r}n", min(4096, n - r * 4096), action)
                       for r in range((n + 4095) // 4096))
    return {"base.yaml": doc("base", "  defaultAction: SCMP_ACT_ERRNO\n  syscalls:\n"
                             + rules("SCMP_ACT_ERRNO")),
            "child.yaml": doc("child", "  baseProfileName: base\n  defaultAction: "
                              "SCMP_ACT_ERRNO\n  syscalls:\n" + rules("SCMP_ACT_ALLOW"))}


def fan_out(n: int) -> dict[str, str]:
    files = {"base.yaml": doc("base", "  defaultAction: SCMP_ACT_ERRNO\n  syscalls:\n"
                              + names_rule("b", 2000))}
    for i in range(n):
        files[f"c{i}.yaml"] = doc(f"c{i}", "  baseProfileName: base\n  defaultAction: "
                                  "SCMP_ACT_ERRNO\n  syscalls:\n" + names_rule(f"c{i}x", 3))
    return files


def alias_bomb(levels: int) -> dict[str, str]:
    lines = ["x0: &a0 [read, read, read, read, read, read, read, read, read, read]"]
    lines += [f"x{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]"
              for i in range(1, levels)]
    return {"bomb.yaml": HEADER + "metadata: {name: bomb}\n" + "\n".join(lines)
            + "\nspec: {defaultAction: SCMP_ACT_ERRNO}\n"}


def deep(depth: int) -> dict[str, str]:
    return {"deep.json": "[" * depth + "]" * depth}


def long_integer(digits: int) -> dict[str, str]:
    return {"long.yaml": doc("long", "  defaultAction: SCMP_ACT_ERRNO\n  defaultErrnoRet: "
                             + "7" * digits + "\n")}


SHAPES: list[tuple[str, Callable[[int], dict[str, str]], tuple[int, ...]]] = [
    ("N documents, one name", duplicate_names, (500, 2000, 8000)),
    ("N distinct syscall names", many_names, (4_000, 40_000, 100_000)),
    ("N names overridden in a merge", override, (1_000, 4_000, 9_000)),
    ("N children of a 2000-name base", fan_out, (100, 300, 1000)),
    ("alias bomb, N levels of 10x", alias_bomb, (4, 6, 9)),
    ("JSON nested N deep", deep, (1_000, 100_000, 2_000_000)),
    ("integer of N digits", long_integer, (5_000, 100_000, 4_000_000)),
]


def measure(files: dict[str, str]) -> tuple[int, float, float, int]:
    """(input bytes, wall s, peak RSS MiB, exit code) of `secprof validate` on ``files``."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        size = 0
        for name, text in files.items():
            (root / name).write_text(text)
            size += len(text)
        started = time.perf_counter()
        proc = subprocess.Popen([str(SECPROF), "validate", str(root)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        return size, wall, usage.ru_maxrss / 1024, proc.returncode


def rows() -> Iterator[list[str]]:
    for label, make, sizes in SHAPES:
        for n in sizes:
            size, wall, rss, code = measure(make(n))
            yield [label, f"{n:,}", f"{size / 1024:,.0f}", f"{wall:.2f}", f"{rss:.0f}",
                   str(code)]


def main() -> None:
    header = ["shape", "N", "input KiB", "wall s", "peak RSS MiB", "exit"]
    table = [header]
    for row in rows():
        table.append(row)
        print("  ".join(row), file=sys.stderr, flush=True)
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for row in table:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                        for i, (c, w) in enumerate(zip(row, widths, strict=True))))


if __name__ == "__main__":
    main()
