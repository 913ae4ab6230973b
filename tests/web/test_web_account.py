"""A newcomer's first visit: signing in on the login page, accepting the terms, the welcome page; and the
pages every person has (tokens, help), as a browser shows them."""

from __future__ import annotations

from sregistry_jupyter.registry.auth import passwords
from sregistry_jupyter.registry.services import users
from tests.web.conftest import PASSWORD, Site, Tab


def test_a_newcomer_signs_in_accepts_the_terms_and_is_welcomed(tab: Tab, site: Site, tmp_path):
    with site.registry.session() as session:
        user = users.create_user(session, "frank")
        user.password_hash = passwords.hash_password(PASSWORD)
        session.commit()
    page = tab.page
    tab.go("/")
    page.get_by_role("banner").get_by_role("link", name="Sign in").click()
    page.get_by_label("User name").fill("frank")
    page.get_by_label("Password").fill(PASSWORD)
    tab.screenshot("login", tmp_path)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{site.url}/terms?next=%2F")
    assert page.get_by_text("Be kind to the registry.").is_visible()
    page.get_by_role("button", name="I agree").click()
    page.wait_for_url(f"{site.url}/welcome")
    assert page.get_by_role("heading", name="Welcome to Test Registry, frank").is_visible()
    assert f"apptainer remote add --no-login test-registry {site.url}" in page.locator("#welcome-login").text_content()
    tab.screenshot("welcome", tmp_path)
    page.get_by_role("link", name="Continue").click()
    page.wait_for_url(f"{site.url}/collections")
    tab.go("/")
    assert page.get_by_role("heading", name="Welcome, frank").is_visible(), "the home page does not greet a newcomer"


def test_the_tokens_and_help_pages(tab: Tab, site: Site, tmp_path):
    page = tab.page
    tab.sign_in("erin")
    page.get_by_role("banner").get_by_role("link", name="Tokens").click()
    page.get_by_label("Name").fill("laptop")
    page.get_by_role("button", name="Create token").click()
    token = page.locator("#new-token").text_content()
    assert site.registry.client(token).get("/api/v1/user").json()["name"] == "erin"
    tab.screenshot("tokens", tmp_path)
    page.get_by_role("contentinfo").get_by_role("link", name="Using this registry").click()
    page.wait_for_url(f"{site.url}/help")
    assert '"username": "erin"' in page.locator("#help-sregistry").text_content()
    page.get_by_role("button", name="Copy the apptainer commands").click()
    assert page.evaluate("navigator.clipboard.readText()").startswith("apptainer remote add --no-login test-registry")
    tab.screenshot("help", tmp_path)
