"""Deterministic raw data of a small online shop, written into schema `raw` of a DuckDB file.

The shop has users who sign up, browse in sessions (tracked events), place orders and pay for
them. Every timestamp is a TIMESTAMP without time zone holding wall-clock Asia/Seoul time, the
way the shop's backend writes it. The same arguments always give the same rows: all randomness
comes from one `random.Random(seed)` and nothing reads the clock.

Shapes the demo relies on:
- some users signed up before the demo range (an existing customer base);
- the tracker ends sessions at midnight (as web analytics tools do), so a session lies in one day;
- every day has an order in its first hour and one in its last hour, and the first order of a
  week (Monday) or of a month lands at exactly 00:00:00, the one before it at 23:59:59, so
  partition windows are exercised at their edges;
- cancelled orders have no payment; a few orders are paid in two parts; a payment may fall just
  after midnight following an order placed just before it.

`corrupt_day`, `repair_day` and `change_day` edit one day of raw data to stage a data incident,
its fix, and a valid late change.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

import duckdb

from flower_dagster.warehouse_lock import warehouse_lock

DEMO_START = date(2024, 1, 1)
DEMO_END = date(2024, 3, 31)  # inclusive
DEMO_TIMEZONE = "Asia/Seoul"  # the wall clock of every raw timestamp
RAW_SCHEMA = "raw"

# Column names and types of each raw table, in load order.
RAW_TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "users": (
        ("user_id", "bigint"),
        ("signed_up_at", "timestamp"),
        ("country", "varchar"),
        ("plan", "varchar"),
    ),
    "events": (
        ("event_id", "bigint"),
        ("user_id", "bigint"),
        ("session_id", "varchar"),
        ("event_type", "varchar"),
        ("event_at", "timestamp"),
    ),
    "orders": (
        ("order_id", "bigint"),
        ("user_id", "bigint"),
        ("status", "varchar"),
        ("ordered_at", "timestamp"),
    ),
    "payments": (
        ("payment_id", "bigint"),
        ("order_id", "bigint"),
        ("method", "varchar"),
        ("amount", "decimal(12, 2)"),
        ("paid_at", "timestamp"),
    ),
}

ORDER_STATUSES = ("placed", "shipped", "completed", "cancelled")
USER_PLANS = ("free", "plus", "pro")
EVENT_TYPES = ("page_view", "search", "product_view", "add_to_cart", "checkout")
PAYMENT_METHODS = ("card", "kakao_pay", "bank_transfer", "gift_card")

# Sizes: an existing base signed up in the 90 days before the range, then ~3 sign-ups a day
# (~400 users over the default three months); 30-45 sessions of 2-6 events and 30-60 orders a day.
_EXISTING_USERS = 120
_EXISTING_USERS_DAYS = 90
_SIGNUPS_PER_DAY = (1, 5)
_SESSIONS_PER_DAY = (30, 45)
_EVENTS_PER_SESSION = (2, 6)
_ORDERS_PER_DAY = (30, 60)
_CANCEL_RATE = 0.08
_SPLIT_PAYMENT_RATE = 0.04

# Raw country and plan values are not always clean; staging normalises them.
_COUNTRIES = ("KR", "JP", "US", "SG", "DE")
_COUNTRY_WEIGHTS = (55, 15, 12, 8, 10)
_PLAN_WEIGHTS = (60, 30, 10)
_METHOD_WEIGHTS = (60, 20, 15, 5)
_DIRTY_RATE = 0.05

# Ids of the rows `change_day` adds: far above generated ids, one per day.
_CHANGE_ID_BASE = 1_000_000_000

_DAY = timedelta(days=1)

Row = tuple[object, ...]


@dataclass(frozen=True)
class RawData:
    """Rows of the four raw tables, each row a tuple in `RAW_TABLES` column order."""

    users: list[Row]
    events: list[Row]
    orders: list[Row]
    payments: list[Row]

    def tables(self) -> dict[str, list[Row]]:
        """The rows per raw table name, in load order."""
        return {
            "users": self.users,
            "events": self.events,
            "orders": self.orders,
            "payments": self.payments,
        }


def generate_demo_data(start: date = DEMO_START, end: date = DEMO_END, seed: int = 7) -> RawData:
    """Generate the raw rows for the days `start` .. `end` (inclusive). Pure and deterministic."""
    if end < start:
        raise ValueError(f"demo data: end {end} is before start {start}")
    rng = random.Random(seed)
    days = [start + timedelta(days=offset) for offset in range((end - start).days + 1)]
    users = _generate_users(rng, start, days)
    signups = [signed_up_at for _, signed_up_at, _, _ in users]
    user_ids = [user_id for user_id, _, _, _ in users]
    events = _generate_events(rng, days, signups, user_ids)
    orders, payments = _generate_orders(rng, days, end, signups, user_ids)
    return RawData(users=users, events=events, orders=orders, payments=payments)


def load_demo_data(
    duckdb_path: str | Path,
    start: date = DEMO_START,
    end: date = DEMO_END,
    seed: int = 7,
) -> dict[str, int]:
    """(Re)create schema `raw` with tables users, events, orders, payments in one transaction.

    Existing raw tables are replaced. Returns the row count of each table.
    """
    data = generate_demo_data(start, end, seed)
    with _transaction(duckdb_path) as con:
        con.execute(f"create schema if not exists {RAW_SCHEMA}")
        for table, rows in data.tables().items():
            con.execute(f"create or replace table {_qualified(table)} ({_column_ddl(table)})")
            _insert_rows(con, table, rows)
    return {table: len(rows) for table, rows in data.tables().items()}


def corrupt_day(duckdb_path: str | Path, day: date) -> None:
    """Duplicate the first order of `day` in raw.orders, as a replayed ingestion batch would.

    The duplicate breaks the `unique` test on fct_orders.order_id for that day's partition.
    Idempotent: a day that already holds the duplicate is left as it is.
    """
    start, end = _day_bounds(day)
    with _transaction(duckdb_path) as con:
        first = con.execute(
            f"""
            select order_id, count(*) as copies
            from {_qualified("orders")}
            where ordered_at >= $start and ordered_at < $end
            group by order_id
            order by order_id
            limit 1
            """,
            {"start": start, "end": end},
        ).fetchone()
        if first is None:
            raise ValueError(f"demo data: no orders on {day} to corrupt")
        order_id, copies = first
        if copies == 1:
            con.execute(
                f"insert into {_qualified('orders')} "
                f"select * from {_qualified('orders')} where order_id = $order_id",
                {"order_id": order_id},
            )


def repair_day(duckdb_path: str | Path, day: date) -> None:
    """Undo `corrupt_day`: keep one row of each order of `day` that appears more than once.

    Idempotent: a day without duplicates is left as it is.
    """
    start, end = _day_bounds(day)
    with _transaction(duckdb_path) as con:
        con.execute(
            f"""
            delete from {_qualified("orders")}
            where rowid in (
                select copies.rowid
                from (
                    select
                        rowid,
                        row_number() over (partition by order_id order by rowid) as copy_number
                    from {_qualified("orders")}
                    where ordered_at >= $start and ordered_at < $end
                ) as copies
                where copies.copy_number > 1
            )
            """,
            {"start": start, "end": end},
        )


def change_day(duckdb_path: str | Path, day: date) -> None:
    """Add one valid late order of `day` (completed, paid 50.00 by card at 12:00).

    The order goes to the earliest user signed up by then. Idempotent: its ids are fixed per day,
    so a second call finds the order already there and changes nothing.
    """
    order_id = payment_id = _CHANGE_ID_BASE + day.toordinal()
    ordered_at = datetime.combine(day, time(12, 0))
    with _transaction(duckdb_path) as con:
        exists = con.execute(
            f"select count(*) from {_qualified('orders')} where order_id = $order_id",
            {"order_id": order_id},
        ).fetchone()
        if exists is not None and exists[0] > 0:
            return
        user = con.execute(
            f"""
            select user_id from {_qualified("users")}
            where signed_up_at < $ordered_at
            order by signed_up_at, user_id
            limit 1
            """,
            {"ordered_at": ordered_at},
        ).fetchone()
        if user is None:
            raise ValueError(f"demo data: no user signed up before {ordered_at} to order")
        _insert_rows(con, "orders", [(order_id, user[0], "completed", ordered_at)])
        _insert_rows(
            con,
            "payments",
            [(payment_id, order_id, "card", "50.00", ordered_at + timedelta(minutes=1))],
        )


def _generate_users(rng: random.Random, start: date, days: Sequence[date]) -> list[Row]:
    """Users sorted by sign-up time, ids 1.. in that order."""
    base_start = datetime.combine(start, time()) - timedelta(days=_EXISTING_USERS_DAYS)
    signups = [
        base_start + timedelta(seconds=rng.randrange(_EXISTING_USERS_DAYS * 86_400))
        for _ in range(_EXISTING_USERS)
    ]
    for day in days:
        for _ in range(rng.randint(*_SIGNUPS_PER_DAY)):
            signups.append(_random_time_of(rng, day))
    signups.sort()
    users: list[Row] = []
    for user_id, signed_up_at in enumerate(signups, start=1):
        country = rng.choices(_COUNTRIES, weights=_COUNTRY_WEIGHTS)[0]
        plan = rng.choices(USER_PLANS, weights=_PLAN_WEIGHTS)[0]
        if rng.random() < _DIRTY_RATE:
            country = country.lower()
        if rng.random() < _DIRTY_RATE:
            plan = f" {plan.capitalize()}"
        users.append((user_id, signed_up_at, country, plan))
    return users


def _generate_events(
    rng: random.Random,
    days: Sequence[date],
    signups: Sequence[datetime],
    user_ids: Sequence[int],
) -> list[Row]:
    """Events in sessions that each lie within one day, ids 1.. in time order."""
    events: list[tuple[datetime, int, str, str]] = []
    for day in days:
        midnight = datetime.combine(day, time()) + _DAY
        for _ in range(rng.randint(*_SESSIONS_PER_DAY)):
            started_at = _random_time_of(rng, day)
            user_id = _pick_user(rng, signups, user_ids, started_at)
            if user_id is None:
                continue
            session_id = f"{rng.getrandbits(64):016x}"
            event_at = started_at
            for position in range(rng.randint(*_EVENTS_PER_SESSION)):
                if event_at >= midnight:
                    break
                event_type = "page_view" if position == 0 else rng.choice(EVENT_TYPES)
                events.append((event_at, user_id, session_id, event_type))
                event_at += timedelta(seconds=rng.randint(5, 240))
    events.sort()
    return [
        (event_id, user_id, session_id, event_type, event_at)
        for event_id, (event_at, user_id, session_id, event_type) in enumerate(events, start=1)
    ]


def _generate_orders(
    rng: random.Random,
    days: Sequence[date],
    end: date,
    signups: Sequence[datetime],
    user_ids: Sequence[int],
) -> tuple[list[Row], list[Row]]:
    """Orders (ids 1.. in time order) and their payments (ids 1.. in order of their order)."""
    orders: list[Row] = []
    payments: list[Row] = []
    for day in days:
        midnight = datetime.combine(day, time())
        first_hour = midnight + timedelta(seconds=rng.randrange(3_600))
        last_hour = midnight + timedelta(seconds=rng.randrange(23 * 3_600, 86_400))
        if _starts_week_or_month(day):
            first_hour = midnight
        if _starts_week_or_month(day + _DAY):
            last_hour = midnight + _DAY - timedelta(seconds=1)
        order_times = [first_hour, last_hour]
        order_times += [_random_time_of(rng, day) for _ in range(rng.randint(*_ORDERS_PER_DAY) - 2)]
        order_times.sort()
        age_days = (end - day).days
        for ordered_at in order_times:
            user_id = _pick_user(rng, signups, user_ids, ordered_at)
            if user_id is None:
                continue
            order_id = len(orders) + 1
            status = _order_status(rng, age_days)
            orders.append((order_id, user_id, status, ordered_at))
            if status != "cancelled":
                payments += _payments_of(rng, len(payments) + 1, order_id, ordered_at)
    return orders, payments


def _order_status(rng: random.Random, age_days: int) -> str:
    """Recent orders are still placed or shipped; older ones are mostly completed."""
    if rng.random() < _CANCEL_RATE:
        return "cancelled"
    if age_days <= 1:
        return "placed"
    if age_days <= 4:
        return rng.choice(("placed", "shipped", "shipped"))
    return "completed" if rng.random() < 0.97 else "shipped"


def _payments_of(
    rng: random.Random, first_payment_id: int, order_id: int, ordered_at: datetime
) -> list[Row]:
    """One payment for the order, or two (a gift card part, then the rest by card)."""
    total_cents = rng.randint(900, 25_000)
    paid_at = ordered_at + timedelta(seconds=rng.randint(5, 300))
    if rng.random() < _SPLIT_PAYMENT_RATE:
        gift_cents = rng.randint(100, total_cents - 100)
        rest_paid_at = paid_at + timedelta(seconds=rng.randint(1, 120))
        return [
            (first_payment_id, order_id, "gift_card", _money(gift_cents), paid_at),
            (
                first_payment_id + 1,
                order_id,
                "card",
                _money(total_cents - gift_cents),
                rest_paid_at,
            ),
        ]
    method = rng.choices(PAYMENT_METHODS, weights=_METHOD_WEIGHTS)[0]
    return [(first_payment_id, order_id, method, _money(total_cents), paid_at)]


def _pick_user(
    rng: random.Random, signups: Sequence[datetime], user_ids: Sequence[int], at: datetime
) -> int | None:
    """A random user signed up before `at` (users are sorted by sign-up), or None if none is."""
    signed_up = _count_before(signups, at)
    if signed_up == 0:
        return None
    return user_ids[rng.randrange(signed_up)]


def _count_before(sorted_times: Sequence[datetime], at: datetime) -> int:
    """How many of `sorted_times` are strictly before `at`."""
    low, high = 0, len(sorted_times)
    while low < high:
        middle = (low + high) // 2
        if sorted_times[middle] < at:
            low = middle + 1
        else:
            high = middle
    return low


def _random_time_of(rng: random.Random, day: date) -> datetime:
    """A random second of `day`."""
    return datetime.combine(day, time()) + timedelta(seconds=rng.randrange(86_400))


def _starts_week_or_month(day: date) -> bool:
    return day.weekday() == 0 or day.day == 1


def _money(cents: int) -> str:
    """An exact decimal literal (DuckDB casts it to DECIMAL(12, 2) without rounding)."""
    return f"{cents // 100}.{cents % 100:02d}"


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time())
    return start, start + _DAY


def _qualified(table: str) -> str:
    return f"{RAW_SCHEMA}.{table}"


def _column_ddl(table: str) -> str:
    return ", ".join(f"{name} {type_}" for name, type_ in RAW_TABLES[table])


def _insert_rows(con: duckdb.DuckDBPyConnection, table: str, rows: Sequence[Row]) -> None:
    """Insert rows column-wise: each column is one list parameter, unnested side by side.

    Far faster than `executemany` (one statement instead of one per row) and needs no pandas.
    """
    if not rows:
        return
    columns = RAW_TABLES[table]
    values = [list(column) for column in zip(*rows, strict=True)]
    select_list = ", ".join(
        f"cast(unnest(${position}) as {type_}) as {name}"
        for position, (name, type_) in enumerate(columns, start=1)
    )
    con.execute(f"insert into {_qualified(table)} select {select_list}", values)


@contextmanager
def _transaction(duckdb_path: str | Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to the DuckDB file inside one transaction, committed on success, holding
    the warehouse lock so that a dbt step writing the same file waits instead of failing."""
    with warehouse_lock(duckdb_path):
        con = duckdb.connect(str(duckdb_path))
        try:
            con.begin()
            try:
                yield con
            except BaseException:
                con.rollback()
                raise
            con.commit()
        finally:
            con.close()
