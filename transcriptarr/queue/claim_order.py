"""The claim order (db/models.py CLAIM_ORDER) in the forms its readers need.

- `ORDER_BY`: the SQLAlchemy terms of the claim's ORDER BY (queue/jobqueue.py) and of "next up";
- `order_by_sql(dialect)`: the same terms as SQL text, for PostgreSQL's fast path (queue/pg_fastpath.py),
  which sends its statement straight through asyncpg;
- `in_claim_order(jobs)`: jobs sorted in Python the same way (a claim of several returns them in any order).
"""

from __future__ import annotations

from collections.abc import Iterable
from operator import attrgetter
from typing import Any, cast

from sqlalchemy import ColumnElement, Dialect, Table

from transcriptarr.db.models import CLAIM_ORDER, Job

_JOBS = cast(Table, Job.__table__)

# A plain column for an ascending term (no "ASC"), as the claim has always been written.
ORDER_BY: tuple[ColumnElement[Any], ...] = tuple(
    _JOBS.c[term.column].desc() if term.descending else _JOBS.c[term.column] for term in CLAIM_ORDER
)


def order_by_sql(dialect: Dialect) -> str:
    """`ORDER_BY` as `dialect` writes it, e.g. `jobs.priority DESC, jobs.created_at, jobs.id`."""
    return ", ".join(str(term.compile(dialect=dialect)) for term in ORDER_BY)


def in_claim_order(jobs: Iterable[Job]) -> list[Job]:
    """`jobs` in the order a claim takes them."""
    ordered = list(jobs)
    for term in reversed(CLAIM_ORDER):  # stable sorts, least significant term first
        ordered.sort(key=attrgetter(term.column), reverse=term.descending)
    return ordered
