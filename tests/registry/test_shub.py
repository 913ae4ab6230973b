"""The shub (Singularity Registry Server) API: manifests, capability download links, HMAC signatures,
listings and searches that respect privacy, signed deletes and the streamed multipart upload.

Requests are signed with sregistry-cli's own helpers, so the signatures are the real client's.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import random
from pathlib import Path
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

import httpx
import pytest
from requests_toolbelt import MultipartEncoder
from sregistry.main.registry.utils import generate_credential, generate_signature, generate_timestamp

from sregistry_jupyter.registry.errors import InvalidInput, Unauthorized
from sregistry_jupyter.registry.handlers.multipart_form import MultipartReader, Part, boundary_of
from sregistry_jupyter.registry.orm import ApiToken, Collection, CollectionMember, Image, Tag, User, utcnow
from sregistry_jupyter.registry.services import hmac_auth
from sregistry_jupyter.registry.services.limits import Limiter, Limits
from sregistry_jupyter.registry.signing import sign
from tests.conftest import SECRET
from tests.gotools import make_sif
from tests.registry.test_limits import steady_clock

LABELS = {"maintainer": "Ada <ada@example.org>", "org.label-schema.version": "1.0"}
IMAGES = "/api/v1/collections/{c}/containers/{n}/images"
TERMS = "Push only what you may share."
PUSH_FIELDS = {"collection": "lab", "name": "tool", "tag": "latest"}


@pytest.fixture(scope="module")
def sifs(mksif: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("sifs")
    return {
        "a": make_sif(mksif, out / "a.sif", seed=1, size=300_000, labels=LABELS).read_bytes(),
        "b": make_sif(mksif, out / "b.sif", seed=2, size=5000, arch="arm64").read_bytes(),
        "big": make_sif(mksif, out / "big.sif", seed=3, size=3 << 20).read_bytes(),
    }


def digest_of(data: bytes) -> str:
    return "sha256." + hashlib.sha256(data).hexdigest()


def stamp_at(hours_ago: int) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(hours=hours_ago)).strftime("%Y%m%dT%HZ")


def signed(kind: str, user: str, token: str, collection: str, name: str, tag: str = "latest", stamp: str = "") -> dict:
    """The Authorization header sregistry-cli sends, built with its own helpers."""
    stamp = stamp or generate_timestamp()
    signature = generate_signature(f"{kind}|{collection}|{stamp}|{name}|{tag}|", token)
    credential = f"{kind}/{generate_credential(user)}/{stamp}"
    return {"Authorization": f"SREGISTRY-HMAC-SHA256 Credential={credential},Signature={signature}"}


def push(client: httpx.Client, data: bytes, collection: str = "lab", name: str = "tool", *tags: str) -> None:
    params = {"digest": digest_of(data), "tag": list(tags or ("latest",))}
    response = client.post(IMAGES.format(c=collection, n=name), params=params, content=data)
    assert response.status_code == 201, response.text


def make_private(registry, name: str) -> None:
    with registry.session() as session:
        session.query(Collection).filter_by(name=name).one().private = True
        session.commit()


def stored_blobs(registry) -> list[Path]:
    return [p for p in (registry.data_dir / "storage").rglob("*") if p.is_file()]


@pytest.fixture
def alice_token(registry) -> str:
    return registry.add_user("alice", scope="write")


@pytest.fixture
def alice(registry, alice_token) -> httpx.Client:
    return registry.client(alice_token)


# Manifests and download links.


def test_manifest_and_download_link(registry, alice, sifs):
    push(alice, sifs["a"], "lab", "tool", "latest", "v1")
    anonymous = registry.client()
    response = anonymous.get("/api/container/lab/tool:v1")
    assert response.status_code == 200, response.text
    manifest = response.json()
    digest = digest_of(sifs["a"])
    assert manifest["name"] == "tool" and manifest["collection"] == "lab" and manifest["tag"] == "v1"
    assert manifest["version"] == digest
    assert manifest["Commit"] == digest.removeprefix("sha256.")
    assert manifest["frozen"] is False
    assert manifest["add_date"].endswith("Z")
    assert isinstance(manifest["id"], int)
    assert manifest["metadata"]["arch"] == "amd64"
    assert manifest["metadata"]["labels"] == LABELS
    assert manifest["metadata"]["size"] == len(sifs["a"])
    assert manifest["metadata"]["partitions"][0]["primary"] is True
    assert manifest["image"].startswith(f"{registry.url}/api/container/lab/tool@{digest}/download?")
    assert anonymous.get("/api/container/lab/tool").json()["tag"] == "latest"

    link = manifest["image"]
    with httpx.Client(timeout=30) as bare:
        head = bare.head(link)
        assert head.status_code == 200
        assert head.headers["Content-Length"] == str(len(sifs["a"]))
        assert bare.get(link).content == sifs["a"]
        part = bare.get(link, headers={"Range": "bytes=100-1099"})
        assert part.status_code == 206
        assert part.headers["Content-Range"] == f"bytes 100-1099/{len(sifs['a'])}"
        assert part.content == sifs["a"][100:1100]
    registry.flush()
    with registry.session() as session:
        assert session.query(Image).one().downloads == 1


def test_version_selects_by_digest(registry, alice, sifs):
    push(alice, sifs["a"], "lab", "tool", "v1")
    push(alice, sifs["b"], "lab", "tool", "latest")
    old, new = digest_of(sifs["a"]), digest_of(sifs["b"])
    client = registry.client()
    by_version = client.get(f"/api/container/lab/tool@{old}").json()
    assert (by_version["version"], by_version["tag"]) == (old, "v1")
    assert client.get(f"/api/container/lab/tool:v1@{old.removeprefix('sha256.')}").json()["version"] == old
    assert client.get("/api/container/lab/tool:latest").json()["version"] == new
    mismatch = client.get(f"/api/container/lab/tool:latest@{old}")
    assert mismatch.status_code == 404
    assert "not version" in mismatch.json()["detail"]
    assert client.get(f"/api/container/lab/tool@sha256.{'0' * 64}").status_code == 404
    assert client.get("/api/container/lab/tool@nonsense").status_code == 400
    assert client.get("/api/container/lab/nothing:latest").status_code == 404
    assert client.get("/api/container/lab/tool:nope").status_code == 404


def test_tampered_or_expired_download_links_are_refused(registry, alice, sifs):
    push(alice, sifs["a"])
    push(alice, sifs["b"], "lab", "other")
    link = registry.client().get("/api/container/lab/tool:latest").json()["image"]
    parts = urlsplit(link)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    base = f"{registry.url}{parts.path}"
    path = f"lab/tool@{digest_of(sifs['a'])}"
    cases = {
        "signature": {**query, "signature": "0" * 64},
        "non-ascii signature": {**query, "signature": "é" * 64},
        "expiry": {**query, "expires": str(int(query["expires"]) + 3600)},
        "user": {**query, "user": "alice"},
        "missing": {"expires": query["expires"]},
        "expired": dict(parse_qsl(sign(SECRET, "GET", path, -60))),
    }
    with httpx.Client(timeout=30) as bare:
        for case, params in cases.items():
            response = bare.get(f"{base}?{urlencode(params)}")
            assert response.status_code == 403, case
            assert "detail" in response.json()
        other = bare.get(link.replace("/lab/tool@", "/lab/other@"))
        assert other.status_code == 403
        assert bare.get(link).status_code == 200


# Private collections and HMAC signatures.


def test_private_image_needs_a_member_signature(registry, alice, alice_token, sifs):
    push(alice, sifs["a"], "secret", "tool")
    make_private(registry, "secret")
    bob_token = registry.add_user("bob")
    client = registry.client()

    anonymous = client.get("/api/container/secret/tool:latest")
    assert anonymous.status_code == 403
    assert "detail" in anonymous.json()
    assert client.get("/api/container/nosuch/tool:latest").status_code == 403

    member = client.get(
        "/api/container/secret/tool:latest", headers=signed("pull", "alice", alice_token, "secret", "tool")
    )
    assert member.status_code == 200, member.text
    link = member.json()["image"]
    assert parse_qs(urlsplit(link).query)["user"] == ["alice"]
    with httpx.Client(timeout=30) as bare:
        assert bare.head(link).status_code == 200
        assert bare.get(link).content == sifs["a"]

    stranger = client.get(
        "/api/container/secret/tool:latest", headers=signed("pull", "bob", bob_token, "secret", "tool")
    )
    assert stranger.status_code == 404
    missing = client.get(
        "/api/container/nosuch/tool:latest", headers=signed("pull", "bob", bob_token, "nosuch", "tool")
    )
    assert missing.status_code == 404
    assert stranger.json()["detail"] == missing.json()["detail"].replace("nosuch", "secret")

    with registry.session() as session:
        session.query(CollectionMember).delete()
        session.commit()
    with httpx.Client(timeout=30) as bare:
        assert bare.get(link).status_code == 404


def test_bad_signatures_are_refused(registry, alice, alice_token, sifs):
    push(alice, sifs["a"], "secret", "tool")
    make_private(registry, "secret")
    revoked = registry.add_user("alice", scope="write")
    expired = registry.add_user("alice", scope="write")
    with registry.session() as session:
        for token, field in ((revoked, "revoked_at"), (expired, "expires_at")):
            row = session.query(ApiToken).filter_by(key_id=token.split("_")[1]).one()
            setattr(row, field, utcnow() - dt.timedelta(seconds=1))
        session.commit()
    url = "/api/container/secret/tool:latest"
    good = signed("pull", "alice", alice_token, "secret", "tool")["Authorization"]
    cases = {
        "wrong signature": signed("pull", "alice", "sreg_not_the_token", "secret", "tool"),
        "unknown user": signed("pull", "mallory", alice_token, "secret", "tool"),
        "revoked token": signed("pull", "alice", revoked, "secret", "tool"),
        "expired token": signed("pull", "alice", expired, "secret", "tool"),
        "two hours old": signed("pull", "alice", alice_token, "secret", "tool", stamp=stamp_at(2)),
        "next hour": signed("pull", "alice", alice_token, "secret", "tool", stamp=stamp_at(-1)),
        "other kind": signed("delete", "alice", alice_token, "secret", "tool"),
        "other tag": signed("pull", "alice", alice_token, "secret", "tool", tag="v2"),
        "malformed": {"Authorization": good.replace("Signature=", "Sig=")},
        "bad base64": {"Authorization": good.replace(generate_credential("alice"), "!!!")},
    }
    client = registry.client()
    for case, headers in cases.items():
        response = client.get(url, headers=headers)
        assert response.status_code == 401, case
        assert response.json()["detail"], case
    previous_hour = signed("pull", "alice", alice_token, "secret", "tool", stamp=stamp_at(1))
    assert client.get(url, headers=previous_hour).status_code == 200
    lower_scheme = {"Authorization": good.replace("SREGISTRY-HMAC-SHA256", "sregistry-hmac-sha256")}
    assert client.get(url, headers=lower_scheme).status_code == 200


def test_accepted_timestamps_straddle_the_hour():
    at = dt.datetime(2026, 11, 26, 17, 0, 0)
    assert hmac_auth.accepted_timestamps(at) == {"20261126T17Z", "20261126T16Z"}
    credential = hmac_auth.parse(signed("pull", "alice", "t", "c", "n", stamp="20261126T16Z")["Authorization"])
    hmac_auth.check_fresh(credential, "pull", at)
    with pytest.raises(Unauthorized):
        hmac_auth.check_fresh(credential, "pull", at + dt.timedelta(hours=1))
    with pytest.raises(Unauthorized):
        hmac_auth.check_fresh(credential, "push", at)


# Listings and searches.


def test_listings_and_searches_show_only_visible_images(registry, alice, sifs):
    push(alice, sifs["a"], "lab", "tool", "latest", "v1")
    bob = registry.client(registry.add_user("bob"))
    push(bob, sifs["b"], "hidden", "tool", "latest")
    make_private(registry, "hidden")
    registry.client(registry.add_user("carol")).post("/api/v1/collections", json={"name": "empty"})
    client = registry.client()

    listing = client.get("/api/collections/").json()
    assert listing["next"] is None and listing["previous"] is None
    assert [c["name"] for c in listing["results"]] == ["empty", "lab"]
    assert listing["count"] == 2
    lab = listing["results"][1]
    assert [c["uri"] for c in lab["containers"]] == ["lab/tool:latest", "lab/tool:v1"]
    assert lab["containers"][0]["detail"] == f"{registry.url}/api/container/lab/tool:latest"
    assert listing["results"][0]["containers"] == []
    assert [c["name"] for c in bob.get("/api/collections/").json()["results"]] == ["empty", "hidden", "lab"]

    assert [c["uri"] for c in client.get("/api/collection/lab").json()["containers"]] == [
        "lab/tool:latest",
        "lab/tool:v1",
    ]
    for name, status in (("hidden", 404), ("nosuch", 404), ("Bad Name!", 400)):
        response = client.get(f"/api/collection/{name}")
        assert response.status_code == status, name
        assert "detail" in response.json()
    assert bob.get("/api/collection/hidden").status_code == 200

    found = client.get("/api/container/search/name/tool").json()
    assert [(c["collection"], c["name"], c["tag"]) for c in found] == [("lab", "tool", "latest"), ("lab", "tool", "v1")]
    assert found[0]["version"] == digest_of(sifs["a"])
    assert [c["tag"] for c in client.get("/api/container/search/name/to/tag/v1").json()] == ["v1"]
    assert client.get("/api/container/search/collection/hidden/name/tool").json() == []
    assert len(client.get("/api/container/search/collection/lab/name/tool/tag/latest").json()) == 1
    assert len(bob.get("/api/container/search/collection/hidden/name/tool").json()) == 1
    assert client.get("/api/container/search/name/%25").json() == []

    labels = client.get("/api/labels/search").json()
    assert {(entry["key"], tuple(entry["containers"])) for entry in labels} == {
        (key, ("lab/tool:latest", "lab/tool:v1")) for key in LABELS
    }
    assert client.get("/api/labels/search/MAINT/key/ada/value").json() == [
        {"key": "maintainer", "value": LABELS["maintainer"], "containers": ["lab/tool:latest", "lab/tool:v1"]}
    ]
    assert client.get("/api/labels/search/nothing/value").json() == []

    identity = client.get("/api/registry/identity").json()
    assert identity == {"name": "Test Registry", "id": "test-registry", "url": registry.url}


# Deletes.


def test_signed_delete_needs_ownership(registry, alice, alice_token, sifs):
    push(alice, sifs["a"], "lab", "tool", "latest", "v1")
    push(alice, sifs["b"], "lab", "tool", "old")
    push(alice, sifs["b"], "secret", "tool", "latest")
    make_private(registry, "secret")
    bob_token = registry.add_user("bob")
    client = registry.client()

    def delete(path: str, user: str, token: str, collection: str, tag: str) -> httpx.Response:
        return client.delete(path, headers=signed("delete", user, token, collection, "tool", tag))

    assert client.delete("/api/container/lab/tool:latest").status_code == 401
    stranger = delete("/api/container/lab/tool:latest", "bob", bob_token, "lab", "latest")
    assert stranger.status_code == 403
    assert "detail" in stranger.json()
    assert delete("/api/container/secret/tool:latest", "bob", bob_token, "secret", "latest").status_code == 404
    assert delete("/api/container/lab/tool:latest", "alice", alice_token, "lab", "v1").status_code == 401

    owner = delete("/api/container/lab/tool:latest", "alice", alice_token, "lab", "latest")
    assert owner.status_code == 204
    assert client.get("/api/container/lab/tool:latest").status_code == 404
    assert client.get("/api/container/lab/tool:v1").json()["version"] == digest_of(sifs["a"])

    assert delete("/api/container/lab/tool:v1", "alice", alice_token, "lab", "v1").status_code == 204
    with registry.session() as session:
        assert [i.digest for i in session.query(Image).join(Image.container).filter_by(name="tool")] == [
            digest_of(sifs["b"]),
            digest_of(sifs["b"]),
        ]
        session.query(Tag).filter_by(name="old").one().frozen = True
        session.commit()
    frozen = delete(f"/api/container/lab/tool@{digest_of(sifs['b'])}", "alice", alice_token, "lab", "latest")
    assert frozen.status_code == 409
    assert "frozen" in frozen.json()["detail"]
    assert client.get("/api/container/lab/tool:old").status_code == 200


# Pushes: the authorisation step and the streamed multipart upload.


def upload(
    client: httpx.Client, token: str, data: bytes, collection: str = "lab", name: str = "tool", tag: str = "latest"
) -> httpx.Response:
    headers = signed("upload", "alice", token, collection, name, tag)
    fields = {"SREGISTRY_EVENT": headers["Authorization"], "name": name, "collection": collection, "tag": tag}
    encoder = MultipartEncoder(fields={**fields, "file1": (f"{name}:{tag}.sif", data, "text/plain")})
    return client.post(
        "/upload", content=encoder.to_string(), headers={**headers, "Content-Type": encoder.content_type}
    )


def test_push_then_streamed_upload(registry, alice_token, sifs):
    client = registry.client()
    fields = {"collection": "lab", "name": "tool", "tag": "latest"}
    step = client.post(
        "/api/upload/chunked_upload", json=fields, headers=signed("push", "alice", alice_token, "lab", "tool")
    )
    assert step.status_code == 200, step.text
    assert step.json() == {"cid": "lab"}
    with registry.session() as session:
        assert session.query(Collection).count() == 0

    big = sifs["big"]
    assert len(big) > 2 * registry.context.max_json_body
    response = upload(client, alice_token, big)
    assert response.status_code == 200, response.text
    assert response.json() == {"message": "Upload Complete"}
    manifest = client.get("/api/container/lab/tool:latest").json()
    assert manifest["version"] == digest_of(big)
    assert manifest["metadata"]["arch"] == "amd64"
    with httpx.Client(timeout=30) as bare:
        assert bare.get(manifest["image"]).content == big


def test_push_refusals(registry, alice, alice_token, sifs):
    push(alice, sifs["a"], "lab", "tool")
    bob_token = registry.add_user("bob")
    client = registry.client()
    fields = {"collection": "lab", "name": "tool", "tag": "latest"}
    cases = {
        "unsigned": ({}, 401),
        "stranger": (signed("push", "bob", bob_token, "lab", "tool"), 409),
        "wrong kind": (signed("upload", "alice", alice_token, "lab", "tool"), 401),
        "read token": (signed("push", "reader", registry.add_user("reader", scope="read"), "lab", "tool"), 403),
    }
    for case, (headers, status) in cases.items():
        response = client.post("/api/upload/chunked_upload", json=fields, headers=headers)
        assert response.status_code == status, case
        assert response.json()["detail"], case
    bad = client.post(
        "/api/upload/chunked_upload",
        json={**fields, "name": 5},
        headers=signed("push", "alice", alice_token, "lab", "5"),
    )
    assert bad.status_code == 400
    before = stored_blobs(registry)
    stranger_upload = upload(client, bob_token, sifs["b"])
    assert stranger_upload.status_code == 401
    headers = signed("upload", "bob", bob_token, "lab", "tool")
    encoder = MultipartEncoder(fields={"name": "tool", "collection": "lab", "tag": "latest", "file1": ("f", b"x", "a")})
    direct = client.post(
        "/upload", content=encoder.to_string(), headers={**headers, "Content-Type": encoder.content_type}
    )
    assert direct.status_code == 409 and direct.json() == {"detail": "collection name 'lab' is taken"}
    assert stored_blobs(registry) == before


def push_request(client: httpx.Client, token: str, user: str = "alice") -> httpx.Response:
    """Step 1 of a push of ``lab/tool:latest``, signed by ``user`` with ``token``."""
    headers = signed("push", user, token, "lab", "tool")
    return client.post("/api/upload/chunked_upload", json=PUSH_FIELDS, headers=headers)


@pytest.mark.parametrize("registry_settings", [{"terms_of_service": TERMS}])
def test_signed_pushes_wait_for_the_terms_of_service_like_bearer_pushes(registry, alice_token, sifs):
    data = sifs["b"]
    bearer = registry.client(alice_token)
    native = bearer.post(IMAGES.format(c="lab", n="tool"), params={"digest": digest_of(data)}, content=data)
    assert native.status_code == 403
    refusal = native.json()["message"]
    assert "terms of service" in refusal
    client = registry.client()
    refused = {
        "signed push request": push_request(client, alice_token),
        "bearer push request": bearer.post("/api/upload/chunked_upload", json=PUSH_FIELDS),
        "signed upload": upload(client, alice_token, data),
    }
    for case, response in refused.items():
        assert (response.status_code, response.json()) == (403, {"detail": refusal}), case
    assert stored_blobs(registry) == []

    with registry.session() as session:
        session.query(User).filter_by(name="alice").one().terms_accepted_at = utcnow()
        session.commit()
    assert push_request(client, alice_token).status_code == 200
    assert upload(client, alice_token, data).status_code == 200
    assert client.get("/api/container/lab/tool:latest").json()["version"] == digest_of(data)


def test_signed_requests_spend_their_tokens_budget(registry, alice, alice_token, sifs):
    push(alice, sifs["b"])
    before = stored_blobs(registry)
    limiter = Limiter(Limits(rate_limit=3, anonymous_rate_limit=2), clock=steady_clock())
    limiter.bind(registry.context.bookkeeping)
    registry.context.limiter = limiter
    client, bearer = registry.client(), registry.client(alice_token)
    manifest = "/api/container/lab/tool:latest"

    assert client.get(manifest, headers=signed("pull", "alice", alice_token, "lab", "tool")).status_code == 200
    assert push_request(client, alice_token).status_code == 200
    assert bearer.get("/api/v1/user").status_code == 200
    refused = {
        "signed manifest": client.get(manifest, headers=signed("pull", "alice", alice_token, "lab", "tool")),
        "signed push request": push_request(client, alice_token),
        "signed upload": upload(client, alice_token, sifs["a"]),
        "bearer": bearer.get("/api/v1/user"),
    }
    for case, response in refused.items():
        assert response.status_code == 429, case
        assert 1 <= int(response.headers["Retry-After"]) <= 60, case
        assert "more than 3 requests a minute with this token" in response.text, case
    assert stored_blobs(registry) == before
    assert [client.get("/api/registry/identity").status_code for _ in range(3)] == [200, 200, 429]


def raw_upload(client: httpx.Client, token: str, body, content_type: str, name: str = "tool") -> httpx.Response:
    headers = {**signed("upload", "alice", token, "lab", name), "Content-Type": content_type}
    return client.post("/upload", content=body, headers=headers)


def form(*parts: tuple[str, bytes], boundary: str = "XyZ", close: bool = True) -> bytes:
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"'.encode()
        + (b'; filename="f.sif"' if name == "file1" else b"")
        + b"\r\n\r\n"
        + value
        + b"\r\n"
        for name, value in parts
    )
    return body + (f"--{boundary}--\r\n".encode() if close else b"")


def test_malformed_uploads_are_400_and_store_nothing(registry, alice_token):
    client = registry.client()
    fields = [("name", b"tool"), ("collection", b"lab"), ("tag", b"latest")]
    data = os.urandom(200_000)
    multipart = "multipart/form-data; boundary=XyZ"
    cases = {
        "no boundary": (form(*fields, ("file1", data)), "multipart/form-data"),
        "not multipart": (form(*fields, ("file1", data)), "application/octet-stream"),
        "truncated": (form(*fields, ("file1", data), close=False)[:-1000], multipart),
        "missing file1": (form(*fields), multipart),
        "file1 first": (form(("file1", data), *fields), multipart),
        "huge field": (form(("name", b"x" * 65536), *fields[1:], ("file1", data)), multipart),
        "two files": (form(*fields, ("file1", data), ("file1", data)), multipart),
        "no disposition": (b"--XyZ\r\nContent-Type: text/plain\r\n\r\nx\r\n--XyZ--\r\n", multipart),
        "garbage": (os.urandom(20_000), multipart),
        "empty file": (form(*fields, ("file1", b"")), multipart),
    }
    for case, (body, content_type) in cases.items():
        response = raw_upload(client, alice_token, body, content_type)
        assert response.status_code == 400, (case, response.text)
        assert response.json()["detail"], case
    invalid = raw_upload(client, alice_token, form(("name", b"Bad!"), *fields[1:], ("file1", data)), multipart, "Bad!")
    assert invalid.status_code == 400
    assert "invalid container name" in invalid.json()["detail"]
    assert stored_blobs(registry) == []
    with registry.session() as session:
        assert session.query(Collection).count() == 0
    good = raw_upload(client, alice_token, form(*fields, ("file1", data)), multipart)
    assert good.status_code == 200, good.text
    assert client.get("/api/container/lab/tool:latest").json()["version"] == digest_of(data)


@pytest.mark.parametrize("registry_settings", [{"max_upload_size": 100_000}])
def test_uploads_over_the_size_limit_are_413(registry, alice_token):
    client = registry.client()
    body = form(("name", b"tool"), ("collection", b"lab"), ("tag", b"latest"), ("file1", os.urandom(150_000)))
    multipart = "multipart/form-data; boundary=XyZ"
    declared = raw_upload(client, alice_token, body, multipart)
    assert declared.status_code == 413
    streamed = raw_upload(client, alice_token, iter([body[:50_000], body[50_000:]]), multipart)
    assert streamed.status_code == 413
    assert "at most 100000 bytes" in streamed.json()["detail"]
    assert stored_blobs(registry) == []


# The streaming multipart parser, without a server.


class Recorder:
    def __init__(self) -> None:
        self.parts: list[tuple[Part, bytearray]] = []
        self.open = False

    def begin_part(self, part: Part) -> None:
        assert not self.open
        self.open = True
        self.parts.append((part, bytearray()))

    def part_data(self, data: bytes) -> None:
        assert self.open and data
        self.parts[-1][1].extend(data)

    def end_part(self) -> None:
        self.open = False

    def result(self) -> list[tuple[str, str | None, bytes]]:
        return [(p.name, p.filename, bytes(v)) for p, v in self.parts]


def parse_in_chunks(body: bytes, boundary: str, sizes) -> tuple[list, int]:
    """Parse ``body`` fed in chunks of the sizes ``sizes`` yields; also the most bytes ever held back."""
    recorder = Recorder()
    reader = MultipartReader(boundary, recorder)
    held = position = 0
    while position < len(body):
        size = next(sizes)
        reader.feed(body[position : position + size])
        position += size
        held = max(held, len(reader.buffer))
    reader.close()
    return recorder.result(), held


def tricky_payload() -> bytes:
    """File content full of near-boundaries, which must pass through untouched."""
    rng = random.Random(5)
    pieces = [b"\r\n--", b"\r\n--boundar", b"--boundary", b"\r\n-", b"\r", b"\n", b"\r\n\r\n"]
    payload = b"".join(rng.choice(pieces) + rng.randbytes(rng.randint(0, 40)) for _ in range(3000))
    while b"\r\n--boundary" in payload:
        payload = payload.replace(b"\r\n--boundary", b"\r\n--boundarx")
    assert payload.count(b"\r\n--boundar") > 100
    return payload


def test_parser_gives_the_same_parts_whatever_the_chunking():
    payload = tricky_payload()
    encoder = MultipartEncoder(
        fields={"SREGISTRY_EVENT": "sig", "name": "tool", "file1": ("tool:latest.sif", payload, "text/plain")},
        boundary="boundary",
    )
    body = encoder.to_string()
    expected = [("SREGISTRY_EVENT", None, b"sig"), ("name", None, b"tool"), ("file1", "tool:latest.sif", payload)]
    rng = random.Random(11)
    chunkings = {
        "whole": iter(lambda: len(body), None),
        "one byte": iter(lambda: 1, None),
        "random": iter(lambda: rng.randint(1, 5000), None),
    }
    for name, sizes in chunkings.items():
        parts, _ = parse_in_chunks(body, "boundary", sizes)
        assert parts == expected, name


def test_parser_holds_back_only_a_boundary_length():
    payload = os.urandom(4 << 20)
    boundary = "b" * 70
    body = form(("name", b"tool"), ("file1", payload), boundary=boundary)
    parts, held = parse_in_chunks(body, boundary, iter(lambda: 65536, None))
    assert parts[1][2] == payload
    assert held <= len(boundary) + 4 + 65536


def test_parser_accepts_preamble_padding_and_epilogue():
    body = b"preamble\r\n--XyZ  \t\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--XyZ--\r\nepilogue"
    parts, _ = parse_in_chunks(body, "XyZ", iter(lambda: 3, None))
    assert parts == [("a", None, b"1")]


@pytest.mark.parametrize(
    "body",
    [
        b"--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--XyZ",
        b"--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\n1",
        b"--XyZ\r\nContent-Disposition: form-data; name=a",
        b"--XyZ",
        b"",
    ],
)
def test_parser_refuses_truncated_bodies(body):
    reader = MultipartReader("XyZ", Recorder())
    reader.feed(body)
    with pytest.raises(InvalidInput):
        reader.close()


@pytest.mark.parametrize(
    "body",
    [
        b"x" * 10_000,
        b"--XyZ junk\r\n",
        b"--XyZ" + b" " * 100,
        b"--XyZ\r\nContent-Disposition: form-data\r\n\r\n",
        b"--XyZ\r\nContent-Disposition: attachment; name=a\r\n\r\n",
        b"--XyZ\r\nX-Long: " + b"y" * 10_000,
    ],
)
def test_parser_refuses_malformed_bodies(body):
    with pytest.raises(InvalidInput):
        MultipartReader("XyZ", Recorder()).feed(body)


@pytest.mark.parametrize(
    ("content_type", "boundary"),
    [
        ("multipart/form-data; boundary=abc", "abc"),
        ('Multipart/Form-Data; boundary="a b:c"', "a b:c"),
        ("multipart/form-data; charset=utf-8; boundary=---x", "---x"),
    ],
)
def test_boundary_of_accepts_valid_types(content_type, boundary):
    assert boundary_of(content_type) == boundary


@pytest.mark.parametrize(
    "content_type",
    [
        "",
        "multipart/form-data",
        "multipart/mixed; boundary=abc",
        "text/plain",
        "multipart/form-data; boundary=" + "a" * 71,
    ],
)
def test_boundary_of_refuses_others(content_type):
    with pytest.raises(InvalidInput):
        boundary_of(content_type)
