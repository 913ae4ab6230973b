"""The staff pages in a browser: the audit trail filtered by user, collection and kind and paginated; the
users page making staff, disabling accounts and making robot accounts with tokens; and who may do what
(``access.decide_staff``), on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from sregistry_jupyter.registry.access import Identity, Principal, StaffAction, Via, decide_staff
from sregistry_jupyter.registry.orm import User
from tests.registry.test_sign_in import add_person
from tests.registry.test_transfer import IMAGES, push

ROOT = Identity(1, "root", is_admin=True)
SAM = Identity(2, "sam", is_staff=True)
ALICE = Identity(3, "alice")


def make(registry, name: str, **flags: bool) -> None:
    add_person(registry, name)
    with registry.session() as session:
        user = session.scalar(select(User).where(User.name == name))
        for flag, value in flags.items():
            setattr(user, flag, value)
        session.commit()


def user_row(registry, name: str) -> User:
    with registry.session() as session:
        return session.scalar(select(User).where(User.name == name))


@pytest.mark.parametrize(
    ("who", "action", "target", "allowed"),
    [
        (ROOT, StaffAction.AUDIT, None, True),
        (SAM, StaffAction.AUDIT, None, True),
        (ALICE, StaffAction.AUDIT, None, False),
        (SAM, StaffAction.DISABLE_USER, ALICE, True),
        (SAM, StaffAction.DISABLE_USER, ROOT, False),
        (SAM, StaffAction.DISABLE_USER, SAM, False),
        (ROOT, StaffAction.DISABLE_USER, ROOT, False),
        (ROOT, StaffAction.DISABLE_USER, Identity(4, "other-admin", is_admin=True), True),
        (SAM, StaffAction.GRANT_STAFF, ALICE, False),
        (ROOT, StaffAction.GRANT_STAFF, ALICE, True),
        (ROOT, StaffAction.GRANT_STAFF, ROOT, False),
        (SAM, StaffAction.CREATE_ROBOT, None, True),
        (ALICE, StaffAction.CREATE_ROBOT, None, False),
    ],
)
def test_who_may_do_staff_work(who, action, target, allowed):
    assert decide_staff(Principal(who, "admin", via=Via.SESSION), action, target) is allowed
    # A token short of the admin scope never does staff work, whoever holds it.
    assert decide_staff(Principal(who, "write", via=Via.TOKEN), action, target) is False


def test_the_audit_trail_filters_by_user_collection_and_kind_and_pages(registry, fresh_tab):
    make(registry, "root", is_admin=True)
    make(registry, "alice")
    alice = registry.client(registry.add_user("alice"))
    bob = registry.client(registry.add_user("bob"))
    assert alice.post("/api/v1/collections", json={"name": "lab"}).status_code == 201
    assert bob.post("/api/v1/collections", json={"name": "other"}).status_code == 201
    assert push(alice, b"lab bytes").status_code == 201
    assert push(bob, b"other bytes", collection="other").status_code == 201
    for _ in range(55):
        assert bob.get(IMAGES.format(c="lab", n="tool") + "/latest/file").status_code == 200
    registry.flush()

    root = fresh_tab()
    root.sign_in("root")
    root.page.get_by_role("banner").get_by_role("link", name="Staff").click()
    root.page.get_by_role("link", name="Audit trail").click()
    root.page.wait_for_url("**/staff/audit")
    assert root.text_of(".pagination .current") == "1"
    root.check("staff-audit")
    root.page.get_by_role("link", name="Next").click()
    root.page.wait_for_load_state("networkidle")
    assert root.text_of(".pagination .current") == "2"

    root.goto("/staff/audit")
    root.page.get_by_label("User").fill("alice")
    root.page.get_by_role("button", name="Filter").click()
    root.page.wait_for_load_state("networkidle")
    users = root.page.locator(".listing.audit tbody td:nth-child(3)").all_inner_texts()
    assert users and set(users) == {"alice"}
    actions = root.page.locator(".listing.audit .action").all_inner_texts()
    assert "push" in actions and "collection.create" in actions and "pull" not in actions

    root.goto("/staff/audit?kind=pull&collection=lab")
    assert root.text_of(".count") == "55 events"
    assert set(root.page.locator(".listing.audit .action").all_inner_texts()) == {"pull"}
    root.goto("/staff/audit?kind=push&collection=other")
    assert root.page.locator(".listing.audit tbody tr").count() == 1
    assert set(root.page.locator(".listing.audit tbody td:nth-child(3)").all_inner_texts()) == {"bob"}

    root.goto("/staff/audit?kind=nonsense", status=400)
    assert "an event kind is one of" in root.text_of(".message.error").lower()

    nosy = fresh_tab()
    nosy.sign_in("alice")
    assert nosy.page.get_by_role("link", name="Staff").count() == 0
    nosy.goto("/staff/audit", status=403)
    assert "for the registry's staff" in nosy.text_of(".message.error")
    nosy.check("error-403")


def test_the_users_page_makes_staff_disables_and_makes_robots(registry, fresh_tab):
    make(registry, "root", is_admin=True)
    make(registry, "sam", is_staff=True)
    make(registry, "alice")
    make(registry, "bob")
    bob_token = registry.add_user("bob")
    assert registry.client(bob_token).get("/api/v1/user").status_code == 200

    root = fresh_tab()
    root.sign_in("root")
    root.goto("/staff/users")
    root.check("staff-users")
    root.submit("Make staff alice")
    assert "alice is now staff." in root.text_of(".message.success")
    assert user_row(registry, "alice").is_staff
    assert root.page.get_by_role("button", name="Disable root").count() == 0  # nobody locks themselves out

    sam = fresh_tab()
    sam.sign_in("sam")
    sam.goto("/staff/users")
    assert sam.page.get_by_role("button", name="Make staff bob").count() == 0  # only administrators do
    assert sam.page.get_by_role("button", name="Disable root").count() == 0
    bob = fresh_tab()
    bob.sign_in("bob")
    sam.submit("Disable bob")
    assert user_row(registry, "bob").disabled_at is not None
    assert registry.client(bob_token).get("/api/v1/user").status_code == 401
    bob.goto("/teams")
    assert "/login" in bob.page.url  # the session ended with the account
    sam.submit("Enable bob")
    assert user_row(registry, "bob").disabled_at is None
    assert registry.client(bob_token).get("/api/v1/user").status_code == 200

    # A form posted by hand for what the page does not offer is refused by the same rule.
    xsrf = sam.page.locator('meta[name="xsrf-token"]').get_attribute("content")
    refused = sam.page.request.post(f"{registry.url}/staff/users/root/disabled", form={"_xsrf": xsrf, "disabled": "1"})
    assert refused.status == 403
    assert user_row(registry, "root").disabled_at is None

    sam.page.get_by_label("Name", exact=True).fill("ci-bot")
    sam.submit("Create robot")
    assert "Robot account ci-bot created" in sam.text_of(".message.success")
    assert user_row(registry, "ci-bot").is_robot
    sam.page.get_by_label("Scope of the new token for ci-bot").select_option("read")
    sam.submit("New token for ci-bot")
    token = sam.text_of("#robot-token")
    answer = registry.client(token).get("/api/v1/user")
    assert answer.status_code == 200 and answer.json()["name"] == "ci-bot"
    sam.check()

    sam.goto("/staff/users?q=bo")
    names = sam.page.locator(".listing.users tbody td:first-child").all_inner_texts()
    assert names == ["bob", "ci-bot"]

    root.goto("/staff/audit?kind=admin")
    actions = set(root.page.locator(".listing.audit .action").all_inner_texts())
    assert {"staff.grant-staff", "staff.disable-user", "staff.enable-user", "staff.create-robot"} <= actions
