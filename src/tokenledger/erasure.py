"""Erasing a person on request: the store's erasure, its audit entry, the checkpoint.

Used by ``tokenledger people erase`` and the admin page's action; what is erased and
how idempotency survives is described in :mod:`tokenledger.store.erasure`.
"""

from __future__ import annotations

from tokenledger.auth import audit
from tokenledger.store import erasure
from tokenledger.store.usage_store import UsageStore


def erase_person(
    store: UsageStore,
    *,
    user_id: str,
    actor: str,
    now_us: int,
    client: str | None = None,
    batch_size: int = erasure.BATCH_SIZE,
) -> erasure.Erasure:
    """Erase ``user_id`` and record it (the pseudonym and counts, none of the erased
    values); on SQLite, checkpoint the WAL so no old page image keeps them."""
    done = erasure.erase(store, user_id=user_id, batch_size=batch_size)
    audit.record(
        store.db,
        actor=actor,
        action=audit.PERSON_ERASED,
        details={
            "pseudonym": done.pseudonym,
            "events_rewritten": done.events,
            "cleared": list(done.cleared),
        },
        now_us=now_us,
        client=client,
    )
    erasure.checkpoint(store.db)
    return done
