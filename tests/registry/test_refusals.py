"""Refusals that say why, and say nothing more, on every surface.

* A collection name someone else holds is taken: creating it, or pushing into it as someone with no role
  there, answers the same (status and body) whether the collection is private or public, and whatever
  is or is not inside it.
* A refusal because of a token's scope names the scope and the one needed, in the same words everywhere,
  and before anything is looked up (so a private collection answers as a missing one does).
* An anonymous write asks for a credential: 401 with ``WWW-Authenticate``, saying how this surface's
  clients get one, alike for public, private and missing targets.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import httpx
import pytest
from requests_toolbelt import MultipartEncoder
from sqlalchemy import func, select, update

from sregistry_jupyter.registry.access import Role
from sregistry_jupyter.registry.orm import Collection, Container, Image
from sregistry_jupyter.registry.services import members, users
from sregistry_jupyter.registry.services.collections import find_collection
from tests.conftest import LiveRegistry, blobs_on_disk
from tests.registry.test_request_core import SlowHub, hub_registry
from tests.registry.test_shub import signed
from tests.registry.test_transfer import digest_of, push

ARCH = "amd64"
TAKEN = "vault"


def set_private(registry: LiveRegistry, name: str, private: bool) -> None:
    with registry.session() as session:
        session.execute(update(Collection).where(Collection.name == name).values(private=private))
        session.commit()


def contents(registry: LiveRegistry) -> tuple[int, int, int, list[str]]:
    """Everything a refused push must leave as it was."""
    with registry.session() as session:
        counts = [session.scalar(select(func.count()).select_from(model)) for model in (Collection, Container, Image)]
    return (*counts, blobs_on_disk(registry))


def answer(response: httpx.Response) -> tuple[int, str, str]:
    return response.status_code, response.headers.get("Content-Type", ""), response.text


# Each way of creating, or pushing into, a collection, as the person holding ``token`` (user ``user``).


def native_create(registry: LiveRegistry, user: str, token: str, collection: str, container: str) -> httpx.Response:
    return registry.client(token).post("/api/v1/collections", json={"name": collection})


def native_push(registry: LiveRegistry, user: str, token: str, collection: str, container: str) -> httpx.Response:
    return push(registry.client(token), b"their bytes", collection, container)


def library_create(registry: LiveRegistry, user: str, token: str, collection: str, container: str) -> httpx.Response:
    body = {"name": collection, "description": "No description", "entity": user, "private": False}
    return registry.client(token).post("/v1/collections", content=json.dumps(body))


def library_push(registry: LiveRegistry, user: str, token: str, collection: str, container: str) -> httpx.Response:
    """The push of container-library-client, request by request, up to the first answer it would stop at."""
    client = registry.client(token)
    digest = digest_of(b"their bytes")

    def find_or_create(path: str, create: str, body: dict, **kwargs) -> httpx.Response:
        found = client.get(path, **kwargs)
        return client.post(create, content=json.dumps(body)) if found.status_code == 404 else found

    ids: dict[str, str] = {}
    steps: list[Callable[[], httpx.Response]] = [
        lambda: find_or_create(f"/v1/entities/{user}", "/v1/entities", {"name": user}),
        lambda: find_or_create(
            f"/v1/collections/{user}/{collection}", "/v1/collections", {"name": collection, "entity": ids["entity"]}
        ),
        lambda: find_or_create(
            f"/v1/containers/{user}/{collection}/{container}",
            "/v1/containers",
            {"name": container, "collection": ids["collection"]},
        ),
        lambda: find_or_create(
            f"/v1/images/{user}/{collection}/{container}:{digest}",
            "/v1/images",
            {"hash": digest, "container": ids["container"]},
            params={"arch": ARCH},
        ),
    ]
    for step, key in zip(steps, ("entity", "collection", "container", "image"), strict=True):
        response = step()
        if response.status_code != 200:
            return response
        ids[key] = response.json()["data"]["id"]
    raise AssertionError(f"the push got as far as image {ids['image']}")


def shub_push(registry: LiveRegistry, user: str, token: str, collection: str, container: str) -> httpx.Response:
    fields = {"collection": collection, "name": container, "tag": "latest"}
    headers = signed("push", user, token, collection, container)
    return registry.client().post("/api/upload/chunked_upload", json=fields, headers=headers)


def shub_upload(registry: LiveRegistry, user: str, token: str, collection: str, container: str) -> httpx.Response:
    """The streamed form of a push, sent without asking first (a client may skip ``chunked_upload``)."""
    headers = signed("upload", user, token, collection, container)
    fields = {"SREGISTRY_EVENT": headers["Authorization"], "name": container, "collection": collection, "tag": "latest"}
    encoder = MultipartEncoder(fields={**fields, "file1": (f"{container}:latest.sif", b"their bytes", "text/plain")})
    headers["Content-Type"] = encoder.content_type
    return registry.client().post("/upload", content=encoder.to_string(), headers=headers)


PUSHES = {
    "native-create": native_create,
    "native-push": native_push,
    "library-create": library_create,
    "library-push": library_push,
    "shub-push": shub_push,
    "shub-upload": shub_upload,
}
TAKEN_MESSAGE = f"collection name '{TAKEN}' is taken"


@pytest.fixture
def vault(registry: LiveRegistry) -> Iterator[LiveRegistry]:
    """Alice's collection ``vault`` with a container ``tool`` holding an image."""
    assert push(registry.client(registry.add_user("alice")), b"alice's bytes", TAKEN, "tool").status_code == 201
    yield registry


@pytest.mark.parametrize("surface", PUSHES)
def test_a_taken_name_answers_alike_whether_private_or_public_and_whatever_is_inside(vault, surface):
    attempt = PUSHES[surface]
    token = vault.add_user("mallory", scope="write")
    before = contents(vault)
    answers = {}
    for private in (True, False):
        set_private(vault, TAKEN, private)
        for container in ("tool", "fresh"):
            answers[private, container] = answer(attempt(vault, "mallory", token, TAKEN, container))
    assert len(set(answers.values())) == 1, answers
    status, content_type, body = answers[True, "tool"]
    assert status == 409 and content_type.startswith("application/json")
    assert TAKEN_MESSAGE in body and "tool" not in body and "alice" not in body
    assert contents(vault) == before


def grant(registry: LiveRegistry, collection: str, user: str, role: Role) -> None:
    with registry.session() as session:
        members.grant(session, find_collection(session, collection), users.get_user(session, user), role)
        session.commit()


@pytest.mark.parametrize("surface", ["native-push", "library-push", "shub-push", "shub-upload"])
def test_a_member_who_may_not_push_is_told_why(vault, surface):
    """Someone with a role in the collection knows it exists; they hear why they may not push."""
    token = vault.add_user("helper", scope="write")
    grant(vault, TAKEN, "helper", Role.CONTRIBUTOR)
    response = PUSHES[surface](vault, "helper", token, TAKEN, "tool")
    assert response.status_code == 403
    assert f"pushing in collection '{TAKEN}' is for its owners; contributors may pull and star" in response.text


# Scope refusals.

READ_PUSH = "this token has scope 'read'; pushing needs a 'write' token"


@pytest.mark.parametrize("surface", ["native-push", "library-push", "shub-push", "shub-upload"])
def test_a_read_token_is_told_its_scope_and_the_one_pushing_needs_before_anything_is_looked_up(vault, surface):
    attempt = PUSHES[surface]
    owner_reads = vault.add_user("alice", scope="read")
    stranger_reads = vault.add_user("mallory", scope="read")
    answers = {
        "own collection": answer(attempt(vault, "alice", owner_reads, TAKEN, "tool")),
        "someone else's": answer(attempt(vault, "mallory", stranger_reads, TAKEN, "tool")),
        "missing": answer(attempt(vault, "mallory", stranger_reads, "nothing-here", "tool")),
    }
    set_private(vault, TAKEN, True)
    answers["someone else's private"] = answer(attempt(vault, "mallory", stranger_reads, TAKEN, "tool"))
    assert len(set(answers.values())) == 1, answers
    status, _, body = answers["own collection"]
    assert status == 403 and READ_PUSH in body


def test_scope_refusals_name_the_scope_each_action_needs(vault):
    writer = vault.client(vault.add_user("alice", scope="write"))
    reader = vault.client(vault.add_user("alice", scope="read"))
    tool = f"/api/v1/collections/{TAKEN}/containers/tool"
    digest = digest_of(b"alice's bytes")
    cases = [
        (
            writer.delete(f"/api/v1/collections/{TAKEN}"),
            "this token has scope 'write'; deleting a collection needs an 'admin' token",
        ),
        (
            writer.patch(f"/api/v1/collections/{TAKEN}", json={"private": True}),
            "this token has scope 'write'; changing a collection's privacy needs an 'admin' token",
        ),
        (
            writer.put(f"{tool}/tags/latest", json={"digest": digest, "frozen": True}),
            "this token has scope 'write'; freezing tags needs an 'admin' token",
        ),
        (
            reader.put(f"{tool}/tags/v2", json={"digest": digest}),
            "this token has scope 'read'; tagging needs a 'write' token",
        ),
        (
            reader.delete(f"{tool}/images/{digest}"),
            "this token has scope 'read'; deleting images needs a 'write' token",
        ),
        (
            reader.post("/api/v1/collections", json={"name": "fresh"}),
            "this token has scope 'read'; creating collections needs a 'write' token",
        ),
        (
            writer.post(f"/api/v1/collections/{TAKEN}/members", json={"user": "bob", "role": "contributor"}),
            "this token has scope 'write'; managing a collection's members needs an 'admin' token",
        ),
        (
            writer.post("/api/v1/user/tokens", json={"name": "more"}),
            "this token has scope 'write'; creating or revoking other tokens needs an 'admin' token"
            " or a signed-in session",
        ),
        (
            reader.post("/api/v1/teams", json={"name": "lab"}),
            "this token has scope 'read'; creating teams needs an 'admin' token",
        ),
    ]
    for response, message in cases:
        assert (response.status_code, response.json()) == (403, {"code": "DENIED", "message": message})
    library = vault.client(vault.add_user("alice", scope="read"))
    deleted = library.delete(f"/v1/images/alice/{TAKEN}/tool:latest", params={"arch": ARCH})
    assert deleted.json() == {
        "error": {"code": 403, "message": "this token has scope 'read'; deleting images needs a 'write' token"}
    }


@pytest.fixture
def quick_hub() -> Iterator[SlowHub]:
    hub = SlowHub(0.0, ["access:services!service=sregistry"])
    hub.start()
    yield hub
    hub.stop()


def test_a_hub_token_with_a_read_scope_says_so_and_how_to_push(db_url, tmp_path, quick_hub):
    """The hub stand-in of ``test_request_core`` (a real hub cannot be made to answer as configured here
    cheaply); the registry is configured to let hub tokens only read."""
    registry, stop = hub_registry(db_url, tmp_path, quick_hub)
    try:
        registry.context.authenticator.token_scope = "read"
        hub = registry.client()
        hub.headers["Authorization"] = "token hub-token-carol"
        refused = push(hub, b"from a notebook", "carols", "tool")
        message = refused.json()["message"]
        assert refused.status_code == 403
        assert message.startswith("this JupyterHub token has scope 'read'; pushing needs a 'write' token")
        assert "a registry token of that scope works too" in message
    finally:
        stop()


# Anonymous writes.

NATIVE_HINT = "create a token at {url}/tokens and send it as 'Authorization: Bearer <token>'"
LIBRARY_HINT = "create a token at {url}/tokens, then run 'apptainer remote login' and paste it"
SHUB_HINT = (
    "create a token at {url}/tokens and put it, with your username, in the 'registry' section of "
    "sregistry-cli's ~/.sregistry"
)


def anonymous_writes(url: str, collection: str) -> dict[str, tuple[Callable[[httpx.Client], httpx.Response], str]]:
    """Each surface's anonymous writes, and the message each must answer with."""
    tool = f"/api/v1/collections/{collection}/containers/tool"
    digest = digest_of(b"alice's bytes")
    native = NATIVE_HINT.format(url=url)
    library = LIBRARY_HINT.format(url=url)
    shub = SHUB_HINT.format(url=url)
    fields = {"collection": collection, "name": "tool", "tag": "latest"}
    encoder = MultipartEncoder(fields={**fields, "file1": ("tool:latest.sif", b"bytes", "text/plain")})
    form = {"content": encoder.to_string(), "headers": {"Content-Type": encoder.content_type}}
    return {
        "native push": (lambda c: push(c, b"bytes", collection, "tool"), f"pushing needs a token: {native}"),
        "native create": (
            lambda c: c.post("/api/v1/collections", json={"name": collection}),
            f"creating collections needs a token: {native}",
        ),
        "native tag": (lambda c: c.put(f"{tool}/tags/v2", json={"digest": digest}), f"tagging needs a token: {native}"),
        "native delete image": (
            lambda c: c.delete(f"{tool}/images/{digest}"),
            f"deleting images needs a token: {native}",
        ),
        "native delete collection": (
            lambda c: c.delete(f"/api/v1/collections/{collection}"),
            f"deleting a collection needs a token: {native}",
        ),
        "native privacy": (
            lambda c: c.patch(f"/api/v1/collections/{collection}", json={"private": False}),
            f"changing a collection's privacy needs a token: {native}",
        ),
        "native empty change": (
            lambda c: c.patch(f"/api/v1/collections/{collection}", json={}),
            f"changing a collection's description needs a token: {native}",
        ),
        "library create": (
            lambda c: c.post("/v1/collections", content=json.dumps({"name": collection})),
            f"pushing needs a token: {library}",
        ),
        "library token status": (lambda c: c.get("/v1/token-status"), f"no token was sent: {library}"),
        "library delete": (
            lambda c: c.delete(f"/v1/images/alice/{collection}/tool:latest", params={"arch": ARCH}),
            f"deleting images needs a token: {library}",
        ),
        "shub push": (lambda c: c.post("/api/upload/chunked_upload", json=fields), f"pushing needs a token: {shub}"),
        "shub upload": (
            lambda c: c.post("/upload", **form),
            f"pushing needs a token, which signs the upload (SREGISTRY-HMAC-SHA256): {shub}",
        ),
        "shub delete": (
            lambda c: c.delete(f"/api/container/{collection}/tool:latest"),
            f"deleting images needs a token: {shub}",
        ),
    }


def envelope(surface: str, status: int, message: str) -> dict:
    if surface.startswith("native"):
        return {"code": "UNAUTHORIZED", "message": message}
    if surface.startswith("library"):
        return {"error": {"code": status, "message": message}}
    return {"detail": message}


def test_an_anonymous_write_asks_for_a_credential_alike_for_public_private_and_missing_targets(vault):
    anonymous = vault.client()
    before = contents(vault)
    for private in (False, True):
        set_private(vault, TAKEN, private)
        for target in (TAKEN, "nothing-here"):
            for name, (attempt, message) in anonymous_writes(vault.url, target).items():
                response = attempt(anonymous)
                assert response.status_code == 401, (name, private, target, response.text)
                assert response.headers["WWW-Authenticate"] == 'Bearer realm="sregistry"'
                assert response.json() == envelope(name, 401, message), (name, private, target)
    assert contents(vault) == before
