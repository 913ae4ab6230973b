"""Browsing as a person would, by links and buttons: home → collections → a collection → a container →
copy the usage; starring from the list; the badge; profiles; private collections for those who may see
them only; everything users typed shown escaped; and the layout at a phone's width."""

from __future__ import annotations

import re

import httpx

from tests.web.conftest import Site, Tab


def test_browse_from_home_to_a_container_and_copy_its_pull_command(tab: Tab, site: Site, tmp_path):
    page = tab.page
    tab.go("/")
    assert page.get_by_role("heading", name="Test Registry", level=1).is_visible()
    assert page.locator(".pushes").get_by_role("link", name="biocontainers/bwa").is_visible()
    tab.screenshot("home", tmp_path)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Collections").click()
    listing = page.locator("table.collections")
    assert listing.get_by_role("link", name="biocontainers").is_visible()
    assert listing.get_by_role("link", name="lab-private").count() == 0, "a private collection shown to a stranger"
    # What alice typed is shown as text, not markup.
    assert listing.get_by_text("Bioinformatics tools <em>for all</em>").is_visible()
    tab.screenshot("collections", tmp_path)

    listing.get_by_role("link", name="biocontainers").click()
    page.wait_for_url(f"{site.url}/collections/biocontainers")
    rows = page.locator("table.containers tbody tr")
    assert rows.count() == 2
    samtools = rows.filter(has_text="samtools")
    assert samtools.get_by_text("1.19").is_visible() and samtools.get_by_text("latest").is_visible()
    assert page.get_by_role("img", name="badge of biocontainers").is_visible()
    apptainer = page.locator("#usage-apptainer").text_content()
    assert f"apptainer remote add --no-login test-registry {site.url}" in apptainer
    assert re.search(r"apptainer pull library://alice/biocontainers/\w+:\S+", apptainer)
    sregistry = page.locator("#usage-sregistry").text_content()
    assert '"SREGISTRY_CLIENT": "registry"' in sregistry and f'"base": "{site.url}"' in sregistry
    assert "sregistry-jupyter pull biocontainers/" in page.locator("#usage-jupyter").text_content()
    assert "RegistryClient" in page.locator("#usage-jupyter").text_content()
    page.get_by_role("button", name="Copy the Apptainer or SingularityCE commands").click()
    assert page.evaluate("navigator.clipboard.readText()") == apptainer.strip()
    tab.screenshot("collection", tmp_path)

    rows.filter(has_text="samtools").get_by_role("link", name="samtools").click()
    page.wait_for_url(f"{site.url}/collections/biocontainers/samtools")
    tags = page.locator("table.tags tbody tr")
    assert tags.count() == 2
    tags.filter(has_text="1.19").get_by_role("button", name="Copy pull command for 1.19").click()
    assert (
        page.evaluate("navigator.clipboard.readText()") == "apptainer pull library://alice/biocontainers/samtools:1.19"
    )
    signed = page.locator("article.image").filter(has=page.locator(".pill.signed"))
    assert signed.count() == 1
    signed.get_by_text("SIF details").click()
    deffile = signed.locator("pre.deffile")
    assert "apk add --no-cache samtools <b>bold</b>" in deffile.text_content()
    assert deffile.locator("b").count() == 0, "the definition file was rendered as markup"
    assert signed.locator("dl.labels").get_by_text("org.label-schema.name").is_visible()
    assert signed.locator("table.partitions tbody tr").count() >= 1
    # Strangers see no owner actions.
    assert page.get_by_role("button", name="Delete image").count() == 0
    tab.screenshot("container", tmp_path)


def test_the_collection_list_searches_sorts_pages_and_stars(tab: Tab, site: Site, tmp_path):
    page = tab.page
    tab.sign_in("bob")
    tab.go("/collections?q=fastqc")
    names = page.locator("table.collections a.name").all_text_contents()
    assert names == ["erin-tools"], names
    tab.go("/collections?sort=-size")
    sizes = page.locator("table.collections a.name").all_text_contents()
    assert sizes[0] == "biocontainers", sizes
    page.get_by_role("button", name="Star erin-tools").click()
    page.get_by_role("button", name="Unstar erin-tools").wait_for()
    stars = site.api("bob").get("/api/v1/user/stars").json()["items"]
    assert [item["name"] for item in stars] == ["erin-tools"]
    page.get_by_role("button", name="Unstar erin-tools").click()
    page.get_by_role("button", name="Star erin-tools").wait_for()
    assert site.api("bob").get("/api/v1/user/stars").json()["items"] == []
    for number in range(25):
        site.api("dave").post("/api/v1/collections", json={"name": f"page-test-{number:02d}"})
    tab.go("/collections")
    pager = page.get_by_role("navigation", name="Pages")
    assert pager.get_by_text("27 collections").is_visible()
    pager.get_by_role("link", name="Next").click()
    page.wait_for_url(re.compile(r".*page=2$"))
    assert page.locator("table.collections tbody tr").count() == 7
    tab.go("/users/dave")
    assert page.get_by_role("navigation", name="Pages").get_by_text("25 collections").is_visible()
    assert page.locator("table.listing tbody tr").count() == 20


def test_private_collections_show_only_to_those_who_may_see_them(tab: Tab, site: Site):
    page = tab.page
    assert httpx.get(f"{site.url}/collections/lab-private").status_code == 404
    badge = httpx.get(f"{site.url}/collections/lab-private/-/badge.svg")
    assert badge.status_code == 404
    tab.expected_failures.append("/collections/lab-private")
    tab.go("/collections/lab-private")
    assert page.get_by_role("heading", name="Not found").is_visible()
    tab.sign_in("alice")
    tab.go("/collections")
    assert page.locator("table.collections").get_by_role("link", name="lab-private").is_visible()
    tab.go("/collections/lab-private")
    assert page.locator(".pill.private").first.is_visible()


def test_the_badge_is_an_svg_served_by_the_registry(site: Site):
    badge = httpx.get(f"{site.url}/collections/biocontainers/-/badge.svg")
    assert badge.status_code == 200
    assert badge.headers["Content-Type"] == "image/svg+xml"
    assert badge.text.startswith("<svg") and "biocontainers · 3 images" in badge.text


def test_profiles_show_only_what_the_viewer_may_see(tab: Tab, site: Site, tmp_path):
    page = tab.page
    tab.go("/users/alice")
    owned = page.locator("section", has=page.get_by_role("heading", name="Collections"))
    assert owned.get_by_role("link", name="biocontainers").is_visible()
    assert page.get_by_role("link", name="lab-private").count() == 0
    assert page.get_by_role("heading", name="Teams").count() == 0, "teams shown to an anonymous visitor"
    tab.sign_in("alice")
    page.get_by_role("link", name="alice", exact=True).click()
    page.wait_for_url(f"{site.url}/users/alice")
    mine = page.locator("section", has=page.get_by_role("heading", name="Your collections"))
    assert mine.get_by_role("link", name="lab-private").is_visible()
    assert (
        page.locator("section", has=page.get_by_role("heading", name="Teams"))
        .get_by_role("link", name="imaging")
        .is_visible()
    )
    assert page.get_by_role("link", name="API tokens").is_visible()
    tab.screenshot("profile", tmp_path)
    tab.expected_failures.append("/users/nobody")
    tab.go("/users/nobody")
    assert page.get_by_role("heading", name="Not found").is_visible()


def test_pages_work_at_a_phones_width(phone: Tab, site: Site, tmp_path):
    page = phone.page
    for path in ("/", "/collections", "/collections/biocontainers", "/collections/biocontainers/samtools"):
        phone.go(path)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} is wider than the phone by {overflow}px"
    phone.go("/collections/biocontainers")
    phone.screenshot("collection-phone", tmp_path)


def test_the_keyboard_reaches_the_search_and_the_skip_link(tab: Tab, site: Site):
    page = tab.page
    tab.go("/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to the content"
    page.get_by_label("Search collections and containers", exact=True).first.focus()
    page.keyboard.type("bwa")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/collections\?q=bwa"))
    assert page.locator("table.collections a.name").all_text_contents() == ["biocontainers"]
