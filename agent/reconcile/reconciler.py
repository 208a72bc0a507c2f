"""Run a reconcile: build what is desired, plan against the ledger and the host, apply, record.

The reconciler names no kind: it works through one :class:`~agent.reconcile.driver.Driver` per
backend, in the order given (fastest first), so a slow backend's transaction never delays a
faster one's files. Each driver's backend is probed once per reconcile: ``unavailable`` fails
that driver's profiles with the reason (and holds what it installed), ``compile-only`` gives
``Validated`` instead of ``Installed``.

Only :meth:`Reconciler.reconcile` mutates anything (through the backends, then the ledger);
planning is pure and :meth:`Reconciler.evaluate` only reads, which is what ``secprof plan`` uses.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import dataclass, replace

from agent.backends.base import Availability, Batch, Install, Probe, Result
from agent.codes import Code
from agent.errors import AgentError, BackendError, ManifestError
from agent.model.desired import DesiredState
from agent.model.profile import ProfileKey
from agent.reconcile.driver import Built, Details, Driver
from agent.reconcile.ledger import Entry, LedgerStore
from agent.reconcile.plan import Planned, Step, make_plan
from agent.reconcile.recovery import recover, sweep
from agent.reconcile.status import ProfileStatus, Report, State

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class Part:
    """One driver's share of a reconcile: its probe, what it built, and the plan."""

    driver: Driver
    probe: Probe
    built: Mapping[ProfileKey, Built | AgentError]
    plan: tuple[Planned, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Evaluation:
    """Everything known before applying; what ``secprof plan`` shows."""

    desired: DesiredState
    ledger: Mapping[ProfileKey, Entry]
    parts: tuple[Part, ...]
    started_at: float


class Reconciler:
    def __init__(
        self,
        *,
        drivers: Sequence[Driver],
        ledger: LedgerStore,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._drivers = tuple(drivers)
        self._ledger = ledger
        self._clock = clock
        self._swept = False

    def evaluate(
        self, desired: DesiredState, *, read_only: bool = False, check_drift: bool = True
    ) -> Evaluation:
        """Every driver's build and plan. Without ``check_drift`` the host is assumed to hold
        what the ledger says (the daemon's change-triggered runs; its resyncs check)."""
        started = self._clock()
        ledger = self._ledger.load(repair=not read_only)
        validated = {e.digest for e in ledger.values()}
        parts = tuple(self._evaluate(d, desired, ledger, validated, check_drift)
                      for d in self._drivers)
        return Evaluation(desired=desired, ledger=ledger, parts=parts, started_at=started)

    def reconcile(self, desired: DesiredState, *, check_drift: bool = True) -> Report:
        """Build, plan and apply driver by driver, saving the ledger after each."""
        started = self._clock()
        if not self._swept:  # once per process: the leftovers of killed runs (we hold the lock)
            self._swept = True
            sweep(self._ledger, self._drivers)
        before = recover(self._ledger, self._drivers, desired)
        validated = {e.digest for e in before.values()}
        ledger = dict(before)
        parts: list[Part] = []
        results: dict[ProfileKey, Result] = {}
        for driver in self._drivers:
            part = self._evaluate(driver, desired, before, validated, check_drift)
            results.update(self._apply(part, ledger))
            parts.append(part)
        ev = Evaluation(desired=desired, ledger=before, parts=tuple(parts), started_at=started)
        return self._report(ev, results, ledger, applied=True, finished=self._clock())

    def preview(self, ev: Evaluation) -> Report:
        """The report of a plan: what :meth:`reconcile` would do, nothing done."""
        return self._report(ev, {}, ev.ledger, applied=False, finished=self._clock())

    def _evaluate(
        self,
        driver: Driver,
        desired: DesiredState,
        ledger: Mapping[ProfileKey, Entry],
        validated: Container[str],
        check_drift: bool,
    ) -> Part:
        probe = driver.backend.probe()
        mine = {k: e for k, e in ledger.items() if k.kind in driver.kinds}
        if probe.availability is Availability.UNAVAILABLE:
            error = BackendError(f"the {driver.name} backend is unavailable: {probe.reason}",
                                 code=Code.BACKEND_UNAVAILABLE)
            return Part(
                driver=driver, probe=probe,
                built=dict.fromkeys(desired.of_kinds(driver.kinds), error),
                plan=tuple(Planned(key=k, step=Step.HOLD) for k in sorted(mine)),
            )
        built = driver.build(desired, validated=validated)
        wanted = {
            key: result.digest
            for key, result in built.items()
            if isinstance(result, Built) and not result.disabled
        }
        held = frozenset(
            key for key, entry in mine.items()
            if key not in wanted and (
                desired.holds(key, entry.source) or isinstance(built.get(key), AgentError)
            )
        )
        actual = (
            driver.backend.actual(mine.keys()) if check_drift
            else {key: entry.digest for key, entry in mine.items()}
        )
        plan = make_plan(desired=wanted, held=held, ledger=mine, actual=actual)
        return Part(driver=driver, probe=probe, built=built, plan=plan)

    def _apply(self, part: Part, ledger: dict[ProfileKey, Entry]) -> dict[ProfileKey, Result]:
        """Apply one part's plan and record it in ``ledger`` (saved when it changed)."""
        installs = tuple(
            Install(key=p.key, content=built.content, digest=built.digest)
            for p in part.plan
            if p.step in (Step.ADD, Step.UPDATE, Step.REPAIR)
            and isinstance(built := part.built[p.key], Built)
        )
        removals = tuple(p.key for p in part.plan if p.step is Step.REMOVE)
        batch = Batch(installs=installs, removals=removals)
        backend = part.driver.backend
        now = self._clock()
        if installs:  # first the intent, durably: a crash after it loses no ownership
            try:
                self._ledger.intend(
                    Entry(key=i.key, digest=i.digest, location=backend.location(i.key),
                          source=_origin_file(part.built[i.key]), installed_at=now)
                    for i in installs
                )
            except AgentError as exc:
                keys = [i.key for i in installs] + list(removals)
                return {key: Result(key=key, error=exc) for key in keys}
        results = self._run(part.driver, batch) if batch else {}

        before = dict(ledger)
        for install in installs:
            if results[install.key].ok:
                built = part.built[install.key]
                assert isinstance(built, Built)
                ledger[install.key] = Entry(
                    key=install.key, digest=install.digest, location=backend.location(install.key),
                    source=built.origin.file, installed_at=now,
                )
        for key in removals:
            if results[key].ok:
                del ledger[key]
        for planned in part.plan:  # a profile moved to another file keeps its entry, new source
            built_or_error = part.built.get(planned.key)
            entry = ledger.get(planned.key)
            if isinstance(built_or_error, Built) and entry is not None and (
                entry.source != built_or_error.origin.file
            ):
                ledger[planned.key] = replace(entry, source=built_or_error.origin.file)
        if ledger != before:
            try:
                self._ledger.save(ledger)
            except AgentError as exc:  # what was written stays owned through the intent
                return {key: Result(key=key, error=AgentError(
                            f"{exc.message}; the change was made, and the next run records it",
                            code=exc.code, hint=exc.hint))
                        if r.changed else r for key, r in results.items()}
        if installs:
            self._ledger.done()
        return results

    @staticmethod
    def _run(driver: Driver, batch: Batch) -> dict[ProfileKey, Result]:
        """The backend's results, one per key; a backend that fails as a whole fails its batch
        (its keys keep their last good version), never the other drivers."""
        keys = [i.key for i in batch.installs] + list(batch.removals)
        try:
            results = {r.key: r for r in driver.backend.apply(batch)}
        except AgentError as exc:
            return {key: Result(key=key, error=exc) for key in keys}
        except Exception as exc:  # a bug in one backend must not stop the others
            log.exception("the %s backend failed", driver.name)
            error = BackendError(f"the {driver.name} backend failed: {exc!r}",
                                 code=Code.BACKEND_FAILED)
            return {key: Result(key=key, error=error) for key in keys}
        missing = BackendError(f"the {driver.name} backend gave no result",
                               code=Code.BACKEND_FAILED)
        return {key: results.get(key) or Result(key=key, error=missing) for key in keys}

    def _report(
        self,
        ev: Evaluation,
        results: Mapping[ProfileKey, Result],
        ledger: Mapping[ProfileKey, Entry],
        *,
        applied: bool,
        finished: float,
    ) -> Report:
        parts = {kind: part for part in ev.parts for kind in part.driver.kinds}
        steps = {p.key: p.step for part in ev.parts for p in part.plan}
        built = {k: b for part in ev.parts for k, b in part.built.items()}
        keys = sorted(built.keys() | ev.desired.profiles.keys() | ev.desired.key_errors.keys()
                      | ev.ledger.keys())
        statuses: list[ProfileStatus] = []
        removed: list[ProfileKey] = []
        for key in keys:
            step = steps.get(key)
            result = results.get(key)
            gone = key not in built and key not in ev.desired.key_errors
            if gone and step is Step.REMOVE and applied and (result is None or result.ok):
                removed.append(key)
                continue
            statuses.append(_status(
                ev, parts.get(key.kind), built.get(key), key=key, step=step, result=result,
                entry=ledger.get(key), applied=applied,
            ))
        return Report(
            profiles=tuple(statuses),
            removed=tuple(removed),
            file_errors=tuple(e for errors in ev.desired.file_errors.values() for e in errors)
            + _directory_errors(ev.desired),
            notes=ev.desired.notes,
            applied=applied,
            files_written=sum(1 for r in results.values() if r.changed),
            started_at=ev.started_at,
            duration_s=finished - ev.started_at,
            backends={kind: part.probe for kind, part in sorted(parts.items())},
        )


def _status(
    ev: Evaluation,
    part: Part | None,
    built: Built | AgentError | None,
    *,
    key: ProfileKey,
    step: Step | None,
    result: Result | None,
    entry: Entry | None,
    applied: bool,
) -> ProfileStatus:
    installed = entry.digest if entry else ""
    keep = f"; the last good version ({installed}) stays installed" if installed else ""
    driver = part.driver if part else None
    installed_at = entry.installed_at if entry else None
    location = entry.location if entry else driver.backend.location(key) if driver else ""
    usage = driver.usage(key) if driver else ""

    def problem() -> ProfileStatus:  # made only on the paths that report one
        return ProfileStatus(key=key, state=State.ERROR, step=step, installed_digest=installed,
                             installed_at=installed_at, location=location, usage=usage)

    manifest_errors = ev.desired.key_errors.get(key)
    if manifest_errors:
        return replace(
            problem(), message="; ".join(_field_message(e) for e in manifest_errors) + keep,
            error_code=manifest_errors[0].code, source=_source(manifest_errors[0]),
        )
    if part is None:  # a kind this build reads but no driver installs
        source = str(ev.desired.profiles[key].origin) if key in ev.desired.profiles else (
            entry.source if entry else "")
        return replace(problem(), message=f"no backend installs {key.kind.value} profiles" + keep,
                       error_code=Code.KIND_UNSUPPORTED, source=source)
    if built is None:  # only in the ledger: removed from the desired state, or unreadable
        assert entry is not None
        if result is not None and result.error is not None:
            return replace(problem(), state=_failed(step, result.error), source=entry.source,
                           message=result.error.message, error_code=result.error.code)
        if part.probe.availability is Availability.UNAVAILABLE:
            return replace(problem(), source=entry.source, error_code=Code.BACKEND_UNAVAILABLE,
                           message=f"the {part.driver.name} backend is unavailable: "
                           f"{part.probe.reason}" + keep)
        if step is Step.REMOVE:
            return replace(problem(), state=State.REMOVING, source=entry.source,
                           message="no longer in the desired state")
        return replace(problem(), message=_uncertain_reason(ev.desired, entry) + keep,
                       error_code=Code.MANIFEST_UNREADABLE, source=entry.source)
    if isinstance(built, AgentError):
        return replace(problem(), message=built.message + keep, error_code=built.code,
                       source=str(ev.desired.profiles[key].origin))

    state, message, code = State.INSTALLED, "", ""
    if result is not None and result.error is not None:
        state, message, code = _failed(step, result.error), result.error.message + keep, \
            result.error.code
    elif built.disabled:
        pending_removal = not applied and step is Step.REMOVE
        state = State.REMOVING if pending_removal else State.DISABLED
        message = "disabled: not installed, still usable as a base"
    elif not applied and step is not None and step.mutates:
        state = State.PENDING
    elif built.stale:
        state = State.STALE
        message = "; ".join(built.stale)
    elif part.probe.availability is Availability.COMPILE_ONLY:
        state = State.VALIDATED
        message = part.probe.reason
    # Built directly (not by replace()): this is the path every healthy profile takes.
    return ProfileStatus(
        key=key, state=state, step=step, message=message, error_code=code,
        source=str(built.origin), digest=built.digest,
        installed_digest=installed, installed_at=installed_at,
        location=location, usage=usage, warnings=built.warnings,
        notes=built.notes, details=Details(part.driver, built),
    )


def _failed(step: Step | None, error: AgentError) -> State:
    """A removal deferred while the profile is in use is ``Removing`` (retried at each
    resync), not an error."""
    deferred = step is Step.REMOVE and error.code == Code.PROFILE_IN_USE
    return State.REMOVING if deferred else State.ERROR


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
    return tuple(e for e in desired.errors if e.code == Code.DIRECTORY_UNREADABLE)


def _origin_file(built: Built | AgentError) -> str:
    return built.origin.file if isinstance(built, Built) else ""
