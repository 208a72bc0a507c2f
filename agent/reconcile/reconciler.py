"""Run a reconcile: build what is desired, plan against the ledger and the host, apply, record.

Only :meth:`Reconciler.apply` mutates anything (through the backend, then the ledger); planning
is pure and :meth:`Reconciler.evaluate` only reads, which is what ``secprof plan`` uses.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from agent.backends.base import Backend, Batch, Install, Result
from agent.errors import AgentError, ManifestError
from agent.model.manifests import DesiredState
from agent.model.profile import ProfileKey
from agent.reconcile.ledger import Entry, LedgerStore
from agent.reconcile.plan import Planned, Step, make_plan
from agent.reconcile.status import ProfileStatus, Report, State
from agent.seccomp.build import BuildCache, Built, build_all
from agent.seccomp.resolve import BaseSource


@dataclass(frozen=True, slots=True, kw_only=True)
class Evaluation:
    """Everything known before applying: the input of :meth:`Reconciler.apply`."""

    desired: DesiredState
    built: Mapping[ProfileKey, Built | AgentError]
    ledger: Mapping[ProfileKey, Entry]
    plan: tuple[Planned, ...]
    started_at: float


class Reconciler:
    def __init__(
        self,
        *,
        backend: Backend,
        ledger: LedgerStore,
        max_depth: int,
        oci: BaseSource | None = None,
        clock: Callable[[], float] = time.time,
        build_cache: BuildCache | None = None,
    ) -> None:
        """``build_cache`` (the daemon) carries builds from one reconcile to the next."""
        self._backend = backend
        self._ledger = ledger
        self._max_depth = max_depth
        self._oci = oci
        self._clock = clock
        self._build_cache = build_cache

    def evaluate(
        self, desired: DesiredState, *, read_only: bool = False, check_drift: bool = True
    ) -> Evaluation:
        """Everything :meth:`apply` needs. Without ``check_drift`` the host is assumed to hold
        what the ledger says (the daemon's change-triggered runs; its resyncs check)."""
        started = self._clock()
        ledger = self._ledger.load(repair=not read_only)
        built = build_all(
            desired.seccomp(), invalid=desired.invalid_seccomp(), max_depth=self._max_depth,
            oci=self._oci,
            validated={e.digest for e in ledger.values()}, cache=self._build_cache,
        )
        wanted = {
            key: result.digest
            for key, result in built.items()
            if isinstance(result, Built) and not result.profile.disabled
        }
        held = frozenset(
            key for key, entry in ledger.items()
            if key not in wanted and (
                desired.holds(key, entry.source) or isinstance(built.get(key), AgentError)
            )
        )
        actual = (
            self._backend.actual(ledger.keys()) if check_drift
            else {key: entry.digest for key, entry in ledger.items()}
        )
        plan = make_plan(desired=wanted, held=held, ledger=ledger, actual=actual)
        return Evaluation(desired=desired, built=built, ledger=ledger, plan=plan,
                          started_at=started)

    def reconcile(self, desired: DesiredState, *, check_drift: bool = True) -> Report:
        return self.apply(self.evaluate(desired, check_drift=check_drift))

    def apply(self, ev: Evaluation) -> Report:
        installs = tuple(
            Install(key=p.key, content=built.content, digest=built.digest)
            for p in ev.plan
            if p.step in (Step.ADD, Step.UPDATE, Step.REPAIR)
            and isinstance(built := ev.built[p.key], Built)
        )
        removals = tuple(p.key for p in ev.plan if p.step is Step.REMOVE)
        batch = Batch(installs=installs, removals=removals)
        results = {r.key: r for r in self._backend.apply(batch)} if batch else {}

        now = self._clock()
        ledger = dict(ev.ledger)
        for install in installs:
            if results[install.key].ok:
                built = ev.built[install.key]
                assert isinstance(built, Built)
                ledger[install.key] = Entry(
                    key=install.key, digest=install.digest,
                    location=self._backend.location(install.key),
                    source=built.profile.origin.file, installed_at=now,
                )
        for key in removals:
            if results[key].ok:
                del ledger[key]
        for planned in ev.plan:  # a profile moved to another file keeps its entry, new source
            built_or_error = ev.built.get(planned.key)
            entry = ledger.get(planned.key)
            if isinstance(built_or_error, Built) and entry is not None and (
                entry.source != built_or_error.profile.origin.file
            ):
                ledger[planned.key] = Entry(
                    key=entry.key, digest=entry.digest, location=entry.location,
                    source=built_or_error.profile.origin.file, installed_at=entry.installed_at,
                )
        if ledger != ev.ledger:
            self._ledger.save(ledger)
        return self._report(ev, results, ledger, applied=True, finished=now)

    def preview(self, ev: Evaluation) -> Report:
        """The report of a plan: what :meth:`apply` would do, nothing done."""
        return self._report(ev, {}, ev.ledger, applied=False, finished=self._clock())

    def _report(
        self,
        ev: Evaluation,
        results: Mapping[ProfileKey, Result],
        ledger: Mapping[ProfileKey, Entry],
        *,
        applied: bool,
        finished: float,
    ) -> Report:
        steps = {p.key: p.step for p in ev.plan}
        keys = sorted(ev.built.keys() | ev.desired.key_errors.keys() | ev.ledger.keys())
        statuses: list[ProfileStatus] = []
        removed: list[ProfileKey] = []
        for key in keys:
            step = steps.get(key)
            result = results.get(key)
            gone = key not in ev.built and key not in ev.desired.key_errors
            if gone and step is Step.REMOVE and applied and (result is None or result.ok):
                removed.append(key)
                continue
            statuses.append(self._status(
                ev, key=key, step=step, result=result, entry=ledger.get(key), applied=applied,
            ))
        return Report(
            profiles=tuple(statuses),
            removed=tuple(removed),
            file_errors=tuple(e for errors in ev.desired.file_errors.values() for e in errors)
            + _directory_errors(ev.desired),
            applied=applied,
            files_written=sum(1 for r in results.values() if r.changed),
            started_at=ev.started_at,
            duration_s=finished - ev.started_at,
        )

    def _status(
        self,
        ev: Evaluation,
        *,
        key: ProfileKey,
        step: Step | None,
        result: Result | None,
        entry: Entry | None,
        applied: bool,
    ) -> ProfileStatus:
        built = ev.built.get(key)
        installed = entry.digest if entry else ""
        keep = f"; the last good version ({installed}) stays installed" if installed else ""
        status = ProfileStatus(
            key=key, state=State.ERROR, step=step, installed_digest=installed,
            installed_at=entry.installed_at if entry else None,
            location=entry.location if entry else self._backend.location(key),
        )

        manifest_errors = ev.desired.key_errors.get(key)
        if manifest_errors:
            return replace(
                status, message="; ".join(_field_message(e) for e in manifest_errors) + keep,
                error_code=manifest_errors[0].code, source=_source(manifest_errors[0]),
            )
        if built is None:  # only in the ledger: removed from the desired state, or unreadable
            assert entry is not None
            if result is not None and result.error is not None:
                return replace(status, message=result.error.message,
                               error_code=result.error.code, source=entry.source)
            if step is Step.REMOVE:
                return replace(status, state=State.REMOVING, source=entry.source,
                               message="no longer in the desired state")
            return replace(status, message=_uncertain_reason(ev.desired, entry) + keep,
                           error_code="manifest-unreadable", source=entry.source)
        if isinstance(built, AgentError):
            return replace(status, message=built.message + keep, error_code=built.code,
                           source=str(ev.desired.profiles[key].origin))

        state, message, code = State.INSTALLED, "", ""
        if result is not None and result.error is not None:
            state, message, code = State.ERROR, result.error.message + keep, result.error.code
        elif built.profile.disabled:
            pending_removal = not applied and step is Step.REMOVE
            state = State.REMOVING if pending_removal else State.DISABLED
            message = "disabled: not installed, still usable as a base"
        elif not applied and step is not None and step.mutates:
            state = State.PENDING
        elif built.resolution.stale:
            state = State.STALE
            message = "a base is served from the cache: " + "; ".join(
                built.resolution.stale_reasons())
        # Built directly (not by replace()): this is the path every healthy profile takes.
        return ProfileStatus(
            key=key, state=state, step=step, message=message, error_code=code,
            source=str(built.profile.origin), digest=built.digest,
            installed_digest=installed, installed_at=status.installed_at,
            location=status.location, chain=built.resolution.chain,
            syscalls=built.resolution.merged.spec.syscalls, warnings=built.warnings,
            notes=built.notes,
        )


def _field_message(error: ManifestError) -> str:
    return f"{error.field}: {error.message}" if error.field else error.message


def _source(error: ManifestError) -> str:
    return error.file if error.index is None else f"{error.file}[{error.index}]"


def _uncertain_reason(desired: DesiredState, entry: Entry) -> str:
    if not desired.complete:
        return "the desired-state directory cannot be read"
    errors = desired.file_errors.get(entry.source, ())
    if errors:
        return f"its manifest file cannot be read: {errors[0]}"
    return "its manifest is gone"


def _directory_errors(desired: DesiredState) -> tuple[ManifestError, ...]:
    if desired.complete:
        return ()
    return tuple(e for e in desired.errors if e.code == "directory-unreadable")
