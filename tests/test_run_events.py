"""Blocking dbt tests hold a model's materialization back (pure: synthetic events)."""

import json

from dagster import AssetCheckKey, AssetCheckResult, AssetCheckSeverity, AssetKey, Output

from flower_dagster.dbt.run import dbt_log_errors, failure_summary, failure_text, hold_until_checked

ORDERS = AssetKey("fct_orders")
REVENUE = AssetKey("agg_daily_revenue")
UNIQUE = AssetCheckKey(ORDERS, "unique_fct_orders_order_id")
NOT_NULL = AssetCheckKey(ORDERS, "not_null_fct_orders_order_id")
WARN_ONLY = AssetCheckKey(ORDERS, "warn_only")


def _check(key: AssetCheckKey, passed: bool, severity=AssetCheckSeverity.ERROR):
    return AssetCheckResult(
        asset_key=key.asset_key, check_name=key.name, passed=passed, severity=severity
    )


def _run(events, expected, blocking):
    return list(
        hold_until_checked(
            events,
            expected_checks=expected,
            blocking_checks=blocking,
            asset_key_of=lambda output: AssetKey(output.output_name),
        )
    )


def test_output_is_released_after_its_last_check_passes():
    out = Output(None, output_name="fct_orders")
    checks = [_check(UNIQUE, True), _check(NOT_NULL, True)]
    events = _run([out, *checks], {ORDERS: {UNIQUE, NOT_NULL}}, {UNIQUE, NOT_NULL})
    assert events == [*checks, out]


def test_output_is_dropped_when_a_blocking_check_fails():
    out = Output(None, output_name="fct_orders")
    checks = [_check(UNIQUE, False), _check(NOT_NULL, True)]
    events = _run([out, *checks], {ORDERS: {UNIQUE, NOT_NULL}}, {UNIQUE, NOT_NULL})
    assert events == checks


def test_a_failed_warning_check_does_not_block():
    out = Output(None, output_name="fct_orders")
    check = _check(WARN_ONLY, False, AssetCheckSeverity.WARN)
    assert _run([out, check], {ORDERS: {WARN_ONLY}}, set()) == [check, out]


def test_assets_without_checks_pass_straight_through_in_order():
    first, second = Output(1, output_name="agg_daily_revenue"), Output(2, output_name="other")
    assert _run([first, second], {}, set()) == [first, second]


def test_output_whose_checks_never_ran_is_released_at_the_end():
    out = Output(None, output_name="fct_orders")
    other = Output(None, output_name="agg_daily_revenue")
    assert _run([out, other], {ORDERS: {UNIQUE}}, {UNIQUE}) == [other, out]


def test_failure_summary_names_models_and_tests():
    results = {
        "results": [
            {"unique_id": "model.p.fct_orders", "status": "success", "message": "OK"},
            {
                "unique_id": "test.p.unique_fct_orders_order_id.abc",
                "status": "fail",
                "failures": 2,
                "message": "Got 2 results, configured to fail if != 0",
            },
            {"unique_id": "model.p.agg_daily_revenue", "status": "error", "message": "Binder\n x"},
        ]
    }
    text = failure_summary(results, "2024-01-09")
    assert text.splitlines() == [
        "dbt build failed for partitions 2024-01-09:",
        "  - test unique_fct_orders_order_id failed (2 failing rows): "
        "Got 2 results, configured to fail if != 0",
        "  - model agg_daily_revenue failed: Binder x",
    ]


def test_a_dbt_that_stopped_before_its_results_is_explained_by_its_log(tmp_path):
    # dbt's JSON log (as dagster-dbt runs it) when another process holds the DuckDB file.
    lines = [
        {"info": {"level": "info", "msg": "Running with dbt=1.11"}},
        {"info": {"level": "error", "msg": 'IO Error: Could not set lock on file "w.duckdb"'}},
        {"info": {"level": "error", "msg": 'IO Error: Could not set lock on file "w.duckdb"'}},
        "not json at all",
    ]
    (tmp_path / "dbt.log").write_text(
        "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines)
    )
    assert failure_text(tmp_path, "2024-02-22").splitlines() == [
        "dbt build failed for partitions 2024-02-22:",
        '  - dbt stopped: IO Error: Could not set lock on file "w.duckdb"',
    ]
    # With run_results.json, the results speak.
    (tmp_path / "run_results.json").write_text(
        json.dumps({"results": [{"unique_id": "model.p.m", "status": "error", "message": "x"}]})
    )
    assert failure_text(tmp_path, "2024-02-22").splitlines()[1] == "  - model m failed: x"
    assert dbt_log_errors(tmp_path / "missing.log") == []
