"""`flower lint`: the weekly PR review's checks, run by a machine before a person looks.

Modules, one concept each:

- `project`  reads the dbt project from disk (models, properties files, macros; no dbt parse);
- `render`   renders a model's Jinja with markers for ref/source/window calls, lines kept;
- `sql`      what the rules need from sqlglot's syntax tree (CTE scopes, windows, columns);
- `rules`    the numbered rules (FL001..FL008) over one model at a time;
- `findings` the rule catalog (title and fix hint) and the finding;
- `noqa`     `-- noqa: FL001` comments;
- `report`   text, GitHub annotation and JSON output;
- `git`      `--changed-since REF`: the files changed since the merge base;
- `pr_body`  `--pr-body FILE`: the PR description against the template's sections;
- `run`      one lint of a project, `cli` the `flower lint` subcommand.
"""
