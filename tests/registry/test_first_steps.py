"""First steps as a new user takes them: the README's recipe typed as written, the commands' one-line answers,
and the snippets the pages show, each run with the real client it is for (the Go library client,
sregistry-cli)."""

from __future__ import annotations

import html
import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from sregistry_jupyter.registry import db
from sregistry_jupyter.registry.auth.local import LocalAuthenticator
from tests.conftest import free_port, run_cli, wait_for
from tests.gotools import make_sif
from tests.registry.test_sign_in import add_person, signed_in, xsrf_of

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
VENV = Path(sys.prefix)
SREGISTRY = VENV / "bin" / "sregistry"
TERMS = "Push only what you may share."
PLAIN_PATH = "/usr/local/bin:/usr/bin:/bin"


@pytest.fixture
def registry_settings() -> dict:
    return {"authenticator": LocalAuthenticator(), "terms_of_service": TERMS}


def readme_blocks(section: str) -> list[str]:
    """The ``sh`` code blocks of one ``##`` section of the README, in order."""
    text = (REPO / "README.md").read_text()
    start = text.index(f"\n## {section}\n")
    end = text.find("\n## ", start + 1)
    return re.findall(r"```sh\n(.*?)```", text[start : end if end > 0 else None], re.S)


def run_library_client(binary: Path, url: str, token: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(binary), *args[:1], "-url", url, *args[1:]],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SREG_TOKEN": token},
    )


def as_apptainer_does(ref: str) -> tuple[str, str]:
    """``library://path:tag`` split as apptainer splits it before calling the library client."""
    assert ref.startswith("library://"), ref
    path, _, tag = ref.removeprefix("library://").rpartition(":")
    return path, tag


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_the_readme_recipe_typed_as_written_ends_in_a_push_and_a_pull(tmp_path, mksif, libclient_bin):
    first, second = readme_blocks("Using it")[:2]
    assert port_is_free(5000), "the README's registry listens on 127.0.0.1:5000, which something else holds"
    (tmp_path / ".venv").symlink_to(VENV, target_is_directory=True)
    image = make_sif(mksif, tmp_path / "image.sif", size=200_000, seed=3)
    env = {"PATH": PLAIN_PATH, "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    (tmp_path / "recipe.sh").write_text(first)
    recipe = subprocess.Popen(
        ["bash", "-e", "recipe.sh"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        said = []
        for line in recipe.stdout:
            said.append(line.rstrip("\n"))
            if "is running at" in line:
                break
        assert "is running at http://127.0.0.1:5000/" in said[-1], "\n".join(said)
        assert any(line.startswith("created a registry at ") for line in said), said
        assert any(line.startswith("created user alice (admin); the terms of service are recorded") for line in said)
        token = next(line for line in said if line.startswith("sreg_"))
        url = "http://127.0.0.1:5000"

        go_image = make_sif(mksif, tmp_path / "go.sif", size=150_000, seed=4)
        pushed = run_library_client(
            libclient_bin, url, token, "push", "-file", str(go_image), "-ref", "alice/lab/go", "-tags", "latest"
        )
        assert pushed.returncode == 0, pushed.stderr
        pulled = tmp_path / "go-pulled.sif"
        result = run_library_client(
            libclient_bin, url, token, "pull", "-ref", "alice/lab/go:latest", "-out", str(pulled)
        )
        assert result.returncode == 0, result.stderr
        assert pulled.read_bytes() == go_image.read_bytes()

        (tmp_path / "api.sh").write_text(second)
        api = subprocess.run(
            ["bash", "-e", "api.sh"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )
        assert api.returncode == 0, api.stdout + api.stderr
        assert api.stdout.strip().endswith("pulled the image back unchanged")
        assert (tmp_path / "tools.sif").read_bytes() == image.read_bytes()
    finally:
        if recipe.poll() is None:
            os.killpg(recipe.pid, signal.SIGTERM)  # the shell and the server it started, by the group we made
        recipe.wait(30)
    assert wait_for(lambda: port_is_free(5000)), "the README's server did not stop"


def test_init_says_what_it_made_or_found(tmp_path):
    data = tmp_path / "data"
    created = run_cli("init", "--data-dir", str(data)).stdout.strip()
    assert (
        created == f"created a registry at {data} (schema {db.head_revision()}); run it with `sregistry-jupyter serve`"
    )
    assert (data / "registry.db").is_file() and (data / "secret_key").is_file() and (data / "storage").is_dir()
    again = run_cli("init", "--data-dir", str(data)).stdout.strip()
    assert again == f"the registry at {data} is up to date (schema {db.head_revision()})"


def test_admin_usage_and_refusals_are_one_line_each(tmp_path):
    data = ("--data-dir", str(tmp_path / "data"))
    run_cli("init", *data)
    for args, status, said in [
        (("create-user",), 2, "give exactly one user name (see --help)"),
        (("add-owner", "lab"), 2, "give a collection and a user (see --help)"),
        (("create-team", "group"), 2, "--owner is required"),
        (("create-token", "nobody"), 1, "no user 'nobody'"),
        (("list", "robots"), 1, "list one of users, teams, collections, not 'robots'"),
    ]:
        result = run_cli("admin", *args, *data, check=False)
        assert (result.returncode, result.stdout, result.stderr) == (status, "", said + "\n"), args


def test_admin_commands_refuse_an_older_schema_and_leave_it_as_it_is(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "secret_key").write_text("key")
    old = db.revisions()[0]
    engine = db.make_engine(f"sqlite:///{data / 'registry.db'}")
    try:
        db.upgrade(engine, old)
        refused = run_cli("admin", "list", "users", "--data-dir", str(data), check=False)
        assert refused.returncode == 1
        assert refused.stderr.strip() == (
            f"the registry's database is at schema {old} and this version needs {db.head_revision()}: upgrade it "
            "with `sregistry-jupyter init` (or by starting the server) given the same options"
        )
        assert db.current_revision(engine) == old
        said = run_cli("init", "--data-dir", str(data)).stdout.strip()
        assert said.startswith(f"upgraded the registry at {data} from schema {old} to {db.head_revision()}")
        [backup] = data.glob(f"registry.backup-{old}-*.db")
        assert said.endswith(f"; the old database is kept at {backup}")
        assert run_cli("admin", "list", "users", "--data-dir", str(data)).stdout.startswith("NAME")
    finally:
        engine.dispose()


def test_admin_commands_elsewhere_create_nothing_and_say_where_to_point(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    refused = run_cli("admin", "create-user", "alice", cwd=elsewhere, check=False)
    assert refused.returncode == 1
    assert refused.stdout == ""
    [line] = refused.stderr.strip().splitlines()
    assert line == (
        f"there is no registry at {elsewhere / 'sregistry-data'} (no registry.db there): point at one with "
        "--data-dir DIR (or --db-url URL), or create one with `sregistry-jupyter init`"
    )
    assert list(elsewhere.iterdir()) == []


def test_admin_commands_on_a_database_without_a_registry_say_so(tmp_path, db_url):
    if db_url.startswith("sqlite"):
        Path(db_url.removeprefix("sqlite:///")).touch()
    (tmp_path / "secret_key").write_text("key")
    refused = run_cli("admin", "list", "users", "--data-dir", str(tmp_path), "--db-url", db_url, check=False)
    assert refused.returncode == 1
    [line] = refused.stderr.strip().splitlines()
    assert line.startswith("the database ") and "holds no registry: point at one with " in line
    assert "--db-url URL" in line and line.endswith(", or create one there with `sregistry-jupyter init`")


def test_admin_commands_without_the_secret_key_refuse_to_make_another(tmp_path):
    data = tmp_path / "data"
    run_cli("init", "--data-dir", str(data))
    database = f"sqlite:///{data / 'registry.db'}"
    refused = run_cli(
        "admin",
        "create-token",
        "alice",
        "--db-url",
        database,
        cwd=tmp_path,
        check=False,
        env={"SREGISTRY_SECRET_KEY": ""},
    )
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f"no secret key at {tmp_path / 'sregistry-data' / 'secret_key'}: give the registry's --data-dir, "
        "or set SREGISTRY_SECRET_KEY as the server has it"
    )
    assert not (tmp_path / "sregistry-data").exists()


def test_serve_on_a_busy_port_says_so_in_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("serve", "--port", str(port), "--data-dir", str(tmp_path / "data"), check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"cannot listen on 127.0.0.1:{port}: the address is already in use (by another registry or program); "
        "choose another port with --port"
    )
    assert not (tmp_path / "data").exists()


def test_create_user_records_the_terms_unless_told_not_to(registry):
    args = ("--data-dir", str(registry.data_dir), "--db-url", registry.db_url)
    said = run_cli("admin", "create-user", "alice", *args).stdout.strip()
    assert said == (
        "created user alice; the terms of service are recorded as accepted on their behalf "
        "(--require-terms leaves it to them)"
    )
    waiting = run_cli("admin", "create-user", "bob", "--require-terms", *args).stdout.strip()
    assert (
        waiting
        == "created user bob; they must sign in and accept the terms of service at /terms before their tokens work"
    )
    assert (
        run_cli("admin", "create-user", "ci", "--robot", *args).stdout.strip() == "created user ci (robot: tokens only)"
    )
    for name, status in (("alice", 200), ("bob", 403), ("ci", 200)):
        token = run_cli("admin", "create-token", name, *args).stdout.strip().splitlines()[-1]
        assert registry.client(token).get("/api/v1/user").status_code == status, name


def test_token_status_accepts_a_good_token_before_the_terms_and_use_says_where_to_accept(registry):
    add_person(registry, "dana", accepted=False)
    token = registry.add_user("dana", scope="write")
    client = registry.client(token)
    status = client.get("/v1/token-status")
    assert status.status_code == 200, status.text
    assert status.json()["data"]["user"] == "dana"
    used = client.post("/v1/entities", content=json.dumps({"name": "dana"}))
    assert used.status_code == 403
    assert "/terms" in used.json()["error"]["message"]
    assert registry.client("sreg_aaaaaaaaaaaa_" + "b" * 43).get("/v1/token-status").status_code == 401


def test_the_tokens_page_snippet_works_as_the_sregistry_file(registry, mksif, tmp_path):
    add_person(registry, "alice")
    browser = signed_in(registry, "alice")
    page = browser.post("/tokens", data={"_xsrf": xsrf_of(browser), "name": "cli", "scope": "write"})
    assert page.status_code == 200, page.text
    snippet = html.unescape(re.search(r'<pre id="sregistry-json">([^<]+)</pre>', page.text).group(1))
    home = tmp_path / "home"
    home.mkdir()
    (home / ".sregistry").write_text(snippet)
    # sregistry-cli finds its file through the password database, not $HOME; this points it at the temporary home.
    env = {
        **{name: value for name, value in os.environ.items() if not name.startswith("SREGISTRY_")},
        "HOME": str(home),
        "SREGISTRY_CLIENT_SECRETS": str(home / ".sregistry"),
        "SREGISTRY_DISABLE": "true",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    image = make_sif(mksif, tmp_path / "img.sif", size=100_000, seed=5)

    def sregistry(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(SREGISTRY), *args], cwd=home, env=env, capture_output=True, text=True, timeout=120)

    pushed = sregistry("push", "--name", "lab/snippet", "--tag", "latest", str(image))
    assert pushed.returncode == 0 and "Upload Complete" in pushed.stdout, pushed.stdout + pushed.stderr
    pulled = sregistry("pull", "lab/snippet:latest")
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    assert (home / "lab-snippet:latest.sif").read_bytes() == image.read_bytes()


def test_the_home_page_push_and_pull_examples_work_with_the_library_client(registry, mksif, libclient_bin, tmp_path):
    add_person(registry, "alice")
    token = registry.add_user("alice", scope="write")
    anonymous = html.unescape(httpx.get(registry.url + "/").text)
    assert "apptainer push image.sif library://<entity>/<collection>/<container>:<tag>" in anonymous
    page = signed_in(registry, "alice").get("/").text
    example = html.unescape(re.search(r'<pre id="getting-started">(.*?)</pre>', page, re.S).group(1))
    lines = example.splitlines()
    assert lines[0] == f"apptainer remote add --no-login test-registry {registry.url}"
    push_line = next(line for line in lines if line.startswith("apptainer push "))
    pull_line = next(line for line in lines if line.startswith("apptainer pull "))
    filled = {"<collection>": "lab", "<container>": "tools", "<tag>": "v2"}
    for placeholder, value in filled.items():
        push_line, pull_line = push_line.replace(placeholder, value), pull_line.replace(placeholder, value)
    image = make_sif(mksif, tmp_path / "image.sif", size=80_000, seed=6)
    path, tag = as_apptainer_does(push_line.split()[-1])
    pushed = run_library_client(
        libclient_bin, registry.url, token, "push", "-file", str(image), "-ref", path, "-tags", tag
    )
    assert pushed.returncode == 0, pushed.stderr
    out = tmp_path / "pulled.sif"
    path, tag = as_apptainer_does(pull_line.split()[-1])
    pulled = run_library_client(libclient_bin, registry.url, token, "pull", "-ref", f"{path}:{tag}", "-out", str(out))
    assert pulled.returncode == 0, pulled.stderr
    assert out.read_bytes() == image.read_bytes()
    two_parts = run_library_client(libclient_bin, registry.url, token, "push", "-file", str(image), "-ref", "lab/tools")
    assert two_parts.returncode == 1 and "malformed image path" in two_parts.stderr


@pytest.mark.parametrize("command", [("init",), ("serve", "--port", "0"), ("admin", "list", "users")])
def test_an_unreachable_database_is_one_line(command, tmp_path):
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/registry"
    result = run_cli(*command, "--db-url", url, "--data-dir", str(tmp_path), check=False)
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"cannot use the database postgresql+psycopg://postgres@127.0.0.1:{url.split(':')[2]}")
    assert "Connection refused" in line


def test_a_database_upgraded_by_a_newer_version_is_refused_in_one_line(tmp_path):
    data = tmp_path / "data"
    run_cli("init", "--data-dir", str(data))
    engine = db.make_engine(f"sqlite:///{data / 'registry.db'}")
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    finally:
        engine.dispose()
    for command in (("serve", "--port", "0"), ("init",), ("admin", "list", "users")):
        result = run_cli(*command, "--data-dir", str(data), check=False)
        assert result.returncode == 1
        assert result.stderr.strip() == (
            "the database is at schema revision 9999_from_the_future, which this version of sregistry-jupyter "
            "does not know: a newer version upgraded it, so run that version"
        )
    assert list(data.glob("*backup*")) == []
