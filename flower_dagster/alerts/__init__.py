"""Alerts an analyst can act on, and the on-call rotation with its after-hours report.

people.py     owners -> Slack user ids and channels (people.yaml)
oncall.py     the rotation (oncall.yaml): who is on call at an instant
facts.py      what a finished run tells, read from the Dagster instance and dbt's target dir
classify.py   facts -> the cause class (SQL error, data test, inputs incomplete, platform)
messages.py   an alert and its resolution in an analyst's words (Slack Block Kit)
delivery.py   posting to Slack through dagster-slack: delivered, or not yet and when to retry
sensors.py    the alert sensor: one message per failed run, resolution replies, never lost
report.py     the after-hours report of incidents
cli.py        `flower oncall who | schedule | report`
"""
