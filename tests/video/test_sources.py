"""Frame sources: every kind in SOURCE_KINDS, and the bad inputs each must explain.

Real files throughout: videos written by cv2.VideoWriter from the pinned photos, image folders
written by cv2.imwrite, a corrupt and a truncated MP4 made from a real one.
"""
from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from edgepose.errors import (CameraError, EmptySourceError, FrameSizeError, ImageError, SourceError,
                             VideoError)
from edgepose.sources import (SOURCE_KINDS, ArraySource, CameraSource, ClipSource, FrameSource, ImageSource,
                              SourceKind, VideoSource, open_source)


@pytest.fixture(scope="module")
def video(footage):
    return footage("bus:pan")


@pytest.fixture()
def folder(tmp_path, video):
    d = tmp_path / "shots"
    d.mkdir()
    for i in (10, 2, 1):  # natural order: 1, 2, 10 (not 1, 10, 2)
        cv2.imwrite(str(d / f"frame_{i}.png"), video.frames[i])
    (d / "notes.txt").write_text("not an image")
    return d


def frames_of(source, **kw):
    with open_source(source, **kw) as s:
        return list(s), s


def test_every_kind_claims_its_example(tmp_path, video, folder):
    examples = {"clip": "clip:bus:pan", "camera": 0, "images": str(folder), "video": str(video.path),
                "arrays": [video.frames[0]]}
    assert set(examples) == set(SOURCE_KINDS)
    for name, example in examples.items():
        claimed = next(k.name for k in SOURCE_KINDS.values() if k.claims(example))
        assert claimed == name, (name, example)
    assert next(k.name for k in SOURCE_KINDS.values() if k.claims("3")) == "camera"
    assert next(k.name for k in SOURCE_KINDS.values() if k.claims(str(folder / "*.png"))) == "images"
    assert next(k.name for k in SOURCE_KINDS.values() if k.claims([str(folder / "frame_1.png")])) == "images"
    assert next(k.name for k in SOURCE_KINDS.values() if k.claims(iter([video.frames[0]]))) == "arrays"


def test_video_file(video):
    frames, source = frames_of(video.path)
    assert isinstance(source, VideoSource) and source.fps == 30.0 and source.count == len(video.clip)
    assert len(frames) == len(video.clip) and source.size == video.clip.size
    assert [f.index for f in frames] == list(range(len(frames)))
    assert frames[3].time == pytest.approx(3 / 30)
    np.testing.assert_array_equal(frames[7].image, video.frames[7])
    _, source = frames_of(video.path, fps=10)
    assert source.fps == 10 and frames_of(video.path, fps=10)[0][5].time == pytest.approx(0.5)


def test_image_folder_glob_and_list(folder):
    frames, source = frames_of(folder)
    assert isinstance(source, ImageSource) and [p.name for p in source.paths] == [
        "frame_1.png", "frame_2.png", "frame_10.png"]
    assert len(frames) == 3 and frames[2].time == pytest.approx(2 / 30)
    frames, _ = frames_of(str(folder / "frame_*.png"), fps=5)
    assert len(frames) == 3 and frames[1].time == pytest.approx(0.2)
    frames, _ = frames_of([folder / "frame_2.png", folder / "frame_1.png"])
    assert len(frames) == 2
    frames, _ = frames_of(folder / "frame_2.png")  # one image is a one-frame stream
    assert len(frames) == 1


def test_arrays(video):
    frames, source = frames_of(video.frames[:4])
    assert isinstance(source, ArraySource) and source.count == 4 and len(frames) == 4
    frames, source = frames_of(f for f in video.frames[:3])
    assert source.count is None and len(frames) == 3
    frames, _ = frames_of(video.frames[0])  # a single frame
    assert len(frames) == 1
    frames, _ = frames_of(np.stack(video.frames[:2]))  # an (N, H, W, 3) stack
    assert len(frames) == 2


def test_clip():
    frames, source = frames_of("clip:bus:zoom")
    assert isinstance(source, ClipSource) and len(frames) == 45 and source.size == (404, 540)
    with pytest.raises(SourceError, match="unknown photo 'nobody'.*astronaut"):
        open_source("clip:nobody:pan")
    with pytest.raises(SourceError, match="unknown clip motion 'fly'.*pan"):
        open_source("clip:bus:fly")


def test_missing_camera_says_what_to_do():
    with pytest.raises(CameraError, match=r"camera 99 could not be opened .*index of a connected camera"):
        open_source(99)


@pytest.mark.parametrize("make, error, message", [
    (lambda d: d / "missing.mp4", VideoError, "not found"),
    (lambda d: _write(d / "garbage.mp4", os.urandom(4096)), VideoError, "corrupt or truncated.*ffmpeg -i"),
    (lambda d: _write(d / "notes.avi", b"plain text, not a video"), VideoError, "cannot open"),
])
def test_unreadable_or_corrupt_video(tmp_path, make, error, message):
    with pytest.raises(error, match=message):
        open_source(make(tmp_path))
    with pytest.raises(VideoError, match="is a folder"):
        open_source(tmp_path, kind="video")


def test_truncated_video(tmp_path, video):
    data = video.path.read_bytes()
    cut = _write(tmp_path / "cut.mp4", data[: len(data) // 2])  # mp4v keeps its index at the end
    with pytest.raises(VideoError, match="truncated"):
        open_source(cut)


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("make", [
    lambda d: (d / "empty").mkdir() or d / "empty",  # an empty folder
    lambda d: str(d / "nothing_*.jpg"),  # a glob matching nothing
    lambda d: [],  # an empty iterable
    lambda d: _write(d / "zero.mp4", b""),  # a 0-byte file
    lambda d: _empty_avi(d / "header_only.avi"),  # a video with a header and no frame
])
def test_zero_frames(tmp_path, make):
    with pytest.raises(EmptySourceError, match="no frames|gave no frames|0 bytes"):
        with open_source(make(tmp_path)) as source:
            list(source)


def _empty_avi(path):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (64, 48))
    writer.release()
    return path


def test_frame_size_change(tmp_path, video):
    a, b = video.frames[0], cv2.resize(video.frames[1], (300, 400))
    with pytest.raises(FrameSizeError, match=r"frame 1 .* is 300x400 but the stream started at 404x540.*resize"):
        list(open_source([a, b]))
    d = tmp_path / "mixed"
    d.mkdir()
    cv2.imwrite(str(d / "1.jpg"), a)
    cv2.imwrite(str(d / "2.jpg"), b)
    with pytest.raises(FrameSizeError):
        list(open_source(d))


def test_bad_frames_are_named(tmp_path, video):
    grey = cv2.cvtColor(video.frames[0], cv2.COLOR_BGR2GRAY)
    with pytest.raises(ImageError, match="frame 1 of .*grayscale"):
        list(open_source([video.frames[0], grey]))
    d = tmp_path / "broken"
    d.mkdir()
    cv2.imwrite(str(d / "1.png"), video.frames[0])
    (d / "2.png").write_bytes(b"not a png")
    with pytest.raises(ImageError, match=r"2\.png .*not an image OpenCV can read"):
        list(open_source(d))


def test_unknown_source_and_kind():
    with pytest.raises(SourceError, match="from a float; a source is clip:PHOTO:MOTION.*camera index.*a video file"):
        open_source(3.5)
    with pytest.raises(SourceError, match="unknown source kind 'tape'; kinds: clip, camera, images, video, arrays"):
        open_source("x.mp4", kind="tape")
    with pytest.raises(SourceError, match="fps"):
        open_source([np.zeros((4, 4, 3), np.uint8)], fps=0)


def test_a_new_kind_is_one_entry(monkeypatch):
    """Issue 15's promise: a new source kind is one entry in SOURCE_KINDS, nothing else."""

    class Noise(FrameSource):
        kind = "noise"

        def __init__(self, spec, *, fps=None):
            super().__init__(spec, fps=fps, count=3)

        def _frames(self):
            rng = np.random.default_rng(0)
            for _ in range(3):
                yield None, rng.integers(0, 255, (32, 48, 3), dtype=np.uint8)

    entry = SourceKind("noise", "noise:, random frames", lambda x: isinstance(x, str) and x.startswith("noise:"),
                       Noise)
    from edgepose import sources

    monkeypatch.setattr(sources, "SOURCE_KINDS", {"noise": entry, **SOURCE_KINDS})  # asked first
    frames, source = frames_of("noise:")
    assert source.kind == "noise" and len(frames) == 3 and source.size == (48, 32)


def test_camera_kind_is_a_class_with_the_shared_checks():
    assert issubclass(CameraSource, FrameSource) and SOURCE_KINDS["camera"].open is CameraSource
