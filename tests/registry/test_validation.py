"""Unit tests of the edge validators and of the permission policy, without a running registry.

The policy table below is written from the product rules, not copied from ``access.py``: public
collections are seen and pulled by anyone; private ones only by members, staff and admins; owners
push, tag, delete and manage; contributors pull; any signed-in user may create a collection; a token's
scope caps everything (a read token never pushes); ``ADMIN`` belongs to admins alone.
"""

from __future__ import annotations

import itertools
import re
from urllib.parse import parse_qsl

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from sregistry_jupyter.registry import names, signing, tokens
from sregistry_jupyter.registry.access import (
    ANONYMOUS,
    Action,
    Principal,
    Role,
    can,
    decide,
    role_of,
    visible_collections,
)
from sregistry_jupyter.registry.errors import Forbidden, InvalidInput, RangeNotSatisfiable
from sregistry_jupyter.registry.orm import Base, Collection, CollectionMember, User
from sregistry_jupyter.registry.ranges import parse_range

HEX = "0123456789abcdef" * 4


@pytest.mark.parametrize(
    "value",
    ["a", "lab", "dinosaur", "my-lab", "my_lab", "my.lab", "a1b2", "x-y_z.w", "0", "a" * 128, "ubuntu22.04"],
)
def test_valid_names_are_returned_unchanged(value: str) -> None:
    assert names.validate_name(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "",
        "..",
        ".",
        "../../etc",
        "a/../../b",
        "/etc/passwd",
        "a/b",
        "..\\..\\x",
        "a\x00b",
        "Lab",
        "LAB",
        "-lab",
        "lab-",
        "_lab",
        "lab.",
        "a--b",
        "a..b",
        "a._b",
        "a b",
        "lab\n",
        "l\u0430b",
        "\uff4c\uff41\uff42",
        "lab\u200b",
        "a" * 129,
        "a" * 200,
        "%2e%2e",
        None,
        42,
    ],
)
def test_invalid_names_are_refused_with_the_value_in_the_message(value: object) -> None:
    with pytest.raises(InvalidInput) as caught:
        names.validate_name(value, "collection name")  # type: ignore[arg-type]
    assert caught.value.status == 400
    assert caught.value.message.startswith(f"invalid collection name {value!r}")


@pytest.mark.parametrize("value", ["latest", "v1.0", "1", "_x", "V2-rc_1", "a" * 128, "sha256", "sha256-x"])
def test_valid_tags(value: str) -> None:
    assert names.validate_tag(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "",
        "a" * 129,
        ".hidden",
        "-flag",
        "a:b",
        "a/b",
        "a b",
        "tab\t",
        "line\n",
        "é",
        "sha256." + HEX,
        "sha256.x",
        "a\x00",
        None,
        7,
    ],
)
def test_invalid_tags(value: object) -> None:
    with pytest.raises(InvalidInput, match="invalid tag"):
        names.validate_tag(value)  # type: ignore[arg-type]


def test_valid_digest_and_its_hex() -> None:
    digest = "sha256." + HEX
    assert names.validate_digest(digest) == digest
    assert names.digest_hex(digest) == HEX
    assert names.is_digest(digest)


@pytest.mark.parametrize(
    "value",
    [
        "sha256:" + HEX,
        "sha256:xyz",
        "sha256.xyz",
        "sha256." + HEX.upper(),
        "sha256." + HEX[:63],
        "sha256." + HEX + "0",
        "md5." + HEX[:32],
        "sha512." + HEX + HEX,
        HEX,
        "sha256.../../x",
        "sha256." + HEX + "\n",
        "",
        None,
    ],
)
def test_malformed_digests(value: object) -> None:
    with pytest.raises(InvalidInput, match="invalid digest"):
        names.validate_digest(value)  # type: ignore[arg-type]
    assert not (isinstance(value, str) and names.is_digest(value))


@pytest.mark.parametrize("value", ["amd64", "arm64", "ppc64le", "386", "s390x", "a" * 16])
def test_valid_architectures(value: str) -> None:
    assert names.validate_arch(value) == value


@pytest.mark.parametrize("value", ["", "AMD64", "arm/v7", "a" * 17, "x86-64", "../x", None])
def test_invalid_architectures(value: object) -> None:
    with pytest.raises(InvalidInput, match="invalid architecture"):
        names.validate_arch(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["a", "alice", "bob.smith", "c_d-e", "x" * 64, "a1", "1a"])
def test_valid_usernames(value: str) -> None:
    assert names.validate_username(value) == value


@pytest.mark.parametrize("value", ["", "Alice", "-bob", "bob-", ".x", "x" * 65, "a b", "a/b", "a@b", "ädmin", None])
def test_invalid_usernames(value: object) -> None:
    with pytest.raises(InvalidInput, match="invalid user name"):
        names.validate_username(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        (None, 100, None),
        ("bytes=0-9", 100, (0, 9)),
        ("bytes=10-", 100, (10, 99)),
        ("bytes=-10", 100, (90, 99)),
        ("bytes=-1000", 100, (0, 99)),
        ("bytes=0-1000", 100, (0, 99)),
        ("bytes=99-99", 100, (99, 99)),
        ("bytes=0-0", 1, (0, 0)),
        ("BYTES = 5 - 6", 100, (5, 6)),
        ("items=0-9", 100, None),
        ("", 100, None),
    ],
)
def test_satisfiable_ranges(header: str | None, size: int, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, size) == expected


@pytest.mark.parametrize(
    ("header", "size"),
    [
        ("bytes=100-", 100),
        ("bytes=999999999999-", 100),
        ("bytes=10-5", 100),
        ("bytes=-0", 100),
        ("bytes=-", 100),
        ("bytes=", 100),
        ("bytes=a-b", 100),
        ("bytes=-5-6", 100),
        ("bytes=0-1,2-3", 100),
        ("bytes=" + ",".join(f"{i}-{i}" for i in range(10_000)), 100_000),
        ("bytes=0-", 0),
        ("bytes=-5", 0),
    ],
)
def test_unsatisfiable_ranges_name_the_size(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable) as caught:
        parse_range(header, size)
    assert caught.value.status == 416
    assert caught.value.headers == {"Content-Range": f"bytes */{size}"}


def test_tokens_are_well_formed_derivable_and_distinct() -> None:
    key_id, salt, token = tokens.generate(b"secret")
    assert re.fullmatch(r"[a-z0-9]{12}", key_id)
    assert tokens.key_id_of(token) == key_id
    assert tokens.derive(b"secret", key_id, salt) == token
    assert tokens.derive(b"other secret", key_id, salt) != token
    assert tokens.derive(b"secret", key_id, salt + "0") != token
    others = {tokens.generate(b"secret")[2] for _ in range(20)}
    assert token not in others and len(others) == 20


def test_only_the_hash_of_a_token_is_needed_to_check_it() -> None:
    _, _, token = tokens.generate(b"secret")
    hashed = tokens.hash_token(token)
    assert token not in hashed and token.split("_")[-1] not in hashed
    assert tokens.matches(token, hashed)
    assert not tokens.matches(token + "x", hashed)
    assert not tokens.matches(token[:-1] + ("A" if token[-1] != "A" else "B"), hashed)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "sreg_",
        "garbage",
        "sreg_ABCDEFGHIJKL_" + "a" * 43,
        "sreg_abcdefghijkl_" + "a" * 42,
        "sreg_abcdefghijkl_" + "a" * 44,
        "sreg_abcdefghijk_" + "a" * 43,
        "xreg_abcdefghijkl_" + "a" * 43,
        "sreg_abcdefghijkl_" + "a" * 42 + "=",
        " sreg_abcdefghijkl_" + "a" * 43,
    ],
)
def test_garbage_tokens_have_no_key_id(value: str) -> None:
    assert tokens.key_id_of(value) is None


def test_a_well_formed_token_has_a_key_id() -> None:
    assert tokens.key_id_of("sreg_abcdefghijkl_" + "a-_B" * 10 + "xyz") == "abcdefghijkl"


KINDS = ("anonymous", "stranger", "contributor", "owner", "staff", "admin")
VIEW = {Action.SEE, Action.PULL}
SCOPE_CAP = {
    "read": VIEW,
    "write": VIEW
    | {
        Action.CREATE_COLLECTION,
        Action.PUSH,
        Action.TAG,
        Action.UPDATE,
        Action.DELETE_IMAGE,
        Action.STAR,
        Action.SHARE,
    },
    "admin": set(Action),
}
MANAGE = set(Action) - {Action.ADMIN}


def allowed_by_role(kind: str, private: bool) -> set[Action]:
    """What each kind of user may do in a collection before their token's scope is applied."""
    public_view = set() if private else VIEW
    return {
        "anonymous": public_view,
        "stranger": public_view | {Action.CREATE_COLLECTION} | (set() if private else {Action.STAR}),
        "contributor": VIEW | {Action.CREATE_COLLECTION, Action.STAR},
        "owner": MANAGE - {Action.CREATE_TEAM},
        "staff": MANAGE,
        "admin": set(Action),
    }[kind]


def principal_for(kind: str, scope: str) -> tuple[Principal, Role | None]:
    user = None if kind == "anonymous" else User(name=kind, is_admin=kind == "admin", is_staff=kind == "staff")
    role = {"owner": Role.OWNER, "contributor": Role.CONTRIBUTOR}.get(kind)
    return Principal(user, scope), role


@pytest.mark.parametrize(
    ("kind", "scope", "private"), list(itertools.product(KINDS, ("read", "write", "admin"), (False, True)))
)
def test_policy_table(kind: str, scope: str, private: bool) -> None:
    principal, role = principal_for(kind, scope)
    collection = Collection(name="lab", private=private)
    expected = allowed_by_role(kind, private) & SCOPE_CAP[scope]
    decided = {action for action in Action if decide(principal, action, collection, role)}
    assert decided == expected


@pytest.mark.parametrize("kind", KINDS)
def test_read_tokens_never_change_anything(kind: str) -> None:
    principal, role = principal_for(kind, "read")
    for private, action in itertools.product((False, True), set(Action) - VIEW):
        assert not decide(principal, action, Collection(name="lab", private=private), role), action


@pytest.mark.parametrize("kind", KINDS)
def test_an_unknown_scope_allows_nothing(kind: str) -> None:
    principal, role = principal_for(kind, "superuser")
    assert not any(decide(principal, action, Collection(name="lab"), role) for action in Action)


def test_anonymous_is_read_only_and_cannot_create() -> None:
    assert ANONYMOUS.scope == "read" and not ANONYMOUS.authenticated
    assert not decide(ANONYMOUS, Action.CREATE_COLLECTION, None, None)
    assert not decide(Principal(None, "admin"), Action.CREATE_COLLECTION, None, None)
    assert decide(ANONYMOUS, Action.PULL, Collection(name="lab", private=False), None)


def test_collection_actions_without_a_collection_are_refused_except_for_admins() -> None:
    stranger = Principal(User(name="s"), "admin")
    staff = Principal(User(name="t", is_staff=True), "admin")
    assert decide(stranger, Action.CREATE_COLLECTION, None, None)
    assert not decide(stranger, Action.PUSH, None, None)
    assert not decide(staff, Action.PUSH, None, None)
    assert not decide(staff, Action.ADMIN, None, None)
    assert decide(Principal(User(name="a", is_admin=True), "admin"), Action.ADMIN, None, None)


def test_visible_collections_agrees_with_the_policy() -> None:
    """The SQL filter used by lists, search and stats selects exactly what ``can(SEE)`` allows."""
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        people = {kind: User(name=kind, is_admin=kind == "admin", is_staff=kind == "staff") for kind in KINDS[1:]}
        collections = {
            name: Collection(name=name, private=private)
            for name, private in [("open", False), ("closed", True), ("mine", True), ("shared", True)]
        }
        session.add_all([*people.values(), *collections.values()])
        session.add_all(
            [
                CollectionMember(collection=collections["mine"], user=people["owner"], role="owner"),
                CollectionMember(collection=collections["shared"], user=people["owner"], role="owner"),
                CollectionMember(collection=collections["shared"], user=people["contributor"], role="contributor"),
            ]
        )
        session.flush()
        expected = {
            "anonymous": {"open"},
            "stranger": {"open"},
            "contributor": {"open", "shared"},
            "owner": {"open", "mine", "shared"},
            "staff": {"open", "closed", "mine", "shared"},
            "admin": {"open", "closed", "mine", "shared"},
        }
        for kind in KINDS:
            principal = Principal(people.get(kind), "read")
            listed = set(session.scalars(select(Collection.name).where(visible_collections(principal))))
            allowed = {c.name for c in collections.values() if can(session, principal, Action.SEE, c)}
            assert listed == allowed == expected[kind], kind
        assert role_of(session, people["contributor"], collections["shared"]) is Role.CONTRIBUTOR
        assert role_of(session, people["contributor"], collections["mine"]) is None
        assert role_of(session, None, collections["open"]) is None
    engine.dispose()


@pytest.mark.parametrize(
    ("change", "value"),
    [("signature", "é" * 43), ("signature", "x"), ("expires", "soon"), ("bound", "mallory"), ("path", "/v1/other")],
)
def test_a_signed_link_is_refused_when_any_part_changes(change: str, value: str) -> None:
    query = dict(parse_qsl(signing.sign(b"key", "GET", "/v1/blobs/x", 60, bound="alice")))
    parts = {"path": "/v1/blobs/x", "expires": query["expires"], "signature": query["signature"], "bound": "alice"}
    signing.verify(b"key", "GET", parts["path"], parts["expires"], parts["signature"], bound=parts["bound"])
    parts[change] = value
    with pytest.raises(Forbidden):
        signing.verify(b"key", "GET", parts["path"], parts["expires"], parts["signature"], bound=parts["bound"])


def test_a_signed_link_expires() -> None:
    query = dict(parse_qsl(signing.sign(b"key", "PUT", "/v2/uploads/u", -1)))
    with pytest.raises(Forbidden, match="expired"):
        signing.verify(b"key", "PUT", "/v2/uploads/u", query["expires"], query["signature"])
