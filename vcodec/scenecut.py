"""Scene cuts: frames where a new shot starts, found as the frames stream in (each frame's verdict waits for the
next frame only), so that the encoder can start a keyframe period there (:func:`vcodec.coding.stream_chunks`).

A frame is a cut when all hold, against the frame before it:

- its luma histogram moved: the total-variation distance between the two frames' :data:`HIST_BINS`-bin histograms
  (0 = the same, 1 = disjoint) is at least :data:`CUT_HIST` (camera and object motion move pixels, not the
  histogram: below 0.1 on every benchmark clip, 0.24-0.68 at their cuts), and
- its pixels moved far more than the shot's motion does: the mean absolute luma difference is above
  :data:`CUT_FLOOR` levels and :data:`CUT_RATIO` x the median of the last :data:`HISTORY` differences (a fade or a
  slow change of light shifts the histogram but changes each frame only a little; a histogram that moves by
  :data:`SURE_HIST` or more needs only the floor: a cut out of a fast pan), and
- the change is a spike, not a burst of fast motion: more than :data:`NEXT_RATIO` x the difference of the frame
  before and of the frame after (on a small, fast-moving picture the histogram and the difference can rise
  together for several frames; a one-frame flash is two changes in a row, so neither is a cut).

The encoder starts a keyframe period at every cut (two cuts are never adjacent: each is a spike against the
other's difference; a flash of 2-3 frames is two cuts, and the shot after it starts clean). Not seen: a cut between
two shots whose luma histograms match (a mirrored or flipped picture, two angles on one evenly lit set).

Why: the tokenizer's causal state and the coder's contexts carry the old shot into the new one; a keyframe at the
cut (its first frame alone a latent frame) costs one latent frame more and buys the new shot a clean start --
on the standard suite's bikes clip +10% bytes for +0.55-0.73 dB PSNR-Y at every quality setting
(``benchmarks/results/scenecut.md``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator

import numpy as np

from vcodec.colour import rgb_to_y

HIST_BINS = 32
CUT_HIST = 0.15
SURE_HIST = 0.5
CUT_RATIO = 2.0
NEXT_RATIO = 1.5
CUT_FLOOR = 8.0
HISTORY = 8
ANALYSIS_ROWS = 90  # the measures look at every k-th row and column, k chosen to leave about this many rows (at
                    # least 1): a cut changes the whole picture, and 1080p costs what 640x360 does (~0.3 ms a frame)


class SceneCutDetector:
    """Feed frames in order (:meth:`push`); a frame's verdict comes with the next frame (so a stream's last frame
    is never a cut: nothing after it tells a cut from a flash). Remembers the last frame's luma and recent
    differences."""

    def __init__(self):
        self._luma: np.ndarray | None = None
        self._hist: np.ndarray | None = None
        self._diffs: deque[float] = deque(maxlen=HISTORY)
        self._candidate: float | None = None  # the pending frame's difference if it passed the other tests

    def push(self, frame: np.ndarray) -> bool | None:
        """``frame`` uint8 (H, W, 3) RGB, the next of the stream -> whether the frame pushed before it starts a new
        scene (None for the first frame; never the stream's first frame, nor a frame of another size than the one
        before, which starts a stream of its own anyway)."""
        k = max(1, min(frame.shape[0], frame.shape[1]) // ANALYSIS_ROWS)
        luma = rgb_to_y(frame[::k, ::k]).astype(np.float32)
        hist = np.bincount(luma.astype(np.int32).ravel() * HIST_BINS // 256, minlength=HIST_BINS) / luma.size
        prev, prev_hist = self._luma, self._hist
        self._luma, self._hist = luma, hist
        diff = None
        if prev is not None and prev.shape == luma.shape:
            diff = float(np.abs(luma - prev).mean())
        verdict = None if prev is None else self._verdict(diff)
        if diff is None:
            self._diffs.clear()
            self._candidate = None
        else:
            motion = float(np.median(self._diffs)) if self._diffs else 0.0
            last = self._diffs[-1] if self._diffs else 0.0
            hist_move = 0.5 * float(np.abs(hist - prev_hist).sum())
            moved = hist_move >= CUT_HIST
            floor = CUT_FLOOR if hist_move >= SURE_HIST else max(CUT_FLOOR, CUT_RATIO * motion)
            spike = diff > max(floor, NEXT_RATIO * last)
            self._candidate = diff if moved and spike else None
            self._diffs.append(diff)  # (a cut's own difference is one of HISTORY: the median hardly moves)
        return verdict

    def _verdict(self, next_diff: float | None) -> bool:
        return self._candidate is not None and next_diff is not None and self._candidate > NEXT_RATIO * next_diff


def with_cuts(frames: Iterable[np.ndarray]) -> Iterator[tuple[np.ndarray, bool]]:
    """Frames ``uint8 (H, W, 3)`` in stream order -> ``(frame, is_cut)``, each one frame after it came in (the last
    when the input ends, never a cut)."""
    detector = SceneCutDetector()
    held = None
    for frame in frames:
        verdict = detector.push(frame)
        if held is not None:
            yield held, bool(verdict)
        held = frame
    if held is not None:
        yield held, False


def scene_cuts(frames: np.ndarray) -> list[int]:
    """Frames ``uint8 (T, H, W, 3)`` -> the indices ``i >= 1`` of the frames :class:`SceneCutDetector` calls cuts."""
    return [i for i, (_, cut) in enumerate(with_cuts(frames)) if cut]
