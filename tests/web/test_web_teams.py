"""The teams pages in a browser: create a team, invite someone with a single-use link (refused the second
time), join an open team and leave it, and owners managing members; on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from sregistry_jupyter.registry.access import Policy
from sregistry_jupyter.registry.auth.local import LocalAuthenticator
from sregistry_jupyter.registry.orm import Team, TeamMember, User
from tests.registry.test_sign_in import add_person

HOSTILE = '<img src=x onerror="document.title=1">'


@pytest.fixture
def registry_settings() -> dict:
    return {"authenticator": LocalAuthenticator(), "policy": Policy(users_create_teams=True)}


def members_of(registry, team: str) -> dict[str, str]:
    with registry.session() as session:
        rows = session.execute(
            select(User.name, TeamMember.role)
            .join(TeamMember, TeamMember.user_id == User.id)
            .join(Team, Team.id == TeamMember.team_id)
            .where(Team.name == team)
        )
        return dict(rows.all())


def test_an_invitation_link_lets_one_person_in_once(registry, fresh_tab):
    for name in ("alice", "bob", "carol"):
        add_person(registry, name)
    alice = fresh_tab()
    alice.sign_in("alice")
    alice.page.get_by_role("navigation", name="Main").get_by_role("link", name="Teams").click()
    alice.page.wait_for_url("**/teams")
    alice.check("teams-empty")
    alice.page.get_by_label("Name", exact=True).fill("lab")
    alice.page.get_by_label("Description").fill(HOSTILE)
    alice.submit("Create team")
    assert alice.page.url.endswith("/teams/lab?done=created")
    assert alice.text_of(".description") == HOSTILE  # shown as text, never run
    assert alice.page.title() != "1"

    alice.submit("Invite user")
    link = alice.text_of("#invitation-link")
    assert link.startswith(f"{registry.url}/invitations/")
    alice.check("team-owner")

    bob = fresh_tab()
    bob.sign_in("bob")
    bob.page.goto(link)
    assert "invited to join the team lab" in bob.text_of("main")
    bob.check("invitation")
    bob.submit("Join lab")
    assert "You are now a member of team lab" in bob.text_of("main")
    assert members_of(registry, "lab") == {"alice": "owner", "bob": "member"}

    carol = fresh_tab()
    carol.sign_in("carol")
    carol.goto(link.removeprefix(registry.url), status=400)
    assert "already used" in carol.text_of("main")
    carol.check()
    assert members_of(registry, "lab") == {"alice": "owner", "bob": "member"}

    # The pending invitation is gone from the owner's page once used.
    alice.goto("/teams/lab")
    assert "No invitation is waiting to be used." in alice.text_of("main")


def test_people_join_an_open_team_leave_it_and_owners_manage_members(registry, fresh_tab):
    for name in ("alice", "bob", "carol"):
        add_person(registry, name)
    alice = fresh_tab()
    alice.sign_in("alice")
    alice.goto("/teams")
    alice.page.get_by_label("Name", exact=True).fill("open-lab")
    alice.page.get_by_label("Open: anyone signed in may join").check()
    alice.submit("Create team")

    bob = fresh_tab()
    bob.sign_in("bob")
    bob.goto("/teams")
    bob.page.get_by_role("main").get_by_role("link", name="open-lab").click()
    bob.page.wait_for_url("**/teams/open-lab")
    assert bob.page.get_by_role("button", name="Invite user").count() == 0  # members do not manage
    bob.submit("Join team")
    assert "You joined the team." in bob.text_of("main")
    assert members_of(registry, "open-lab") == {"alice": "owner", "bob": "member"}
    bob.check("team-member")
    bob.submit("Leave team")
    assert bob.page.url.endswith("/teams")
    assert members_of(registry, "open-lab") == {"alice": "owner"}

    # The last owner cannot leave: the team would have nobody to manage it.
    alice.goto("/teams/open-lab")
    alice.submit("Leave team", status=409)
    assert "must keep an owner" in alice.text_of(".message.error")

    alice.page.get_by_label("User name").fill("carol")
    alice.submit("Add member")
    assert members_of(registry, "open-lab") == {"alice": "owner", "carol": "member"}
    alice.page.get_by_label("User name").fill("nobody-here")
    alice.submit("Add member", status=404)
    assert "No user 'nobody-here'" in alice.text_of(".message.error")
    alice.submit("Make owner carol")
    assert members_of(registry, "open-lab") == {"alice": "owner", "carol": "owner"}
    alice.submit("Remove carol")
    assert members_of(registry, "open-lab") == {"alice": "owner"}

    # Settings: invite-only now, so a newcomer is told to ask for an invitation.
    alice.page.get_by_label("Open: anyone signed in may join").uncheck()
    alice.submit("Save")
    carol = fresh_tab()
    carol.sign_in("carol")
    carol.goto("/teams/open-lab")
    assert carol.page.get_by_role("button", name="Join team").count() == 0
    assert "ask one of its owners for an invitation link" in carol.text_of("main")
    carol.check()

    alice.page.get_by_label("to confirm").fill("open-lab")
    alice.submit("Delete team")
    assert alice.page.url.endswith("/teams")
    assert members_of(registry, "open-lab") == {}
    alice.assert_clean()


def test_creating_teams_follows_the_registry_policy(registry, fresh_tab):
    add_person(registry, "alice")
    alice = fresh_tab()
    alice.sign_in("alice")
    alice.goto("/teams")
    alice.page.get_by_label("Name", exact=True).fill("Bad Name")
    # The browser's own pattern check is skipped, to see what the registry says.
    alice.page.locator("#team-name").evaluate("field => field.removeAttribute('pattern')")
    alice.submit("Create team", status=400)
    assert "team name" in alice.text_of(".message.error")
    alice.check()
