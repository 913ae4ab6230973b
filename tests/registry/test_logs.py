"""The registry's log, read from the real ``sregistry-jupyter serve``: one line per request with no secret in
it, the registry's own events, JSON lines that parse, and ``--log-level`` deciding what appears."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from tornado import web
from tornado.httpclient import AsyncHTTPClient
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from sregistry_jupyter.registry import logs
from sregistry_jupyter.registry.logs import loggable_path
from tests.conftest import wait_for
from tests.registry.conftest import LoggedServer

pytestmark = pytest.mark.slow


def token_for(server: LoggedServer, name: str, scope: str = "write", *flags: str) -> str:
    server.admin("create-user", name, *flags)
    return server.admin("create-token", name, "--scope", scope).strip().splitlines()[-1]


def test_json_lines_log_every_request_without_its_secrets(serve):
    server = serve("--log-format", "json")
    token = token_for(server, "alice", "admin", "--admin")
    auth = {"Authorization": f"Bearer {token}"}
    image = os.urandom(30_000)
    digest = "sha256." + hashlib.sha256(image).hexdigest()
    pushed = httpx.post(
        f"{server.url}/api/v1/collections/lab/containers/tools/images",
        params={"digest": digest, "tag": "latest"},
        content=image,
        headers=auth,
    )
    assert pushed.status_code == 201, pushed.text
    redirect = httpx.get(
        f"{server.url}/v1/imagefile/lab/tools:latest?arch=amd64", headers={"Authorization": f"BEARER {token}"}
    )
    assert redirect.status_code == 303
    signed = redirect.headers["Location"]
    signature = parse_qs(urlsplit(signed).query)["signature"][0]
    assert httpx.get(signed).content == image
    forged = signed.replace(signature, "forged-signature-value")
    assert httpx.get(forged).status_code == 403
    share = httpx.post(
        f"{server.url}/api/v1/collections/lab/containers/tools/images/latest/shares", json={"days": 1}, headers=auth
    ).json()
    share_token = share["token"]
    assert httpx.get(share["url"]).content == image
    assert httpx.post(f"{server.url}/api/v1/teams", json={"name": "group"}, headers=auth).status_code == 201
    invitation = httpx.post(f"{server.url}/api/v1/teams/group/invitations", json={}, headers=auth).json()
    assert httpx.get(f"{server.url}{invitation['path']}").status_code == 302  # the page: sign in first
    assert httpx.get(f"{server.url}/api/v1/invitations/{invitation['code']}").status_code == 200
    assert httpx.get(f"{server.url}/version").status_code == 200
    assert wait_for(lambda: '"path": "/version"' in server.text())

    lines = server.json_lines()
    text = server.text()
    for secret in (token, signature, "forged-signature-value", share_token.split("_", 2)[2], invitation["code"]):
        assert secret not in text
    assert "Authorization" not in text and "BEARER" not in text
    for line in lines:
        assert {"time", "level", "logger", "message"} <= set(line), line
    requests = [line for line in lines if line["logger"] == "sregistry_jupyter.access"]
    for line in requests:
        assert set(line) == {"time", "level", "logger", "message", "method", "path", "status", "ms", "user", "remote"}
        assert line["remote"] == "127.0.0.1" and isinstance(line["ms"], float) and line["ms"] >= 0
    by_path = {(line["method"], urlsplit(line["path"]).path): line for line in requests}
    upload = by_path[("POST", "/api/v1/collections/lab/containers/tools/images")]
    assert (upload["status"], upload["user"]) == (201, "alice")
    assert upload["path"] == f"/api/v1/collections/lab/containers/tools/images?digest={digest}&tag=latest"
    assert by_path[("GET", "/v1/imagefile/lab/tools:latest")]["status"] == 303
    blob = [line for line in requests if line["path"].startswith("/v1/blobs/")]
    assert [line["status"] for line in blob] == [200, 403]
    assert all("signature=***" in line["path"] and "expires=" in line["path"] for line in blob)
    assert all(line["user"] is None for line in blob)
    assert [line["status"] for line in requests if "/invitations/***" in line["path"]] == [302, 200]
    [shared] = [line for line in requests if line["path"].startswith("/shares/")]
    assert shared["path"] == "/shares/" + "_".join(share_token.split("_")[:2]) + "_***"
    assert by_path[("GET", "/version")]["user"] is None
    assert (
        by_path[("GET", "/version")]["message"]
        == f"200 GET /version {by_path[('GET', '/version')]['ms']:.2f}ms - 127.0.0.1"
    )

    events = {line["event"]: line for line in lines if "event" in line}
    assert events["push"]["user"] == "alice" and "lab/tools:latest" in events["push"]["message"]
    assert {"share.create", "team.create", "team.invite"} <= set(events)  # tokens were made by another process
    messages = [line["message"] for line in lines if line["logger"] == "sregistry_jupyter"]
    assert any(message.startswith("creating the database schema") for message in messages)
    assert any(message.startswith("started sregistry-jupyter") for message in messages)
    refused = [line for line in lines if line["level"] == "INFO" and "-> 403" in line["message"]]
    assert refused and all("signature=***" in line["message"] for line in refused)

    server.stop()
    assert server.json_lines()[-1]["message"] == "stopped"


def test_text_lines_for_people_and_the_log_level_decides(serve):
    server = serve()
    token = token_for(server, "bob")
    assert httpx.get(f"{server.url}/api/v1/user", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert httpx.get(f"{server.url}/api/v1/collections/none").status_code == 404
    assert wait_for(lambda: "] 404 GET /api/v1/collections/none" in server.text())
    lines = server.text().splitlines()
    assert any(line.startswith("[I ") and "sregistry_jupyter] started sregistry-jupyter" in line for line in lines)
    [me] = [line for line in lines if "GET /api/v1/user " in line]
    assert me.startswith("[I ") and "sregistry_jupyter.access] 200 GET /api/v1/user " in me
    assert me.endswith(" bob 127.0.0.1")
    [missing] = [line for line in lines if "] 404 GET /api/v1/collections/none" in line]
    assert missing.endswith(" - 127.0.0.1")

    quiet = serve("--log-level", "WARN")
    assert httpx.get(f"{quiet.url}/version").status_code == 200
    quiet.stop()
    assert quiet.text() == ""

    chatty = serve("--Application.log_level=DEBUG")
    data = os.urandom(1000)
    pushed = httpx.post(
        f"{chatty.url}/api/v1/collections/lab/containers/tools/images",
        params={"digest": "sha256." + hashlib.sha256(data).hexdigest(), "tag": "latest"},
        content=data,
        headers={"Authorization": f"Bearer {token_for(chatty, 'carol')}"},
    )
    assert pushed.status_code == 201
    assert httpx.get(f"{chatty.url}/api/v1/collections/lab/containers/tools/images/latest/file").content == data
    chatty.stop()
    pulls = [line for line in chatty.text().splitlines() if "sregistry_jupyter] pull lab/tools sha256." in line]
    assert len(pulls) == 1 and pulls[0].startswith("[D "), pulls


@pytest.mark.parametrize(
    ("uri", "logged"),
    [
        ("/v1/blobs/sha256.ab?expires=99&signature=c2VjcmV0", "/v1/blobs/sha256.ab?expires=99&signature=***"),
        ("/oauth_callback?code=abc&state=xyz", "/oauth_callback?code=***&state=***"),
        (
            "/upload?X-Amz-Signature=1&X-Amz-Credential=2&part=3",
            "/upload?X-Amz-Signature=***&X-Amz-Credential=***&part=3",
        ),
        ("/shares/shr_abcdefghijkl_secretsecret", "/shares/shr_abcdefghijkl_***"),
        ("/shares/not-a-share-token", "/shares/***"),
        ("/invitations/1.2.secret", "/invitations/***"),
        ("/api/v1/invitations/1.2.secret", "/api/v1/invitations/***"),
        ("/api/v1/teams/lab/invitations/7", "/api/v1/teams/lab/invitations/7"),
        ("/api/v1/collections?q=tools&page=2", "/api/v1/collections?q=tools&page=2"),
    ],
)
def test_loggable_paths_mask_secrets_and_keep_the_rest(uri, logged):
    assert loggable_path(uri) == logged


class Broken(web.RequestHandler):
    """A handler with a bug, logging its exception the way the registry's handlers do."""

    def get(self) -> None:
        raise RuntimeError("a bug")

    def log_exception(self, typ, value, tb) -> None:  # type: ignore[no-untyped-def]
        logs.log_handler_exception(self, (typ, value, tb))


def test_a_bug_is_logged_with_its_traceback_and_without_the_secrets_of_its_path():
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger(logs.PACKAGE)
    logger.addHandler(handler)

    async def request() -> int:
        server = HTTPServer(web.Application([(r"/broken", Broken)]))
        sockets = bind_sockets(0, "127.0.0.1")
        server.add_sockets(sockets)
        try:
            url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}/broken?signature=s3cret&token=t0ken"
            response = await AsyncHTTPClient().fetch(url, raise_error=False)
            return response.code
        finally:
            server.stop()

    try:
        assert asyncio.run(request()) == 500
    finally:
        logger.removeHandler(handler)
    [record] = [r for r in records if r.levelno == logging.ERROR]
    assert record.getMessage() == "uncaught exception in GET /broken?signature=***&token=*** from 127.0.0.1"
    assert record.exc_info[0] is RuntimeError
    line = logs.JsonFormatter().format(record)
    assert "s3cret" not in line and "t0ken" not in line and "RuntimeError: a bug" in json.loads(line)["exception"]
