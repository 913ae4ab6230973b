"""Uploading through the page: a real SIF, hashed in the browser and sent over tus to /api/v1/uploads,
appears with what its SIF says; a connection cut midway resumes by itself, and an upload left in a closed
tab resumes from the registry's offset when the same file is chosen again."""

from __future__ import annotations

import hashlib

from playwright.sync_api import Route

from tests.web.conftest import DEFFILE, Site, Tab

CHUNK = 8 << 20


def choose(tab: Tab, path, collection: str, container: str, tags: str) -> None:
    page = tab.page
    page.get_by_label("SIF file").set_input_files(str(path))
    page.get_by_label("Collection", exact=True).fill(collection)
    page.get_by_label("Container name", exact=True).fill(container)
    page.get_by_label("Tags").fill(tags)
    page.get_by_role("button", name="Upload", exact=True).click()


def test_an_upload_through_the_page_appears_with_its_sif_details(tab: Tab, site: Site, tmp_path):
    page = tab.page
    image = site.sif("uploaded", seed=21, size=3 << 20, deffile=DEFFILE, labels={"purpose": "upload test"})
    digest = "sha256." + hashlib.sha256(image.read_bytes()).hexdigest()
    tab.sign_in("alice")
    page.get_by_role("banner").get_by_role("link", name="+ Upload").click()
    page.wait_for_url(f"{site.url}/collections/-/upload")
    choose(tab, image, "web-uploads", "analysis", "v1, latest")
    status = page.get_by_role("status").filter(has_text="Uploaded")
    status.wait_for(timeout=60_000)
    assert digest in status.text_content()
    assert page.locator("#upload-bar").evaluate("bar => bar.value === bar.max")
    tab.screenshot("upload", tmp_path)
    status.get_by_role("link", name="Open web-uploads/analysis").click()
    page.wait_for_url(f"{site.url}/collections/web-uploads/analysis")
    assert sorted(page.locator("table.tags tbody .name").all_text_contents()) == ["latest", "v1"]
    article = page.locator("article.image")
    assert article.locator(".digest").first.text_content() == digest
    article.get_by_text("SIF details").click()
    assert "apk add --no-cache samtools" in article.locator("pre.deffile").text_content()
    assert article.locator("dl.labels").get_by_text("upload test").is_visible()
    assert page.evaluate("Object.keys(localStorage).length") == 0, "a finished upload is still remembered"


def test_a_cut_upload_resumes_by_itself_and_a_closed_tab_resumes_from_the_registrys_offset(
    tab: Tab, site: Site, tmp_path
):
    image = site.sif("resumed", seed=22, size=20 << 20)
    data = image.read_bytes()
    assert len(data) > 2 * CHUNK
    digest = "sha256." + hashlib.sha256(data).hexdigest()
    tab.expected_failures.append("/api/v1/uploads/")
    tab.sign_in("alice")
    patches: list[int] = []

    def cut_the_second_patch(route: Route) -> None:
        request = route.request
        if request.method != "PATCH":
            route.continue_()
            return
        patches.append(int(request.headers["upload-offset"]))
        if len(patches) == 2:
            route.abort("connectionreset")
        else:
            route.continue_()

    page = tab.page
    page.route("**/api/v1/uploads/*", cut_the_second_patch)
    tab.go("/collections/-/upload")
    choose(tab, image, "web-uploads", "resumed", "v1")
    page.get_by_role("status").filter(has_text="Uploaded").wait_for(timeout=120_000)
    assert patches[:3] == [0, CHUNK, CHUNK], f"the cut chunk was not sent again from its offset: {patches}"
    assert patches[-1] == 2 * CHUNK

    # A second upload whose chunks stop arriving after the first, left in a tab that is then closed.
    other = site.sif("closed-tab", seed=23, size=20 << 20)
    stalled: list[int] = []

    def stall_after_the_first(route: Route) -> None:
        if route.request.method == "PATCH":
            stalled.append(int(route.request.headers["upload-offset"]))
            if len(stalled) > 1:
                route.abort("connectionreset")
                return
        route.continue_()

    first = tab.context.new_page()
    first.route("**/api/v1/uploads/*", stall_after_the_first)
    first.goto(f"{site.url}/collections/-/upload")
    first.get_by_label("SIF file").set_input_files(str(other))
    first.get_by_label("Collection", exact=True).fill("web-uploads")
    first.get_by_label("Container name", exact=True).fill("closed-tab")
    first.get_by_role("button", name="Upload", exact=True).click()
    first.get_by_role("status").filter(has_text="trying again").wait_for(timeout=60_000)
    first.close()

    resumed: list[int] = []
    page.unroute("**/api/v1/uploads/*")
    page.route(
        "**/api/v1/uploads/*",
        lambda route: (
            resumed.append(int(route.request.headers["upload-offset"])) if route.request.method == "PATCH" else None,
            route.continue_(),
        ),
    )
    tab.go("/collections/-/upload")
    choose(tab, other, "web-uploads", "closed-tab", "latest")
    page.get_by_role("status").filter(has_text="Resuming an earlier upload").or_(
        page.get_by_role("status").filter(has_text="Uploaded")
    ).first.wait_for(timeout=60_000)
    page.get_by_role("status").filter(has_text="Uploaded").wait_for(timeout=120_000)
    assert resumed and resumed[0] == CHUNK, f"the upload started again instead of resuming: {resumed}"
    tab.screenshot("upload-resumed", tmp_path)
    answer = site.api("alice").get("/api/v1/collections/web-uploads/containers/closed-tab/images/latest").json()
    assert answer["digest"] == "sha256." + hashlib.sha256(other.read_bytes()).hexdigest()
    resumed_image = site.api("alice").get("/api/v1/collections/web-uploads/containers/resumed/images/v1").json()
    assert resumed_image["digest"] == digest
