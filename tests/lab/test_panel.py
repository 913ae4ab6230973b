"""The registry panel in a real JupyterLab: browse, pull, push from the file browser, share, plots,
errors in the registry's words, keyboard use, and the dark theme. Every test also asserts that the
browser console stayed free of errors."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import httpx
from playwright.sync_api import expect

from tests.lab.conftest import LAB_TOKEN, LabPage

API = "/api/v1"
SLOW = 30_000


def sha256_digest(path: Path) -> str:
    return "sha256." + hashlib.sha256(path.read_bytes()).hexdigest()


def open_image(ui: LabPage, collection: str, container: str, tag: str) -> None:
    ui.open_panel()
    ui.panel.get_by_role("button", name=f"Open collection {collection}").click()
    ui.panel.get_by_role("button", name=f"Open container {container}").click()
    ui.panel.get_by_role("button", name=f"Show image {container}:{tag}").click()
    ui.panel.locator(".jp-SregistryDeffile").wait_for()


def test_panel_lists_collections_with_privacy_and_stars_and_searches(lab_page: LabPage, tmp_path: Path) -> None:
    ui = lab_page
    ui.open_panel()
    names = ui.panel.locator(".jp-SregistryList-name")
    expect(names).to_have_text(["biocontainers", "bob-tools", "lab-private"])
    private = ui.panel.get_by_role("button", name=re.compile(r"^Open collection lab-private \(private\)"))
    expect(private.locator(".jp-SregistryBadge.jp-mod-private")).to_have_text("private")
    expect(ui.panel.get_by_role("button", name=re.compile(r"^Open collection biocontainers, 1 stars"))).to_be_visible()
    expect(ui.panel.get_by_text("Signed in as")).to_contain_text("alice")
    ui.screenshot("panel-collections", tmp_path, sidebar_only=True)

    ui.panel.get_by_role("searchbox", name="Search collections").fill("bio")
    expect(names).to_have_text(["biocontainers"])
    ui.panel.get_by_role("searchbox", name="Search collections").fill("nothing-like-this")
    expect(ui.panel.locator(".jp-SregistryEmpty")).to_contain_text("No collection matches")
    assert ui.console_errors == []


def test_collection_container_and_image_details_match_the_registry(lab_page: LabPage, tmp_path: Path) -> None:
    ui = lab_page
    ui.open_panel()
    ui.panel.get_by_role("button", name="Open collection biocontainers").click()
    expect(ui.panel.locator(".jp-SregistryList-name")).to_have_text(["bwa", "samtools"])
    ui.panel.get_by_role("button", name="Open container samtools").click()
    expect(ui.panel.locator(".jp-SregistryTagRow .jp-SregistryTag")).to_have_text(["1.19", "latest"])
    ui.screenshot("panel-container", tmp_path, sidebar_only=True)

    ui.panel.get_by_role("button", name="Show image samtools:1.19").click()
    image = ui.lab.api().get(f"{API}/collections/biocontainers/containers/samtools/images/1.19").json()
    expect(ui.panel.locator(".jp-SregistryDigest")).to_have_text(image["digest"])
    assert image["digest"] == sha256_digest(ui.lab.seeded.images["biocontainers/samtools:1.19"])
    deffile = ui.panel.locator(".jp-SregistryDeffile")
    expect(deffile).to_contain_text("Bootstrap: docker")
    assert "mono" in deffile.evaluate("e => getComputedStyle(e).fontFamily").lower()
    expect(ui.panel.locator(".jp-SregistryBadge.jp-mod-signed")).to_contain_text("signed")
    expect(ui.panel.locator(".jp-SregistryFacts.jp-mod-labels")).to_contain_text("org.label-schema.name")
    expect(ui.panel.get_by_text("apptainer pull library://biocontainers/samtools:1.19")).to_be_visible()
    ui.screenshot("panel-image", tmp_path, sidebar_only=True)

    ui.panel.get_by_role("button", name="Copy the digest").click()
    expect(ui.page.locator(".Toastify").get_by_text("Digest copied.")).to_be_visible()
    ui.panel.get_by_role("navigation", name="Where you are").get_by_role("button", name="Collections").click()
    expect(ui.panel.locator(".jp-SregistryList-name").first).to_have_text("biocontainers")
    assert ui.console_errors == []


def test_pull_lands_in_the_file_browser_folder_byte_identical(lab_page: LabPage) -> None:
    ui = lab_page
    (ui.lab.workspace / "pulls").mkdir(exist_ok=True)
    ui.open_folder("pulls")
    expect(ui.page.locator(".jp-BreadCrumbs")).to_contain_text("pulls")
    open_image(ui, "biocontainers", "bwa", "0.7.17")
    ui.panel.get_by_role("button", name="Pull", exact=True).click()

    done = ui.panel.locator(".jp-SregistryTransfer.jp-mod-done", has_text="Pull biocontainers/bwa:0.7.17")
    expect(done).to_have_count(1, timeout=SLOW)
    expect(ui.page.locator(".Toastify")).to_contain_text("Pulled biocontainers/bwa:0.7.17", timeout=SLOW)
    pulled = [p for p in (ui.lab.workspace / "pulls").iterdir() if p.suffix == ".sif"]
    assert len(pulled) == 1
    assert pulled[0].read_bytes() == ui.lab.seeded.images["biocontainers/bwa:0.7.17"].read_bytes()
    ui.open_file_browser()
    expect(ui.page.locator(".jp-DirListing-item", has_text=pulled[0].name)).to_be_visible()
    assert ui.console_errors == []


def test_the_pull_folder_setting_sends_pulls_there(lab_page: LabPage) -> None:
    ui = lab_page
    settings = ui.lab.settings / "sregistry-jupyter" / "panel.jupyterlab-settings"
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text(json.dumps({"defaultPullFolder": "from-settings"}))
    (ui.lab.workspace / "from-settings").mkdir(exist_ok=True)
    try:
        ui.page.reload()
        ui.page.wait_for_function("document.activeElement?.closest('.jp-Launcher') != null", timeout=SLOW)
        open_image(ui, "bob-tools", "fastqc", "0.12")
        ui.panel.get_by_role("button", name="Pull", exact=True).click()
        expect(ui.page.locator(".Toastify")).to_contain_text("Pulled bob-tools/fastqc:0.12", timeout=SLOW)
        pulled = ui.lab.workspace / "from-settings" / "fastqc_0.12.sif"
        assert pulled.read_bytes() == ui.lab.seeded.images["bob-tools/fastqc:0.12"].read_bytes()
    finally:
        settings.unlink()
    assert ui.console_errors == []


def test_push_from_the_file_browser_context_menu(lab_page: LabPage, tmp_path: Path) -> None:
    ui = lab_page
    source = ui.lab.seeded.images["lab-private/notebook:2026.11"]
    (ui.lab.workspace / "to-push").mkdir(exist_ok=True)
    local = ui.lab.workspace / "to-push" / "Analysis Env.sif"
    shutil.copy(source, local)
    ui.open_folder("to-push")
    item = ui.page.locator('.jp-DirListing-item[data-file-type="sif"]', has_text="Analysis Env.sif")
    item.click(button="right")
    ui.page.locator(".lm-Menu-item", has_text="Push to Registry…").click()

    dialog = ui.page.locator(".jp-Dialog")
    expect(dialog.get_by_label("File")).to_have_value("to-push/Analysis Env.sif")
    expect(dialog.get_by_label("Container")).to_have_value("analysis-env")
    collections = dialog.get_by_label("Collection", exact=True)
    expect(collections.locator("option")).to_have_text(["biocontainers", "lab-private (private)", "New collection…"])
    collections.select_option("lab-private")
    dialog.get_by_label("Tags").fill("v1, stable")
    ui.screenshot("push-dialog", tmp_path)
    dialog.get_by_role("button", name="Push the image").click()

    done = ui.panel.locator(".jp-SregistryTransfer.jp-mod-done", has_text="Push to-push/Analysis Env.sif")
    expect(done).to_have_count(1, timeout=SLOW)
    expect(ui.page.locator(".Toastify")).to_contain_text("Pushed to-push/Analysis Env.sif", timeout=SLOW)
    pushed = ui.lab.api().get(f"{API}/collections/lab-private/containers/analysis-env").json()
    assert sorted(t["name"] for t in pushed["tags"]) == ["stable", "v1"]
    assert {t["digest"] for t in pushed["tags"]} == {sha256_digest(local)}
    assert ui.console_errors == []


def test_a_cancelled_push_leaves_nothing_in_the_registry(lab_page: LabPage) -> None:
    ui = lab_page
    big = ui.lab.workspace / "big.sif"
    with big.open("wb") as out:
        out.truncate(768 * 1024 * 1024)
    try:
        ui.open_panel()
        ui.run_from_palette("Push the Selected File to the Registry…")
        dialog = ui.page.locator(".jp-Dialog")
        dialog.get_by_label("File").fill("big.sif")
        dialog.get_by_label("Collection", exact=True).select_option("biocontainers")
        dialog.get_by_label("Container").fill("too-big")
        dialog.get_by_role("button", name="Push the image").click()
        ui.panel.get_by_role("button", name="Cancel: Push big.sif → biocontainers/too-big:latest").click()
        cancelled = ui.panel.locator(".jp-SregistryTransfer.jp-mod-cancelled", has_text="Push big.sif")
        expect(cancelled).to_have_count(1, timeout=SLOW)
        expect(ui.page.locator(".Toastify")).to_contain_text("was cancelled", timeout=SLOW)
        containers = ui.lab.api().get(f"{API}/collections/biocontainers").json()["containers_list"]
        assert "too-big" not in [c["name"] for c in containers]
    finally:
        big.unlink()
    assert ui.console_errors == []


def test_push_to_a_collection_one_may_not_push_to_shows_the_registry_words(lab_page: LabPage) -> None:
    ui = lab_page
    ui.expected_failures.append("/sregistry/api/transfers")
    source = ui.lab.seeded.images["biocontainers/samtools:latest"]
    shutil.copy(source, ui.lab.workspace / "mine.sif")
    refusal = ui.lab.api().post(
        f"{API}/collections/bob-tools/containers/mine/images",
        params={"digest": sha256_digest(source), "tag": "latest"},
        content=source.read_bytes(),
    )
    assert refusal.status_code == 409
    words = refusal.json()["message"]

    ui.open_panel()
    ui.run_from_palette("Push the Selected File to the Registry…")
    dialog = ui.page.locator(".jp-Dialog")
    dialog.get_by_label("File").fill("mine.sif")
    dialog.get_by_label("Collection", exact=True).select_option("New collection…")
    dialog.get_by_label("New collection name").fill("bob-tools")
    dialog.get_by_label("Container").fill("mine")
    dialog.get_by_role("button", name="Push the image").click()

    shown = ui.panel.locator(".jp-SregistryError, .jp-SregistryTransfer-error")
    expect(shown.first).to_contain_text(words, timeout=SLOW)
    bob_tools = ui.lab.api("bob").get(f"{API}/collections/bob-tools").json()
    assert [c["name"] for c in bob_tools["containers_list"]] == ["fastqc"]
    assert ui.console_errors == []


def test_push_dialog_catches_bad_names_before_sending(lab_page: LabPage) -> None:
    ui = lab_page
    shutil.copy(ui.lab.seeded.images["biocontainers/samtools:latest"], ui.lab.workspace / "bad.sif")
    ui.open_panel()
    ui.panel.get_by_role("button", name="Push an image to the registry…").click()
    dialog = ui.page.locator(".jp-Dialog")
    dialog.get_by_label("File").fill("bad.sif")
    dialog.get_by_label("Container").fill("Not Valid!")
    dialog.get_by_label("Tags").fill("")
    dialog.get_by_role("button", name="Push the image").click()
    expect(ui.page.locator(".jp-Dialog .jp-SregistryField-problem")).to_have_text(
        [re.compile("lower-case letters"), re.compile("at least one tag")]
    )
    ui.page.locator(".jp-Dialog").get_by_role("button", name="Cancel").click()
    expect(ui.page.locator(".jp-Dialog")).to_have_count(0)
    assert ui.lab.api().get(f"{API}/collections/biocontainers/containers/not-valid").status_code == 404
    assert ui.console_errors == []


def test_share_a_collection_with_a_teammate_and_make_a_link(lab_page: LabPage, tmp_path: Path) -> None:
    ui = lab_page
    ui.open_panel()
    ui.panel.get_by_role("button", name="Open collection lab-private (private), 0 stars").click()
    ui.panel.get_by_role("button", name="Share…").click()
    dialog = ui.page.locator(".jp-Dialog")
    teammate = dialog.get_by_label("Team-mate")
    expect(teammate.locator("option", has_text="bob")).to_have_count(1)
    assert "dave" not in teammate.inner_text()
    teammate.select_option("bob")
    dialog.get_by_label("Role").select_option("contributor")
    dialog.get_by_role("button", name="Add", exact=True).click()
    expect(dialog.locator(".jp-SregistryMembers-item", has_text="bob")).to_contain_text("contributor")
    ui.screenshot("share-dialog", tmp_path)
    members = ui.lab.api().get(f"{API}/collections/lab-private/members").json()["items"]
    assert {"user": "bob", "role": "contributor"} in members
    assert ui.lab.api("bob").get(f"{API}/collections/lab-private").status_code == 200
    dialog.get_by_role("button", name="Close").click()

    ui.panel.get_by_role("button", name="Open container notebook").click()
    ui.panel.get_by_role("button", name="Show image notebook:2026.11").click()
    ui.panel.get_by_role("button", name="Share link…").click()
    dialog = ui.page.locator(".jp-Dialog")
    dialog.get_by_label("Valid for").fill("3")
    dialog.get_by_role("button", name="Make link").click()
    link = dialog.get_by_label("Share link")
    expect(link).to_have_value(re.compile(r"^http"))
    download = httpx.get(link.input_value(), follow_redirects=True, timeout=30)
    assert download.status_code == 200
    assert download.content == ui.lab.seeded.images["lab-private/notebook:2026.11"].read_bytes()
    dialog.get_by_role("button", name="Close").click()
    assert ui.console_errors == []


def test_plots_open_in_a_main_area_tab(lab_page: LabPage, tmp_path: Path) -> None:
    ui = lab_page
    ui.open_panel()
    ui.panel.get_by_role("button", name="Open the registry's plots").click()
    tab = ui.page.locator(".jp-SregistryPlots")
    for name in ("treemap", "storage", "activity"):
        expect(tab.locator(f'[data-figure="{name}"] .js-plotly-plot')).to_be_visible(timeout=SLOW)
    expect(ui.page.locator(".lm-TabBar-tab", has_text="Registry plots")).to_be_visible()
    ui.page.wait_for_timeout(500)
    ui.screenshot("plots-tab", tmp_path)
    assert ui.console_errors == []


def test_keyboard_alone_searches_and_opens(lab_page: LabPage) -> None:
    ui = lab_page
    ui.open_panel()
    search = ui.panel.get_by_role("searchbox", name="Search collections")
    search.focus()
    expect(search).to_be_focused()
    ui.page.keyboard.type("lab")
    ui.page.keyboard.press("Enter")
    expect(ui.panel.locator(".jp-SregistryList-name")).to_have_text(["lab-private"])
    expect(ui.panel.locator(".jp-SregistryPanel-content")).to_have_attribute("aria-busy", "false")
    expect(search).to_be_focused()
    ui.page.keyboard.press("Tab")
    expect(ui.panel.get_by_role("combobox", name="Sort collections")).to_be_focused()
    ui.page.keyboard.press("Tab")
    collection = ui.panel.get_by_role("button", name=re.compile(r"^Open collection lab-private"))
    expect(collection).to_be_focused()
    outline = collection.evaluate("e => getComputedStyle(e).outlineStyle")
    assert outline != "none"
    ui.page.keyboard.press("Enter")
    heading = ui.panel.locator(".jp-SregistryHeading-title")
    expect(heading).to_contain_text("lab-private")
    expect(heading).to_be_focused()
    ui.page.keyboard.press("Tab")
    expect(ui.panel.get_by_role("button", name="Share…")).to_be_focused()
    ui.page.keyboard.press(" ")
    expect(ui.page.locator(".jp-Dialog")).to_contain_text("Share lab-private")
    ui.page.keyboard.press("Escape")
    assert ui.console_errors == []


def test_dark_theme_uses_the_theme_colours(lab_page: LabPage, tmp_path: Path) -> None:
    ui = lab_page
    ui.open_panel()
    light = ui.panel.evaluate("e => getComputedStyle(e).backgroundColor")
    ui.run_from_palette("Use Theme: JupyterLab Dark")
    ui.page.wait_for_function("document.body.dataset.jpThemeLight === 'false'", timeout=SLOW)
    dark = ui.panel.evaluate("e => getComputedStyle(e).backgroundColor")
    assert dark != light
    channels = [int(c) for c in re.findall(r"\d+", dark)[:3]]
    assert sum(channels) < 3 * 100, dark
    ui.panel.get_by_role("button", name="Open collection biocontainers").click()
    ui.panel.get_by_role("button", name="Open container samtools").click()
    ui.panel.get_by_role("button", name="Show image samtools:1.19").click()
    ui.panel.locator(".jp-SregistryDeffile").wait_for()
    ui.screenshot("panel-dark", tmp_path, sidebar_only=True)
    ui.run_from_palette("Use Theme: JupyterLab Light")
    ui.page.wait_for_function("document.body.dataset.jpThemeLight === 'true'", timeout=SLOW)
    assert ui.console_errors == []


def test_push_is_refused_before_any_bytes_move_when_the_file_is_outside_the_workspace(lab_page: LabPage) -> None:
    ui = lab_page
    ui.expected_failures.append("/sregistry/api/transfers")
    outside = ui.lab.workspace.parent / "outside.sif"
    shutil.copy(ui.lab.seeded.images["biocontainers/bwa:0.7.17"], outside)
    (ui.lab.workspace / "link-out.sif").symlink_to(outside)
    ui.open_panel()
    ui.panel.get_by_role("button", name="Push an image to the registry…").click()
    dialog = ui.page.locator(".jp-Dialog")
    dialog.get_by_label("File").fill("link-out.sif")
    dialog.get_by_label("Container").fill("escape")
    dialog.get_by_role("button", name="Push the image").click()
    expect(ui.panel.locator(".jp-SregistryError")).to_contain_text("outside the workspace", timeout=SLOW)
    assert ui.lab.api().get(f"{API}/collections/biocontainers/containers/escape").status_code == 404
    assert ui.console_errors == []


def test_notebook_tree_offers_push_on_sif_files(browser, lab) -> None:
    """Notebook 7's file tree has no sidebar for the panel, but its file list has the same push action.

    Notebook 7.6's tree page throws a TypeError of its own while loading settings (it does so with this
    extension disabled too), so this test asserts that no error comes from this extension's scripts."""
    shutil.copy(lab.seeded.images["biocontainers/bwa:0.7.17"], lab.workspace / "from-tree.sif")
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        ui = LabPage(page, lab)
        page.on("console", ui.on_console)
        page.on("pageerror", lambda error: ui.console_errors.append(f"uncaught: {error.stack}"))
        page.goto(f"{lab.url}/tree?token={LAB_TOKEN}")
        item = page.locator('.jp-DirListing-item[data-file-type="sif"]', has_text="from-tree.sif")
        item.click(button="right", timeout=60_000)
        page.locator(".lm-Menu-item", has_text="Push to Registry…").click()
        dialog = page.locator(".jp-Dialog")
        expect(dialog.get_by_label("File")).to_have_value("from-tree.sif")
        expect(dialog.get_by_label("Container")).to_have_value("from-tree")
        dialog.get_by_role("button", name="Cancel").click()
        expect(dialog).to_have_count(0)
        assert [e for e in ui.console_errors if "sregistry-jupyter" in e] == []
    finally:
        context.close()
