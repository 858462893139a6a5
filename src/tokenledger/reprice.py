"""``tokenledger reprice``: recompute the cost of stored events after prices changed.

The events from a UTC date on (optionally of one model) whose cost came from prices,
not from the event itself (reported costs stay), are priced again with today's own
prices and catalogue; their rollups are rewritten from the events in the same
transaction, and one audit entry records the totals before and after.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Connection

from tokenledger import prices
from tokenledger.auth import audit
from tokenledger.catalogue import Tokens
from tokenledger.metrics import dollars_text
from tokenledger.store import recompute, repricing
from tokenledger.store.usage_store import UsageStore
from tokenledger.store.writes import user_lock_key


@dataclass(frozen=True)
class Repriced:
    """What a reprice did: events looked at, events whose cost changed, totals."""

    events: int
    changed: int
    before: repricing.Totals
    after: repricing.Totals

    def json(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "changed": self.changed,
            "before": _totals_json(self.before),
            "after": _totals_json(self.after),
        }


def _totals_json(totals: repricing.Totals) -> dict[str, Any]:
    return {
        "cost_usd": dollars_text(totals.cost_nanos),
        "unpriced_requests": totals.unpriced,
    }


def reprice(
    store: UsageStore,
    *,
    from_date: date,
    model: str | None = None,
    now_us: int,
    actor: str,
    client: str | None = None,
) -> Repriced:
    """Price again the events from ``from_date`` (UTC) on, of ``model`` if given."""
    selection = repricing.Selection(prices.day_start_us(from_date), model or None)

    def work(conn: Connection) -> Repriced:
        people = repricing.users(conn, selection)
        store.db.dialect.lock_users(conn, (user_lock_key(external_id) for _, external_id in people))
        before = repricing.totals(conn, selection)
        changed = _price_again(store, conn, selection)
        if changed and before.first_us is not None and before.last_us is not None:
            recompute.rebuild_part(
                store,
                conn,
                users_sql=repricing.users_sql([pk for pk, _ in people]),
                start_us=before.first_us,
                end_us=before.last_us,
            )
        result = Repriced(before.events, changed, before, repricing.totals(conn, selection))
        details = {"from": from_date.isoformat(), "model": model or None, **result.json()}
        audit.record_in(
            conn, actor=actor, action=audit.REPRICED, details=details, now_us=now_us, client=client
        )
        return result

    return store.db.run_write(work)


def _price_again(store: UsageStore, conn: Connection, selection: repricing.Selection) -> int:
    own = prices.load(conn)
    changed = 0
    for page in repricing.pages(conn, selection):
        changes: list[tuple[int | None, str, int]] = []
        for row in page:
            event_pk, model, provider, started_us, input_tokens, output_tokens = row[:6]
            tokens = Tokens(input_tokens, row[6] or 0, row[7] or 0, output_tokens)
            cost, source = store.pricer.cost(
                model=model, provider=provider, started_us=started_us, tokens=tokens, own=own
            )
            if (cost, source) != (row[8], row[9]):
                changes.append((cost, source, event_pk))
        repricing.set_costs(conn, changes)
        changed += len(changes)
    return changed
