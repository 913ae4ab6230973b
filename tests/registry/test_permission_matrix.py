"""The permission matrix of issue 4: role x action x visibility, through every surface, from one table.

``TABLE`` below is written from the product rules, not from ``access.decide``: public collections are
seen, listed, searched and pulled by everyone; private ones only by their members, staff, admins and the
robot that owns them; images are pushed, tagged and deleted by owners, staff, admins and the robot
(a write-scoped token); a collection is deleted, its members managed, its privacy changed and its tags
frozen by owners holding an admin-scoped credential, staff and admins; a read-only token sees and pulls;
an expired or revoked token is a bad credential. Why a refusal happens (the thing is hidden, forbidden,
or the credential is bad) follows from the table and the role; each surface then says how its protocol
answers each kind of refusal. Where a surface has no way to perform an action the cell is absent.

Every cell also checks the database, so a refusal that still changed something fails; and every refusal
of something invisible is compared with the answer for something that does not exist: same status, same
body. The whole matrix runs on SQLite and on PostgreSQL, against one registry per database; the real
clients (the apptainer library client and sregistry-cli) run a representative subset of the cells.
"""

from __future__ import annotations

import enum
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import LiveRegistry, open_context, pg_database, start_in_thread
from tests.registry.matrix import (
    ACTIONS,
    DRIVERS,
    ENTITY,
    PEOPLE,
    ROLES,
    USER_OF,
    VISIBILITIES,
    Target,
    World,
    base_name,
    build_world,
    image_count,
    tag_row,
    target_for,
    unique_bytes,
    upload,
)
from tests.registry.test_transfer import digest_of

#  Columns, in the order of ACTIONS:
#    see, list, search, pull | push, tag, delete image | delete collection, manage members, privacy, freeze
#  "+" allowed, "." refused.
TABLE: dict[str, tuple[str, str]] = {
    #               public            private
    "anonymous": ("++++|...|....", "....|...|...."),
    "stranger": ("++++|...|....", "....|...|...."),
    "contributor": ("++++|...|....", "++++|...|...."),
    "owner": ("++++|+++|++++", "++++|+++|++++"),
    "teammate": ("++++|...|....", "....|...|...."),
    "staff": ("++++|+++|++++", "++++|+++|++++"),
    "admin": ("++++|+++|++++", "++++|+++|++++"),
    "robot": ("++++|+++|....", "++++|+++|...."),
    "expired": ("....|...|....", "....|...|...."),
    "revoked": ("....|...|....", "....|...|...."),
    "readonly": ("++++|...|....", "++++|...|...."),
}
BAD_CREDENTIALS = frozenset({"expired", "revoked"})


class Outcome(enum.Enum):
    ALLOWED = "allowed"
    HIDDEN = "hidden"  # refused, and the caller may not see the thing: answered as if it did not exist
    DENIED = "denied"  # refused, and the caller may see the thing
    TAKEN = "taken"  # a push into an invisible collection: it cannot be created, its name is taken
    LOGIN = "login"  # refused before anything is looked up, because the request carries no identity
    BAD_CREDENTIAL = "bad credential"


def allowed(role: str, action: str, visibility: str) -> bool:
    row = TABLE[role][VISIBILITIES.index(visibility)].replace("|", "")
    return row[ACTIONS.index(action)] == "+"


# Anything beyond seeing and pulling needs an identity, and an anonymous caller hears so (401) before
# anything is looked up, whether or not the thing exists or is visible.
WRITES = frozenset(ACTIONS) - {"see", "list", "search", "pull"}
# People with no role in the base collections: a push of theirs finds the name taken, public or private.
NON_MEMBERS = frozenset({"stranger", "teammate"})


def outcome(surface: str, role: str, action: str, visibility: str) -> Outcome:
    if allowed(role, action, visibility):
        return Outcome.ALLOWED
    if role in BAD_CREDENTIALS:
        return Outcome.BAD_CREDENTIAL
    if role == "anonymous" and action in WRITES:
        return Outcome.LOGIN
    if action == "push" and role in NON_MEMBERS:
        return Outcome.TAKEN
    if not allowed(role, "see", visibility):
        return Outcome.HIDDEN
    return Outcome.DENIED


SUCCESS = {
    "native": {"push": 201, "delete_image": 204, "delete_collection": 204, "manage_members": 201},
    "library": {"pull": 303},
    "shub": {"delete_image": 204},
    "pages": {},
}
REFUSAL = {
    "native": {Outcome.HIDDEN: 404, Outcome.DENIED: 403, Outcome.TAKEN: 409},
    "library": {Outcome.HIDDEN: 404, Outcome.DENIED: 403, Outcome.TAKEN: 409},
    "shub": {Outcome.HIDDEN: 404, Outcome.DENIED: 403, Outcome.TAKEN: 409},
    "pages": {},
}
LISTINGS = frozenset({"list", "search"})


def expected_status(surface: str, role: str, action: str, result: Outcome) -> int:
    """How ``surface`` answers ``result``: listings leave hidden things out rather than refuse."""
    if result is Outcome.ALLOWED:
        return SUCCESS[surface].get(action, 200)
    if result in (Outcome.LOGIN, Outcome.BAD_CREDENTIAL):
        return 401
    if action in LISTINGS:
        return 200
    if surface == "shub" and action == "pull" and role == "anonymous":
        return 403  # sregistry-cli signs its pull only after a 403; a 401 would make it give up
    return REFUSAL[surface][result]


SURFACE_ROLES = {"native": ROLES, "library": ROLES, "shub": ROLES, "pages": PEOPLE}


@dataclass(frozen=True)
class Cell:
    surface: str
    role: str
    action: str
    visibility: str

    @property
    def id(self) -> str:
        return f"{self.surface}-{self.role}-{self.action}-{self.visibility}"

    @property
    def outcome(self) -> Outcome:
        return outcome(self.surface, self.role, self.action, self.visibility)


CELLS = [
    Cell(surface, role, action, visibility)
    for surface, drivers in DRIVERS.items()
    for role in SURFACE_ROLES[surface]
    for action in ACTIONS
    if action in drivers
    for visibility in VISIBILITIES
]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One registry per database, with every role's user and credential, shared by all cells."""
    root = tmp_path_factory.mktemp(f"matrix-{request.param}")
    databases = pg_database() if request.param == "postgresql" else (url for url in [f"sqlite:///{root}/registry.db"])
    db_url = next(databases)
    context = open_context(db_url, root / "data")
    url, stop = start_in_thread(context)
    built = build_world(LiveRegistry(url, context, root / "data", db_url))
    try:
        yield built
    finally:
        built.close()
        stop()
        context.engine.dispose()
        databases.close()


def test_the_table_covers_every_role_and_action():
    assert set(TABLE) == set(ROLES)
    for public, private in TABLE.values():
        assert len(public.replace("|", "")) == len(private.replace("|", "")) == len(ACTIONS)
    assert {surface: sum(c.surface == surface for c in CELLS) for surface in DRIVERS} == {
        "native": 242,
        "library": 132,
        "shub": 132,
        "pages": 14,
    }


@pytest.mark.parametrize("cell", CELLS, ids=lambda c: c.id)
def test_cell(world: World, cell: Cell):
    """The answer and the effect the table expects, and for a hidden thing the answer a missing one gets."""
    result = cell.outcome
    drive = DRIVERS[cell.surface][cell.action]
    target = target_for(world, cell.surface[:3], cell.role, cell.action, cell.visibility)
    seen = drive(world, cell.role, target)
    status = expected_status(cell.surface, cell.role, cell.action, result)
    assert (seen.status, seen.happened) == (status, result is Outcome.ALLOWED), (result.value, seen.body[:300])
    if result is Outcome.HIDDEN and cell.action not in LISTINGS:
        missing = drive(world, cell.role, target.missing())
        assert (missing.status, missing.body) == (seen.status, target.as_if_missing(seen.body))
    if result is Outcome.TAKEN:
        assert f"collection name '{target.collection}' is taken" in seen.body


def test_a_refused_freeze_leaves_the_tag_where_it_was(world: World):
    """The robot may move a tag but not freeze one: a request for both is refused as a whole."""
    target = world.fresh_tag("public", "freeze-and-move")
    other = unique_bytes("freeze-and-move")
    pushed = upload(world.http, other, target.collection, target.container, world.bearer("owner"), tag=None)
    assert pushed.status_code == 201, pushed.text
    path = f"/api/v1/collections/{target.collection}/containers/{target.container}/tags/{target.tag}"
    body = {"digest": digest_of(other), "frozen": True}
    refused = world.http.put(path, json=body, headers=world.bearer("robot"))
    assert refused.status_code == 403, refused.text
    row = tag_row(world, target, target.tag)
    assert (row.image_id, row.frozen) == (target.image_id, False)
    assert world.http.put(path, json=body, headers=world.bearer("owner")).status_code == 200
    row = tag_row(world, target, target.tag)
    assert (row.image_id != target.image_id, row.frozen) == (True, True)


def test_pages_take_no_tokens(world: World):
    """A token is no session: sent to a page, it shows what an anonymous visitor sees."""
    client = world.page_client("anonymous")
    for role in ("owner", "readonly", "robot", "expired"):
        page = client.get("/", headers=world.bearer(role))
        assert page.status_code == 200
        assert base_name("private") not in page.text


# The real clients, on a subset of the cells. Each cell runs in a process of its own, all at once.

LIBRARY_CLIENT_CELLS = [
    Cell("library", role, action, visibility)
    for role, action, visibility in [
        ("owner", "push", "private"),
        ("robot", "push", "public"),
        ("stranger", "push", "public"),
        ("stranger", "push", "private"),
        ("readonly", "push", "private"),
        ("revoked", "push", "public"),
        ("anonymous", "push", "public"),
        ("owner", "pull", "private"),
        ("readonly", "pull", "private"),
        ("anonymous", "pull", "public"),
        ("stranger", "pull", "private"),
        ("expired", "pull", "public"),
        ("owner", "delete_image", "private"),
        ("readonly", "delete_image", "public"),
        ("stranger", "delete_image", "private"),
        ("contributor", "search", "private"),
        ("stranger", "search", "private"),
    ]
]
SREGISTRY_CLI_CELLS = [
    Cell("shub", role, action, visibility)
    for role, action, visibility in [
        ("owner", "push", "public"),
        ("robot", "push", "private"),
        ("stranger", "push", "public"),
        ("readonly", "push", "private"),
        ("owner", "pull", "private"),
        ("readonly", "pull", "private"),
        ("stranger", "pull", "private"),
        ("revoked", "pull", "private"),
        ("owner", "delete_image", "public"),
        ("stranger", "delete_image", "public"),
        ("stranger", "delete_image", "private"),
    ]
]
SREGISTRY = Path(sys.executable).with_name("sregistry")


@dataclass(frozen=True)
class Run:
    """A real client's run for one cell: its exit status and output, and whether the action took effect."""

    returncode: int
    output: str
    happened: bool


def run_library_client(world: World, binary: Path, cell: Cell, target: Target, out: Path) -> Run:
    ref = f"{ENTITY}/{target.collection}/{target.container}"
    args = {
        "push": ["push", "-file", str(out.with_suffix(".in")), "-ref", ref, "-tags", "latest"],
        "pull": ["pull", "-ref", f"{ref}:latest", "-out", str(out)],
        "delete_image": ["delete", "-ref", f"{ref}:latest"],
        "search": ["search", "-value", target.collection],
    }[cell.action]
    if cell.action == "push":
        out.with_suffix(".in").write_bytes(os.urandom(3000) + cell.id.encode())
    env = {**os.environ, "SREG_TOKEN": world.tokens[cell.role] or ""}
    command = [str(binary), args[0], "-url", world.registry.url, *args[1:]]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    happened = {
        "push": lambda: image_count(world, target.collection, target.container) == 1,
        "pull": lambda: out.exists() and out.read_bytes() == world.data[cell.visibility],
        "delete_image": lambda: image_count(world, target.collection, target.container) == 0,
        "search": lambda: (
            result.returncode == 0 and target.collection in [c["name"] for c in json.loads(result.stdout)["collection"]]
        ),
    }[cell.action]()
    return Run(result.returncode, result.stdout + result.stderr, happened)


def run_sregistry_cli(world: World, cell: Cell, target: Target, home: Path) -> Run:
    home.mkdir(parents=True)
    secrets = home / ".sregistry"
    settings = {"base": world.registry.url, "username": USER_OF[cell.role], "token": world.tokens[cell.role]}
    secrets.write_text(json.dumps({"SREGISTRY_CLIENT": "registry", "registry": settings}))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SREGISTRY_")},
        "SREGISTRY_CLIENT": "registry",
        "SREGISTRY_CLIENT_SECRETS": str(secrets),
        "SREGISTRY_DISABLE": "true",
        "HOME": str(home),
        "NO_PROXY": "127.0.0.1,localhost",
    }
    name = f"{target.collection}/{target.container}"
    image = home / "image.sif"
    image.write_bytes(os.urandom(3000) + cell.id.encode())
    args = {
        "push": ["push", "--name", name, "--tag", "latest", str(image)],
        "pull": ["pull", f"{name}:latest"],
        "delete_image": ["delete", "--force", f"{name}:latest"],
    }[cell.action]
    result = subprocess.run([str(SREGISTRY), *args], cwd=home, env=env, capture_output=True, text=True, timeout=120)
    pulled = home / f"{target.collection}-{target.container}:latest.sif"
    happened = {
        "push": lambda: image_count(world, target.collection, target.container) == 1,
        "pull": lambda: pulled.exists() and pulled.read_bytes() == world.data[cell.visibility],
        "delete_image": lambda: image_count(world, target.collection, target.container) == 0,
    }[cell.action]()
    return Run(result.returncode, result.stdout + result.stderr, happened)


@pytest.fixture(scope="module")
def library_client_runs(world: World, libclient_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("libclient")
    targets = {cell: target_for(world, "go", cell.role, cell.action, cell.visibility) for cell in LIBRARY_CLIENT_CELLS}
    with ThreadPoolExecutor(8) as pool:
        runs = {
            cell: pool.submit(run_library_client, world, libclient_bin, cell, targets[cell], out / cell.id)
            for cell in LIBRARY_CLIENT_CELLS
        }
        return {cell: run.result() for cell, run in runs.items()}


@pytest.fixture(scope="module")
def sregistry_cli_runs(world: World, tmp_path_factory: pytest.TempPathFactory) -> dict:
    homes = tmp_path_factory.mktemp("sregistry-cli")
    targets = {cell: target_for(world, "cli", cell.role, cell.action, cell.visibility) for cell in SREGISTRY_CLI_CELLS}
    with ThreadPoolExecutor(8) as pool:
        runs = {
            cell: pool.submit(run_sregistry_cli, world, cell, targets[cell], homes / cell.id)
            for cell in SREGISTRY_CLI_CELLS
        }
        return {cell: run.result() for cell, run in runs.items()}


# What each client prints for each kind of refusal (and sregistry-cli for each success).
LIBRARY_CLIENT_SAYS = {
    Outcome.HIDDEN: "not found",
    Outcome.DENIED: "403 Forbidden",
    Outcome.TAKEN: "409 Conflict",
    Outcome.LOGIN: "401 Unauthorized",
    Outcome.BAD_CREDENTIAL: "401 Unauthorized",
}
SREGISTRY_CLI_DONE = {"push": "Upload Complete", "pull": "Success!", "delete_image": "Response 204"}
SREGISTRY_CLI_SAYS = {
    Outcome.HIDDEN: ("Not Found: 404",),
    Outcome.DENIED: ("403",),
    Outcome.TAKEN: ("is taken",),
    Outcome.BAD_CREDENTIAL: ("Unauthorized: 401",),
}


@pytest.mark.slow
@pytest.mark.parametrize("cell", LIBRARY_CLIENT_CELLS, ids=lambda c: c.id)
def test_library_client_cell(library_client_runs: dict, cell: Cell):
    run = library_client_runs[cell]
    result = cell.outcome
    assert run.happened is (result is Outcome.ALLOWED), run.output
    if result is Outcome.ALLOWED or cell.action in LISTINGS:
        assert run.returncode == 0, run.output
    else:
        assert run.returncode == 1, run.output
        assert LIBRARY_CLIENT_SAYS[result] in run.output


@pytest.mark.slow
@pytest.mark.parametrize("cell", SREGISTRY_CLI_CELLS, ids=lambda c: c.id)
def test_sregistry_cli_cell(sregistry_cli_runs: dict, cell: Cell):
    run = sregistry_cli_runs[cell]
    result = cell.outcome
    assert run.happened is (result is Outcome.ALLOWED), run.output
    if result is Outcome.ALLOWED:
        assert run.returncode == 0, run.output
        assert SREGISTRY_CLI_DONE[cell.action] in run.output
    else:
        assert all(said in run.output for said in SREGISTRY_CLI_SAYS[result]), run.output
