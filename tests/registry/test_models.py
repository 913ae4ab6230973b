"""The shared models of the native API: importable without the server, in step with the rules the registry
enforces, tolerant when reading, and the one check of every body the native API accepts.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import pytest

from sregistry_jupyter import models
from sregistry_jupyter.models import rules
from sregistry_jupyter.models import staff as staff_models
from sregistry_jupyter.registry import access, errors, names, tokens
from sregistry_jupyter.registry.auth import jupyterhub, oauth
from sregistry_jupyter.registry.handlers import api, native, serialize
from sregistry_jupyter.registry.services import collections, shares, staff, stats, teams, users

MAX_SHARE_DAYS = 30
SHARE_RULE = f"'days': must be a whole number from 1 to {MAX_SHARE_DAYS}"


def test_the_models_and_the_client_import_neither_tornado_nor_sqlalchemy_nor_the_server():
    code = (
        "import sys, json; import sregistry_jupyter.models, sregistry_jupyter.client; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('tornado', 'sqlalchemy') "
        "or m.startswith('sregistry_jupyter.registry'))))"
    )
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(found.stdout) == []


def test_the_documented_rules_are_the_ones_the_registry_enforces():
    assert names.NAME_RE.pattern == rules.NAME_PATTERN and rules.NAME_MAX == names.NAME_MAX
    assert names.TAG_RE.pattern == rules.TAG_PATTERN
    assert names.DIGEST_RE.pattern == rules.DIGEST_PATTERN
    assert names.ARCH_RE.pattern == rules.ARCH_PATTERN
    assert names.USERNAME_RE.pattern == rules.USERNAME_PATTERN
    assert rules.MAX_ROW_ID == names.MAX_ROW_ID
    assert tokens.TOKEN_RE.pattern == rules.TOKEN_PATTERN and rules.SCOPES == tokens.SCOPES
    assert shares.SHARE_RE.pattern == rules.SHARE_PATTERN and rules.DEFAULT_SHARE_DAYS == shares.DEFAULT_DAYS
    assert teams.INVITATION_RE.pattern == rules.INVITATION_PATTERN and rules.TEAM_NAME_MAX == teams.TEAM_NAME_MAX
    assert (rules.MAX_TOKEN_NAME, rules.MAX_EXPIRY_DAYS) == (users.MAX_TOKEN_NAME, users.MAX_EXPIRY_DAYS)
    assert rules.MAX_DESCRIPTION == collections.MAX_DESCRIPTION
    assert set(rules.SORTS) == set(collections.SORTS) | set(collections.SUMMARY_SORTS)
    assert rules.MAX_STATS_DAYS == stats.MAX_DAYS
    assert [r.value for r in models.Role] == [r.value for r in access.Role]
    assert [r.value for r in models.TeamRole] == [r.value for r in access.TeamRole]
    assert staff_models.ACCOUNT_KINDS == staff.KINDS


def every_subclass(kind: type) -> set[type]:
    found = set(kind.__subclasses__())
    for sub in list(found):
        found |= every_subclass(sub)
    return found


def test_every_error_the_registry_raises_has_a_code_of_the_vocabulary():
    raised = {errors.RegistryError, *every_subclass(errors.RegistryError)}
    assert {jupyterhub.HubUnavailable, oauth.ProviderError, errors.RequestTimeout} <= raised
    assert {kind.code for kind in raised} <= set(models.ErrorCode)
    assert (errors.RequestTimeout.status, errors.RequestTimeout.code) == (408, "REQUEST_TIMEOUT")


def test_answers_keep_fields_they_do_not_know_and_default_the_ones_an_older_registry_omits():
    newer = models.Collection.model_validate({"name": "lab", "size": 5, "tier": "gold"})
    assert newer.model_extra == {"tier": "gold"} and newer.stars == 0 and newer.owners == []
    assert json.loads(newer.model_dump_json())["tier"] == "gold"
    team = models.Team.model_validate({"name": "group", "members": [{"user": "ada", "role": "steward"}]})
    assert team.members[0].role == "steward", "a role a newer registry adds is read as a value"
    assert models.ErrorBody.model_validate({"code": "SOMETHING_NEW", "message": "m"}).code == "SOMETHING_NEW"


def test_moments_are_written_in_utc_whole_seconds_with_a_z():
    naive = dt.datetime(2024, 5, 1, 12, 0, 0, 123456)
    aware = dt.datetime(2024, 5, 1, 14, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert models.when(naive) == models.when(aware) == "2024-05-01T12:00:00Z"
    assert serialize.when is models.when
    user = models.User.model_construct(name="ada", admin=False, staff=False, robot=False, created=naive)
    rendered = json.loads(user.model_dump_json())
    assert rendered["created"] == "2024-05-01T12:00:00Z"
    assert models.User.model_validate(rendered).created == dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)


def test_a_rendered_answer_reads_back_as_the_same_answer():
    """What the registry writes with ``model_construct`` is what a client validating it reads."""
    tag = models.Tag.model_construct(name="v1", arch="amd64", digest="sha256." + "a" * 64, frozen=True, updated=None)
    container = models.ContainerDetail.model_construct(
        collection="lab", name="tool", description="", tags=[tag], created=None, updated=None, images=[]
    )
    assert models.ContainerDetail.model_validate_json(container.model_dump_json()) == container


@pytest.mark.parametrize(
    ("kind", "body", "message"),
    [
        (models.CreateCollection, {}, "'name' is required"),
        (models.CreateCollection, {"name": 5}, "'name': input should be a valid string"),
        (models.CreateCollection, {"name": "lab", "private": "yes"}, "'private': input should be a valid boolean"),
        (models.CreateToken, {"expires_in_days": "7"}, "'expires_in_days': input should be a valid number"),
        (models.CreateToken, {"expires_in_days": True}, "'expires_in_days': input should be a valid number"),
        (models.CreateToken, {"expires_in_days": float("nan")}, "'expires_in_days': input should be a finite number"),
        (models.CreateToken, {"expires_in_days": 0}, "'expires_in_days': input should be greater than 0"),
        (models.CreateToken, {"expires_in_days": 10**5000}, "'expires_in_days': input should be a valid number"),
        (models.SetTag, {"digest": "sha256.x", "frozen": 1}, "'frozen': input should be a valid boolean"),
        (models.UpdateTeam, {"open": None, "description": []}, "'description': input should be a valid string"),
        (models.SetTeamRole, {}, "'role' is required"),
        (models.CreateShare, {"days": "7"}, SHARE_RULE),
        (
            models.CreateShare,
            {"days": MAX_SHARE_DAYS + 1},
            f"'days': must be a whole number from 1 to {MAX_SHARE_DAYS}",
        ),
    ],
)
def test_a_refused_body_is_told_which_field_is_wrong(kind: type[models.Body], body: dict, message: str):
    with pytest.raises(ValueError) as caught:
        kind.model_validate(body, context={"max_share_days": MAX_SHARE_DAYS})
    assert api.refusal(caught.value).startswith(message)


def body_operations() -> list:
    return [
        pytest.param(route.path, o, id=o.operation_id)
        for route in native.ROUTES
        for o in route.operations
        if o.body is not None
    ]


@pytest.mark.parametrize(("path", "operation"), body_operations())
def test_every_field_of_every_body_of_a_wrong_type_is_a_400_that_names_it(registry, path, operation):
    """Field by field, through the running registry: a list where the model wants a string, number or
    boolean is refused in the native envelope, naming that field, before anything is looked up."""
    client = registry.client(registry.add_user("ada", admin=True))
    concrete = native.PLACEHOLDER_RE.sub(lambda m: "7" if m.group(1) == "token_id" else "abc", path)
    fields = operation.body.model_fields
    required = {name: "x" for name, info in fields.items() if info.is_required()}
    for name in fields:
        answer = client.request(operation.method.upper(), concrete, json={**required, name: ["wrong"]})
        assert answer.status_code == 400, (operation.operation_id, name, answer.text)
        assert answer.json()["code"] == "INVALID" and f"'{name}'" in answer.json()["message"]
