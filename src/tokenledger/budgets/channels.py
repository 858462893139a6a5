"""Alert channels set by the settings (``TOKENLEDGER_ALERT_*``), beside the page's.

Each server process writes the settings' channels into ``alert_channels`` (source
``settings``) when its alert thread starts, so a delivery names its channel like any
other and survives a restart. Rule: **a kind set in the settings wins**: while the
settings name a webhook (or a Slack webhook, or e-mail addresses), the channels of
that kind added on the Budgets page receive no new alert; the other kinds still do.
A settings webhook's secret is never stored: it is read from the settings when sent.
"""

from __future__ import annotations

from tokenledger.auth import audit
from tokenledger.settings import Settings, split_list
from tokenledger.store import budgets as budget_store
from tokenledger.store.database import Database

SETTINGS_ACTOR = "settings"


def wanted(settings: Settings) -> list[tuple[str, str]]:
    """The (kind, target) channels the settings name."""
    found = []
    if settings.alert_webhook_url:
        found.append(("webhook", settings.alert_webhook_url))
    if settings.alert_slack_url:
        found.append(("slack", settings.alert_slack_url))
    found += [("email", address) for address in split_list(settings.alert_email_to)]
    return list(dict.fromkeys(found))  # an address given twice is one channel


def sync(db: Database, settings: Settings, *, now_us: int) -> int:
    """Write the settings' channels to the database (audited); how many changed."""
    with db.write() as conn:
        db.dialect.serialize(conn, "alert_channels")  # one process at a time
        changes = budget_store.sync_settings_channels(conn, wanted=wanted(settings), now_us=now_us)
        for channel_id, kind, target, enabled in changes:
            audit.record_in(
                conn,
                actor=SETTINGS_ACTOR,
                action=audit.ALERT_CHANNEL_CHANGED,
                details={
                    "channel_id": channel_id,
                    "kind": kind,
                    "target": target,
                    "enabled": enabled,
                    "source": "settings",
                },
                now_us=now_us,
            )
    return len(changes)
