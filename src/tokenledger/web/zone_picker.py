"""The time zone picker: every zone once, grouped by region, with its offset now.

The list is the time zone database's ``zone.tab`` (one line per zone in use, no
backward-compatible aliases such as ``Asia/Calcutta`` beside ``Asia/Kolkata``), plus
UTC. Without that file, it falls back to the zones Python knows, minus the legacy
groups. A zone named in the URL that is not in the list (an alias) is still shown.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache, lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from tokenledger.web.formatting import utc_offset


@dataclass(frozen=True, slots=True)
class ZoneChoice:
    name: str  # the IANA name, the value sent
    place: str  # what a person reads: "Buenos Aires (Argentina)"
    offset: str  # "UTC-03:00", now


@dataclass(frozen=True, slots=True)
class ZoneGroup:
    region: str
    zones: tuple[ZoneChoice, ...]


def _from_zone_tab() -> list[str]:
    for directory in zoneinfo.TZPATH:
        path = Path(directory) / "zone.tab"
        if path.is_file():
            lines = path.read_text(encoding="utf-8").splitlines()
            return [line.split("\t")[2] for line in lines if line and not line.startswith("#")]
    return []


@cache
def zone_names() -> tuple[str, ...]:
    """Every zone a viewer can pick, sorted, each once."""
    names = set(_from_zone_tab()) or {
        name
        for name in zoneinfo.available_timezones()
        if "/" in name and not name.startswith(("Etc/", "SystemV/", "US/"))
    }
    return tuple(sorted(names | {"UTC"}))


def place_name(name: str) -> str:
    """``America/Argentina/Buenos_Aires`` -> ``Buenos Aires (Argentina)``."""
    parts = name.replace("_", " ").split("/")
    if len(parts) == 1:
        return parts[0]
    city, middle = parts[-1], parts[1:-1]
    return f"{city} ({' / '.join(middle)})" if middle else city


def region_of(name: str) -> str:
    return name.split("/", 1)[0] if "/" in name else "UTC"


# Zones change offset at a local hour, half or quarter hour, i.e. on a UTC quarter
# hour: the offsets of the whole list hold for a quarter hour.
_SLOT_S = 900


def zone_groups(now: datetime, selected: str) -> list[ZoneGroup]:
    """The picker's groups (UTC first, then regions A-Z; places A-Z inside each), with
    each zone's offset at ``now``. Made once per quarter hour and selected zone (some
    600 zones: 30 ms of every full page otherwise)."""
    return list(_zone_groups_in(int(now.timestamp()) // _SLOT_S, selected))


@lru_cache(maxsize=64)
def _zone_groups_in(slot: int, selected: str) -> tuple[ZoneGroup, ...]:
    now = datetime.fromtimestamp(slot * _SLOT_S, UTC)
    names = set(zone_names())
    names.add(selected)
    grouped: dict[str, list[ZoneChoice]] = {}
    for name in sorted(names, key=place_name):
        offset = utc_offset(ZoneInfo(name), now)
        grouped.setdefault(region_of(name), []).append(ZoneChoice(name, place_name(name), offset))
    order = sorted(grouped, key=lambda region: (region != "UTC", region))
    return tuple(ZoneGroup(region, tuple(grouped[region])) for region in order)
