"""Keyframe periods (FORMAT.md 4.2): how a stream is laid out in chunks, and the causal state one chunk hands to
the next, kept apart from the networks so that the stream-level code (:mod:`vcodec.coding`, the CLI) needs no
torch."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

DEFAULT_KEYINT = 129  # frames per keyframe period: 1 + 8 x 16, chosen by measurement (benchmarks/results/keyint.md)


def chunk_plan(window: int, temporal_factor: int, keyint: int = DEFAULT_KEYINT) -> Iterator[tuple[int, bool]]:
    """``(frames, continues)`` of a stream's chunks, endlessly. Each keyframe period of ``keyint`` frames starts
    with a keyframe chunk of ``1 + k * temporal_factor`` frames (the most that fit in ``window``), then chunks of
    ``k * temporal_factor`` frames that continue it (FORMAT.md 4.2); the period's last chunk may be shorter.
    ``keyint <= window`` makes every chunk a keyframe chunk (window-independent coding)."""
    if keyint < 1:
        raise ValueError(f"keyint must be at least 1 frame, got {keyint}")
    cont = (window - 1) // temporal_factor * temporal_factor
    key = 1 + cont if cont else window
    while True:
        left = keyint
        n = min(key, left)
        yield n, False
        left -= n
        while left > 0 and cont:
            n = min(cont, left)
            yield n, True
            left -= n


def keyframe_period(keyint: int, window: int, temporal_factor: int) -> int:
    """Frames from one keyframe chunk to the next in :func:`chunk_plan`'s layout: ``keyint``, or one window where
    windows are too short for a continuing chunk (every chunk a period of its own)."""
    return keyint if (window - 1) // temporal_factor > 0 else min(keyint, window)


def early_keyframes(starts: Iterable[int], period: int) -> int:
    """How many of the keyframe chunks starting at frames ``starts`` (ascending) came less than ``period`` frames
    after the one before: periods that an encoder started early, at scene cuts (:mod:`vcodec.scenecut`)."""
    starts = list(starts)
    return sum(b - a < period for a, b in zip(starts, starts[1:]))


class StreamState:
    """The causal state that coding one window hands to the next window of its keyframe period (FORMAT.md 4.2):
    every spatial tile's convolution histories, for one frame size. Empty at a keyframe; one per direction (an
    encoder's and a decoder's are different networks). A window that ends inside a latent frame (padded) cannot be
    continued: the state is then emptied."""

    def __init__(self):
        self._tiles: list | None = None
        self._size: tuple[int, int] | None = None

    @property
    def started(self) -> bool:
        """Whether the next window continues the stream (False: it starts one, as after a keyframe)."""
        return self._tiles is not None

    def reset(self) -> None:
        """Start a new stream: the next window is a keyframe window."""
        self._tiles = self._size = None

    def take(self, tiles: int, size: tuple[int, int]) -> list:
        if size != self._size or tiles != len(self._tiles):
            raise ValueError(f"a window of {size[1]}x{size[0]} cannot continue a stream of "
                             f"{self._size[1]}x{self._size[0]} frames")
        return list(self._tiles)

    def keep(self, states: list, size: tuple[int, int], continuable: bool) -> None:
        if continuable:
            self._tiles, self._size = list(states), size
        else:
            self.reset()
