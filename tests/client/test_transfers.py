"""Pushes and pulls that survive cut connections, and stay flat in memory whatever the file size.

The cuts are real: a TCP proxy on loopback closes both sockets after a number of bytes.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sregistry_jupyter.client import IntegrityError, RegistryClient, RegistryUnavailable, transfers
from tests.conftest import blobs_on_disk


def test_a_download_cut_midway_resumes_with_a_range(registry, connect, sif, cutting_proxy, tmp_path: Path) -> None:
    token = registry.add_user("alice")
    source = sif("big", size=6 << 20)
    connect(registry.url, token).push(source, "lab/tools:v1")
    cutting_proxy.cut_after(2 << 20, "down")
    cutting_proxy.cut_after(1 << 20, "down")
    through_proxy = connect(cutting_proxy.url, token)
    seen: list[int] = []
    pulled = through_proxy.pull("lab/tools:v1", tmp_path / "out.sif", progress=lambda done, total: seen.append(done))
    assert pulled.read_bytes() == source.read_bytes()
    assert cutting_proxy.made == 2
    drops = [later for earlier, later in itertools.pairwise(seen) if later < earlier]
    assert drops == []  # resumed where it stopped, never from zero
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_an_interrupted_pull_is_resumed_by_the_next_one(
    registry, sif, cutting_proxy, tmp_path: Path, monkeypatch
) -> None:
    token = registry.add_user("alice")
    source = sif("big", size=4 << 20)
    RegistryClient(registry.url, token).push(source, "lab/tools:v1")
    monkeypatch.setattr(transfers, "RETRIES", 0)
    cutting_proxy.cut_after(3 << 20, "down")
    client = RegistryClient(cutting_proxy.url, token)
    with pytest.raises(RegistryUnavailable):
        client.pull("lab/tools:v1", tmp_path / "out.sif")
    partial = [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
    assert len(partial) == 1 and 0 < partial[0].stat().st_size < source.stat().st_size
    assert not (tmp_path / "out.sif").exists()

    kept = partial[0].stat().st_size
    seen: list[int] = []
    client.pull("lab/tools:v1", tmp_path / "out.sif", progress=lambda done, total: seen.append(done))
    assert seen[0] == kept and min(seen) == kept  # only the missing bytes travelled
    assert (tmp_path / "out.sif").read_bytes() == source.read_bytes()
    assert not partial[0].exists()


def test_a_damaged_partial_file_is_detected_and_removed(registry, sif, tmp_path: Path) -> None:
    token = registry.add_user("alice")
    source = sif("img", size=1 << 20)
    client = RegistryClient(registry.url, token)
    image = client.push(source, "lab/tools:v1")
    folder = tmp_path / "pulled"
    folder.mkdir()
    partial = folder / f".out.sif.{image.digest[7:23]}.part"
    partial.write_bytes(b"\0" * 1000)  # not the image's first bytes: the digest check must catch it
    with pytest.raises(IntegrityError):
        client.pull("lab/tools:v1", folder / "out.sif")
    assert list(folder.iterdir()) == []
    assert client.pull("lab/tools:v1", folder / "out.sif").read_bytes() == source.read_bytes()


def test_an_upload_cut_midway_is_sent_again_and_lands_once(registry, connect, sif, cutting_proxy) -> None:
    token = registry.add_user("alice")
    source = sif("up", size=3 << 20)
    cutting_proxy.cut_after(1 << 20, "up")
    image = connect(cutting_proxy.url, token).push(source, "lab/tools:v1")
    assert cutting_proxy.made == 1
    assert image.size == source.stat().st_size
    assert blobs_on_disk(registry) == [image.digest[7:]]
    assert registry.client(token).get("/api/v1/collections/lab/containers/tools").json()["tags"][0]["name"] == "v1"


def test_an_upload_that_never_gets_through_leaves_nothing(registry, sif, cutting_proxy, monkeypatch) -> None:
    token = registry.add_user("alice")
    registry.client(token).post("/api/v1/collections", json={"name": "lab"})
    monkeypatch.setattr(transfers, "RETRIES", 1)
    for _ in range(3):
        cutting_proxy.cut_after(200_000, "up")
    with pytest.raises(RegistryUnavailable):
        RegistryClient(cutting_proxy.url, token).push(sif("up", size=1 << 20), "lab/tools:v1")
    assert blobs_on_disk(registry) == []
    assert registry.client(token).get("/api/v1/collections/lab").json()["containers_list"] == []


MEMORY_PROBE = textwrap.dedent(
    """
    import asyncio, resource, sys
    from sregistry_jupyter.client import AsyncRegistryClient, RegistryClient
    kind, url, token, source, target = sys.argv[1:6]

    async def both():
        async with AsyncRegistryClient(url, token) as client:
            await client.push(source, "big/image:v1")
            await client.pull("big/image:v1", target)

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if kind == "async":
        asyncio.run(both())
    else:
        with RegistryClient(url, token) as client:
            client.push(source, "big/image:v1")
            client.pull("big/image:v1", target)
    print(before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # client memory does not depend on the engine
@pytest.mark.parametrize("kind", ["sync", "async"])
def test_one_gib_goes_up_and_down_with_flat_memory(registry, kind: str, tmp_path: Path) -> None:
    """Peak RSS of a client process that pushes and pulls 1 GiB grows by less than 64 MiB."""
    source = tmp_path / "one-gib.sif"
    with source.open("wb") as handle:
        block = os.urandom(1 << 20)
        for _ in range(1024):
            handle.write(block)
    token = registry.add_user("alice")
    target = tmp_path / "back.sif"
    result = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, kind, registry.url, token, str(source), str(target)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    before_kib, after_kib = map(int, result.stdout.split())
    assert after_kib - before_kib < 64 * 1024, (before_kib, after_kib)
    assert target.stat().st_size == 1 << 30
