"""Training data: a pre-decoded corpus file (numpy only; a JPEG-packed one needs Pillow) or video files decoded
with PyAV.

A sample is a clip (T, S, S, 3) uint8: a random crop of a stored run of frames, or a synthetic
pan/zoom over a still photo. All randomness comes from one ``numpy.random.Generator`` whose state
is saved in checkpoints, so a resumed run draws exactly the samples it would have drawn.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..colour import KB, KG, KR, rgb_to_ycbcr, ycbcr_to_rgb
from .packed import unpack_entries


class Corpus:
    def __init__(self, runs: list[np.ndarray], photos: list[np.ndarray], heldout: dict[str, np.ndarray],
                 manifest: dict | None = None):
        self.runs = runs          # each (T, H, W, 3) uint8
        self.photos = photos      # each (H, W, 3) uint8
        self.heldout = heldout    # name -> (17, h, w, 3) uint8, never used for training
        self.manifest = manifest or {}

    @classmethod
    def load(cls, paths: list[str | Path]) -> "Corpus":
        runs, photos, heldout, manifest = [], [], {}, {}
        for p in paths:
            p = Path(p)
            if p.suffix == ".npz":
                with np.load(p) as z:
                    entries = {k: z[k] for k in z.files if not k.startswith(("jpeg/", "jpeg_index/"))}
                    entries.update(unpack_entries(z))     # a JPEG-packed corpus (vcodec.train.packed)
                for k in sorted(entries):
                    if k.startswith("train/"):
                        runs.append(entries[k])
                    elif k.startswith("photo/"):
                        photos.append(entries[k])
                    elif k.startswith("heldout/"):
                        heldout[k.split("/", 1)[1]] = entries[k]
                    elif k == "manifest.json":
                        manifest = json.loads(bytes(entries[k]).decode())
            else:
                runs.extend(_decode_video_runs(p))
        if not runs and not photos:
            raise ValueError("no training clips or photos found in " + ", ".join(map(str, paths)))
        return cls(runs, photos, heldout, manifest)


def _decode_video_runs(path: Path, run_frames: int = 11, max_runs: int = 64) -> list[np.ndarray]:
    from ..data.decode import decode_frames, downscale_to_width
    frames, _ = decode_frames(path)
    frames = downscale_to_width(frames, 640)
    return [frames[s:s + run_frames] for s in range(0, max(1, len(frames) - run_frames + 1), run_frames)][:max_runs]


def ping_pong(n: int, t: int) -> np.ndarray:
    """Indices of ``t`` frames that play ``n`` frames forwards, backwards, forwards, ... (0 1 2 1 0 1 ...)."""
    if n == 1:
        return np.zeros(t, np.int64)
    period = np.concatenate([np.arange(n), np.arange(n - 2, 0, -1)])
    return period[np.arange(t) % len(period)]


def saturate(clip: np.ndarray, factor: float) -> np.ndarray:
    """``clip`` (..., 3) uint8 RGB with its colours ``factor`` times as far from their BT.709 luma (clipped to
    0..255): more saturated colours, the same brightness where nothing clips."""
    rgb = clip.astype(np.float32)
    luma = rgb @ np.array([KR, KG, KB], np.float32)
    out = luma[..., None] + factor * (rgb - luma[..., None])
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def rotate_hue(clip: np.ndarray, angle: float) -> np.ndarray:
    """``clip`` (..., 3) uint8 RGB with its BT.709 chroma (Cb, Cr) turned by ``angle`` radians around the gray axis
    (clipped to 0..255): other hues at the same luma and saturation where nothing clips (pi: the complementary
    colours). Saturated cyans, blues and magentas are rare in the corpus; turned hues make them common."""
    y, cb, cr = rgb_to_ycbcr(clip.astype(np.float32))
    c, s = np.float32(np.cos(angle)), np.float32(np.sin(angle))
    return np.clip(np.rint(ycbcr_to_rgb(y, c * cb - s * cr, s * cb + c * cr)), 0, 255).astype(np.uint8)


class ClipSampler:
    """Draws training clips of ``frames`` frames and ``size``x``size`` pixels."""

    def __init__(self, corpus: Corpus, *, frames: int, size: int, photo_prob: float, seed: int,
                 saturation_prob: float = 0.0, hue_prob: float = 0.0):
        self.corpus, self.frames, self.size, self.photo_prob = corpus, frames, size, photo_prob
        self.saturation_prob, self.hue_prob = saturation_prob, hue_prob
        self.rng = np.random.default_rng(seed)
        self.weights = np.array([len(r) * r.shape[1] * r.shape[2] for r in corpus.runs], dtype=np.float64)
        self.weights /= max(self.weights.sum(), 1)

    def state(self) -> dict:
        return self.rng.bit_generator.state

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state

    def sample(self) -> np.ndarray:
        use_photo = self.corpus.photos and (not self.corpus.runs or self.rng.random() < self.photo_prob)
        clip = self._from_photo() if use_photo else self._from_runs()
        if self.rng.random() < 0.5:
            clip = clip[:, :, ::-1]
        if self.saturation_prob and self.rng.random() < self.saturation_prob:   # (no draw when off: old runs
            clip = saturate(clip, self.rng.uniform(1.0, 2.5))                    # resume on the same stream)
        if self.hue_prob and self.rng.random() < self.hue_prob:   # (likewise)
            clip = rotate_hue(clip, self.rng.uniform(0.0, 2 * np.pi))
        return np.ascontiguousarray(clip)

    def batch(self, n: int) -> np.ndarray:
        return np.stack([self.sample() for _ in range(n)])   # (B, T, S, S, 3)

    def _from_runs(self) -> np.ndarray:
        run = self.corpus.runs[self.rng.choice(len(self.corpus.runs), p=self.weights)]
        T, H, W, _ = run.shape
        t = self.frames
        if T < t:   # short run: play it back and forth (real motion, not a frozen tail)
            run = run[ping_pong(T, t)]
            T = t
        s = min(self.size, H, W)
        t0 = self.rng.integers(0, T - t + 1)
        y0, x0 = self.rng.integers(0, H - s + 1), self.rng.integers(0, W - s + 1)
        clip = run[t0:t0 + t, y0:y0 + s, x0:x0 + s]
        if s < self.size:
            clip = np.pad(clip, ((0, 0), (0, self.size - s), (0, self.size - s), (0, 0)), mode="edge")
        if self.rng.random() < 0.2:   # occasionally time-reversed motion
            clip = clip[::-1]
        return clip

    def _from_photo(self) -> np.ndarray:
        """Synthetic camera pan with constant integer velocity over a still photo."""
        img = self.corpus.photos[self.rng.integers(len(self.corpus.photos))]
        H, W, _ = img.shape
        s, t = min(self.size, H, W), self.frames
        vy, vx = self.rng.integers(-3, 4, size=2)
        span_y, span_x = abs(vy) * (t - 1), abs(vx) * (t - 1)
        if span_y > H - s:
            vy, span_y = 0, 0
        if span_x > W - s:
            vx, span_x = 0, 0
        y0 = self.rng.integers(0, H - s - span_y + 1) + (span_y if vy < 0 else 0)
        x0 = self.rng.integers(0, W - s - span_x + 1) + (span_x if vx < 0 else 0)
        clip = np.stack([img[y0 + i * vy:y0 + i * vy + s, x0 + i * vx:x0 + i * vx + s] for i in range(t)])
        if s < self.size:
            clip = np.pad(clip, ((0, 0), (0, self.size - s), (0, self.size - s), (0, 0)), mode="edge")
        return clip
