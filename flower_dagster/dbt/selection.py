"""Which dbt tests run with a subset of models: only those whose models the run builds or reads.

dbt's default indirect selection (`eager`) runs every test that touches a selected model, so
materializing `stg_users` alone also ran `stg_orders`' relationships test to `stg_users`, and on
a fresh warehouse it failed for want of `stg_orders`: one model's test failed another model's
run. `buildable` runs a test only when every model it reads is selected or upstream of the
selection (built by this run or an input of it); `cautious` would also drop tests that read an
input, which an input's own run does not check against this model.

dagster-dbt reads `DBT_INDIRECT_SELECTION` from the environment when it builds a subset's dbt
arguments (and still sets `empty` itself when it must select tests one by one), and copies the
environment into dbt's process. The checks of tests that did not run have no execution in
Dagster: the UI shows them as not evaluated (a selected check that dbt skipped ends SKIPPED),
never as passed or failed.
"""

from __future__ import annotations

from typing import Final

INDIRECT_SELECTION: Final = "buildable"
# dagster-dbt's name for it (dagster_dbt.asset_utils.DBT_INDIRECT_SELECTION_ENV), dbt's too.
INDIRECT_SELECTION_ENV: Final = {"DBT_INDIRECT_SELECTION": INDIRECT_SELECTION}
