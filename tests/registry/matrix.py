"""The registry the permission matrix runs against, and one driver per surface and action.

A driver performs one action as one role on one target with the requests of that surface's protocol,
and reports the answer together with whether the action took effect. The effect is read from the
database, not from the answer, so that a refusal which still changed something (or a success that
changed nothing) is caught. Throwaway objects for destructive actions are made directly in the database,
named after the cell, so that cells never depend on one another or on the order they run in.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import httpx
from requests_toolbelt import MultipartEncoder
from sqlalchemy import func, select, update
from tornado.web import create_signed_value

from sregistry_jupyter.registry.access import DEFAULT_POLICY, Role
from sregistry_jupyter.registry.auth.sessions import SESSION_COOKIE, create_session
from sregistry_jupyter.registry.orm import (
    Collection,
    CollectionMember,
    Container,
    Image,
    Tag,
    User,
    utcnow,
)
from sregistry_jupyter.registry.services import members, teams, users
from sregistry_jupyter.registry.services.images import set_tag
from sregistry_jupyter.registry.webapp import cookie_secret
from tests.conftest import LiveRegistry
from tests.registry.test_shub import signed
from tests.registry.test_transfer import IMAGES, digest_of

ROLES = (
    "anonymous",
    "stranger",
    "contributor",
    "owner",
    "teammate",
    "staff",
    "admin",
    "robot",
    "expired",
    "revoked",
    "readonly",
)
ACTIONS = (
    "see",
    "list",
    "search",
    "pull",
    "push",
    "tag",
    "delete_image",
    "delete_collection",
    "manage_members",
    "change_privacy",
    "freeze",
)
VISIBILITIES = ("public", "private")

ENTITY = "owner"
ARCH = "amd64"
NEWCOMER = "newbie"
MISSING = "nothing-here"
MISSING_ID = 987654321
USER_OF = {
    "stranger": "stranger",
    "contributor": "contrib",
    "owner": "owner",
    "teammate": "mate",
    "staff": "staffer",
    "admin": "root",
    "robot": "robot",
    "expired": "owner",
    "revoked": "owner",
    "readonly": "owner",
}
PEOPLE = ("anonymous", "stranger", "contributor", "owner", "teammate", "staff", "admin")


def base_name(visibility: str) -> str:
    return f"base-{visibility}"


@dataclass(frozen=True)
class Target:
    """What a cell acts on; ``missing()`` is the same thing in a collection that does not exist."""

    collection: str
    container: str = "tool"
    tag: str = "latest"
    digest: str = ""
    container_id: int = 0
    image_id: int = 0
    private: bool = False

    def missing(self) -> Target:
        return replace(self, collection=MISSING, container_id=MISSING_ID, image_id=MISSING_ID)

    def as_if_missing(self, body: str) -> str:
        """``body`` (an answer about this target) with its names replaced by those of ``missing()``."""
        body = body.replace(self.collection, MISSING)
        if self.container_id:
            body = body.replace(f"container {self.container_id}", f"container {MISSING_ID}")
        return body


@dataclass(frozen=True)
class Seen:
    """What a driver saw: the status and body of the answer that decided, and whether it took effect."""

    status: int
    body: str
    happened: bool


@dataclass
class World:
    """One live registry with every role's credential; requests go through one client without defaults,
    so that each carries exactly the credential its cell names."""

    registry: LiveRegistry
    tokens: dict[str, str | None]
    data: dict[str, bytes]
    http: httpx.Client
    pages: dict[str, httpx.Client] = field(default_factory=dict)

    def session(self):
        return self.registry.session()

    def bearer(self, role: str) -> dict[str, str]:
        token = self.tokens[role]
        return {"Authorization": f"Bearer {token}"} if token else {}

    def signed(self, role: str, kind: str, collection: str, name: str, tag: str = "latest") -> dict[str, str]:
        """The SREGISTRY-HMAC-SHA256 header sregistry-cli sends for ``role`` (none for anonymous)."""
        token = self.tokens[role]
        return signed(kind, USER_OF[role], token, collection, name, tag) if token else {}

    def base(self, visibility: str) -> Target:
        with self.session() as session:
            image = session.scalar(
                select(Image)
                .join(Container)
                .join(Collection)
                .where(Collection.name == base_name(visibility), Container.name == "tool")
            )
            return Target(
                base_name(visibility),
                digest=image.digest,
                container_id=image.container_id,
                image_id=image.id,
                private=visibility == "private",
            )

    def fresh_collection(self, name: str, visibility: str) -> Target:
        with self.session() as session:
            make_collection(session, name, visibility == "private")
            session.commit()
        return Target(name, private=visibility == "private")

    def fresh_image(self, visibility: str, container_name: str) -> Target:
        """A container of its own in the base collection, holding one image tagged ``latest``."""
        base = self.base(visibility)
        with self.session() as session:
            collection = session.scalar(select(Collection).where(Collection.name == base.collection))
            container = Container(collection_id=collection.id, name=container_name)
            session.add(container)
            session.flush()
            image = Image(
                container_id=container.id,
                digest=base.digest,
                size=len(self.data[visibility]),
                arch=ARCH,
                uploaded=True,
                uploaded_at=utcnow(),
            )
            session.add(image)
            session.flush()
            set_tag(session, container, image, "latest", ARCH)
            session.commit()
            return replace(base, container=container_name, container_id=container.id, image_id=image.id)

    def fresh_tag(self, visibility: str, name: str) -> Target:
        base = self.base(visibility)
        with self.session() as session:
            image = session.get(Image, base.image_id)
            set_tag(session, image.container, image, name, ARCH)
            session.commit()
        return replace(base, tag=name)

    def page_client(self, role: str) -> httpx.Client:
        """A browser for ``role``, carrying a session the sign-in flow would have opened."""
        if role not in self.pages:
            cookies = {}
            if role != "anonymous":
                with self.session() as session:
                    user = users.get_user(session, USER_OF[role])
                    value = create_session(session, user.id)
                    session.commit()
                secret = cookie_secret(self.registry.context)
                cookies[SESSION_COOKIE] = create_signed_value(secret, SESSION_COOKIE, value).decode()
            self.pages[role] = httpx.Client(base_url=self.registry.url, cookies=cookies, timeout=60)
        return self.pages[role]

    def close(self) -> None:
        self.http.close()
        for client in self.pages.values():
            client.close()


def make_collection(session, name: str, private: bool) -> Collection:
    """A collection owned by the owner and the robot, with the contributor as contributor."""
    owner = users.get_user(session, "owner")
    collection = members.create_owned_collection(session, name, owner, private=private, policy=DEFAULT_POLICY)
    members.grant(session, collection, users.get_user(session, "robot"), Role.OWNER)
    members.grant(session, collection, users.get_user(session, "contrib"), Role.CONTRIBUTOR)
    return collection


def build_world(registry: LiveRegistry) -> World:
    """Every role's user and credential, the teams, and a public and a private collection with an image."""
    secret = registry.context.secret_key
    tokens: dict[str, str | None] = {"anonymous": None}
    with registry.session() as session:
        people = {}
        for role, name in USER_OF.items():
            if name not in people:
                people[name] = users.create_user(
                    session, name, staff=role == "staff", admin=role == "admin", robot=role == "robot"
                )
        people[NEWCOMER] = users.create_user(session, NEWCOMER)
        for role, name in USER_OF.items():
            scope = {"robot": "write", "readonly": "read"}.get(role, "admin")
            row, tokens[role] = users.create_token(session, people[name], secret, name=role, scope=scope)
            if role == "expired":
                row.expires_at = utcnow() - dt.timedelta(hours=1)
            elif role == "revoked":
                row.revoked_at = utcnow()
        lab = teams.insert_team(session, "lab", people["owner"])
        teams.grant(session, lab, people["mate"])
        teams.grant(session, lab, people[NEWCOMER])
        ops = teams.insert_team(session, "ops", people["staffer"])
        teams.grant(session, ops, people[NEWCOMER])
        for visibility in VISIBILITIES:
            make_collection(session, base_name(visibility), visibility == "private")
        session.commit()
    http = httpx.Client(base_url=registry.url, timeout=60)
    data = {}
    for visibility in VISIBILITIES:
        data[visibility] = os.urandom(4096) + visibility.encode()
        bearer = {"Authorization": f"Bearer {tokens['owner']}"}
        pushed = upload(http, data[visibility], base_name(visibility), "tool", bearer)
        assert pushed.status_code == 201, pushed.text
    return World(registry, tokens, data, http)


# What the database says happened.


def image_count(world: World, collection: str, container: str) -> int:
    with world.session() as session:
        return session.scalar(
            select(func.count(Image.id))
            .join(Container)
            .join(Collection)
            .where(Collection.name == collection, Container.name == container, Image.uploaded.is_(True))
        )


def tag_row(world: World, target: Target, tag: str) -> Tag | None:
    with world.session() as session:
        return session.scalar(select(Tag).where(Tag.container_id == target.container_id, Tag.name == tag))


def collection_row(world: World, name: str) -> Collection | None:
    with world.session() as session:
        return session.scalar(select(Collection).where(Collection.name == name))


def is_member(world: World, collection: str, user: str) -> bool:
    with world.session() as session:
        found = session.scalar(
            select(CollectionMember.id)
            .join(Collection)
            .join(User, User.id == CollectionMember.user_id)
            .where(Collection.name == collection, User.name == user)
        )
        return found is not None


def bring_to_front(world: World) -> None:
    """Make the base collections the most recently updated, so that the home page lists them."""
    with world.session() as session:
        session.execute(
            update(Collection)
            .where(Collection.name.in_([base_name(v) for v in VISIBILITIES]))
            .values(updated_at=utcnow() + dt.timedelta(days=1))
        )
        session.commit()


def unique_bytes(label: str) -> bytes:
    return os.urandom(2048) + label.encode()


def upload(
    http: httpx.Client, data: bytes, collection: str, container: str, headers: dict, tag: str | None = "latest"
) -> httpx.Response:
    """A native push of raw bytes, tagged ``tag`` (or not tagged at all)."""
    query = {"digest": digest_of(data), **({"tag": tag} if tag else {})}
    return http.post(IMAGES.format(c=collection, n=container), params=query, content=data, headers=headers)


def seen(response: httpx.Response, happened: bool) -> Seen:
    return Seen(response.status_code, response.text, happened)


# The native API.

API = "/api/v1/collections"


def native_see(world: World, role: str, target: Target) -> Seen:
    r = world.http.get(f"{API}/{target.collection}", headers=world.bearer(role))
    return seen(r, r.status_code == 200 and r.json()["name"] == target.collection)


def native_list(world: World, role: str, target: Target) -> Seen:
    r = world.http.get(API, params={"per_page": 100, "sort": "name"}, headers=world.bearer(role))
    return seen(r, r.status_code == 200 and target.collection in [c["name"] for c in r.json()["items"]])


def native_search(world: World, role: str, target: Target) -> Seen:
    r = world.http.get(API, params={"q": target.collection}, headers=world.bearer(role))
    return seen(r, r.status_code == 200 and target.collection in [c["name"] for c in r.json()["items"]])


def native_pull(world: World, role: str, target: Target) -> Seen:
    path = f"{API}/{target.collection}/containers/{target.container}/images/{target.tag}/file"
    r = world.http.get(path, headers=world.bearer(role))
    return seen(r, r.status_code == 200 and r.content == world.data["private" if target.private else "public"])


def native_push(world: World, role: str, target: Target) -> Seen:
    data = unique_bytes(target.container)
    r = upload(world.http, data, target.collection, target.container, world.bearer(role))
    return seen(r, image_count(world, target.collection, target.container) == 1)


def native_tag(world: World, role: str, target: Target) -> Seen:
    path = f"{API}/{target.collection}/containers/{target.container}/tags/{target.tag}"
    r = world.http.put(path, json={"digest": target.digest}, headers=world.bearer(role))
    return seen(r, tag_row(world, target, target.tag) is not None)


def native_delete_image(world: World, role: str, target: Target) -> Seen:
    path = f"{API}/{target.collection}/containers/{target.container}/images/{target.digest}"
    r = world.http.delete(path, headers=world.bearer(role))
    return seen(r, image_count(world, target.collection, target.container) == 0)


def native_delete_collection(world: World, role: str, target: Target) -> Seen:
    r = world.http.delete(f"{API}/{target.collection}", headers=world.bearer(role))
    return seen(r, collection_row(world, target.collection) is None)


def native_manage_members(world: World, role: str, target: Target) -> Seen:
    body = {"user": NEWCOMER, "role": "contributor"}
    r = world.http.post(f"{API}/{target.collection}/members", json=body, headers=world.bearer(role))
    return seen(r, is_member(world, target.collection, NEWCOMER))


def native_change_privacy(world: World, role: str, target: Target) -> Seen:
    r = world.http.patch(f"{API}/{target.collection}", json={"private": not target.private}, headers=world.bearer(role))
    row = collection_row(world, target.collection)
    return seen(r, row is not None and row.private is not target.private)


def native_freeze(world: World, role: str, target: Target) -> Seen:
    path = f"{API}/{target.collection}/containers/{target.container}/tags/{target.tag}"
    r = world.http.put(path, json={"digest": target.digest, "frozen": True}, headers=world.bearer(role))
    row = tag_row(world, target, target.tag)
    return seen(r, row is not None and row.frozen)


# The library API, request by request as container-library-client sends them.


def library_see(world: World, role: str, target: Target) -> Seen:
    r = world.http.get(f"/v1/collections/{ENTITY}/{target.collection}", headers=world.bearer(role))
    return seen(r, r.status_code == 200 and r.json()["data"]["name"] == target.collection)


def library_search(world: World, role: str, target: Target) -> Seen:
    r = world.http.get("/v1/search", params={"arch": ARCH, "value": target.collection}, headers=world.bearer(role))
    found = r.status_code == 200 and target.collection in [c["name"] for c in r.json()["data"]["collection"]]
    return seen(r, found)


def library_pull(world: World, role: str, target: Target) -> Seen:
    """``GetImage``, then the download that must answer 303 to a link fetched without credentials."""
    ref = f"{ENTITY}/{target.collection}/{target.container}:{target.tag}"
    r = world.http.get(f"/v1/images/{ref}", params={"arch": ARCH}, headers=world.bearer(role))
    if r.status_code != 200:
        return seen(r, False)
    r = world.http.get(f"/v1/imagefile/{ref}", params={"arch": ARCH}, headers=world.bearer(role))
    if r.status_code != 303:
        return seen(r, False)
    blob = httpx.get(r.headers["Location"], timeout=60)
    return seen(r, blob.status_code == 200 and blob.content == world.data["private" if target.private else "public"])


ACCEPTED = {"GET": (200,), "POST": (200, 201), "PUT": (200, 204)}


def library_push(world: World, role: str, target: Target) -> Seen:
    """``UploadImage``: find or create entity, collection, container and image, upload, then tag.

    The answer reported is the first the client would stop at, or the last one when the push succeeds.
    """
    data = unique_bytes(target.container)
    digest = digest_of(data)
    headers = world.bearer(role)
    c, n = target.collection, target.container

    def call(method: str, path: str, body: dict | None = None, **kwargs) -> httpx.Response:
        content = json.dumps(body) if body is not None else None
        return world.http.request(method, path, content=content, headers=headers, **kwargs)

    def find_or_create(path: str, create: str, body: dict, **kwargs) -> httpx.Response:
        found = call("GET", path, **kwargs)
        return call("POST", create, body) if found.status_code == 404 else found

    steps: list[Callable[[dict], httpx.Response]] = [
        lambda _: find_or_create(f"/v1/entities/{ENTITY}", "/v1/entities", {"name": ENTITY}),
        lambda ids: find_or_create(
            f"/v1/collections/{ENTITY}/{c}",
            "/v1/collections",
            {"name": c, "description": "No description", "entity": ids["entity"]},
        ),
        lambda ids: find_or_create(
            f"/v1/containers/{ENTITY}/{c}/{n}",
            "/v1/containers",
            {"name": n, "description": "No description", "collection": ids["collection"]},
        ),
        lambda ids: find_or_create(
            f"/v1/images/{ENTITY}/{c}/{n}:{digest}",
            "/v1/images",
            {"hash": digest, "description": "", "container": ids["container"], "size": 0, "uploaded": False},
            params={"arch": ARCH},
        ),
    ]
    ids: dict[str, str] = {}
    response = None
    for step, key in zip(steps, ("entity", "collection", "container", "image"), strict=True):
        response = step(ids)
        if response.status_code not in (200, 201):
            return seen(response, False)
        ids[key] = response.json()["data"]["id"]
    hex_digest = digest.removeprefix("sha256.")
    body = {"filesize": len(data), "md5sum": hashlib.md5(data).hexdigest(), "sha256sum": hex_digest}
    response = call("POST", f"/v2/imagefile/{ids['image']}", body)
    if response.status_code not in ACCEPTED["POST"]:
        return seen(response, False)
    upload = httpx.put(
        response.json()["data"]["uploadURL"],
        content=data,
        headers={"Content-Type": "application/octet-stream"},
        timeout=60,
    )
    if upload.status_code != 200:
        return seen(upload, False)
    response = call("PUT", f"/v2/imagefile/{ids['image']}/_complete", {})
    if response.status_code not in ACCEPTED["PUT"]:
        return seen(response, False)
    response = call("GET", f"/v2/tags/{ids['container']}")
    if response.status_code != 200:
        return seen(response, False)
    response = call("POST", f"/v2/tags/{ids['container']}", {"Arch": ARCH, "Tag": "latest", "ImageID": ids["image"]})
    return seen(response, image_count(world, c, n) == 1)


def library_tag(world: World, role: str, target: Target) -> Seen:
    body = {"Arch": ARCH, "Tag": target.tag, "ImageID": str(target.image_id)}
    r = world.http.post(f"/v2/tags/{target.container_id}", content=json.dumps(body), headers=world.bearer(role))
    return seen(r, tag_row(world, target, target.tag) is not None)


def library_delete_image(world: World, role: str, target: Target) -> Seen:
    ref = f"{ENTITY}/{target.collection}/{target.container}:{target.tag}"
    r = world.http.delete(f"/v1/images/{ref}", params={"arch": ARCH}, headers=world.bearer(role))
    return seen(r, image_count(world, target.collection, target.container) == 0)


# The shub API as sregistry-cli speaks it. Its listings and searches go out without credentials; the
# registry honours a Bearer token there too, which is how a signed-in role asks for them here.


def shub_see(world: World, role: str, target: Target) -> Seen:
    r = world.http.get(f"/api/collection/{target.collection}", headers=world.bearer(role))
    return seen(r, r.status_code == 200 and r.json()["name"] == target.collection)


def shub_list(world: World, role: str, target: Target) -> Seen:
    r = world.http.get("/api/collections/", headers=world.bearer(role))
    return seen(r, r.status_code == 200 and target.collection in [c["name"] for c in r.json()["results"]])


def shub_search(world: World, role: str, target: Target) -> Seen:
    path = f"/api/container/search/collection/{target.collection}/name/{target.container}"
    r = world.http.get(path, headers=world.bearer(role))
    return seen(r, r.status_code == 200 and target.collection in [c["collection"] for c in r.json()])


def shub_pull(world: World, role: str, target: Target) -> Seen:
    """The manifest, signed with a ``pull`` credential when the role has one, then the link it gives."""
    c, n = target.collection, target.container
    r = world.http.get(f"/api/container/{c}/{n}:{target.tag}", headers=world.signed(role, "pull", c, n, target.tag))
    if r.status_code != 200:
        return seen(r, False)
    blob = httpx.get(r.json()["image"], timeout=60)
    return seen(r, blob.status_code == 200 and blob.content == world.data["private" if target.private else "public"])


def shub_push(world: World, role: str, target: Target) -> Seen:
    """``chunked_upload`` with a ``push`` credential, then the form with an ``upload`` credential."""
    c, n = target.collection, target.container
    fields = {"collection": c, "name": n, "tag": "latest"}
    r = world.http.post("/api/upload/chunked_upload", json=fields, headers=world.signed(role, "push", c, n))
    if r.status_code != 200:
        return seen(r, False)
    cid = str(r.json()["cid"])
    credential = world.signed(role, "upload", cid, n)
    form = {"SREGISTRY_EVENT": credential.get("Authorization", ""), "name": n, "collection": cid, "tag": "latest"}
    encoder = MultipartEncoder(fields={**form, "file1": (f"{n}:latest.sif", unique_bytes(n), "text/plain")})
    headers = {**credential, "Content-Type": encoder.content_type}
    r = world.http.post("/upload", content=encoder.to_string(), headers=headers)
    return seen(r, image_count(world, c, n) == 1)


def shub_delete_image(world: World, role: str, target: Target) -> Seen:
    c, n = target.collection, target.container
    headers = world.signed(role, "delete", c, n, target.tag)
    r = world.http.delete(f"/api/container/{c}/{n}:{target.tag}", headers=headers)
    return seen(r, image_count(world, c, n) == 0)


# The pages.


def pages_list(world: World, role: str, target: Target) -> Seen:
    bring_to_front(world)
    r = world.page_client(role).get("/")
    return seen(r, r.status_code == 200 and re.search(f">\\s*{re.escape(target.collection)}\\s*<", r.text) is not None)


DRIVERS: dict[str, dict[str, Callable[[World, str, Target], Seen]]] = {
    "native": {
        "see": native_see,
        "list": native_list,
        "search": native_search,
        "pull": native_pull,
        "push": native_push,
        "tag": native_tag,
        "delete_image": native_delete_image,
        "delete_collection": native_delete_collection,
        "manage_members": native_manage_members,
        "change_privacy": native_change_privacy,
        "freeze": native_freeze,
    },
    "library": {
        "see": library_see,
        "search": library_search,
        "pull": library_pull,
        "push": library_push,
        "tag": library_tag,
        "delete_image": library_delete_image,
    },
    "shub": {
        "see": shub_see,
        "list": shub_list,
        "search": shub_search,
        "pull": shub_pull,
        "push": shub_push,
        "delete_image": shub_delete_image,
    },
    "pages": {"list": pages_list},
}


def target_for(world: World, label: str, role: str, action: str, visibility: str) -> Target:
    """The cell's target: the base collection, or something fresh named after the cell where it must be.

    ``label`` keeps apart the names of cells that share a role and an action (one per surface or client).
    """
    cell = f"{label}-{role}"
    if action in ("delete_collection", "manage_members", "change_privacy"):
        return world.fresh_collection(f"{action.replace('_', '-')}-{cell}-{visibility}", visibility)
    if action == "delete_image":
        return world.fresh_image(visibility, f"delete-{cell}")
    if action == "push":
        return replace(world.base(visibility), container=f"push-{cell}")
    if action == "tag":
        return replace(world.base(visibility), tag=f"tag-{cell}")
    if action == "freeze":
        return world.fresh_tag(visibility, f"freeze-{cell}")
    return world.base(visibility)
