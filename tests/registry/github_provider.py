"""A small GitHub-shaped OAuth provider for the sign-in tests, served from a thread on a free loopback port.

It answers like github.com where the registry depends on it: the authorization page sends the browser
straight back with a code (or with ``error=access_denied`` when told to refuse), the token endpoint
answers HTTP 200 with an ``error`` field when it refuses and form-encoded unless JSON is asked for, and
the API serves ``/user`` and ``/user/orgs``. Unlike GitHub it insists on PKCE: a code is only redeemed
with the verifier whose S256 hash was the challenge, so the tests prove the registry sends the right one.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from tornado import web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets


@dataclass
class Grant:
    """An issued code: who it signs in, for which client and redirect, and the PKCE challenge it needs."""

    user: dict[str, Any]
    orgs: list[str]
    client_id: str
    redirect_uri: str
    challenge: str
    used: bool = False


@dataclass
class GitHubProvider:
    client_id: str = "gh-client"
    client_secret: str = "gh-secret"
    url: str = ""
    user: dict[str, Any] = field(default_factory=lambda: {"id": 123, "login": "Octo-Cat"})
    orgs: list[str] = field(default_factory=list)
    deny: bool = False
    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    grants: dict[str, Grant] = field(default_factory=dict)
    access_tokens: dict[str, Grant] = field(default_factory=dict)
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None

    def reset(self) -> None:
        """Back to one signed-in user who consents, with nothing recorded."""
        self.user = {"id": 123, "login": "Octo-Cat"}
        self.orgs = []
        self.deny = False
        for log in (self.authorize_requests, self.token_requests, self.refusals):
            log.clear()

    def app(self) -> web.Application:
        return web.Application(
            [
                (r"/login/oauth/authorize", AuthorizeHandler, {"provider": self}),
                (r"/login/oauth/access_token", TokenHandler, {"provider": self}),
                (r"/user", UserHandler, {"provider": self}),
                (r"/user/orgs", OrgsHandler, {"provider": self}),
            ]
        )

    def start(self) -> str:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            server = HTTPServer(self.app())
            sockets = bind_sockets(0, "127.0.0.1")
            server.add_sockets(sockets)
            self._loop = loop
            self.url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
            ready.set()
            loop.run_forever()
            server.stop()
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self.url

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


class ProviderHandler(web.RequestHandler):
    def initialize(self, provider: GitHubProvider) -> None:
        self.provider = provider

    def arguments(self) -> dict[str, str]:
        return {name: self.get_argument(name) for name in self.request.arguments}

    def granted(self) -> Grant | None:
        scheme, _, token = self.request.headers.get("Authorization", "").partition(" ")
        return self.provider.access_tokens.get(token) if scheme.lower() in ("bearer", "token") else None

    def write_json(self, value: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(value))


class AuthorizeHandler(ProviderHandler):
    def get(self) -> None:
        args = self.arguments()
        self.provider.authorize_requests.append(args)
        if args.get("client_id") != self.provider.client_id or args.get("code_challenge_method") != "S256":
            raise web.HTTPError(400, "unknown client or no S256 code challenge")
        back = {"state": args.get("state", "")}
        if self.provider.deny:
            back.update(error="access_denied", error_description="The user has denied your application access.")
        else:
            code = secrets.token_hex(10)
            self.provider.grants[code] = Grant(
                dict(self.provider.user),
                list(self.provider.orgs),
                args["client_id"],
                args.get("redirect_uri", ""),
                args.get("code_challenge", ""),
            )
            back["code"] = code
        self.redirect(args.get("redirect_uri", "") + "?" + urlencode(back))


class TokenHandler(ProviderHandler):
    def post(self) -> None:
        args = self.arguments()
        self.provider.token_requests.append(args)
        refusal = self.refusal(args)
        if refusal:
            self.provider.refusals.append(refusal)
            self.answer({"error": refusal, "error_description": f"refused: {refusal}"})
            return
        grant = self.provider.grants[args["code"]]
        grant.used = True
        token = "gho_" + secrets.token_hex(16)
        self.provider.access_tokens[token] = grant
        self.answer({"access_token": token, "token_type": "bearer", "scope": "read:org"})

    def refusal(self, args: dict[str, str]) -> str | None:
        if args.get("client_id") != self.provider.client_id or args.get("client_secret") != self.provider.client_secret:
            return "incorrect_client_credentials"
        grant = self.provider.grants.get(args.get("code", ""))
        if grant is None or grant.used or grant.client_id != args["client_id"]:
            return "bad_verification_code"
        if grant.redirect_uri != args.get("redirect_uri"):
            return "redirect_uri_mismatch"
        if not grant.challenge or s256(args.get("code_verifier", "")) != grant.challenge:
            return "invalid_grant"
        return None

    def answer(self, value: dict[str, str]) -> None:
        """HTTP 200 whatever the outcome, JSON only if asked for: GitHub's token endpoint does the same."""
        if "application/json" in self.request.headers.get("Accept", ""):
            self.write_json(value)
        else:
            self.set_header("Content-Type", "application/x-www-form-urlencoded")
            self.finish(urlencode(value))


class UserHandler(ProviderHandler):
    def get(self) -> None:
        grant = self.granted()
        if grant is None:
            self.write_json({"message": "Bad credentials"}, 401)
            return
        self.write_json(grant.user)


class OrgsHandler(ProviderHandler):
    def get(self) -> None:
        grant = self.granted()
        if grant is None:
            self.write_json({"message": "Bad credentials"}, 401)
            return
        self.write_json([{"login": name, "id": n} for n, name in enumerate(grant.orgs, 1)])
