"""Tests of the SIF metadata reader against real SIF files written by the sylabs sif package."""

from __future__ import annotations

import json
import random
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from sregistry_jupyter.registry.sif import MAX_DESCRIPTORS, MAX_TEXT_OBJECT_SIZE, read_sif_metadata
from tests.gotools import make_sif

HEADER_SIZE = 128
DESCRIPTOR_SIZE = 585
HEADER_DESCRIPTORS_TOTAL = 88
HEADER_DESCRIPTORS_OFFSET = 96
HEADER_DESCRIPTORS_SIZE = 104
DESCRIPTOR_OFFSET_FIELD = 17
DESCRIPTOR_SIZE_FIELD = 25

DEFFILE = "Bootstrap: docker\nFrom: alpine:3.19\n\n%post\n    apk add --no-cache python3\n"
LABELS = {"org.label-schema.schema-version": "1.0", "maintainer": "Ada <ada@example.org>"}


def file_reader(path: Path) -> Callable[[int, int], bytes]:
    """A read_at over a real file, as the registry's storage would provide."""

    def read_at(offset: int, length: int) -> bytes:
        with path.open("rb") as f:
            f.seek(offset)
            return f.read(length)

    return read_at


def bytes_reader(data: bytes, calls: list[tuple[int, int]] | None = None) -> Callable[[int, int], bytes]:
    """A read_at over ``data`` that fails the test on any read outside it."""

    def read_at(offset: int, length: int) -> bytes:
        if calls is not None:
            calls.append((offset, length))
        assert offset >= 0 and length >= 0, (offset, length)
        assert offset + length <= len(data), f"read [{offset}, {offset + length}) past end {len(data)}"
        return data[offset : offset + length]

    return read_at


def read_bytes(data: bytes) -> dict | None:
    return read_sif_metadata(bytes_reader(data), size=len(data))


def read_file(path: Path) -> dict | None:
    return read_sif_metadata(file_reader(path))


def descriptor_table_offset(data: bytes) -> int:
    return struct.unpack_from("<q", data, HEADER_DESCRIPTORS_OFFSET)[0]


def patch_descriptor(data: bytearray, index: int, *, offset: int, size: int) -> None:
    start = descriptor_table_offset(data) + index * DESCRIPTOR_SIZE
    struct.pack_into("<q", data, start + DESCRIPTOR_OFFSET_FIELD, offset)
    struct.pack_into("<q", data, start + DESCRIPTOR_SIZE_FIELD, size)


def test_reads_full_amd64_image(mksif: Path, tmp_path: Path) -> None:
    path = make_sif(mksif, tmp_path / "full.sif", size=10000, deffile=DEFFILE, labels=LABELS)

    md = read_file(path)

    assert md is not None
    assert md["sif_version"] == "01"
    assert md["arch"] == "amd64"
    assert len(md["id"]) == 36 and md["id"] != "00000000-0000-0000-0000-000000000000"
    assert md["created_at"] > 1_600_000_000
    assert md["deffile"] == DEFFILE
    assert md["deffile_truncated"] is False
    assert md["labels"] == LABELS
    assert md["labels_truncated"] is False
    assert md["signed"] is False and md["signatures"] == 0
    assert md["partitions"] == [
        {
            "id": 3,
            "name": "",
            "fstype": "Squashfs",
            "parttype": "Primary System",
            "primary": True,
            "arch": "amd64",
            "size": 10000,
        }
    ]
    assert [(o["id"], o["type"]) for o in md["objects"]] == [(1, "Def.FILE"), (2, "JSON.Labels"), (3, "FS")]
    assert [o["size"] for o in md["objects"]] == [len(DEFFILE.encode()), len(json.dumps(LABELS)), 10000]
    assert json.loads(json.dumps(md, allow_nan=False)) == md


def test_file_and_bytes_readers_agree(mksif: Path, tmp_path: Path) -> None:
    path = make_sif(mksif, tmp_path / "same.sif", deffile=DEFFILE, labels=LABELS, signed=True)

    assert read_bytes(path.read_bytes()) == read_file(path)


@pytest.mark.parametrize("arch", ["amd64", "arm64", "ppc64le"])
def test_reads_partition_arch(mksif: Path, tmp_path: Path, arch: str) -> None:
    md = read_file(make_sif(mksif, tmp_path / f"{arch}.sif", arch=arch))

    assert md is not None
    assert md["arch"] == arch
    assert [p["arch"] for p in md["partitions"]] == [arch]


def test_image_without_deffile_or_labels(mksif: Path, tmp_path: Path) -> None:
    md = read_file(make_sif(mksif, tmp_path / "bare.sif", size=123))

    assert md is not None
    assert md["deffile"] is None and md["labels"] is None
    assert [(o["id"], o["type"], o["size"]) for o in md["objects"]] == [(1, "FS", 123)]


@pytest.mark.parametrize("signed", [True, False])
def test_signed_flag(mksif: Path, tmp_path: Path, signed: bool) -> None:
    md = read_file(make_sif(mksif, tmp_path / "s.sif", deffile=DEFFILE, signed=signed))

    assert md is not None
    assert md["signed"] is signed
    assert md["signatures"] == (1 if signed else 0)
    assert ("Signature" in [o["type"] for o in md["objects"]]) is signed
    assert md["deffile"] == DEFFILE


def test_seed_and_size_give_distinct_payloads(mksif: Path, tmp_path: Path) -> None:
    a = make_sif(mksif, tmp_path / "a.sif", size=50_000, seed=1).read_bytes()
    b = make_sif(mksif, tmp_path / "b.sif", size=50_000, seed=2).read_bytes()

    assert a[-50_000:] != b[-50_000:]
    for data in (a, b):
        md = read_bytes(data)
        assert md is not None and md["partitions"][0]["size"] == 50_000


@pytest.mark.parametrize("labels", ["not json", "[1, 2]", '"text"', '{"a": NaN}', '{"a": 1e400}', "{" * 5000])
def test_labels_that_are_not_a_storable_object_become_none(mksif: Path, tmp_path: Path, labels: str) -> None:
    md = read_file(make_sif(mksif, tmp_path / "l.sif", deffile=DEFFILE, labels=labels))

    assert md is not None
    assert md["labels"] is None
    assert md["deffile"] == DEFFILE
    json.dumps(md, allow_nan=False)


def test_labels_strings_are_made_storable(mksif: Path, tmp_path: Path) -> None:
    labels = '{"key\\u0000": "lone \\ud800 surrogate", "nested": {"list": ["ok", 1, 2.5, null]}}'

    md = read_file(make_sif(mksif, tmp_path / "nul.sif", labels=labels))

    assert md is not None
    assert md["labels"] == {"key\ufffd": "lone ? surrogate", "nested": {"list": ["ok", 1, 2.5, None]}}
    json.dumps(md).encode("utf-8")


def test_large_deffile_is_capped_and_marked_truncated(mksif: Path, tmp_path: Path) -> None:
    deffile = "# " + "x" * (MAX_TEXT_OBJECT_SIZE + 5000) + "\n"

    md = read_file(make_sif(mksif, tmp_path / "big.sif", deffile=deffile, labels=LABELS))

    assert md is not None
    assert md["deffile_truncated"] is True
    assert md["deffile"] == deffile[:MAX_TEXT_OBJECT_SIZE]
    assert md["labels"] == LABELS


def test_invalid_utf8_deffile_is_decoded_with_replacement(mksif: Path, tmp_path: Path) -> None:
    path = make_sif(mksif, tmp_path / "utf.sif", deffile="Bootstrap: library\nFrom: alpine\n")
    data = bytearray(path.read_bytes())
    start = data.index(b"Bootstrap")
    data[start : start + 4] = b"\xff\x00\xfe\x00"

    md = read_bytes(bytes(data))

    assert md is not None
    assert md["deffile"].startswith("\ufffd\ufffd\ufffd\ufffdstrap: library")


@pytest.mark.parametrize(
    "data",
    [b"", b"#!/bin/sh\necho hello\n", bytes(4096), random.Random(7).randbytes(8192)],
    ids=["empty", "script", "zeros", "random"],
)
def test_non_sif_is_none(data: bytes) -> None:
    assert read_bytes(data) is None
    assert read_sif_metadata(lambda offset, length: data[offset : offset + length]) is None


def test_truncated_header_is_none(mksif: Path, tmp_path: Path) -> None:
    data = make_sif(mksif, tmp_path / "t.sif").read_bytes()

    assert read_bytes(data[: HEADER_SIZE - 1]) is None
    assert read_bytes(data[:HEADER_SIZE]) is not None


def test_header_only_sif_has_no_objects(mksif: Path, tmp_path: Path) -> None:
    data = make_sif(mksif, tmp_path / "h.sif", deffile=DEFFILE, labels=LABELS).read_bytes()

    md = read_bytes(data[:HEADER_SIZE])

    assert md is not None
    assert md["arch"] == "amd64"
    assert md["objects"] == [] and md["partitions"] == []
    assert md["deffile"] is None and md["labels"] is None


def test_descriptor_table_cut_mid_record(mksif: Path, tmp_path: Path) -> None:
    data = make_sif(mksif, tmp_path / "c.sif", deffile=DEFFILE, labels=LABELS).read_bytes()
    cut = descriptor_table_offset(data) + DESCRIPTOR_SIZE + 100

    md = read_bytes(data[:cut])

    assert md is not None
    assert [o["type"] for o in md["objects"]] == ["Def.FILE"]
    assert md["deffile"] == ""
    assert md["deffile_truncated"] is True
    assert md["arch"] == "amd64"


@pytest.mark.parametrize("offset", [2**63 - 1, 2**62, -1, -(2**63)])
def test_hostile_object_offsets_and_sizes(mksif: Path, tmp_path: Path, offset: int) -> None:
    path = make_sif(mksif, tmp_path / "o.sif", deffile=DEFFILE, labels=LABELS, signed=True)
    data = bytearray(path.read_bytes())
    patch_descriptor(data, 0, offset=offset, size=2**63 - 1)
    patch_descriptor(data, 1, offset=offset, size=-5)
    path.write_bytes(data)
    calls: list[tuple[int, int]] = []

    md = read_sif_metadata(bytes_reader(bytes(data), calls), size=len(data))

    assert md is not None
    assert md["deffile"] == "" and md["deffile_truncated"] is True
    assert md["labels"] is None
    assert md["signed"] is True and md["arch"] == "amd64"
    assert max(length for _, length in calls) <= max(MAX_TEXT_OBJECT_SIZE, MAX_DESCRIPTORS * DESCRIPTOR_SIZE)
    assert read_file(path) == md


def test_hostile_descriptor_table(mksif: Path, tmp_path: Path) -> None:
    data = bytearray(make_sif(mksif, tmp_path / "d.sif", deffile=DEFFILE).read_bytes())
    struct.pack_into("<q", data, HEADER_DESCRIPTORS_TOTAL, 2**62)
    struct.pack_into("<q", data, HEADER_DESCRIPTORS_SIZE, 2**63 - 1)
    calls: list[tuple[int, int]] = []

    md = read_sif_metadata(bytes_reader(bytes(data), calls), size=len(data))

    assert md is not None and md["deffile"] == DEFFILE
    assert calls and all(length <= MAX_DESCRIPTORS * DESCRIPTOR_SIZE for _, length in calls)

    struct.pack_into("<q", data, HEADER_DESCRIPTORS_OFFSET, 2**62)
    path = tmp_path / "far.sif"
    path.write_bytes(data)

    md = read_file(path)

    assert md is not None and md["objects"] == [] and md["arch"] == "amd64"


def test_descriptor_count_is_capped(mksif: Path, tmp_path: Path) -> None:
    data = bytearray(make_sif(mksif, tmp_path / "many.sif").read_bytes())
    table = descriptor_table_offset(data)
    record = data[table : table + DESCRIPTOR_SIZE]
    count = MAX_DESCRIPTORS + 50
    data[table:] = record * count
    struct.pack_into("<qq", data, HEADER_DESCRIPTORS_TOTAL, count, table)
    struct.pack_into("<q", data, HEADER_DESCRIPTORS_SIZE, count * DESCRIPTOR_SIZE)

    md = read_bytes(bytes(data))

    assert md is not None
    assert len(md["objects"]) == MAX_DESCRIPTORS
    assert len(md["partitions"]) == MAX_DESCRIPTORS


@pytest.mark.parametrize("seed", range(40))
def test_garbage_after_magic(seed: int) -> None:
    rng = random.Random(seed)
    head = bytes(32) + b"SIF_MAGIC\x00"
    data = head + rng.randbytes(rng.choice([0, 50, HEADER_SIZE, 4000, 70_000]))

    md = read_bytes(data)

    assert (md is None) == (len(data) < HEADER_SIZE)
    if md is not None:
        json.dumps(md, allow_nan=False).encode("utf-8")


@pytest.mark.parametrize("seed", range(40))
def test_corrupted_real_sif(mksif: Path, tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    data = bytearray(
        make_sif(mksif, tmp_path / "x.sif", deffile=DEFFILE, labels=LABELS, signed=seed % 2 == 0).read_bytes()
    )
    table = descriptor_table_offset(data)
    for _ in range(rng.randint(1, 40)):
        in_header = rng.randrange(42, HEADER_SIZE)
        in_table = rng.randrange(table, table + 4 * DESCRIPTOR_SIZE)
        position = rng.choice([in_header, in_table])
        data[position] = rng.randrange(256)

    md = read_bytes(bytes(data))

    assert md is not None
    json.dumps(md, allow_nan=False).encode("utf-8")
