"""The pages issue 4 needs, driven like a browser: the tokens page, the invitation landing page, the home
page for anonymous and signed-in people, and the rules every page keeps (sessions only, never API
tokens; an XSRF value on every form; errors rendered as pages).
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re

import pytest
from sqlalchemy import select, update

from sregistry_jupyter.registry.access import Principal
from sregistry_jupyter.registry.auth.local import LocalAuthenticator
from sregistry_jupyter.registry.orm import ApiToken, Invitation, TeamMember, User
from sregistry_jupyter.registry.services import teams, users
from tests.registry.test_sign_in import add_person, browser, hidden_value, signed_in, xsrf_of


@pytest.fixture
def registry_settings() -> dict:
    return {"authenticator": LocalAuthenticator(), "terms_of_service": "Be kind."}


def shown_token(page: str) -> str:
    match = re.search(r'<pre class="secret" id="new-token">([^<]+)</pre>', page)
    assert match, "the new token is not on the page"
    return match.group(1)


def token_rows(registry, name: str) -> list[ApiToken]:
    with registry.session() as session:
        user = users.get_user(session, name)
        return users.list_tokens(session, user)


def test_the_tokens_page_creates_a_token_shown_once_lists_and_revokes_it(registry):
    add_person(registry, "alice")
    client = signed_in(registry, "alice")
    page = client.get("/tokens")
    assert page.status_code == 200
    assert "You have no tokens yet." in page.text
    assert f"apptainer remote add --no-login test-registry {registry.url}" in page.text
    assert "apptainer remote login test-registry" in page.text
    config = json.loads(html.unescape(re.search(r'<pre id="sregistry-json">([^<]+)</pre>', page.text).group(1)))
    assert config == {
        "SREGISTRY_CLIENT": "registry",
        "registry": {"base": registry.url, "username": "alice", "token": "<paste your token>"},
    }

    form = {"_xsrf": xsrf_of(client), "name": "ci <laptop>", "scope": "write", "expires_in_days": "30"}
    created = client.post("/tokens", data=form)
    assert created.status_code == 200, created.text
    token = shown_token(created.text)
    assert f"&quot;token&quot;: &quot;{token}&quot;" in created.text
    assert "<td>ci &lt;laptop&gt;</td>" in created.text
    [row] = token_rows(registry, "alice")
    assert (row.name, row.scope) == ("ci <laptop>", "write")
    assert dt.timedelta(days=29) < row.expires_at - row.created_at <= dt.timedelta(days=30)
    assert token not in client.get("/tokens").text

    bearer = registry.client(token)
    assert bearer.get("/api/v1/user").json()["name"] == "alice"
    assert bearer.post("/api/v1/collections", json={"name": "lab"}).status_code == 201
    assert bearer.get("/tokens", follow_redirects=False).headers["Location"].startswith("/login?next=")

    for bad, message in [
        ({"name": "x", "scope": "root"}, "invalid scope"),
        ({"name": "", "scope": "read"}, "a token name is 1-100 characters"),
        ({"name": "x", "scope": "read", "expires_in_days": "soon"}, "the expiry is a number of days"),
        ({"name": "x", "scope": "read", "expires_in_days": "-1"}, "expiry must be between"),
    ]:
        refused = client.post("/tokens", data={**bad, "_xsrf": xsrf_of(client)})
        assert refused.status_code == 400, bad
        assert message in html.unescape(refused.text)
    assert client.post("/tokens", data={"name": "forged", "scope": "admin", "_xsrf": "forged"}).status_code == 403
    assert len(token_rows(registry, "alice")) == 1

    listed = client.get("/tokens").text
    assert f'action="/tokens/{row.id}/revoke"' in listed
    assert "<td>active</td>" in listed
    assert client.post(f"/tokens/{row.id}/revoke", data={}).status_code == 403
    assert bearer.get("/api/v1/user").status_code == 200
    revoked = client.post(f"/tokens/{row.id}/revoke", data={"_xsrf": xsrf_of(client)})
    assert revoked.status_code == 303
    assert revoked.headers["Location"] == "/tokens"
    assert bearer.get("/api/v1/user").status_code == 401
    assert "revoked" in client.get("/tokens").text
    assert f'action="/tokens/{row.id}/revoke"' not in client.get("/tokens").text


def test_people_cannot_revoke_each_others_tokens_and_errors_are_pages(registry):
    add_person(registry, "alice")
    add_person(registry, "bob")
    bob_token = registry.add_user("bob", scope="read")
    [bob_row] = token_rows(registry, "bob")
    client = signed_in(registry, "alice")
    refused = client.post(f"/tokens/{bob_row.id}/revoke", data={"_xsrf": xsrf_of(client)})
    assert refused.status_code == 404
    assert refused.headers["Content-Type"].startswith("text/html")
    assert f"No token {bob_row.id}" in refused.text
    assert registry.client(bob_token).get("/api/v1/user").status_code == 200
    for huge_id in ("99999999999999999999", "9" * 5000):
        huge = client.post(f"/tokens/{huge_id}/revoke", data={"_xsrf": xsrf_of(client)})
        assert huge.status_code == 400
        assert huge.headers["Content-Type"].startswith("text/html")
    assert client.get(f"/tokens/{bob_row.id}/revoke").status_code == 405
    nul = client.post("/tokens", data={"_xsrf": xsrf_of(client), "name": "a\x00b", "scope": "read"})
    assert nul.status_code == 400
    assert "NUL" in nul.text


def test_the_home_page_shows_private_collections_only_to_those_who_may_see_them(registry):
    add_person(registry, "alice")
    add_person(registry, "bob")
    owner = registry.client(registry.add_user("alice"))
    for name, private in [("open-lab", False), ("secret-lab", True)]:
        assert owner.post("/api/v1/collections", json={"name": name, "private": private}).status_code == 201
    anonymous = browser(registry).get("/")
    assert anonymous.status_code == 200
    assert "open-lab" in anonymous.text
    assert "secret-lab" not in anonymous.text
    assert 'href="/login?next=%2F"' in anonymous.text
    assert "secret-lab" not in signed_in(registry, "bob").get("/").text
    mine = signed_in(registry, "alice").get("/").text
    assert "open-lab" in mine
    assert "secret-lab" in mine
    with_token_only = registry.client(registry.add_user("alice")).get("/").text
    assert "secret-lab" not in with_token_only


def invite(registry, team_name: str, owner: str, *, open_: bool = False) -> str:
    """A new invitation code into ``team_name`` (created, owned by ``owner``, if it does not exist)."""
    with registry.session() as session:
        user = session.scalar(select(User).where(User.name == owner))
        if teams.find_team(session, team_name) is None:
            teams.insert_team(session, team_name, user, description="People who <build> things", open_=open_)
        _, code = teams.create_invitation(session, Principal(user), team_name, days=7)
        session.commit()
    return code


def is_member(registry, team_name: str, name: str) -> bool:
    with registry.session() as session:
        team = teams.find_team(session, team_name)
        user = users.get_user(session, name)
        row = session.scalar(select(TeamMember).where(TeamMember.team_id == team.id, TeamMember.user_id == user.id))
        return row is not None


def test_the_invitation_page_joins_a_team_once_and_explains_refusals(registry):
    for name in ("olivia", "bob", "carol"):
        add_person(registry, name)
    code = invite(registry, "builders", "olivia")
    link = f"/invitations/{code}"

    anonymous = browser(registry).get(link)
    assert anonymous.status_code == 302
    assert anonymous.headers["Location"] == "/login?next=" + link.replace("/", "%2F")

    bob = signed_in(registry, "bob")
    landing = bob.get(link)
    assert landing.status_code == 200
    assert "<strong>builders</strong>" in landing.text
    assert "People who &lt;build&gt; things" in landing.text
    assert "Join builders" in landing.text
    assert bob.post(link, data={"_xsrf": "forged"}).status_code == 403
    assert not is_member(registry, "builders", "bob")
    joined = bob.post(link, data={"_xsrf": hidden_value(landing.text, "_xsrf")})
    assert joined.status_code == 200, joined.text
    assert "You are now a member of team <strong>builders</strong>" in joined.text
    assert is_member(registry, "builders", "bob")
    assert "already a member" in bob.get(f"/invitations/{invite(registry, 'builders', 'olivia')}").text

    carol = signed_in(registry, "carol")
    used = carol.get(link)
    assert used.status_code == 400
    assert "already used" in used.text
    assert carol.post(link, data={"_xsrf": xsrf_of(carol)}).status_code == 400
    assert not is_member(registry, "builders", "carol")

    expired = invite(registry, "builders", "olivia")
    with registry.session() as session:
        invitation_id = int(expired.split(".")[1])
        session.execute(
            update(Invitation).where(Invitation.id == invitation_id).values(expires_at=dt.datetime(2020, 1, 1))
        )
        session.commit()
    stale = carol.post(f"/invitations/{expired}", data={"_xsrf": xsrf_of(carol)})
    assert stale.status_code == 400
    assert "This invitation expired on 2020-01-01" in stale.text

    other = invite(registry, "painters", "olivia")
    team_id, rest = other.split(".", 1)
    wrong_team = f"{int(code.split('.')[0])}.{rest}"
    assert team_id != wrong_team.split(".")[0]
    for bad in (wrong_team, "not-a-code"):
        refused = carol.get(f"/invitations/{bad}")
        assert refused.status_code == 404
        assert "No such invitation" in refused.text
    assert not is_member(registry, "builders", "carol")
    assert not is_member(registry, "painters", "carol")
    assert carol.post(f"/invitations/{other}", data={"_xsrf": xsrf_of(carol)}).status_code == 200
    assert is_member(registry, "painters", "carol")
