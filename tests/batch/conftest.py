"""Fixtures for the batch tests: a folder of the pinned photos, a clip made from one of them, and bad files.

The folder is what issue 16's "done when" names: the pinned photos plus a clip made from them, with a
corrupt image (garbage bytes under a .jpg name) and a truncated MP4 (its index cut off) that must come
out as error rows, and a photo with an EXIF orientation tag.
"""
from __future__ import annotations

import shutil
import struct
from pathlib import Path

import cv2
import pytest

from edgepose import assets
from edgepose.clips import make_clip, write_clip

CLIP_FRAMES = 6


def with_exif_orientation(jpeg: bytes, orientation: int = 6) -> bytes:
    """The JPEG with an EXIF block saying "rotate" (6: 90 degrees clockwise), as phones write them."""
    exif = (b"Exif\x00\x00II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 1)
            + struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack("<I", 0))
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif + jpeg[2:]


def make_dataset(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in assets.PHOTO_PERSON_BOXES:
        src = assets.fetch_asset(name)
        shutil.copy(src, folder / src.name)
    bus = cv2.imread(str(assets.fetch_asset("bus")), cv2.IMREAD_COLOR)
    clip = folder / "clips" / "bus_pan.mp4"
    clip.parent.mkdir()
    write_clip(make_clip(bus, "pan", frames=CLIP_FRAMES), clip)
    # cv2.imread turns it upright (ray.data.read_images would not): both engines must, as a serial loop does.
    (folder / "phone_rotated.jpg").write_bytes(with_exif_orientation(assets.fetch_asset("grace_hopper").read_bytes()))
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG " * 16)
    data = clip.read_bytes()
    (folder / "clips" / "truncated.mp4").write_bytes(data[: len(data) // 2])
    (folder / "notes.md").write_text("not an image: ignored in a folder")
    return folder


@pytest.fixture(scope="session")
def dataset(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("batch") / "data")


@pytest.fixture(scope="session")
def pipeline_config():
    """The default pipeline's config, models resolved (converted once into the cache)."""
    from edgepose.batch import BatchConfig

    return BatchConfig().resolved()


@pytest.fixture(scope="session")
def local_run(dataset, tmp_path_factory, pipeline_config):
    """One run of the local engine with 2 workers over the dataset: (summary, table)."""
    from edgepose.batch import read_results, run_batch

    out = tmp_path_factory.mktemp("batch-out") / "local"
    summary = run_batch([dataset], out, config=pipeline_config, workers=2)
    return summary, read_results(out)


@pytest.fixture
def small_folder(tmp_path):
    """small_folder({"crashme.png": "astronaut", ...}): a folder with pinned photos under new names."""
    def make(names: dict[str, str]) -> Path:
        folder = tmp_path / "in"
        folder.mkdir()
        for new, photo in names.items():
            shutil.copy(assets.fetch_asset(photo), folder / new)
        return folder
    return make
