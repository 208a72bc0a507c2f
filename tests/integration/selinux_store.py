"""A private copy of the host's SELinux policy store.

``semodule -p ROOT`` on a copy of ``/var/lib/selinux/default`` writes only under ROOT (never
``-S``: it writes the host policy even then). Every transaction rebuilds the whole policy: 6-7 s
with Debian's 331 modules, 1.3 s with the few that :data:`SMALL_POLICY` keeps. So the tests
share one small store, and one test builds against a full copy; the fixture checks at the end
that the host's store and policy are byte-identical to before.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HOST_STORE = Path("/var/lib/selinux/default")
HOST_TREES = (Path("/var/lib/selinux"), Path("/etc/selinux"))
PRIORITY = 370
# Modules of Debian's reference policy (priority 100) that make a policy on their own: base
# names the sddm user of xserver, which requires xdg and getty; apache is there to be clashed
# with. Everything else goes; the full policy is tested once (see Store.copy_from_host).
SMALL_POLICY = frozenset({"base", "xserver", "xdg", "getty", "apache"})


def available() -> str | None:
    """Why the real-semodule tests cannot run here, or ``None``."""
    if shutil.which("semodule") is None:
        return "semodule is not installed (semodule-utils, policycoreutils)"
    if not (HOST_STORE / "active" / "modules").is_dir():
        return f"no SELinux policy store at {HOST_STORE} (selinux-policy-default)"
    return None


def tree_digest(roots: tuple[Path, ...] = HOST_TREES) -> dict[str, str]:
    """sha256 of every regular file under ``roots`` (what must not change)."""
    out = {}
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.is_symlink():
                out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _only(keep: frozenset[str]) -> Callable[[str, list[str]], set[str]]:
    """A copytree filter leaving out the priority-100 modules not in ``keep``."""
    def ignore(directory: str, names: list[str]) -> set[str]:
        if Path(directory).parts[-2:] != ("modules", "100"):
            return set()
        return {name for name in names if name not in keep}
    return ignore


@dataclass
class Store:
    root: Path

    def copy_from_host(self, keep: frozenset[str] | None = None) -> None:
        """Copy the host's store; with ``keep``, only those modules of priority 100.

        A trimmed copy is rebuilt at once to prove it is a whole policy; if a policy update
        made it depend on another module, the copy is made again in full (slower, as correct).
        """
        target = self.root / "var/lib/selinux"
        target.mkdir(parents=True)
        shutil.copytree(HOST_STORE, target / HOST_STORE.name, symlinks=True,
                        ignore=None if keep is None else _only(keep))
        if keep is not None and self.semodule("-n", "-B").returncode != 0:
            shutil.rmtree(target)
            self.copy_from_host()

    def semodule(self, *args: str) -> subprocess.CompletedProcess[str]:
        assert "-S" not in args and "-v" not in args
        return subprocess.run(["semodule", "-p", str(self.root), *args], capture_output=True,
                              text=True, timeout=600, check=False)

    def ours(self) -> dict[str, str]:
        """Modules at secprof's priority → checksum (``semodule -lfull --checksum``)."""
        listing = self.semodule("-lfull", "--checksum").stdout
        return {p[1]: p[3] for p in (line.split() for line in listing.splitlines())
                if len(p) >= 4 and p[0] == str(PRIORITY)}

    def names(self) -> set[str]:
        """``semodule -l``: every enabled module's name."""
        return set(self.semodule("-l").stdout.split())

    def policy(self) -> bytes:
        """The compiled binary policy the last transaction wrote under ROOT."""
        return max((self.root / "etc/selinux/default/policy").glob("policy.*")).read_bytes()
