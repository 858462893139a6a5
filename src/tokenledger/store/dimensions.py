"""Dimensions of a person: what usage can be filtered and grouped by besides the
person (and the event fields a rollup is keyed by, see :mod:`tokenledger.store.rollups`).

A :class:`UserAttribute` is a column of ``users`` holding a person's latest value of
something (as name and e-mail are): a team, a department. Filtering by it is a
condition on the matching users; grouping by it sums the per-person usage by the
person's current value, so no rollup is needed (and a person who changes team takes
their history along: "by team" means "by the people now in the team").

Adding one (e.g. for teams) is one declaration plus a migration adding the column and
the write path or directory import that fills it::

    TEAM = UserAttribute("team", "team")
    USER_ATTRIBUTES = (TEAM, UserAttribute("department", "department"))
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class UserAttribute:
    name: str  # in filters and reports
    column: str  # the column of ``users``


TEAM = UserAttribute("team", "team")
DEPARTMENT = UserAttribute("department", "department")
USER_ATTRIBUTES: tuple[UserAttribute, ...] = (TEAM, DEPARTMENT)
