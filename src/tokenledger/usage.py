"""Usage: the sums of every metric over a set of requests, and whose requests count."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tokenledger.metrics import METRICS, MetricSet, Raw


class Usage:
    """Sums over a set of requests: each metric (``usage["requests"]``, or
    ``usage.requests``), derived ones too (``total_tokens``), and the first and last
    request's instants (None when unknown)."""

    __slots__ = ("metric_set", "raw")

    def __init__(self, raw: Raw | None = None, *, metrics: MetricSet = METRICS) -> None:
        self.metric_set = metrics
        self.raw: Raw = metrics.empty() if raw is None else raw

    def __getitem__(self, name: str) -> int:
        return self.metric_set.value(self.raw, name)

    def __getattr__(self, name: str) -> int:
        if name.startswith("__") or name not in self.metric_set.public_names:
            raise AttributeError(name)
        return self.metric_set.value(self.raw, name)

    def __repr__(self) -> str:
        span = f"first_us={self.first_us}, last_us={self.last_us}"
        return f"Usage({self.metric_set.values(self.raw)}, {span})"

    @property
    def first_us(self) -> int | None:
        value: int | None = self.raw[-2]  # a Raw ends with its span
        return value

    @property
    def last_us(self) -> int | None:
        value: int | None = self.raw[-1]
        return value

    def metrics(self) -> dict[str, int]:
        """Every metric's value by public name, in declaration order."""
        return self.metric_set.values(self.raw)

    def json_values(self) -> dict[str, Any]:
        """Every metric as the API writes it (money as a decimal string)."""
        return self.metric_set.json_values(self.raw)


Profile = tuple[str, str | None, str | None]  # a user's (user id, name, e-mail)


@dataclass(frozen=True)
class UserFilter:
    """Which users a report covers: a search text and/or one user id."""

    q: str | None = None
    user_id: str | None = None
    # Only the people whose attribute (store/dimensions.py) has this value, e.g.
    # (("team", "Ops"),); a value of None selects the people without one.
    where: tuple[tuple[str, str | None], ...] = ()
    # Only these people (their ``users.id``), e.g. those over a share of their budget.
    user_pks: frozenset[int] | None = None

    @property
    def search(self) -> str | None:
        """The search text, trimmed (None when there is none)."""
        return self.q.strip() if self.q and self.q.strip() else None

    @property
    def active(self) -> bool:
        return (
            self.search is not None
            or self.user_id is not None
            or bool(self.where)
            or self.user_pks is not None
        )
