"""The demo's raw-data generator: deterministic, the promised shape, and reversible incidents."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path

import duckdb
import pytest

from flower_dagster.demo.data import (
    DEMO_END,
    DEMO_START,
    RAW_TABLES,
    change_day,
    corrupt_day,
    generate_demo_data,
    load_demo_data,
    repair_day,
)

DAY = date(2024, 1, 9)
# The tests that change data load two weeks around DAY only, to stay fast.
SHORT = {"start": date(2024, 1, 1), "end": date(2024, 1, 14)}
DEMO_DAYS = (DEMO_END - DEMO_START).days + 1


def _rows(path: Path) -> dict[str, list[tuple]]:
    """Every raw table's rows, sorted (row order on disk is not part of the contract)."""
    with duckdb.connect(str(path), read_only=True) as con:
        return {
            table: con.execute(f"select * from raw.{table} order by all").fetchall()
            for table in RAW_TABLES
        }


def _query(path: Path, sql: str, params: dict | None = None) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql, params or {}).fetchall()


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One demo warehouse with the default raw data, for the tests that only read it."""
    path = tmp_path_factory.mktemp("demo") / "warehouse.duckdb"
    load_demo_data(path)
    return path


@pytest.fixture
def fresh(tmp_path: Path) -> Path:
    """A demo warehouse of the test's own (two weeks), for the tests that change it."""
    path = tmp_path / "warehouse.duckdb"
    load_demo_data(path, **SHORT)
    return path


def test_two_loads_give_identical_rows(loaded: Path, tmp_path: Path):
    other = tmp_path / "other.duckdb"
    counts = load_demo_data(other)
    assert _rows(other) == _rows(loaded)
    assert counts == {table: len(rows) for table, rows in _rows(other).items()}


def test_loaded_rows_are_the_generated_rows(loaded: Path):
    """Nothing is lost or shifted on the way in (timestamps stay wall-clock, amounts exact)."""
    generated = generate_demo_data().tables()
    loaded_rows = _rows(loaded)
    for table, rows in generated.items():
        # Every table's first column is its id; compare the values' text (amounts are exact).
        as_text = [tuple(str(value) for value in row) for row in sorted(rows, key=lambda r: r[0])]
        assert [tuple(str(value) for value in row) for row in loaded_rows[table]] == as_text, table


def test_another_seed_gives_other_rows():
    assert generate_demo_data(seed=8).orders != generate_demo_data().orders


def test_loading_again_replaces_the_tables(tmp_path: Path):
    path = tmp_path / "warehouse.duckdb"
    first = load_demo_data(path, **SHORT)
    assert load_demo_data(path, **SHORT) == first
    assert {table: len(rows) for table, rows in _rows(path).items()} == first


def test_row_counts_are_in_the_promised_ranges(loaded: Path):
    ((users, before_start),) = _query(
        loaded,
        "select count(*), count(*) filter (where signed_up_at < $start) from raw.users",
        {"start": datetime.combine(DEMO_START, time())},
    )
    assert 350 <= users <= 450 and 50 <= before_start < users
    for table, column, low, high in (
        ("events", "event_at", 100, 200),
        ("orders", "ordered_at", 30, 60),
    ):
        per_day = _query(
            loaded,
            f"select cast({column} as date) as day, count(*) from raw.{table} group by day",
        )
        assert len(per_day) == DEMO_DAYS, table
        assert all(low <= count <= high for _, count in per_day), table


def test_paid_orders_have_one_or_two_payments_and_cancelled_ones_none(loaded: Path):
    orders_by_payments = {
        (is_cancelled, payment_count): orders
        for is_cancelled, payment_count, orders in _query(
            loaded,
            """
            select o.status = 'cancelled', coalesce(p.payment_count, 0), count(*)
            from raw.orders as o
            left join (
                select order_id, count(*) as payment_count from raw.payments group by order_id
            ) as p on o.order_id = p.order_id
            group by all
            """,
        )
    }
    assert set(orders_by_payments) == {(True, 0), (False, 1), (False, 2)}
    orders = sum(orders_by_payments.values())
    assert 0 < orders_by_payments[(True, 0)] < orders * 0.15
    assert 0 < orders_by_payments[(False, 2)] < orders * 0.1


def test_every_day_has_orders_at_its_edges(loaded: Path):
    first_hours = dict(
        _query(
            loaded,
            "select cast(ordered_at as date), count(*) from raw.orders "
            "where hour(ordered_at) = 0 group by 1",
        )
    )
    last_hours = dict(
        _query(
            loaded,
            "select cast(ordered_at as date), count(*) from raw.orders "
            "where hour(ordered_at) = 23 group by 1",
        )
    )
    days = [DEMO_START + timedelta(days=offset) for offset in range(DEMO_DAYS)]
    assert all(day in first_hours and day in last_hours for day in days)
    # Week and month starts get an order at exactly midnight, the second before it another.
    ordered_at = {row[0] for row in _query(loaded, "select ordered_at from raw.orders")}
    for day in (date(2024, 1, 8), date(2024, 2, 1), date(2024, 3, 1), date(2024, 3, 25)):
        midnight = datetime.combine(day, time())
        assert midnight in ordered_at and midnight - timedelta(seconds=1) in ordered_at, day


def test_sessions_lie_within_one_day_and_users_exist_first(loaded: Path):
    ((split_sessions, early_events, early_orders),) = _query(
        loaded,
        """
        select
            (select count(*) from (
                select session_id from raw.events group by session_id
                having count(distinct cast(event_at as date)) > 1
            )),
            (select count(*) from raw.events as e join raw.users as u using (user_id)
             where e.event_at < u.signed_up_at),
            (select count(*) from raw.orders as o join raw.users as u using (user_id)
             where o.ordered_at < u.signed_up_at)
        """,
    )
    assert (split_sessions, early_events, early_orders) == (0, 0, 0)


def test_corrupt_day_duplicates_one_order_of_the_day_and_repair_undoes_it(fresh: Path):
    before = _rows(fresh)
    corrupt_day(fresh, DAY)
    corrupted = _rows(fresh)
    corrupt_day(fresh, DAY)
    assert _rows(fresh) == corrupted
    duplicated = _query(
        fresh,
        "select order_id, cast(ordered_at as date) from raw.orders "
        "group by all having count(*) > 1",
    )
    assert [day for _, day in duplicated] == [DAY]
    assert len(corrupted["orders"]) == len(before["orders"]) + 1
    assert {table: rows for table, rows in corrupted.items() if table != "orders"} == {
        table: rows for table, rows in before.items() if table != "orders"
    }

    repair_day(fresh, DAY)
    assert _rows(fresh) == before
    repair_day(fresh, DAY)
    assert _rows(fresh) == before


def test_change_day_adds_one_paid_order_once(fresh: Path):
    before = _rows(fresh)
    change_day(fresh, DAY)
    changed = _rows(fresh)
    change_day(fresh, DAY)
    assert _rows(fresh) == changed
    (new_order,) = set(changed["orders"]) - set(before["orders"])
    (new_payment,) = set(changed["payments"]) - set(before["payments"])
    order_id, _, status, ordered_at = new_order
    assert status == "completed" and ordered_at.date() == DAY
    assert new_payment[1] == order_id and new_payment[3] > 0
    assert changed["users"] == before["users"] and changed["events"] == before["events"]


def test_corrupting_a_day_without_orders_is_an_error(fresh: Path):
    with pytest.raises(ValueError, match="no orders"):
        corrupt_day(fresh, SHORT["end"] + timedelta(days=1))
