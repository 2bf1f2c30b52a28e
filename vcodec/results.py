"""What the file API reports: :class:`EncodeResult` and :class:`DecodeResult` (``.to_json()`` for ``--json``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from fractions import Fraction


@dataclass(frozen=True)
class EncodeResult:
    """Summary of one encode. ``seconds``/``fps`` time the coding loop (model loading excluded, reported as
    ``load_seconds``); ``bpp`` is the whole ``.vcb`` (header and any audio included) in bits per pixel."""

    input: str
    output: str
    frames: int
    width: int
    height: int
    frame_rate: str
    bytes: int
    bpp: float
    seconds: float
    fps: float
    load_seconds: float
    model: str
    weights_hash: str
    quality: int | None  # None: chosen per chunk by rate control (``chunk_qualities``)
    levels: int | None  # token planes coded; None with rate control, which chooses them per chunk (chunk_qualities)
    device: str
    audio_tracks: int
    audio_bytes: int
    video_kbps: float  # the video's bitrate and bits per pixel (see :func:`video_rate`)
    video_bpp: float
    bitrate_target: float | None = None  # --bitrate: bits per second aimed at
    chunk_qualities: dict[str, int] | None = None  # --bitrate: chunks per quality ("2+": between 2 and 3)
    warnings: list[str] = field(default_factory=list)
    start_frame: int = 0  # first source frame encoded (a range was asked for)
    keyint: int | None = None  # frames per keyframe period (decoding can start at a period's first frame)
    scenecut: bool | None = None  # whether scene cuts started keyframe periods too
    scene_cut_keyframes: int | None = None  # keyframe periods started early, at scene cuts
    refine: int = 0  # encoder-side latent refinement steps per latent frame (vcodec.refine; 0 = none)
    colour: bool = False  # chunks carry colour corrections where they pay (vcodec.correction; format version 4)
    colour_chunks: int = 0  # how many of them do
    # with psnr=True: the decoded result against the source (vcodec.compare.Quality.to_json: per-frame mean
    # PSNR-Y/PSNR-YUV, global PSNR-Y, MS-SSIM)
    quality_metrics: dict | None = None

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class DecodeResult:
    """Summary of one decode: what was written (container, codec, pixel format, and whether that output is a
    lossy re-encode), plus the ``.vcb``'s size and bpp. ``skipped`` lists damage passed over with ``salvage``."""

    input: str
    output: str
    frames: int
    width: int
    height: int
    frame_rate: str
    bytes: int | None
    bpp: float | None
    seconds: float
    fps: float
    load_seconds: float
    model: str
    weights_hash: str
    quality: int | None
    levels: int | None  # token planes coded; None for a rate-controlled stream (per chunk: `vcodec info`)
    device: str
    precision: str  # the decoder network's number format ("fp32", "bf16")
    container: str
    codec: str
    pix_fmt: str
    lossy: bool
    note: str
    audio_tracks: int
    skipped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)


def video_rate(stream_bytes: int | None, audio_stream_bytes: int, frames: int, width: int, height: int,
               frame_rate: Fraction) -> dict:
    """``{"video_kbps", "video_bpp"}`` of a stream: its bytes less what the audio takes (its track and packet
    records, headers included; the file header, chunk records and index count as video) per second and per pixel;
    None where the size or frame count is unknown."""
    if stream_bytes is None or not frames:
        return {"video_kbps": None, "video_bpp": None}
    bits = (stream_bytes - audio_stream_bytes) * 8
    return {"video_kbps": bits / (frames / float(frame_rate)) / 1000, "video_bpp": bits / (frames * width * height)}


def rate_str(rate: Fraction) -> str:
    return f"{rate.numerator}/{rate.denominator}"
