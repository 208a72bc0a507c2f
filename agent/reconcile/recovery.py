"""Recovery at the start of a reconcile (under the state lock): what killed runs left behind.

* Temp files of secprof's own pattern in the state directory and in every backend directory
  that can hold them (:class:`~agent.reconcile.ledger.Sweepable`) are removed, once per process.
* An intent journal means a run died between announcing writes and recording them: its keys are
  adopted into the ledger with an unconfirmed digest, so the plan rewrites them (still desired)
  or removes them (no longer desired).
* An unreadable ledger (moved aside by :meth:`LedgerStore.load`) is rebuilt from what the
  backends list in their own namespaces (:class:`~agent.reconcile.ledger.Inventory`), never
  from anywhere else.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

from agent.codes import Code
from agent.errors import AgentError
from agent.model.desired import DesiredState
from agent.model.profile import ProfileKey
from agent.reconcile.driver import Driver
from agent.reconcile.ledger import UNCONFIRMED, Entry, Inventory, LedgerStore, Sweepable

log = logging.getLogger(__name__)


def sweep(store: LedgerStore, drivers: Sequence[Driver]) -> None:
    """Remove the temp files killed runs left, in the state and the backends' directories."""
    store.sweep()
    for driver in drivers:
        if isinstance(driver.backend, Sweepable):
            driver.backend.sweep()


def recover(store: LedgerStore, drivers: Sequence[Driver], desired: DesiredState
        ) -> dict[ProfileKey, Entry]:
    """The ledger, with the ownership a crash or a lost ledger would drop put back: the keys of
    an intent journal a killed run left, and (the ledger unreadable) what is installed in
    secprof's own namespaces. Saved when that changed anything; called under the state lock."""
    ledger = store.load(repair=True)
    out = dict(ledger)
    if store.corrupt:
        # Unknown origin: while any manifest file is unreadable it may be that one's, so it
        # is held (never removed) until the desired state is complete again.
        source = next(iter(sorted(desired.file_errors)), "")
        for driver in drivers:
            if not isinstance(driver.backend, Inventory):
                continue
            for key, (digest, location) in driver.backend.inventory().items():
                if key.kind in driver.kinds and key not in out:
                    origin = desired.profiles.get(key)
                    out[key] = Entry(key=key, digest=digest, location=location,
                                     source=origin.origin.file if origin else source,
                                     installed_at=0.0)
        log.error("the ledger was unreadable (%s); rebuilt %d entr(y/ies) from what is "
                  "installed in secprof's own directories", store.corrupt, len(out),
                  extra={"ERROR_CODE": Code.LEDGER_REBUILT})
    pending = store.pending()
    for entry in pending:  # a run died between announcing writes and recording them
        known = out.get(entry.key)
        if known is None:
            out[entry.key] = replace(entry, digest=UNCONFIRMED, installed_at=0.0)
        elif known.digest != entry.digest:
            out[entry.key] = replace(known, digest=UNCONFIRMED)
    if pending:
        log.warning("an interrupted run left %d pending write(s); they are re-checked now",
                    len(pending))
    if out != ledger or pending:
        try:
            store.save(out)
            store.done()
        except AgentError as exc:  # kept in memory; the journal stays for the next run
            log.error("%s", exc, extra={"ERROR_CODE": exc.code})
    return out
