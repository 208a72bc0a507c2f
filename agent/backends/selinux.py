"""SELinux backend: CIL modules in a policy store, through ``semodule`` at secprof's priority.

Every ``semodule`` transaction rebuilds the whole policy (5-6 s whatever it holds), so one
:meth:`SelinuxBackend.apply` makes one call for all its installs and removals (and the shipped
templates they need), with ``-n`` (no reload), then reloads the kernel policy once with
``load_policy`` where the kernel has SELinux and the store is the host's. ``semodule -R``'s exit
status is not trusted (it exits 0 when the load fails), ``-S`` writes the host policy even for a
private store, and ``-v`` breaks on Debian's policy: neither is ever passed.

A failed transaction installs nothing. The modules its message names are set aside and the rest
is tried again; when it names none of ours, the batch is split in halves until each bad
operation stands alone. Everything good is installed, each failure carries semodule's text with
the offending CIL line quoted.

Ownership is the priority: secprof lists, checks and removes only modules at
``selinux.priority``, and refuses a name that exists at any other priority (installing it would
silently override a distribution or package module).
"""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from agent.backends.base import Availability, Batch, Probe, Result
from agent.backends.runner import Runner, RunResult, failure
from agent.codes import Code
from agent.errors import AgentError, BackendError
from agent.fsutil import sha256_hex
from agent.model.profile import ProfileKey
from agent.selinux.rules import module_name
from agent.selinux.semodule import (
    Module,
    clean,
    explain,
    is_busy,
    named_modules,
    parse_listing,
)
from agent.selinux.shipped import Template

log = logging.getLogger(__name__)

MODES = ("auto", "on", "off")
_LISTING_TIMEOUT_S = 120.0
_INHERIT_RE = re.compile(r"\(blockinherit\s+([^\s()]+)\s*\)")


@dataclass(frozen=True, slots=True, kw_only=True)
class _Op:
    """One module to install (``content``) or remove; ``key`` is ``None`` for a template."""

    module: str
    key: ProfileKey | None
    content: bytes | None = None

    @property
    def verb(self) -> str:
        return "remove" if self.content is None else "install"


class SelinuxBackend:
    """The policy store at ``store_root``, through ``semodule -p``; see the module docstring."""

    def __init__(
        self,
        *,
        runner: Runner,
        store_root: Path,
        priority: int,
        templates: Sequence[Template] = (),
        mode: str = "auto",
        selinuxfs: Path = Path("/sys/fs/selinux"),
        semodule: str = "semodule",
        load_policy: str = "load_policy",
        timeout_s: float = 600.0,
        scratch_dir: Path | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(mode)
        self._runner = runner
        self._root = store_root
        self._priority = priority
        self._templates = tuple(templates)
        self._mode = mode
        self._selinuxfs = selinuxfs
        self._semodule = semodule
        self._load_policy = load_policy
        self._timeout_s = timeout_s
        self._scratch = scratch_dir
        self.transactions = 0  # semodule write calls, for tests and benchmarks
        # Modules semodule rejected, by (module, digest), and the store listing they were
        # rejected in: the same bytes against the same store fail the same way, so they are
        # not retried (6 s each) until either changes. Timeouts are never remembered.
        self._rejected: dict[tuple[str, str], AgentError] = {}
        self._rejected_in = ""

    # -- reading ---------------------------------------------------------------------------

    def location(self, key: ProfileKey) -> str:
        return f"module {module_name(key)} (priority {self._priority})"

    @property
    def policy_active(self) -> bool:
        """Whether installed modules reach the kernel: SELinux is on and the store is the
        host's own."""
        return self.inactive_reason is None

    @property
    def inactive_reason(self) -> str | None:
        """Why installed modules do not reach the kernel, or ``None`` when they do."""
        if self._root.resolve() != Path("/"):
            return f"{self._root} is a private policy store, not the host's"
        if not (self._selinuxfs / "enforce").exists():
            return "SELinux is not enabled in this kernel"
        return None

    def probe(self) -> Probe:
        """Cheap, every reconcile: the tool and a store are there (no ``semodule`` run; a
        store that cannot be read shows in :meth:`actual` and :meth:`apply` errors)."""
        if self._mode == "off":
            return Probe(availability=Availability.UNAVAILABLE,
                         reason="SELinux profiles are switched off ([selinux] mode = off)")
        if shutil.which(self._semodule) is None:
            return Probe(availability=Availability.UNAVAILABLE, reason=self._unavailable(
                f"{self._semodule} not found (install policycoreutils and semodule-utils)"))
        stores = self._root / "var/lib/selinux"
        if not any((store / "active" / "modules").is_dir() for store in _dirs(stores)):
            return Probe(availability=Availability.UNAVAILABLE, reason=self._unavailable(
                f"no SELinux policy store in {stores} (install selinux-policy-default or "
                "another policy)"))
        why = self.inactive_reason
        if why is None:
            return Probe(availability=Availability.INSTALLED)
        return Probe(availability=Availability.INSTALLED, reason=(
            f"{why}: modules are installed in the store, the policy is not active"))

    def _unavailable(self, why: str) -> str:
        return f"{why} ([selinux] mode = {self._mode})"

    def listing(self, *, checksums: bool) -> list[Module]:
        """Every module of the store (one read-only ``semodule`` call)."""
        argv = [*self._base(), "-lfull", *(["--checksum"] if checksums else [])]
        result = self._run(argv, timeout_s=_LISTING_TIMEOUT_S)
        if not result.ok:
            raise failure(f"cannot list the SELinux modules under {self._root}", result,
                          code=Code.SELINUX_LIST_FAILED)
        return parse_listing(result.stdout)

    def actual(self, keys: Iterable[ProfileKey]) -> Mapping[ProfileKey, str | None]:
        """Checksums of our modules (``semodule -lfull --checksum``: sha256 of the CIL).

        A store that cannot be listed reads as empty: the repair that follows fails each
        profile with the reason, instead of the whole reconcile."""
        wanted = list(keys)
        if not wanted:  # the checksum listing costs about a second: not for nothing
            return {}
        try:
            listing = self.listing(checksums=True)
        except BackendError as exc:
            log.warning("%s", exc)
            listing = []
        ours = {m.name: m.checksum for m in listing if m.priority == self._priority}
        return {key: ours.get(module_name(key)) for key in wanted}

    # -- writing ---------------------------------------------------------------------------

    def apply(self, batch: Batch) -> list[Result]:
        try:
            listing = self.listing(checksums=True)
        except BackendError as exc:
            return [Result(key=i.key, error=exc) for i in batch.installs] + [
                Result(key=k, error=exc) for k in batch.removals]
        fingerprint = _fingerprint(listing)
        if fingerprint != self._rejected_in:
            self._rejected = {}
        ours = {m.name: m for m in listing if m.priority == self._priority}
        others: dict[str, int] = {}
        for m in listing:
            if m.priority != self._priority:
                others.setdefault(m.name, m.priority)

        results: dict[ProfileKey, Result] = {}
        ops: list[_Op] = []
        for install in batch.installs:
            module = module_name(install.key)
            if module in others:
                results[install.key] = Result(key=install.key, error=BackendError(
                    f"module {module} already exists at priority {others[module]}, which "
                    "secprof does not own; it is not overridden", code=Code.SELINUX_NAME_TAKEN,
                    hint="rename the profile"))
            elif module in ours and ours[module].checksum == install.digest:
                results[install.key] = Result(key=install.key)
            elif (module, install.digest) in self._rejected:
                results[install.key] = Result(key=install.key,
                                              error=self._rejected[module, install.digest])
            else:
                ops.append(_Op(module=module, key=install.key, content=install.content))
        for key in batch.removals:
            if module_name(key) in ours:
                ops.append(_Op(module=module_name(key), key=key))
            else:
                results[key] = Result(key=key)
        if ops:
            ops = self._template_ops(ours, others, ops) + _dependencies_first(ops)
            outcome = self._settle(ops)
            self._remember_rejections(ops, outcome, fingerprint)
            changed = [op for op in ops if outcome.get(op.module) is None]
            reload_error = self._reload() if changed else None
            for op in ops:
                if op.key is None:
                    if outcome[op.module] is not None:
                        log.error("template %s: %s", op.module, outcome[op.module])
                    continue
                error = outcome[op.module] or reload_error
                results[op.key] = Result(key=op.key, error=error,
                                         changed=outcome[op.module] is None)
        keys = [i.key for i in batch.installs] + list(batch.removals)
        return [results[key] for key in keys]

    def _remember_rejections(self, ops: Sequence[_Op], outcome: Mapping[str, AgentError | None],
                             before: str) -> None:
        rejected = {
            (op.module, _digest(op.content)): error for op in ops
            if op.content is not None and (error := outcome[op.module]) is not None
            and error.code == Code.SELINUX_MODULE_REJECTED
        }
        if not rejected:
            return
        try:
            after = _fingerprint(self.listing(checksums=True))
        except BackendError:
            return
        self._rejected = ({**self._rejected, **rejected} if after == before else rejected)
        self._rejected_in = after

    def _template_ops(self, ours: Mapping[str, Module], others: Mapping[str, int],
                      ops: Sequence[_Op]) -> list[_Op]:
        """Shipped templates to install while any profile module stays, or to remove with the
        last one; a template whose block the host already provides is left to the host."""
        templates = {t.module for t in self._templates}
        staying = (set(ours) - templates - {op.module for op in ops if op.content is None}) | {
            op.module for op in ops if op.content is not None}
        out = []
        for template in self._templates:
            mine = ours.get(template.module)
            if not staying:
                if mine is not None:
                    out.append(_Op(module=template.module, key=None))
            elif any(m in others for m in template.host_modules) or template.module in others:
                if mine is not None:  # the host's arrived since: two blocks of one name clash
                    out.append(_Op(module=template.module, key=None))
            elif mine is None or mine.checksum != template.digest:
                out.append(_Op(module=template.module, key=None, content=template.content))
        return out

    def _settle(self, ops: Sequence[_Op]) -> dict[str, AgentError | None]:
        """Commit what can be committed; each op's error (``None``: committed)."""
        try:
            result = self._transaction(ops)
        except BackendError as exc:  # timeout, tool gone: splitting would only repeat it
            return {op.module: exc for op in ops}
        if result.ok:
            return {op.module: None for op in ops}
        if is_busy(result.output):  # another writer holds the store: splitting would not help
            busy = failure(f"the SELinux policy store is busy: {clean(result.output)}", result,
                           code=Code.SELINUX_STORE_BUSY,
                           hint="another semodule, semanage or a package upgrade is running; "
                                "the next reconcile tries again")
            return {op.module: busy for op in ops}
        if len(ops) == 1:
            return {ops[0].module: self._error(ops[0], result)}
        named = named_modules(result.output, self._priority)
        suspects = [op for op in ops if op.module in named]
        if suspects and len(suspects) < len(ops):
            out = self._settle([op for op in ops if op not in suspects])
            out.update({op.module: self._error(op, result) for op in suspects})
            return out
        half = len(ops) // 2
        out = self._settle(ops[:half])
        out.update(self._settle(ops[half:]))
        return out

    def _transaction(self, ops: Sequence[_Op]) -> RunResult:
        import tempfile  # noqa: PLC0415 -- 3 ms of imports, for a transaction only

        with tempfile.TemporaryDirectory(prefix="secprof-selinux-", dir=self._scratch) as tmp:
            argv = [*self._base(), "-n", "-X", str(self._priority)]
            for op in ops:
                if op.content is not None:
                    path = Path(tmp, f"{op.module}.cil")
                    path.write_bytes(op.content)
                    argv += ["-i", str(path)]
            for op in ops:
                if op.content is None:
                    argv += ["-r", op.module]
            self.transactions += 1
            return self._run(argv, timeout_s=self._timeout_s)

    def _error(self, op: _Op, result: RunResult) -> BackendError:
        from agent.selinux.render import source_field  # noqa: PLC0415 -- see rules.py

        key, content = op.key, op.content

        def field(line: int) -> str | None:
            return source_field(key, content, line) if key and content else None

        return failure(f"semodule could not {op.verb} module {op.module}: "
                       f"{explain(result.output, op.module, content, field)}", result,
                       code=Code.SELINUX_MODULE_REJECTED)

    def _reload(self) -> AgentError | None:
        """One kernel policy load after the transactions, where it applies."""
        if not self.policy_active:
            return None
        try:
            result = self._run([self._load_policy], timeout_s=self._timeout_s)
        except BackendError as exc:
            return exc
        if not result.ok or "can't load policy" in result.output.lower():
            return failure("the modules are in the store but loading the policy into the "
                           f"kernel failed: {clean(result.output)}", result,
                           code=Code.SELINUX_RELOAD_FAILED)
        return None

    def _base(self) -> list[str]:
        return [self._semodule, "-p", str(self._root)]

    def _run(self, argv: Sequence[str], *, timeout_s: float) -> RunResult:
        return self._runner.run(argv, timeout_s=timeout_s)


def _dirs(path: Path) -> list[Path]:
    try:
        return [p for p in path.iterdir() if p.is_dir()]
    except OSError:
        return []


def _fingerprint(listing: Sequence[Module]) -> str:
    return sha256_hex(repr(sorted((m.priority, m.name, m.checksum, m.disabled)
                                  for m in listing)).encode())


def _digest(content: bytes) -> str:
    return f"sha256:{sha256_hex(content)}"


def _dependencies_first(ops: Sequence[_Op]) -> list[_Op]:
    """Installs ordered so that a module comes after the modules of this batch it
    ``blockinherit``s (each module is named after its block), then removals: when a failed
    transaction is split, a profile is never tried before the parent it inherits."""
    installs = {op.module: op for op in ops if op.content is not None}
    out: list[_Op] = []
    placed: set[str] = set()

    def place(op: _Op, seen: frozenset[str]) -> None:
        if op.module in placed or op.module in seen:
            return  # a cycle is semodule's to report
        assert op.content is not None
        for parent in _INHERIT_RE.findall(op.content.decode("utf-8", "replace")):
            if parent in installs:
                place(installs[parent], seen | {op.module})
        placed.add(op.module)
        out.append(op)

    for op in installs.values():
        place(op, frozenset())
    return out + [op for op in ops if op.content is None]
