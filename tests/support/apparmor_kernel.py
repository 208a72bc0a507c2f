"""A stand-in for the kernel's AppArmor interface, for a machine whose kernel has no AppArmor.

The real ``apparmor_parser`` runs its real load path against a directory given with
``--subdomainfs`` that holds empty ``.replace``, ``.load`` and ``.remove`` files
(research/host-backends.md §1): the compiled policy blobs, and the names to remove, land in them.
What the kernel would do next (list the profiles in ``profiles``) is done by a wrapper around
the real parser, :func:`make_parser`: after each load or removal it decodes the compiled
policies (each profile's name and complain flag) and updates ``profiles`` (see :func:`sync`).
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

REAL_PARSER = shutil.which("apparmor_parser") or "/sbin/apparmor_parser"
FEATURES = Path("/usr/share/apparmor-features/features")
_PROFILE = b"\x04\x08\x00profile\x00\x07\x05"
_FLAGS = b"\x04\x06\x00flags\x00\x07\x02"


def decode(blob: bytes) -> list[tuple[str, str]]:
    """(name, enforce|complain) of every profile in a compiled policy (children as a//b)."""
    out: list[tuple[str, str]] = []
    at = blob.find(_PROFILE)
    while at >= 0:
        at += len(_PROFILE)
        (size,) = struct.unpack_from("<H", blob, at)
        name = blob[at + 2: at + 2 + size].rstrip(b"\0").decode()
        flags = blob.find(_FLAGS, at)
        (complain,) = struct.unpack_from("<I", blob, flags + len(_FLAGS) + 5)
        out.append((name, "complain" if complain else "enforce"))
        at = blob.find(_PROFILE, at)
    return out


def sync(args: list[str], *, started: float) -> None:
    """Do to ``profiles`` what the kernel would have done for this parser call.

    The parser opens ``.replace`` once per profile and writes at offset 0, so a plain file keeps
    only the last blob: what was loaded is read from the compiled cache instead (one file per
    policy file, written by this very call: the backend always stages fresh files). Removed
    names come from the stub files given to ``--remove``.
    """
    fs = Path(args[args.index("--subdomainfs") + 1])
    files = [Path(a) for a in args if a.startswith("/") and Path(a).is_file()]
    listed = {name: mode.rstrip(")") for name, _, mode in
              (line.rpartition(" (") for line in (fs / "profiles").read_text().splitlines())}
    if "--remove" in args:
        names = subprocess.run([REAL_PARSER, "-N", *map(str, files)], capture_output=True,
                               text=True, check=False).stdout.split()
        for name in names:
            listed.pop(name, None)
    elif "--cache-loc" in args:
        cache = Path(args[args.index("--cache-loc") + 1])
        for policy in files:
            for compiled in cache.glob(f"*/{policy.name}"):
                if compiled.stat().st_mtime >= started - 60:
                    listed.update(decode(compiled.read_bytes()))
    (fs / "profiles").write_text("".join(f"{n} ({m})\n" for n, m in sorted(listed.items())))


def make_securityfs(root: Path, *, loaded: dict[str, str] | None = None) -> Path:
    """An empty interface directory; ``loaded``: profiles already there (name → mode)."""
    fs = root / "securityfs"
    fs.mkdir(parents=True)
    for name in (".replace", ".load", ".remove"):
        (fs / name).write_bytes(b"")
    (fs / "profiles").write_text("".join(f"{n} ({m})\n" for n, m in (loaded or {}).items()))
    return fs


def make_parser(root: Path) -> Path:
    """An executable that runs the real parser, then :func:`sync` when it loaded or removed."""
    script = root / "apparmor_parser"
    script.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import subprocess, sys, time
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        from tests.support.apparmor_kernel import sync
        args = sys.argv[1:]
        started = time.time()
        rc = subprocess.run([{REAL_PARSER!r}, *args]).returncode
        if "--subdomainfs" in args:
            sync(args, started=started)
        sys.exit(rc)
        """))
    script.chmod(0o755)
    return script
