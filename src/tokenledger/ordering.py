"""The order of a report's rows: sort keys, ties, and the page a window shows.

Rows sort by a person's text (user id, name, e-mail: case-insensitive) or by any metric
or the first / last request; ties are broken by user id, ascending, so every order is
total and a page never repeats or skips a row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from tokenledger.metrics import METRICS, MetricSet, Raw
from tokenledger.search import fold
from tokenledger.store.usage_reads import PageOrder
from tokenledger.usage import Profile

TEXT_SORTS = ("user_id", "name", "email")
SPAN_SORTS = ("first_request_at", "last_request_at")
DEFAULT_SORT = "-total_tokens"
_MISSING = -(2**63)  # sorts "no request" before every instant

Item = tuple[int, Raw]  # (user pk, raw usage)


def sort_columns(metrics: MetricSet = METRICS) -> tuple[str, ...]:
    """What a report can be sorted by: the person's texts, every metric, the span."""
    return (*TEXT_SORTS, *metrics.public_names, *SPAN_SORTS)


def parse_sort(sort: str, metrics: MetricSet = METRICS) -> tuple[str, bool]:
    """``"-total_tokens"`` -> ``("total_tokens", True)``; ValueError if unknown."""
    descending = sort.startswith("-")
    column = sort[1:] if descending else sort
    columns = sort_columns(metrics)
    if column not in columns:
        raise ValueError(f"unknown sort column {column!r}; one of {', '.join(columns)}")
    return column, descending


def needs_every_profile(sort: str, metrics: MetricSet = METRICS) -> bool:
    """Whether ordering needs every row's profile (texts) or first request."""
    column, _ = parse_sort(sort, metrics)
    return column in TEXT_SORTS or column == "first_request_at"


def sql_order(
    sort: str, metrics: MetricSet = METRICS, *, limit: int, offset: int
) -> PageOrder | None:
    """The page ``[offset, offset + limit)`` in ``sort`` order, when the database can
    sort it exactly as :func:`order` does (by a metric or the last request, then by
    user id); None for the orders that need every person's texts or first request."""
    column, descending = parse_sort(sort, metrics)
    if needs_every_profile(sort, metrics) or limit < 0 or offset < 0:
        return None
    return PageOrder(column, descending, limit, offset)


def raw_key(column: str, metrics: MetricSet) -> Callable[[Raw], Any]:
    """Sort key of a :data:`Raw` for a usage column."""
    if column in SPAN_SORTS:
        index = metrics.size + (0 if column == "first_request_at" else 1)
        return lambda raw: _MISSING if raw[index] is None else raw[index]
    return metrics.key(column)


def _text_key(value: str | None) -> tuple[str, str, str]:
    """Names sort as search matches them: folded ("Åsa" with the A's, "Łukasz" with the
    L's), then case-folded and as written, so the order is total."""
    text_value = value or ""
    return (fold(text_value), text_value.casefold(), text_value)


def order(
    items: list[Item],
    profiles: dict[int, Profile],
    sort: str,
    *,
    metrics: MetricSet,
    window: slice | None,
    fetch_profiles: Callable[[Iterable[int]], dict[int, Profile]],
) -> None:
    """Sort ``items`` in report order: exact everywhere when ``window`` is None (and
    ``profiles`` then holds every user), else exact inside ``window``: profiles (for
    the tie-breaking user id) are fetched only for the rows that tie with the window's
    edges. Sorting 10,000 numbers is cheap; 10,000 profile look-ups are not."""
    column, descending = parse_sort(sort, metrics)
    if column in TEXT_SORTS:
        position = TEXT_SORTS.index(column)
        items.sort(key=lambda item: profiles[item[0]][0])
        items.sort(key=lambda item: _text_key(profiles[item[0]][position]), reverse=descending)
        return
    key = raw_key(column, metrics)
    first, stop = 0, len(items)
    if window is not None:
        items.sort(key=lambda item: key(item[1]), reverse=descending)
        first, stop, _ = window.indices(len(items))
        if first >= stop:
            return
        low, high = key(items[first][1]), key(items[stop - 1][1])
        while first > 0 and key(items[first - 1][1]) == low:
            first -= 1
        while stop < len(items) and key(items[stop][1]) == high:
            stop += 1
    block = items[first:stop]
    profiles.update(fetch_profiles(pk for pk, _ in block if pk not in profiles))
    block.sort(key=lambda item: profiles[item[0]][0])
    block.sort(key=lambda item: key(item[1]), reverse=descending)
    items[first:stop] = block
