"""The access file: people, their groups, and the models each group may backfill.

```yaml
people:
  jimin:
    name: Jimin Park
    groups: [commerce-authors]
    token_sha256: 3b5d...   # `flower admin hash-token`; the token itself lives in the vault
groups:
  commerce-authors:
    models: ["owner:commerce"]          # dbt selectors: owner, group, tag, path, fqn, a name
```

Access is data reviewed in pull requests. Tokens are issued out of band; the file holds only
their SHA-256 hashes, compared in constant time. Every mistake in the file is reported at once,
one line each, naming the file, the key, the value and what is allowed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from flower_dagster.admin.selection import Model, Selector, parse_selector, select
from flower_dagster.errors import FlowerError

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]*$")
# A token is long random text: at least this many characters (`flower admin hash-token --new`
# issues 43).
MIN_TOKEN_LENGTH = 24


class AccessFileError(FlowerError):
    """The access file is missing or has mistakes (one line each)."""


@dataclass(frozen=True)
class Person:
    """Someone who may use the admin service."""

    id: str
    name: str
    groups: tuple[str, ...]
    token_hashes: tuple[str, ...]  # SHA-256 hex digests; several while a token is rotated


@dataclass(frozen=True)
class Group:
    name: str
    selectors: tuple[Selector, ...]


@dataclass(frozen=True)
class Access:
    """The parsed access file."""

    people: Mapping[str, Person]
    groups: Mapping[str, Group]
    source: Path | None = None

    def person_for_token(self, token: str | None) -> Person | None:
        """The person whose token this is, or None. Compares every hash, in constant time."""
        if not token:
            return None
        digest = hash_token(token)
        found = None
        for person in self.people.values():
            for stored in person.token_hashes:
                if hmac.compare_digest(digest, stored) and found is None:
                    found = person
        return found

    def person_named(self, person_id: str | None) -> Person | None:
        """The person a trusted proxy header names, or None for an unknown or empty name."""
        if not person_id:
            return None
        return self.people.get(person_id.strip())

    def selectors_of(self, person: Person) -> tuple[Selector, ...]:
        return tuple(s for g in person.groups for s in self.groups[g].selectors)

    def models_of(self, person: Person, models: Mapping[str, Model]) -> dict[str, Model]:
        """The models this person may backfill: partitioned ones their groups' selectors match."""
        chosen = select(models.values(), self.selectors_of(person))
        return {name: models[name] for name in sorted(chosen) if models[name].grain is not None}


def may_backfill(access: Access, person: Person, model: str, models: Mapping[str, Model]) -> bool:
    """The permission decision: is `model` one of the person's models?"""
    return model in access.models_of(person, models)


def hash_token(token: str) -> str:
    """The SHA-256 hex digest of a token, as the access file stores it."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A new random token (to hand to a person through the vault)."""
    return secrets.token_urlsafe(32)


def load_access(path: Path) -> Access:
    """Read and check the access file; raise AccessFileError with every mistake."""
    label = path.name
    if not path.is_file():
        raise AccessFileError(
            f"{path}: no such access file; allowed: a YAML file of people and groups "
            "(admin.access_file in flower.yaml, see docs/backfills.md)"
        )
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise AccessFileError(f"{label}: not valid YAML ({error})") from None
    return parse_access(raw, label, source=path)


def parse_access(raw: Any, label: str = "access.yaml", source: Path | None = None) -> Access:
    problems: list[str] = []
    if not isinstance(raw, Mapping):
        raise AccessFileError(f"{label}: is {raw!r}; allowed: a mapping with people and groups")
    for key in sorted(set(raw) - {"people", "groups"}):
        problems.append(f"{label}: unknown key {key!r}; allowed: people, groups")
    groups = _groups(raw.get("groups") or {}, label, problems)
    people = _people(raw.get("people") or {}, set(groups), label, problems)
    seen: dict[str, str] = {}
    for person in people.values():
        for digest in person.token_hashes:
            if digest in seen and seen[digest] != person.id:
                problems.append(
                    f"{label}: people.{person.id}.token_sha256 is also the token of "
                    f"{seen[digest]}; allowed: one token per person"
                )
            seen.setdefault(digest, person.id)
    if problems:
        raise AccessFileError(_listed(problems, "access file problem"))
    return Access(people, groups, source)


def _groups(raw: Any, label: str, problems: list[str]) -> dict[str, Group]:
    if not isinstance(raw, Mapping):
        problems.append(f"{label}: groups is {raw!r}; allowed: a mapping of group names")
        return {}
    groups: dict[str, Group] = {}
    for name, body in raw.items():
        where = f"{label}: groups.{name}"
        if not isinstance(body, Mapping):
            problems.append(f"{where} is {body!r}; allowed: {{models: [dbt selectors]}}")
            groups[str(name)] = Group(str(name), ())
            continue
        for key in sorted(set(body) - {"models", "description"}):
            problems.append(f"{where}: unknown key {key!r}; allowed: models, description")
        items = body.get("models")
        if not isinstance(items, list) or not items:
            problems.append(
                f"{where}.models is {items!r}; allowed: a list of dbt selectors such as "
                "'owner:commerce', 'group:finance', 'tag:daily', 'path:models/marts', 'fct_orders'"
            )
            groups[str(name)] = Group(str(name), ())  # known, so members are not a 2nd mistake
            continue
        selectors = []
        for item in items:
            try:
                selectors.append(parse_selector(item))
            except ValueError as error:
                problems.append(f"{where}.models has {item!r}; allowed: {error}")
        groups[str(name)] = Group(str(name), tuple(selectors))
    return groups


def _people(raw: Any, groups: set[str], label: str, problems: list[str]) -> dict[str, Person]:
    if not isinstance(raw, Mapping):
        problems.append(f"{label}: people is {raw!r}; allowed: a mapping of person ids")
        return {}
    allowed_keys = ("name", "groups", "token_sha256")
    people: dict[str, Person] = {}
    for person_id, body in raw.items():
        where = f"{label}: people.{person_id}"
        if not _NAME.match(str(person_id)):
            problems.append(f"{label}: person id {person_id!r}; allowed: letters, digits, . _ @ -")
            continue
        if not isinstance(body, Mapping):
            problems.append(f"{where} is {body!r}; allowed: {{name, groups, token_sha256}}")
            continue
        for key in sorted(set(body) - set(allowed_keys)):
            problems.append(f"{where}: unknown key {key!r}; allowed: {', '.join(allowed_keys)}")
        member_of = body.get("groups")
        if not isinstance(member_of, list) or not member_of:
            problems.append(f"{where}.groups is {member_of!r}; allowed: a list of group names")
            member_of = []
        for group in member_of:
            if group not in groups:
                problems.append(
                    f"{where}.groups has {group!r}; allowed: {', '.join(sorted(groups)) or '-'} "
                    "(the groups of the file)"
                )
        hashes = _hashes(body.get("token_sha256"))
        if hashes is None:
            problems.append(
                f"{where}.token_sha256 is {body.get('token_sha256')!r}; allowed: the SHA-256 "
                "hex digest of the person's token (64 characters, `flower admin hash-token`), "
                "or a list of them; never the token itself"
            )
            hashes = ()
        people[str(person_id)] = Person(
            id=str(person_id),
            name=str(body.get("name") or person_id),
            groups=tuple(str(g) for g in member_of if g in groups),
            token_hashes=hashes,
        )
    return people


def _hashes(value: Any) -> tuple[str, ...] | None:
    """Token hashes: None when malformed. A person without one can only come through a proxy."""
    if value is None:
        return ()
    values: Iterable[Any] = value if isinstance(value, list) else [value]
    hashes = tuple(str(v).strip().lower() for v in values)
    if not all(isinstance(v, str) and _HEX64.match(v.strip().lower()) for v in values):
        return None
    return hashes


def _listed(problems: list[str], what: str) -> str:
    if len(problems) == 1:
        return problems[0]
    return "\n".join([f"{len(problems)} {what}s:", *(f"  - {line}" for line in problems)])
