"""Local accounts: the sign-in form, sessions on the API, XSRF, sign-out, passwords (argon2, set by the
person or by staff from the command line while the server runs) and the terms of service, on SQLite
and PostgreSQL, through a real HTTP client that keeps cookies like a browser.
"""

from __future__ import annotations

import datetime as dt
import html
import re
import subprocess

import httpx
import pytest
from sqlalchemy import select

from sregistry_jupyter.registry.auth import passwords
from sregistry_jupyter.registry.auth.local import LocalAuthenticator
from sregistry_jupyter.registry.handlers.pages.base import safe_next
from sregistry_jupyter.registry.orm import Event, User, utcnow
from sregistry_jupyter.registry.services import users
from tests.conftest import CLI

PASSWORD = "correct horse battery"
TERMS = "Be kind to the registry.\n\nPush only what you may share."
SESSION_COOKIE = "sregistry-session"


@pytest.fixture
def registry_settings() -> dict:
    return {"authenticator": LocalAuthenticator(), "terms_of_service": TERMS}


def add_person(
    registry, name: str, password: str | None = PASSWORD, *, robot: bool = False, accepted: bool = True
) -> None:
    """A user with a password; ``accepted`` says whether they have accepted the terms already."""
    with registry.session() as session:
        user = users.create_user(session, name, robot=robot)
        user.password_hash = passwords.hash_password(password) if password else None
        user.terms_accepted_at = utcnow() if accepted else None
        session.commit()


def hidden_value(page: str, name: str) -> str:
    match = re.search(rf'<input type="hidden" name="{name}" value="([^"]*)"', page)
    assert match, f"no hidden field {name!r} in the page"
    return html.unescape(match.group(1))


def browser(registry) -> httpx.Client:
    """A client that keeps cookies and does not follow redirects, so each hop can be checked."""
    return registry.client(follow_redirects=False)


def sign_in(client: httpx.Client, name: str, password: str = PASSWORD, next_url: str = "/") -> httpx.Response:
    page = client.get("/login", params={"next": next_url})
    assert page.status_code == 200, page.text
    form = {"_xsrf": hidden_value(page.text, "_xsrf"), "username": name, "password": password}
    return client.post("/login", data={**form, "next": hidden_value(page.text, "next")})


def signed_in(registry, name: str) -> httpx.Client:
    client = browser(registry)
    response = sign_in(client, name)
    assert response.status_code == 303, response.text
    return client


def xsrf_of(client: httpx.Client) -> str:
    """The XSRF value the registry's pages give this browser (bound to its session)."""
    page = client.get("/terms")
    match = re.search(r'<meta name="xsrf-token" content="([^"]+)"', page.text)
    assert match, page.text
    return match.group(1)


def user_row(registry, name: str) -> User:
    with registry.session() as session:
        return session.scalar(select(User).where(User.name == name))


def test_sign_in_refuses_wrong_passwords_unknown_users_and_robots(registry):
    add_person(registry, "alice")
    add_person(registry, "robbie", robot=True)
    client = browser(registry)
    page = client.get("/login")
    assert page.headers["Content-Type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert hidden_value(page.text, "_xsrf") == xsrf_of(client)
    for name, password in [("alice", "wrong password"), ("nobody", PASSWORD), ("robbie", PASSWORD), ("alice", "")]:
        refused = sign_in(client, name, password)
        assert refused.status_code == 403, (name, refused.text)
        assert "Wrong user name or password." in refused.text
        assert SESSION_COOKIE not in client.cookies
    hostile = sign_in(client, '<script>alert("x")</script>', "whatever it is")
    assert hostile.status_code == 403
    assert "<script>alert" not in hostile.text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in hostile.text
    assert client.get("/api/v1/user").status_code == 401

    stored = user_row(registry, "alice").password_hash
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    with registry.session() as session:
        failures = session.scalars(select(Event.detail).where(Event.action == "user.sign-in-failed")).all()
    assert {"user": "nobody"} in failures


def test_a_session_works_on_the_api_with_an_xsrf_header_and_ends_at_sign_out(registry):
    add_person(registry, "alice")
    client = browser(registry)
    signed = sign_in(client, "alice", next_url="/tokens")
    assert signed.status_code == 303
    assert signed.headers["Location"] == "/tokens"
    cookie = next(c for c in signed.headers.get_list("Set-Cookie") if c.startswith(SESSION_COOKIE))
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie

    me = client.get("/api/v1/user")
    assert me.status_code == 200, me.text
    assert me.json()["name"] == "alice"
    refused = client.post("/api/v1/collections", json={"name": "lab"})
    assert refused.status_code == 403
    for sent in ("forged", "forgé".encode("latin-1")):
        forged = client.post("/api/v1/collections", json={"name": "lab"}, headers={"X-XSRF-Token": sent})
        assert forged.status_code == 403
    created = client.post("/api/v1/collections", json={"name": "lab"}, headers={"X-XSRF-Token": xsrf_of(client)})
    assert created.status_code == 201, created.text
    assert created.json()["owners"] == ["alice"]
    home = client.get("/")
    assert ">alice<" in home.text
    assert 'action="/logout"' in home.text

    confirm = client.get("/logout")
    assert confirm.status_code == 200
    assert hidden_value(confirm.text, "_xsrf") == xsrf_of(client)
    assert client.post("/logout", data={}).status_code == 403
    assert client.post("/logout", data={"_xsrf": "forged"}).status_code == 403
    assert client.get("/api/v1/user").status_code == 200
    out = client.post("/logout", data={"_xsrf": xsrf_of(client)})
    assert out.status_code == 303
    assert out.headers["Location"] == "/"
    assert client.get("/api/v1/user").status_code == 401
    assert ">Sign in<" in client.get("/").text


def test_sign_out_everywhere_ends_sessions_in_other_browsers(registry):
    add_person(registry, "alice")
    laptop, desktop = signed_in(registry, "alice"), signed_in(registry, "alice")
    stolen = laptop.cookies[SESSION_COOKIE]
    assert laptop.post("/logout", data={"_xsrf": xsrf_of(laptop), "everywhere": "1"}).status_code == 303
    assert desktop.get("/api/v1/user").status_code == 401
    replayed = registry.client(cookies={SESSION_COOKIE: stolen})
    assert replayed.get("/api/v1/user").status_code == 401


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        ("/tokens?x=1#top", "/tokens?x=1#top"),
        ("//evil.example/path", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("/\t/evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("", "/"),
        (None, "/"),
    ],
)
def test_safe_next_keeps_only_local_paths(wanted, expected):
    assert safe_next(wanted) == expected


def test_sign_in_redirects_only_to_local_paths(registry):
    add_person(registry, "alice")
    client = browser(registry)
    page = client.get("/login", params={"next": "//evil.example/steal"})
    assert hidden_value(page.text, "_xsrf") == xsrf_of(client)
    assert hidden_value(page.text, "next") == "/"
    for wanted, expected in [("https://evil.example/", "/"), ("/\\evil.example", "/"), ("/tokens", "/tokens")]:
        form = {"_xsrf": xsrf_of(client), "username": "alice", "password": PASSWORD, "next": wanted}
        response = client.post("/login", data=form)
        assert response.status_code == 303
        assert response.headers["Location"] == expected


def test_forms_without_the_xsrf_value_change_nothing(registry):
    add_person(registry, "alice")
    client = browser(registry)
    client.get("/login")
    for sent in [None, "", "forged", "forgé"]:
        form = {"username": "alice", "password": PASSWORD} | ({"_xsrf": sent} if sent is not None else {})
        refused = client.post("/login", data=form)
        assert refused.status_code == 403
        assert "did not come from this registry" in refused.text
        assert SESSION_COOKIE not in client.cookies
    stranger = registry.client(follow_redirects=False)
    no_cookie = stranger.post("/login", data={"_xsrf": xsrf_of(client), "username": "alice", "password": PASSWORD})
    assert no_cookie.status_code == 403

    client = signed_in(registry, "alice")
    before = user_row(registry, "alice").password_hash
    change = {"current": PASSWORD, "new": "another long password", "repeat": "another long password"}
    assert client.post("/account/password", data={**change, "_xsrf": "forged"}).status_code == 403
    assert client.post("/account/password", data=change).status_code == 403
    assert user_row(registry, "alice").password_hash == before


def test_people_change_their_own_password(registry):
    add_person(registry, "alice")
    client, other_browser = signed_in(registry, "alice"), signed_in(registry, "alice")
    page = client.get("/account/password")
    assert page.status_code == 200
    xsrf = hidden_value(page.text, "_xsrf")
    new = "a brand new passphrase"
    attempts = [
        ({"current": "not my password", "new": new, "repeat": new}, 403, "The current password is wrong."),
        ({"current": PASSWORD, "new": "short", "repeat": "short"}, 400, "at least 10 characters"),
        ({"current": PASSWORD, "new": new, "repeat": new + "!"}, 400, "not the same"),
    ]
    for form, status, message in attempts:
        response = client.post("/account/password", data={**form, "_xsrf": xsrf})
        assert response.status_code == status, response.text
        assert message in response.text
    assert passwords.verify_password(user_row(registry, "alice").password_hash, PASSWORD)

    changed = client.post("/account/password", data={"current": PASSWORD, "new": new, "repeat": new, "_xsrf": xsrf})
    assert changed.status_code == 200
    assert "Your password has been changed" in changed.text
    assert client.get("/api/v1/user").status_code == 200
    assert other_browser.get("/api/v1/user").status_code == 401
    assert sign_in(browser(registry), "alice", PASSWORD).status_code == 403
    assert sign_in(browser(registry), "alice", new).status_code == 303
    assert browser(registry).get("/account/password").headers["Location"].startswith("/login?next=")


def set_password(registry, name: str, typed: str) -> subprocess.CompletedProcess:
    """``admin set-password`` against the running registry's database, the password on standard input."""
    args = [*CLI, "admin", "set-password", name, "--data-dir", str(registry.data_dir), "--db-url", registry.db_url]
    return subprocess.run(args, input=typed, capture_output=True, text=True, timeout=120)


def test_staff_set_a_password_from_the_command_line_while_the_server_runs(registry):
    add_person(registry, "carol", password=None)
    add_person(registry, "robbie", password=None, robot=True)
    typed = "a password typed on stdin"
    assert sign_in(browser(registry), "carol", typed).status_code == 403

    done = set_password(registry, "carol", typed + "\n")
    assert done.returncode == 0, done.stderr
    assert "carol" in done.stdout
    assert sign_in(browser(registry), "carol", typed).status_code == 303
    assert sign_in(browser(registry), "carol", typed + "\n").status_code == 403

    robot = set_password(registry, "robbie", typed + "\n")
    assert robot.returncode == 1
    assert "robot" in robot.stderr
    assert user_row(registry, "robbie").password_hash is None
    assert passwords.verify_password(user_row(registry, "carol").password_hash, typed)


def test_a_new_person_accepts_the_terms_before_anything_works(registry):
    add_person(registry, "dana", accepted=False)
    token = registry.add_user("dana", scope="write")
    with_token = registry.client(token)
    refused = with_token.get("/api/v1/user")
    assert refused.status_code == 403
    assert "terms of service" in refused.json()["message"]

    client = browser(registry)
    signed = sign_in(client, "dana", next_url="/tokens")
    assert signed.status_code == 303
    assert signed.headers["Location"] == "/terms?next=%2Ftokens"
    sent_back = client.get("/tokens")
    assert sent_back.status_code == 302
    assert sent_back.headers["Location"] == "/terms?next=%2Ftokens"
    assert client.get("/api/v1/user").status_code == 403

    terms = client.get("/terms", params={"next": "/tokens"})
    assert terms.status_code == 200
    assert "<p>Be kind to the registry.</p>" in terms.text
    assert "<p>Push only what you may share.</p>" in terms.text
    assert hidden_value(terms.text, "next") == "/tokens"
    assert client.post("/terms", data={"next": "/tokens", "_xsrf": "forged"}).status_code == 403
    assert user_row(registry, "dana").terms_accepted_at is None

    accepted = client.post("/terms", data={"next": "/tokens", "_xsrf": xsrf_of(client)})
    assert accepted.status_code == 303
    assert accepted.headers["Location"] == "/tokens"
    when = user_row(registry, "dana").terms_accepted_at
    assert when is not None
    assert abs(utcnow() - when) < dt.timedelta(minutes=1)
    assert client.get("/tokens").status_code == 200
    assert client.get("/api/v1/user").status_code == 200
    assert with_token.get("/api/v1/user").status_code == 200
    assert f"You accepted these terms on {when:%Y-%m-%d}" in client.get("/terms").text
    anonymous = browser(registry).get("/terms")
    assert "Push only what you may share." in anonymous.text
    assert "I agree" not in anonymous.text
