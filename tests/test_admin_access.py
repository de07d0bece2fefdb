"""The access file: people -> groups -> dbt selectors, token hashes, the permission decision."""

from __future__ import annotations

import contextlib
import hashlib
import io

import pytest
import yaml

from flower_dagster.admin.access import (
    AccessFileError,
    hash_token,
    load_access,
    may_backfill,
    new_token,
    parse_access,
)
from flower_dagster.admin.selection import models_from_manifest, parse_selector, select
from flower_dagster.cli import main
from flower_dagster.dbt.project import FlowerDbtProject
from flower_dagster.settings import REPO_ROOT
from tests.conftest import Warehouse

TOKEN = "a-long-random-token-for-the-tests-0123456789"
OTHER = "another-long-random-token-for-the-tests-987"


@pytest.fixture(scope="module")
def models(warehouse: Warehouse):
    return models_from_manifest(FlowerDbtProject.from_settings(warehouse.settings).load_manifest())


def _access(**people):
    return parse_access(
        {
            "people": people,
            "groups": {
                "commerce": {"models": ["owner:commerce"]},
                "growth": {"models": ["owner:team:growth"]},
                "staging": {"models": ["path:models/staging"]},
            },
        }
    )


def test_a_token_is_recognised_by_its_hash_and_only_by_it():
    access = _access(
        jimin={"groups": ["commerce"], "token_sha256": hash_token(TOKEN)},
        seoyeon={"groups": ["growth"], "token_sha256": [hash_token(OTHER), "a" * 64]},
    )
    assert hash_token(TOKEN) == hashlib.sha256(TOKEN.encode()).hexdigest()
    assert access.person_for_token(TOKEN).id == "jimin"
    assert access.person_for_token(OTHER).id == "seoyeon"  # one of several hashes (rotation)
    assert access.person_for_token(hash_token(TOKEN)) is None  # the hash is not a token
    assert access.person_for_token(TOKEN + "x") is None
    assert access.person_for_token("") is None
    assert access.person_for_token(None) is None


def test_new_tokens_are_long_and_different():
    first, second = new_token(), new_token()
    assert first != second and len(first) >= 40


def test_the_decision_follows_the_selectors_of_the_persons_groups(models):
    access = _access(
        jimin={"groups": ["commerce"], "token_sha256": hash_token(TOKEN)},
        minho={"groups": ["commerce", "growth"], "token_sha256": hash_token(OTHER)},
    )
    jimin, minho = access.people["jimin"], access.people["minho"]
    commerce = {n for n, m in models.items() if m.owner == "commerce" and m.grain is not None}
    growth = {n for n, m in models.items() if m.owner == "growth" and m.grain is not None}
    assert set(access.models_of(jimin, models)) == commerce
    assert set(access.models_of(minho, models)) == commerce | growth
    assert may_backfill(access, jimin, "fct_orders", models)
    assert not may_backfill(access, jimin, "fct_sessions", models)
    assert may_backfill(access, minho, "fct_sessions", models)
    # Unpartitioned models are never backfillable, even when a selector matches them.
    staging = parse_access(
        {
            "people": {"p": {"groups": ["s"], "token_sha256": hash_token(TOKEN)}},
            "groups": {"s": {"models": ["path:models/staging"]}},
        }
    )
    assert staging.models_of(staging.people["p"], models) == {}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("owner:commerce", lambda m: m.owner == "commerce"),
        ("owner:team:growth", lambda m: m.owner == "growth"),
        ("group:staging", lambda m: m.path.startswith("models/staging/")),
        ("path:models/marts", lambda m: m.path.startswith("models/marts/")),
        ("path:models/marts/fct_orders.sql", lambda m: m.name == "fct_orders"),
        ("fct_orders", lambda m: m.name == "fct_orders"),
        ("fqn:marts.agg_*", lambda m: m.name.startswith("agg_")),
        ("flower_demo.staging", lambda m: m.name.startswith("stg_")),
        ("config.meta.owner:grow*", lambda m: m.owner == "growth"),
        ("tag:nothing_is_tagged", lambda m: False),
        ("*", lambda m: True),
    ],
)
def test_selectors_match_what_the_models_say_about_themselves(models, selector, expected):
    chosen = select(models.values(), [parse_selector(selector)])
    assert chosen == {name for name, m in models.items() if expected(m)}
    assert chosen or selector.startswith("tag:")


def test_a_tag_selector_matches_a_tagged_model(models):
    from dataclasses import replace

    tagged = {
        n: replace(m, tags=("finance",)) if n == "fct_orders" else m for n, m in models.items()
    }
    assert select(tagged.values(), [parse_selector("tag:fin*")]) == {"fct_orders"}


@pytest.mark.parametrize(
    "text", ["+fct_orders", "fct_orders+", "@fct_orders", "owner:", "x y", "", 3]
)
def test_graph_operators_and_empty_selectors_are_refused(text):
    with pytest.raises(ValueError, match="a dbt selector"):
        parse_selector(text)


def test_every_mistake_of_the_file_is_one_line_naming_key_value_and_what_is_allowed():
    raw = {
        "people": {
            "jimin": {"groups": ["commerce", "finance"], "token_sha256": TOKEN},
            "seoyeon": {"groups": "growth", "token": "x"},
            "copy": {"groups": ["commerce"], "token_sha256": hash_token(OTHER)},
            "twin": {"groups": ["commerce"], "token_sha256": hash_token(OTHER)},
        },
        "groups": {"commerce": {"models": ["owner:commerce", "+fct_orders"]}, "empty": {}},
        "roles": {},
    }
    with pytest.raises(AccessFileError) as caught:
        parse_access(raw)
    lines = str(caught.value).splitlines()
    assert lines[0] == f"{len(lines) - 1} access file problems:"
    text = str(caught.value)
    assert "access.yaml: unknown key 'roles'; allowed: people, groups" in text
    assert "groups.commerce.models has '+fct_orders'; allowed: a dbt selector" in text
    assert "groups.empty.models is None; allowed: a list of dbt selectors" in text
    assert "people.jimin.groups has 'finance'; allowed: commerce, empty (the groups" in text
    assert f"people.jimin.token_sha256 is '{TOKEN}'; allowed: the SHA-256 hex digest" in text
    assert "people.seoyeon: unknown key 'token'; allowed: name, groups, token_sha256" in text
    assert "people.seoyeon.groups is 'growth'; allowed: a list of group names" in text
    assert "people.twin.token_sha256 is also the token of copy; allowed: one token per person" in (
        text
    )
    # The clear token of the file is named as a mistake, never accepted as a hash.
    assert len(lines) == 9


def test_the_repository_access_file_is_valid_and_holds_hashes_only(models):
    access = load_access(REPO_ROOT / "access.yaml")
    assert access.people, "the demo access file names nobody"
    for person in access.people.values():
        assert person.token_hashes and all(len(h) == 64 for h in person.token_hashes)
        assert access.models_of(person, models), f"{person.id} may backfill nothing"
    raw = yaml.safe_load((REPO_ROOT / "access.yaml").read_text())
    assert set(raw) == {"people", "groups"}


def test_a_missing_access_file_says_where_it_was_looked_for(tmp_path):
    with pytest.raises(AccessFileError, match="no such access file"):
        load_access(tmp_path / "access.yaml")


def test_hash_token_reads_stdin_and_refuses_short_tokens(monkeypatch, capsys):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(TOKEN + "\n"))
    assert main(["admin", "hash-token"]) == 0
    assert capsys.readouterr().out.strip() == hash_token(TOKEN)
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["admin", "hash-token"]) == 2
    assert "has 5 characters; allowed: at least 24" in capsys.readouterr().err
    assert main(["admin", "hash-token", "--new"]) == 0
    out = capsys.readouterr().out.splitlines()
    token = out[0].rsplit(" ", 1)[1]
    assert out[1].endswith(hash_token(token))


def test_a_demo_token_signs_in_the_demo_author_without_touching_the_tracked_file(tmp_path):
    tracked = (REPO_ROOT / "access.yaml").read_bytes()
    out = tmp_path / "demo-access.yaml"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["admin", "demo-token", "jimin", "--out", str(out)]) == 0
    token = printed.getvalue().split("FLOWER_TOKEN=")[1].split()[0]
    demo = load_access(out)
    assert demo.person_for_token(token).id == "jimin"
    original = load_access(REPO_ROOT / "access.yaml")
    assert original.person_for_token(token) is None
    assert {p: demo.people[p].groups for p in demo.people} == {
        p: original.people[p].groups for p in original.people
    }
    assert (REPO_ROOT / "access.yaml").read_bytes() == tracked
