"""A registry with something to look at: people in a team, public and private collections of real SIF
images, so that the Lab panel has collections to list, containers to open and images to pull.

alice (who uses JupyterLab in the tests) and bob are in carol's team ``imaging``; dave is in no team.
bob owns ``bob-tools``, which alice may see but not push to."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.gotools import make_sif

API = "/api/v1"

DEFFILE = """Bootstrap: docker
From: alpine:3.20

%post
    apk add --no-cache samtools

%labels
    Maintainer alice
"""


@dataclass
class Seeded:
    """Tokens of the seeded people and the SIF files that were pushed, by ``collection/container:tag``."""

    tokens: dict[str, str]
    images: dict[str, Path] = field(default_factory=dict)


def push(client: httpx.Client, path: Path, ref: str) -> dict:
    """Push ``path`` as ``collection/container:tag`` through the native API and return the image."""
    name, tag = ref.split(":")
    collection, container = name.split("/")
    data = path.read_bytes()
    digest = "sha256." + hashlib.sha256(data).hexdigest()
    response = client.post(
        f"{API}/collections/{collection}/containers/{container}/images",
        params={"digest": digest, "tag": tag},
        content=data,
    )
    assert response.status_code in (200, 201), response.text
    return response.json()


def seed(registry, mksif: Path, work: Path) -> Seeded:
    """Fill ``registry`` (a tests.conftest.LiveRegistry) and return who is who."""
    tokens = {
        "alice": registry.add_user("alice"),
        "bob": registry.add_user("bob"),
        "carol": registry.add_user("carol", staff=True),
        "dave": registry.add_user("dave"),
    }
    alice, bob, carol = (registry.client(tokens[name]) for name in ("alice", "bob", "carol"))
    for response in (
        carol.post(f"{API}/teams", json={"name": "imaging", "open": True}),
        alice.post(f"{API}/teams/imaging/join"),
        bob.post(f"{API}/teams/imaging/join"),
    ):
        assert response.status_code in (200, 201, 204), response.text
    seeded = Seeded(tokens)
    work.mkdir(parents=True, exist_ok=True)
    images = [
        ("biocontainers/samtools:1.19", alice, {"org.label-schema.name": "samtools", "version": "1.19"}, True),
        ("biocontainers/samtools:latest", alice, None, False),
        ("biocontainers/bwa:0.7.17", alice, {"org.label-schema.name": "bwa"}, False),
        ("lab-private/notebook:2026.11", alice, {"purpose": "analysis"}, False),
        ("bob-tools/fastqc:0.12", bob, None, False),
    ]
    for seed_number, (ref, client, labels, signed) in enumerate(images, start=1):
        path = make_sif(
            mksif,
            work / (ref.replace("/", "_").replace(":", "_") + ".sif"),
            size=64 * 1024 * seed_number,
            seed=seed_number,
            deffile=DEFFILE,
            labels=labels,
            signed=signed,
        )
        push(client, path, ref)
        seeded.images[ref] = path
    for response in (
        alice.patch(f"{API}/collections/lab-private", json={"private": True, "description": "Alice's analysis images"}),
        alice.patch(f"{API}/collections/biocontainers", json={"description": "Bioinformatics tools as SIF images"}),
        bob.put(f"{API}/collections/biocontainers/star"),
    ):
        assert response.status_code in (200, 201, 204), response.text
    return seeded
