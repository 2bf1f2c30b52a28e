"""Raw planar YUV files (``.yuv``) as researchers have them: no header, so geometry, frame rate, chroma format and
bit depth come from the file name or are given.

Names as the standard test sets spell them are parsed by :func:`parse_name`::

    Beauty_1920x1080_120fps_420_8bit_YUV.yuv        (UVG)
    BasketballDrive_1920x1080_50.yuv                (JVET/HEVC class B: the number after the size is the rate)
    Campfire_3840x2160_30fps_10bit_420.yuv          (JVET class A, 10-bit)
    videoSRC01_1920x1080_30.yuv                     (MCL-JCV)

Defaults where the name is silent: 4:2:0, 8 bits. Samples above 8 bits are little-endian 16-bit words (FFmpeg's
``yuv420p10le``), the layout of every 10-bit test sequence. :class:`RawYuv` names a file together with its format;
it is a path (``os.PathLike``) so it can go wherever a path goes (``vcodec.encode_video``, ``vcodec encode
--size/--fps/--pix-fmt``), and :func:`av_open_args` gives PyAV the demuxer options to read it. The benchmarks
read the planes themselves with :func:`read_planes` (exact samples, no colour conversion).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from vcodec.errors import InputError

RAW_EXTENSIONS = (".yuv",)
CHROMA_FORMATS = ("420", "422", "444")
_SIZE = re.compile(r"(?:^|[_\-.])(\d{2,5})x(\d{2,5})(?=$|[_\-.])")
_FPS = re.compile(r"(?:^|[_\-.])(\d+(?:[.p]\d+)?)(?:fps|hz)(?=$|[_\-.])", re.I)
_BARE_RATE = re.compile(r"^(\d+(?:\.\d+)?)$")  # BasketballDrive_1920x1080_50
_BITS = re.compile(r"(?:^|[_\-.])(8|10|12|16)-?(?:bit|b)(?=$|[_\-.])", re.I)
_CHROMA = re.compile(r"(?:^|[_\-.])(?:yuv)?(420|422|444)(?:p)?(?=$|[_\-.])", re.I)
_PIX_FMT = re.compile(r"^(?:yuv|yuvj)(420|422|444)p(?:(10|12|16)le)?$")


@dataclass(frozen=True)
class RawYuv:
    """A raw ``.yuv`` file and its format. ``pix_fmt`` is FFmpeg's name (``yuv420p``, ``yuv420p10le``, ...)."""

    path: str
    width: int
    height: int
    fps: Fraction
    chroma: str = "420"
    bit_depth: int = 8

    def __fspath__(self) -> str:
        return self.path

    def __post_init__(self):
        if self.width <= 0 or self.height <= 0 or self.width % 2 or self.height % 2:
            raise InputError(f"{self.path}: bad raw YUV size {self.width}x{self.height} (even sizes only)")
        if self.chroma not in CHROMA_FORMATS or self.bit_depth not in (8, 10, 12, 16):
            raise InputError(f"{self.path}: unsupported raw YUV format {self.chroma} {self.bit_depth}-bit")
        if self.fps <= 0:
            raise InputError(f"{self.path}: frame rate must be > 0")

    @property
    def pix_fmt(self) -> str:
        return f"yuv{self.chroma}p" + (f"{self.bit_depth}le" if self.bit_depth > 8 else "")

    @property
    def chroma_shape(self) -> tuple[int, int]:
        """(height, width) of each chroma plane."""
        sy = 2 if self.chroma == "420" else 1
        sx = 1 if self.chroma == "444" else 2
        return self.height // sy, self.width // sx

    @property
    def frame_bytes(self) -> int:
        ch, cw = self.chroma_shape
        return (self.width * self.height + 2 * ch * cw) * (1 if self.bit_depth == 8 else 2)

    def num_frames(self) -> int:
        """Whole frames in the file (a trailing partial frame is an error: the format is wrong)."""
        size = os.path.getsize(self.path)
        if size % self.frame_bytes:
            raise InputError(
                f"{self.path}: {size} bytes is not a whole number of {self.width}x{self.height} {self.pix_fmt} "
                f"frames ({self.frame_bytes} bytes each); check --size / --pix-fmt"
            )
        return size // self.frame_bytes


def parse_pix_fmt(pix_fmt: str) -> tuple[str, int]:
    """FFmpeg pixel format name -> (chroma format, bit depth): ``yuv420p10le`` -> ("420", 10)."""
    m = _PIX_FMT.match(pix_fmt.strip().lower())
    if not m:
        raise InputError(f"unsupported raw YUV pixel format {pix_fmt!r} (yuv420p, yuv420p10le, yuv444p, ...)")
    return m.group(1), int(m.group(2) or 8)


def parse_fps(text) -> Fraction:
    """``"50"``, ``"29.97"``, ``"30000/1001"`` -> an exact rate (29.97 / 59.94 / 23.976 mean the NTSC rates)."""
    s = str(text).strip().lower().replace("p", ".")
    ntsc = {"29.97": Fraction(30000, 1001), "59.94": Fraction(60000, 1001), "23.976": Fraction(24000, 1001)}
    try:
        return ntsc.get(s) or Fraction(s).limit_denominator(1001)
    except (ValueError, ZeroDivisionError) as e:
        raise InputError(f"bad frame rate {text!r}") from e


def parse_name(path) -> dict:
    """What the file name says: a dict with any of ``width``, ``height``, ``fps``, ``chroma``, ``bit_depth``."""
    stem = os.path.splitext(os.path.basename(os.fspath(path)))[0]
    out: dict = {}
    m = _SIZE.search(stem)
    if m:
        out["width"], out["height"] = int(m.group(1)), int(m.group(2))
        after = stem[m.end() :].lstrip("_-.").split("_")[0]
        bare = _BARE_RATE.match(after)
        if bare and bare.group(1) not in CHROMA_FORMATS:   # x_64x48_420.yuv: 4:2:0, not 420 fps
            out["fps"] = parse_fps(bare.group(1))
    m = _FPS.search(stem)
    if m:
        out["fps"] = parse_fps(m.group(1))
    m = _BITS.search(stem)
    if m:
        out["bit_depth"] = int(m.group(1))
    m = _CHROMA.search(stem)
    if m:
        out["chroma"] = m.group(1)
    return out


def raw_yuv(path, *, size: str | tuple[int, int] | None = None, fps=None, pix_fmt: str | None = None) -> RawYuv:
    """The format of a raw ``.yuv``: its file name, overridden by ``size`` ("WxH"), ``fps`` and ``pix_fmt``."""
    path = os.fspath(path)
    info = parse_name(path)
    if size is not None:
        if isinstance(size, str):
            m = re.fullmatch(r"\s*(\d+)\s*[x:]\s*(\d+)\s*", size)
            if not m:
                raise InputError(f"bad size {size!r}; expected WIDTHxHEIGHT")
            size = (int(m.group(1)), int(m.group(2)))
        info["width"], info["height"] = size
    if fps is not None:
        info["fps"] = parse_fps(fps)
    if pix_fmt is not None:
        info["chroma"], info["bit_depth"] = parse_pix_fmt(pix_fmt)
    if "width" not in info:
        raise InputError(f"{path}: raw YUV without its size in the name (like _1920x1080_); give --size WxH")
    if "fps" not in info:
        raise InputError(f"{path}: raw YUV without its frame rate in the name (like _50fps); give --fps")
    return RawYuv(path, info["width"], info["height"], info["fps"], info.get("chroma", "420"), info.get("bit_depth", 8))


def is_raw_yuv(path) -> bool:
    return isinstance(path, RawYuv) or (
        isinstance(path, (str, os.PathLike)) and os.fspath(path).lower().endswith(RAW_EXTENSIONS)
    )


def av_open_args(src) -> tuple[str | None, dict | None]:
    """``(format, options)`` for ``av.open`` when ``src`` (a :class:`RawYuv`, a ``.yuv`` path or an
    :class:`~vcodec.io.files.Endpoint` holding one) is raw YUV; ``(None, None)`` for everything else."""
    raw = getattr(src, "raw", None) or (src if isinstance(src, RawYuv) else None)
    if raw is None:
        path = getattr(src, "path", src)
        if not (isinstance(path, (str, os.PathLike)) and is_raw_yuv(path)):
            return None, None
        raw = raw_yuv(path)
    raw.num_frames()  # refuse a size that does not divide the file
    rate = Fraction(raw.fps)
    return "rawvideo", {
        "video_size": f"{raw.width}x{raw.height}",
        "pixel_format": raw.pix_fmt,
        "framerate": f"{rate.numerator}/{rate.denominator}",
    }


def read_planes(raw: RawYuv, start: int = 0, frames: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames [start, start + frames) as planes Y (T, H, W), U and V (T, Hc, Wc): uint8 at 8 bits, else uint16
    holding ``bit_depth``-bit samples."""
    total = raw.num_frames()
    n = total - start if frames is None else min(frames, total - start)
    if start < 0 or n < 1:
        raise InputError(f"{raw.path}: no frames at or after frame {start} ({total} in the file)")
    dtype = np.dtype(np.uint8) if raw.bit_depth == 8 else np.dtype("<u2")
    data = np.fromfile(raw.path, dtype=dtype, count=n * raw.frame_bytes // dtype.itemsize,
                       offset=start * raw.frame_bytes)  # fmt: skip
    data = data.reshape(n, -1)
    ch, cw = raw.chroma_shape
    ny, nc = raw.width * raw.height, ch * cw
    y = data[:, :ny].reshape(n, raw.height, raw.width)
    u = data[:, ny : ny + nc].reshape(n, ch, cw)
    v = data[:, ny + nc :].reshape(n, ch, cw)
    if raw.bit_depth > 8:
        y, u, v = (p.astype(np.uint16) for p in (y, u, v))
        if max(int(p.max()) for p in (y, u, v)) >= 1 << raw.bit_depth:
            raise InputError(f"{raw.path}: samples above {raw.bit_depth} bits; is it really {raw.pix_fmt}?")
    return np.ascontiguousarray(y), np.ascontiguousarray(u), np.ascontiguousarray(v)


def write_planes(path, y: np.ndarray, u: np.ndarray, v: np.ndarray) -> None:
    """Write planes (as :func:`read_planes` returns them) to a raw ``.yuv`` (16-bit samples little-endian)."""
    with open(path, "wb") as f:
        for i in range(y.shape[0]):
            for p in (y[i], u[i], v[i]):
                f.write(p.astype("<u2" if p.dtype != np.uint8 else np.uint8).tobytes())
