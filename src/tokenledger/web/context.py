"""What request handlers need, built once per app by ``create_app``."""

from __future__ import annotations

from dataclasses import dataclass

from tokenledger.clock import Clock
from tokenledger.settings import Settings
from tokenledger.store.database import Database


@dataclass
class AppContext:
    settings: Settings
    db: Database
    clock: Clock
