"""A JPEG-packed copy of a pre-decoded corpus, for moving it to a training machine.

``make data`` writes ``corpus.npz`` (~510 MB of uint8 frames, 260 MB zip-compressed). To train on a machine that is reached
over a small transfer (a lent GPU: 64 MiB per call) and that has no PyAV, :func:`pack_corpus` stores every
frame as a JPEG (quality 90, 4:2:0 chroma like the source videos: ~13x smaller, ~42 dB PSNR against the
original, far above the ~30 dB the model reconstructs) in an ``.npz`` that :class:`vcodec.train.corpus.Corpus`
reads like the raw one. Pillow decodes it (numpy + Pillow only).

Layout of the packed file: for each array key ``K`` of the raw corpus (``train/...``, ``photo/...``,
``heldout/...``), ``jpeg/K`` is the concatenated JPEG bytes of its frames (uint8) and ``jpeg_index/K`` is
int64 ``[T, H, W, off_0, ..., off_T]`` (a photo has ``T = 0``: one frame, no time axis);
``manifest.json`` is copied as is.
"""
from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

PACKED_PREFIX = "jpeg/"
INDEX_PREFIX = "jpeg_index/"


def pack_array(frames: np.ndarray, quality: int = 90) -> tuple[np.ndarray, np.ndarray]:
    """(T, H, W, 3) or (H, W, 3) uint8 -> (JPEG bytes as uint8, index)."""
    from PIL import Image
    stack = frames if frames.ndim == 4 else frames[None]
    blobs = []
    for f in stack:
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(f)).save(buf, "JPEG", quality=quality, subsampling=2)
        blobs.append(buf.getvalue())
    offsets = np.cumsum([0] + [len(b) for b in blobs])
    t = len(stack) if frames.ndim == 4 else 0
    index = np.array([t, stack.shape[1], stack.shape[2], *offsets], dtype=np.int64)
    return np.frombuffer(b"".join(blobs), dtype=np.uint8), index


def unpack_array(blob: np.ndarray, index: np.ndarray) -> np.ndarray:
    from PIL import Image
    t, h, w = (int(v) for v in index[:3])
    offsets = index[3:]
    frames = np.empty((max(t, 1), h, w, 3), dtype=np.uint8)
    for i in range(len(frames)):
        data = blob[offsets[i]:offsets[i + 1]].tobytes()
        frames[i] = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    return frames if t else frames[0]


def pack_corpus(src: str | Path, dst: str | Path, quality: int = 90) -> dict:
    """Write the packed copy of the raw corpus ``src`` to ``dst``; returns {"raw_bytes", "packed_bytes"}."""
    arrays, raw = {}, 0
    with np.load(src) as z:
        for key in z.files:
            if key == "manifest.json":
                arrays[key] = z[key]
                continue
            a = z[key]
            raw += a.nbytes
            arrays[PACKED_PREFIX + key], arrays[INDEX_PREFIX + key] = pack_array(a, quality)
    dst = Path(dst)
    with open(dst, "wb") as f:
        np.savez(f, **arrays)
    return {"raw_bytes": raw, "packed_bytes": dst.stat().st_size}


def unpack_entries(z, workers: int = 8) -> dict[str, np.ndarray]:
    """All packed arrays of an open ``np.load`` result, decoded (threads: Pillow releases the GIL)."""
    keys = [k[len(PACKED_PREFIX):] for k in z.files if k.startswith(PACKED_PREFIX)]
    packed = [(z[PACKED_PREFIX + k], z[INDEX_PREFIX + k]) for k in keys]   # read here: the zip is not thread-safe
    with ThreadPoolExecutor(workers) as pool:
        return dict(zip(keys, pool.map(lambda p: unpack_array(*p), packed)))


def main(argv=None) -> None:
    import argparse
    p = argparse.ArgumentParser(prog="python -m vcodec.train.packed", description=__doc__.split("\n\n")[0])
    p.add_argument("src", help="raw corpus .npz (make data)")
    p.add_argument("dst", help="packed corpus .npz to write")
    p.add_argument("--quality", type=int, default=90)
    args = p.parse_args(argv)
    r = pack_corpus(args.src, args.dst, args.quality)
    print(f"{args.dst}: {r['packed_bytes'] / 2**20:.1f} MiB ({r['raw_bytes'] / r['packed_bytes']:.1f}x smaller)")


if __name__ == "__main__":
    main()
