"""The `Codec` interface every benchmarked codec implements, and the data it passes around (see codecs.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vcodec.colour import Yuv420

INTRA_PERIOD = 16


# the parts of a codec's description that name its rate points, not how it codes one
RATE_POINT_KEYS = ("rate_points", "options_at_first_point", "command_at_first_point")


def without_rate_points(description: dict) -> dict:
    """A codec description without :data:`RATE_POINT_KEYS`: what is the same at every rate point."""
    return {k: v for k, v in description.items() if k not in RATE_POINT_KEYS}


class CodecUnavailable(RuntimeError):
    """The codec cannot run here (missing encoder, model, ...); the message says why."""


@dataclass
class Clip:
    """A benchmark clip: uint8 RGB frames (T, H, W, 3), its YUV 4:2:0 planes, and a frame rate.

    `yuv` is the reference for the classical codecs and the YUV metrics, at `bit_depth` bits (uint8 planes at 8 bits,
    uint16 above: a 10-bit test sequence stays 10-bit). `rgb` is always 8-bit (what vcodec codes); for a raw YUV
    source it is derived from `yuv` by `vcodec.colour` (BT.709 limited range).
    """

    name: str
    rgb: np.ndarray
    yuv: Yuv420
    fps: float = 25.0
    source: dict = field(default_factory=dict)
    bit_depth: int = 8
    klass: str = ""  # the sequence's class (JVET class by size, or the suite's grouping); "" = none

    def reference_rgb(self) -> np.ndarray:
        """RGB at the clip's bit depth, for RGB metrics (uint8 at 8 bits, else uint16 from the YUV planes)."""
        if self.bit_depth == 8:
            return self.rgb
        from vcodec.colour import yuv420_to_rgb

        return yuv420_to_rgb(self.yuv, self.bit_depth)

    @property
    def num_frames(self) -> int:
        return self.rgb.shape[0]

    @property
    def height(self) -> int:
        return self.rgb.shape[1]

    @property
    def width(self) -> int:
        return self.rgb.shape[2]


@dataclass
class Encoded:
    path: str
    num_bytes: int  # size of the file: the rate
    info: dict = field(default_factory=dict)


@dataclass
class Decoded:
    """A decoder's output: YUV 4:2:0 planes (classical codecs) or RGB (vcodec); the runner derives the other."""

    yuv: Yuv420 | None = None
    rgb: np.ndarray | None = None


class Codec:
    """Base class. Subclasses set `name` and implement the methods below."""

    name: str = "codec"
    extension: str = ".bin"

    def check(self) -> None:
        """Raise CodecUnavailable(reason) when this codec cannot run here."""

    def description(self) -> dict:
        """Exact tool versions and settings (JSON-able)."""
        raise NotImplementedError

    def settings(self, point) -> dict:
        """What determines the coded stream at `point` (JSON-able): the result cache keys on it, so it must name the
        exact tool versions and every option. Default: the description without its list of rate points."""
        return {**without_rate_points(self.description()), "point": point}

    def rate_points(self) -> list:
        """The rate points to run, lowest rate first where known (QPs, quality indices, ...)."""
        raise NotImplementedError

    def encode(self, clip: Clip, point, path: str) -> Encoded:
        raise NotImplementedError

    def decode(self, encoded: Encoded, clip: Clip) -> Decoded:
        raise NotImplementedError

    def payload_bytes(self, encoded: Encoded) -> int:
        """Coded payload inside the file (the rest is container overhead); called outside the timed region."""
        return encoded.num_bytes

    def command_line(self, point) -> str | None:
        """A command line that reproduces the encode at `point` (for the results), or None."""
        return None

    def point_label(self, point) -> str:
        return str(point)

