"""An alert and its resolution, in an analyst's words, as a Slack message (Block Kit). Pure.

The message says what failed (models and partitions), why (the cause class and dbt's own line),
who owns it and who is on call (mentioned), and what to do next: the run in the UI and the
repair step. Engineer details (run id, error excerpt) come last, in a context block.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flower_dagster.alerts.classify import Cause, Finding, headline
from flower_dagster.alerts.oncall import Shift
from flower_dagster.alerts.people import Route

MAX_LISTED = 8  # partitions or upstream problems listed before "and N more"
EXCERPT = 300  # characters of the error excerpt


@dataclass(frozen=True)
class Alert:
    """Everything one alert says (one per failed run)."""

    run_id: str
    run_url: str
    failed: tuple[tuple[str, str | None], ...]  # (model, partition) not built by the run
    findings: tuple[Finding, ...]
    route: Route
    oncall: Shift
    oncall_ids: tuple[str, ...]  # Slack user ids of the on-call people
    at: datetime  # when the run failed, in the team's time zone
    excerpt: str = ""  # the raw error, for engineers
    run_succeeded: bool = False  # a successful run whose checks failed


def render_alert(alert: Alert) -> dict[str, Any]:
    """`{"text": ..., "blocks": [...]}` for chat.postMessage."""
    cause = headline(alert.findings)
    cause_words = cause.value if cause else "failed"
    what = _what_failed(alert)
    title = f":rotating_light: *{_short(alert)}* — {cause_words}"
    owners = _owners(alert.route)
    oncall = _oncall(alert)
    blocks: list[dict[str, Any]] = [
        _section(title),
        _section(f"*What failed*\n{what}"),
        _section("*Why*\n" + "\n".join(_why(f, alert) for f in alert.findings)),
        _section(f"*Who*\nOwner: {owners}\nOn call: {oncall}"),
        _section("*What to do next*\n" + "\n".join(_next_steps(alert))),
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": _details(alert)}],
        },
    ]
    text = f"{_short(alert)}: {cause_words}. Owner: {owners}. On call: {oncall}. {alert.run_url}"
    return {"text": text, "blocks": blocks}


def render_resolution(
    resolved: Sequence[tuple[str, str | None]],
    run_id: str,
    run_url: str,
    at: datetime,
    still_open: Sequence[tuple[str, str | None]] = (),
) -> dict[str, Any]:
    """The thread reply when failed partitions are materialized again."""
    items = _items(resolved)
    when = at.strftime("%Y-%m-%d %H:%M %Z")
    text = f":white_check_mark: Resolved: {items} built by run <{run_url}|{run_id[:8]}> at {when}."
    if still_open:
        text += f"\nStill failing: {_items(still_open)}."
    else:
        text += "\nEverything this alert reported is built again."
    return {"text": text, "blocks": [_section(text)]}


# --- parts -------------------------------------------------------------------------------------


def render_safe_alert(alert: Alert, refusal: str) -> dict[str, Any]:
    """The alert in a form Slack cannot refuse for its content: short plain text, no blocks.

    Sent to the platform channel when Slack refused the full message for good, so the failure
    is still announced and the sensor can move on to later alerts.
    """
    models = ", ".join(dict.fromkeys(m for m, _ in alert.failed)) or "checks"
    text = (
        f"Alert for run {alert.run_id} ({models[:200]}) could not be posted in full "
        f"({refusal[:100]}); the run: {alert.run_url}"
    )
    return {"text": text}


def render_safe_resolution(
    alert_id: str, run_id: str, run_url: str, refusal: str
) -> dict[str, Any]:
    """A resolution reply that Slack refused for good, as short plain text (see above)."""
    text = (
        f"The alert for run {alert_id} is resolved by run {run_id}; the reply could not be "
        f"posted in its thread ({refusal[:100]}); the run: {run_url}"
    )
    return {"text": text}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}


def _by_model(pairs: Sequence[tuple[str, str | None]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = defaultdict(list)
    for model, partition in pairs:
        grouped[model].extend([partition] if partition else [])
    return {model: sorted(set(parts)) for model, parts in grouped.items()}


def _partitions(keys: Sequence[str]) -> str:
    if not keys:
        return "(unpartitioned)"
    if len(keys) <= 3:
        return ", ".join(keys)
    return f"{keys[0]} … {keys[-1]} ({len(keys)} partitions)"


def _items(pairs: Sequence[tuple[str, str | None]]) -> str:
    return "; ".join(f"`{m}` {_partitions(p)}" for m, p in _by_model(pairs).items())


def _short(alert: Alert) -> str:
    if alert.failed:
        return _items(alert.failed) + " failed"
    checks = sorted({f.model or "?" for f in alert.findings})
    return f"checks failed on {', '.join(f'`{c}`' for c in checks)}"


def _what_failed(alert: Alert) -> str:
    lines = [f"• `{m}` {_partitions(p)}" for m, p in _by_model(alert.failed).items()]
    if alert.run_succeeded:
        lines.append("The run itself succeeded; these checks did not pass:")
        lines.extend(f"• `{f.test}` on `{f.model}`" for f in alert.findings if f.test)
    return "\n".join(lines) or "the run failed before any model was planned"


def _why(finding: Finding, alert: Alert) -> str:
    if finding.cause is Cause.SQL_ERROR:
        where = f" in `{finding.file}`" if finding.file else ""
        return (
            f"*{finding.cause.value}*: dbt could not build `{finding.model}` — its SQL{where} "
            f"fails:\n> {finding.detail}"
        )
    if finding.cause is Cause.DATA_TEST:
        rows = (
            f" ({finding.failing_rows} failing row{'s' if finding.failing_rows != 1 else ''})"
            if finding.failing_rows
            else ""
        )
        on = f" on `{finding.model}`" if finding.model else ""
        held = (
            " The model was built but its partition is recorded as failed, so nothing is built "
            "on bad data."
            if not alert.run_succeeded
            else ""
        )
        # With the count of failing rows, dbt's "Got 1 result, configured to fail if != 0" adds
        # nothing for an analyst.
        detail = "" if finding.failing_rows else f": {finding.detail}"
        return f"*{finding.cause.value}*: `{finding.test}`{on}{rows}{detail}.{held}"
    if finding.cause is Cause.CHECK:
        on = f" on `{finding.model}`" if finding.model else ""
        keys = f" {_partitions(list(finding.partitions))}" if finding.partitions else ""
        return f"*{finding.cause.value}*: `{finding.test}`{on}{keys}: {finding.detail}."
    if finding.cause is Cause.INPUTS_INCOMPLETE:
        listed = list(finding.upstream[:MAX_LISTED])
        more = len(finding.upstream) - len(listed)
        bullets = "\n".join(f"• {item}" for item in listed)
        if more > 0:
            bullets += f"\n• … and {more} more"
        model = f"`{finding.model}` " if finding.model else ""
        return (
            f"*{finding.cause.value}*: {model}was not built and dbt did not run, because these "
            f"upstream partitions are missing or failed:\n{bullets}"
        )
    return (
        f"*{finding.cause.value}*: not a problem in the model — {finding.detail}. "
        "The on-call person looks into it."
    )


def _owners(route: Route) -> str:
    mentions = " ".join(f"<@{user}>" for user in route.mentions)
    names = ", ".join(route.owners) or "no owner in the model's dbt config"
    unknown = f" (not in people.yaml: {', '.join(route.unknown)})" if route.unknown else ""
    return f"{mentions} ({names}){unknown}" if mentions else f"{names}{unknown}"


def _oncall(alert: Alert) -> str:
    mentions = " ".join(f"<@{user}>" for user in alert.oncall_ids)
    until = alert.oncall.ends.strftime("%a %H:%M %Z")
    return f"{mentions} ({', '.join(alert.oncall.people)}, until {until})"


def _impact(model: str, partitions: Sequence[str]) -> str:
    keys = " ".join(partitions[:MAX_LISTED])
    return f"`flower impact {model} {keys}`".replace("  ", " ")


def _rerun(model: str, partitions: Sequence[str]) -> str:
    if len(partitions) > 1:
        return (
            f"re-run `{model}` {partitions[0]} … {partitions[-1]} as one backfill (UI: "
            f"`{model}` → Materialize → the partition range → Launch backfill)"
        )
    key = partitions[0] if partitions else ""
    return f"re-run `{model}` {key} (UI: `{model}` → Materialize → partition {key})".replace(
        "  ", " "
    )


def _next_steps(alert: Alert) -> list[str]:
    steps = [f"1. Open the run: <{alert.run_url}|run {alert.run_id[:8]} in Dagster>"]
    cause = headline(alert.findings)
    failed = _by_model(alert.failed)
    if cause is Cause.PLATFORM:
        steps.append("2. On call: fix the platform (the run's logs say what); the model is fine.")
        steps.append("3. Re-execute the run from the UI (Re-execute → All steps); nothing to edit.")
        return steps
    if cause is Cause.INPUTS_INCOMPLETE:
        upstream = _upstream_partitions(alert.findings)
        for model, keys in list(upstream.items())[:2]:
            steps.append(
                f"{len(steps) + 1}. Build the missing upstream first: {_rerun(model, keys)}; "
                f"{_impact(model, keys)} shows what then re-runs."
            )
        steps.append(
            f"{len(steps) + 1}. Nothing to change in the failed model: the repair rule builds it "
            "by itself once its inputs are complete."
        )
        return steps
    for model, keys in failed.items():
        finding = next((f for f in alert.findings if f.model == model), None)
        if finding is not None and finding.cause is Cause.SQL_ERROR:
            fix = (
                f"Fix the SQL in `{finding.file or model}` (check it with "
                f"`dbt build --select {model}`)"
            )
        elif finding is not None and finding.test:
            fix = f"Look at the failing rows (`dbt test --select {finding.test}`) and fix the data"
        else:
            fix = "Fix the cause above"
        steps.append(
            f"{len(steps) + 1}. {fix}, then {_rerun(model, keys)}. {_impact(model, keys)} "
            "shows what re-runs after it by itself."
        )
    if alert.run_succeeded:
        for finding in alert.findings:
            if finding.model and finding.test:
                steps.append(
                    f"{len(steps) + 1}. Find out why `{finding.test}` fails on "
                    f"`{finding.model}` (late or wrong data upstream?); when the data is there, "
                    "materialize it again or re-run the check from the asset's Checks tab."
                )
    return steps


def _upstream_partitions(findings: Sequence[Finding]) -> dict[str, list[str]]:
    upstream: dict[str, set[str]] = defaultdict(set)
    for finding in findings:
        for item in finding.upstream:
            # `fct_orders 2024-01-10 (missing)`, as the source check writes it.
            parts = item.split(" ")
            if len(parts) >= 3:
                upstream[parts[0]].add(parts[1])
    return {model: sorted(keys) for model, keys in upstream.items()}


def _details(alert: Alert) -> str:
    excerpt = " ".join(alert.excerpt.split())
    if len(excerpt) > EXCERPT:
        excerpt = excerpt[: EXCERPT - 1] + "…"
    when = alert.at.strftime("%Y-%m-%d %H:%M %Z")
    text = f"For engineers: run `{alert.run_id}` failed at {when}"
    return f"{text} · error: `{excerpt}`" if excerpt else text
