"""The backfill admin: model authors backfill their own models, the platform stays internal.

- `access`: the access file (people -> groups -> dbt selectors), token hashes, who may do what;
- `selection`: dbt selectors (owner, group, tag, path, fqn) resolved against the manifest;
- `backfill`: a requested date range checked against a model's partitions and the size limit;
- `dagster_client`: Dagster's GraphQL API on its internal address (launch, status, cancel);
- `audit`: one JSON line per request, allowed or refused;
- `service`: the Starlette app (an HTML page for analysts, JSON for the CLI);
- `cli`: `flower admin` (serve, hash-token) and `flower backfill models|launch|status|cancel`.

See docs/backfills.md.
"""
