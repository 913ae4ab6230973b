"""A collection's settings, walked by its owner: description and privacy, giving a team-mate a role (and
being refused for a stranger, with the reason), the badge snippets, frozen tags and share links, and the
danger zone. What the pages change is checked through the native API, as the people concerned see it."""

from __future__ import annotations

import httpx

from tests.web.conftest import Site, Tab


def pull(site: Site, person: str | None, ref: str) -> int:
    collection_container, tag = ref.split(":")
    collection, container = collection_container.split("/")
    path = f"/api/v1/collections/{collection}/containers/{container}/images/{tag}/file"
    return site.api(person).get(path).status_code


def test_an_owner_adds_a_team_mate_as_contributor_and_a_stranger_is_refused(tab: Tab, site: Site, tmp_path):
    page = tab.page
    site.push("alice", "shared-lab/analysis:v1", site.sif("analysis", seed=11))
    assert site.api("alice").patch("/api/v1/collections/shared-lab", json={"private": True}).status_code == 200
    assert pull(site, "bob", "shared-lab/analysis:v1") == 404
    tab.sign_in("alice")
    tab.go("/collections/shared-lab")
    page.get_by_role("link", name="Settings").click()
    page.get_by_role("navigation", name="Settings").get_by_role("link", name="Contributors").click()
    assert "bob" in page.locator("#picker-hint").text_content(), "the team-mate is not offered"
    assert "dave" not in page.locator("#picker-hint").text_content()
    assert page.locator("#team-mates option[value=bob]").count() == 1
    page.get_by_label("User name").fill("dave")
    tab.expected_failures.append("/collections/shared-lab/-/settings")
    page.get_by_role("button", name="Add").click()
    refusal = page.get_by_role("alert")
    assert "share one of your teams" in refusal.text_content() and "dave" in refusal.text_content()
    tab.screenshot("settings-refused", tmp_path)
    page.get_by_label("User name").fill("bob")
    page.get_by_role("button", name="Add").click()
    assert page.get_by_role("status").text_content().strip() == "bob is now a contributor."
    assert page.locator("table.members").get_by_role("link", name="bob").is_visible()
    tab.screenshot("settings-members", tmp_path)
    site.registry.flush()
    assert pull(site, "bob", "shared-lab/analysis:v1") == 200
    assert pull(site, "dave", "shared-lab/analysis:v1") == 404


def test_description_privacy_and_badge(tab: Tab, site: Site, tmp_path):
    page = tab.page
    site.push("alice", "badge-lab/tool:v1", site.sif("tool", seed=12))
    tab.sign_in("alice")
    tab.go("/collections/badge-lab/-/settings")
    page.get_by_label("Description").fill("Tools & <scripts>")
    page.get_by_label("Private").check()
    page.get_by_role("button", name="Save").click()
    page.get_by_role("status").wait_for()
    answer = site.api("alice").get("/api/v1/collections/badge-lab").json()
    assert answer["description"] == "Tools & <scripts>" and answer["private"] is True
    assert httpx.get(f"{site.url}/collections/badge-lab/-/badge.svg").status_code == 404
    tab.screenshot("settings-general", tmp_path)
    page.get_by_role("navigation", name="Settings").get_by_role("link", name="Badge").click()
    markdown = page.locator("#badge-markdown").text_content()
    assert markdown == f"[![badge-lab]({site.url}/collections/badge-lab/-/badge.svg)]({site.url}/collections/badge-lab)"
    assert page.get_by_role("img", name="badge of badge-lab").evaluate("img => img.naturalWidth") > 0
    page.get_by_role("button", name="Copy the Markdown").click()
    assert page.evaluate("navigator.clipboard.readText()") == markdown
    tab.screenshot("settings-badge", tmp_path)


def test_owner_actions_on_a_container_and_the_sharing_tab(tab: Tab, site: Site, tmp_path):
    page = tab.page
    site.push("alice", "owned-lab/tool:v1", site.sif("owned", seed=13))
    tab.sign_in("alice")
    tab.go("/collections/owned-lab/tool")
    image = page.locator("article.image").first
    image.get_by_label("New tag").fill("stable")
    image.get_by_role("button", name="Add tag").click()
    assert page.get_by_role("status").text_content().strip() == "Tagged the image as stable."
    page.get_by_role("button", name="Freeze stable").click()
    assert page.locator("table.tags tr", has_text="stable").locator(".pill.frozen").is_visible()
    tags = {
        t["name"]: t["frozen"]
        for t in site.api("alice").get("/api/v1/collections/owned-lab/containers/tool/tags").json()["items"]
    }
    assert tags == {"v1": False, "stable": True}
    page.get_by_role("button", name="Untag v1").click()
    assert page.get_by_role("status").text_content().strip() == "Removed the tag v1."
    image = page.locator("article.image").first
    image.get_by_label("Share link lasts (days)").fill("3")
    image.get_by_role("button", name="Make share link").click()
    link = page.locator("#share-url").text_content()
    assert link.startswith(f"{site.url}/shares/shr_")
    assert httpx.get(link).status_code == 200
    tab.screenshot("container-owner", tmp_path)
    tab.go("/collections/owned-lab/-/settings?tab=sharing")
    assert page.locator("ul.frozen-tags").get_by_text("stable").is_visible()
    assert page.locator("table.shares tbody tr").count() == 1
    tab.screenshot("settings-sharing", tmp_path)
    page.locator("table.shares").get_by_role("button", name="Revoke").click()
    assert page.get_by_role("status").text_content().strip() == "The share link no longer works."
    tab.expected_failures.append("/shares/")
    assert httpx.get(link).status_code == 404

    tab.go("/collections/owned-lab/tool")
    page.on("dialog", lambda dialog: dialog.accept())
    tab.expected_failures.append("/collections/owned-lab/tool")
    page.locator("article.image").first.get_by_role("button", name="Delete image").click()
    assert "frozen" in page.get_by_role("alert").text_content()
    page.get_by_role("button", name="Unfreeze stable").click()
    page.locator("article.image").first.get_by_role("button", name="Delete image").click()
    assert page.get_by_role("status").text_content().startswith("Deleted the image sha256.")
    assert page.get_by_text("This container has no images yet.").is_visible()
    assert site.api("alice").get("/api/v1/collections/owned-lab/containers/tool/images").json()["items"] == []


def test_the_danger_zone_lists_what_goes_and_deletes_after_the_name_is_typed(tab: Tab, site: Site, tmp_path):
    page = tab.page
    site.push("alice", "doomed-lab/tool:v1", site.sif("doomed", seed=14))
    site.push("alice", "doomed-lab/other:v2", site.sif("doomed-2", seed=15))
    tab.sign_in("alice")
    tab.go("/collections/doomed-lab/-/settings")
    page.get_by_role("navigation", name="Settings").get_by_role("link", name="Danger zone").click()
    inventory = page.locator("ul.inventory").text_content()
    assert "2 containers with 2 images" in inventory and "2 tags" in inventory
    delete = page.get_by_role("button", name="Delete this collection")
    assert delete.is_disabled()
    page.get_by_label("Type doomed-lab to confirm").fill("doomed")
    assert delete.is_disabled()
    page.get_by_label("Type doomed-lab to confirm").fill("doomed-lab")
    tab.screenshot("settings-danger", tmp_path)
    delete.click()
    page.wait_for_url(f"{site.url}/users/alice?deleted=doomed-lab")
    assert page.get_by_role("status").text_content().strip() == "The collection doomed-lab has been deleted."
    assert site.api("alice").get("/api/v1/collections/doomed-lab").status_code == 404


def test_settings_are_for_owners_only(tab: Tab, site: Site):
    page = tab.page
    tab.sign_in("bob")
    tab.expected_failures.append("/-/settings")
    tab.go("/collections/biocontainers/-/settings")
    assert page.get_by_role("heading", name="Not allowed").is_visible()
    tab.go("/collections/biocontainers")
    assert page.get_by_role("link", name="Settings").count() == 0
    assert page.get_by_role("link", name="Upload an image into biocontainers").count() == 0
