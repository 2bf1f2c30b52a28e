"""Rate control (``--bitrate``): each chunk's rate point chosen so that the stream's video bits follow a target.

The tokenizer runs once per chunk, on the model's whole token grid (every plane, every bit); a rate point codes a
prefix of that grid (:func:`vcodec.tokenizer.token_prefix`), so one chunk can be entropy-coded at several rate
points and their exact sizes compared before one is written. The stream lists the token widths its chunks use
(format version 3, ``chunk_bits``); a continuing chunk that changes the rate point keeps the tokenizer's causal
state, and its entropy coder carries what the two rate points share (FORMAT.md 6.5: the previous latent frame's
common bits; the adaptive counts too when the width stays), so a switch costs a few percent of that chunk's bits
(measured on held-out clips: free going down, 1-18% going up in width, against 8-35% for a fresh start).

The choice is greedy on exact sizes: the stream's bytes (header and record overhead included, audio excluded)
should be ``target x frames so far``; a chunk of ``n`` frames aims at ``target x n`` plus a share of what the
stream is under (or over) budget so far, and takes the rate point whose coded size lands closest. When the total
frame count is known, the deviation is spread over the frames of up to :data:`HORIZON` chunks, so that share grows
as the end nears (the last chunk makes up all of it): fewer swings between distant rate points (measured: ~0.1 dB
better PSNR-Y than making up everything at once) without giving up the end total. Otherwise every chunk makes up
all of it. The search starts from the previous chunk's point (the first chunk's from the model card's measured
bits per pixel) and steps up or down while the size lands closer, so a chunk is usually coded two or three times.
The error of the whole stream is then about half the size step between two neighbouring rate points on the last
chunk (the model's steps are ~2x: up to ~9% of a 4-second clip), so the chunk layout splits the last chunk (or the
one before, when the last is too short) in two (:func:`vcodec.coding.split_end`, one chunk ahead of the coder, so
also for a pipe of unknown length): measured, 38 of 40 targets within 5% on 2- to 5-second clips, against 34 of 40
without the split. When the length is known, the chunk before the last also looks at the end: if its point would
leave the stream's total more than 2.5% off even with the best point for the last chunk (predicted from this
chunk's sizes at every point, scaled to the last one's length), it takes the neighbouring point that lands the
total closer (:meth:`RateController._end_choice`; only a neighbour, since a far point shows as a quality step).
The chunks at the end may also take a width between two rate points (:func:`ladder`), which halves the end's size
steps: measured on 40 targets (whole clips and 2 s cuts, model step 62,871 with quality 9,
`benchmarks/results/ratecontrol.md`), 40 within 5% (38 without those widths), PSNR-Y 0.13 dB below the fixed
ladder's interpolation (0.09 without, measured before the header recorded its quality labels; 0.28 when every
chunk may take them); with step 72,760, 39 within 5% (a target between two points 2.2x apart that differ in
planes, where no width lies between them: the end's two pieces land at -6.3% or +5.5%), and 40 with the end cut
in three where a chunk's budget makes a second cut cheap (:func:`end_pieces`). Since then a chunk's share follows
what it costs at one rate point, its latent frames (:meth:`RateController._units`: a lone first frame or a padded
last one costs a whole latent frame, and a one-frame share gave it quality 1), and the end takes a width between
rate points only where no rate point next to the chunk's lands the total (:meth:`RateController._end_choice`):
40 within 5%, PSNR-Y 0.10 dB below the ladder's interpolation on average (0.17 before), worst 0.66 dB (1.62).
Targets beyond the model's lowest or highest point get that point.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections import Counter
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

from bitstream import CoderContext, StreamHeader, encode_chunk
from bitstream.header import CHUNK_HEADER, END_RECORD_SIZE, INDEX_ENTRY, INDEX_HEADER, RECORD_HEADER
from vcodec.stream import keyframe_period

if TYPE_CHECKING:
    from vcodec.tokenizer import Tokenizer

CHUNK_OVERHEAD = RECORD_HEADER.size + CHUNK_HEADER.size + INDEX_ENTRY.itemsize  # bytes a chunk costs besides its data
STREAM_OVERHEAD = RECORD_HEADER.size + INDEX_HEADER.size + END_RECORD_SIZE  # the index record's head and END
TOLERANCE = 0.05  # a stream further than this from its target because of the ladder's ends gets a warning
HORIZON = 3  # chunks over which a deviation from the target is made up, when the stream's length is known
THIRD_PIECE_BUDGET = 40  # chunk overheads of bytes a chunk must get for the stream's end to be cut in three

_BITRATE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([kKmMgG]?)\s*(?:bit/s|bps|b/s)?\s*\Z")
MIN_BITRATE = 100  # bits per second; anything lower is a typo
MAX_BITRATE = 10**10  # 10 Gbit/s


def end_pieces(bitrate: float | None, frame_rate: Fraction, chunk_frames: int) -> int:
    """How many pieces the chunk that ends a stream is cut into (:func:`vcodec.coding.split_end`): 1 without rate
    control; 3 where a chunk of ``chunk_frames`` gets at least :data:`THIRD_PIECE_BUDGET` chunk overheads of
    bytes at ``bitrate`` (the second cut then costs at most 2.5% of it), else 2. Measured (model step 72,760,
    `benchmarks/results/ratecontrol.md`): a target between two rate points 2.2x apart that differ in planes,
    where no width lies between them, landed +5.5% with two pieces and -0.1% with three."""
    if bitrate is None:
        return 1
    chunk_bytes = bitrate / 8 * chunk_frames / float(frame_rate)
    return 3 if chunk_bytes >= THIRD_PIECE_BUDGET * CHUNK_OVERHEAD else 2


def parse_bitrate(text: str) -> int:
    """Bits per second from ``"500k"``, ``"1.5M"``, ``"2G"``, ``"800000"`` (k = 1000, M = 10^6, G = 10^9; optional
    ``bit/s``).
    ValueError (one line) for anything else."""
    m = _BITRATE.match(str(text))
    if not m:
        raise ValueError(f"bitrate {text!r} is not a number of bits per second such as 500k or 1.5M")
    value = float(m.group(1)) * {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}[m.group(2).lower()]
    if not MIN_BITRATE <= value <= MAX_BITRATE:
        raise ValueError(f"bitrate {text!r} is outside {MIN_BITRATE} bit/s .. 10 Gbit/s")
    return round(value)


def bitrate_text(bps: float) -> str:
    """A bitrate as ``--bitrate`` takes it: ``500k``, ``1.5M``, ``10G`` (:func:`parse_bitrate` reads it back)."""
    for unit, scale in (("G", 1e9), ("M", 1e6)):
        if bps >= scale:
            return f"{bps / scale:g}{unit}"
    return f"{bps / 1000:g}k"


@dataclasses.dataclass(frozen=True)
class Rung:
    """One step of rate control's ladder: a rate point of the model (``label``: its quality, ``"3"``) or a width
    between two that code the same planes (``label`` ``"2+"``: quality 2's planes with more bits per token)."""

    label: str
    levels: int
    bits: int
    bpp: float | None  # measured (a rate point's), or the geometric mean of its neighbours'
    between: bool = False  # a width between two rate points (its decoder was never trained on it)


def ladder(tok: Tokenizer) -> list[Rung]:
    """The model's rate points in quality order, with a rung between two that code the same planes at widths more
    than one bit apart: the geometric middle width (3 bits between 2 and 4, 6 between 4 and 8, 11, 23), coded with
    the wider width's tables narrowed (:meth:`Tokenizer.tables_for`). The model's steps in size are ~2x, too coarse
    for a short clip's last chunks to land the total; these halve them, at a cost in quality (the decoder never saw
    such widths: measured ~1 dB below the rate points around them), so only the chunks at the end of a stream of
    known length take them. Sizes grow along the ladder."""
    points = [dataclasses.replace(rp, bits=rp.bits or tok.token_bits)
              for rp in sorted(tok.rate_points, key=lambda rp: rp.quality)]
    rungs = []
    for p, q in zip(points, points[1:] + [None]):
        rungs.append(Rung(str(p.quality), p.levels, p.bits, p.bpp))
        if q is not None and q.levels == p.levels and q.bits > p.bits + 1:
            bpp = math.sqrt(p.bpp * q.bpp) if p.bpp and q.bpp else None
            rungs.append(Rung(f"{p.quality}+", p.levels, round(math.sqrt(p.bits * q.bits)), bpp, between=True))
    return rungs


def rate_key(levels: int, bits: int) -> str:
    """The name of the rate a chunk is coded at, ``"levels x bits"`` (``"2x32"``): how ``info`` counts chunks
    (``chunk_rates``) and how a rate-controlled header labels them (:func:`rung_names`)."""
    return f"{levels}x{bits}"


def rung_names(tok: Tokenizer) -> dict[str, str]:
    """Each rung's label by the rate its chunks are coded at (:func:`rate_key`; ``{"2x32": "6"}``, ladder order): a
    rate-controlled stream's header records it, so ``info`` names its chunks' qualities without the model. Two
    rate points coding the same rate (a model may offer that) share the lower one's label."""
    names: dict[str, str] = {}
    for r in ladder(tok):
        names.setdefault(rate_key(r.levels, r.bits), r.label)
    return names


def rate_widths(tok: Tokenizer) -> tuple[int, ...]:
    """The token widths a rate-controlled stream of ``tok`` may use (its header's ``chunk_bits``)."""
    return tuple(sorted({p.bits for p in ladder(tok)}))


def full_grid(points: list[Rung]) -> tuple[int, int]:
    """(bits, levels) the tokenizer must produce for every one of ``points`` (a :func:`ladder`) to be a prefix."""
    return max(p.bits for p in points), max(p.levels for p in points)


class RateController:
    """Codes each chunk at the rate point that keeps the stream on ``bitrate`` (bits per second).

    ``header``: the stream's (with ``chunk_bits`` = :func:`rate_widths`); ``tables``: width -> coder tables;
    ``header_bytes``: the file header and track records written before the first chunk; ``total_frames``: the
    stream's length when known beforehand (None: make up every deviation in the next chunk)."""

    def __init__(self, tok: Tokenizer, header: StreamHeader, tables: dict, bitrate: float, frame_rate: Fraction,
                 header_bytes: int, total_frames: int | None = None, keyint: int | None = None):
        self.points = ladder(tok)
        self.config = tok.config
        self.header, self.tables = header, tables
        self.bitrate = bitrate
        self.total_frames = total_frames
        self.bytes_per_frame = bitrate / 8 / float(frame_rate)
        self.spent = header_bytes + STREAM_OVERHEAD
        self.frames = 0
        self.context = CoderContext()  # the coder state of the chunks written so far
        self._sizes = [0, 0]  # bytes of the chunks as written, and of the encoder's tokens at their rate points (scale)
        self._last: tuple[int, int, CoderContext] | None = None  # (rung, coded bytes, context before) of the last
        self.used: Counter[int] = Counter()  # chunks per rung (index into the ladder)
        self.beyond = {-1: 0, 1: 0}  # chunks that wanted less than the lowest point gave (-1), more than the highest (1)
        # a chunk's budget follows what it costs at one rate point, its latent frames (the first frame of a
        # keyframe chunk and a padded last one each cost a whole latent frame), normalised over the stream's
        # keyframe periods (``keyint``; scene cuts add a few that the budget then makes up)
        self.frames_per_unit = 1.0 if total_frames is None else total_frames / self._planned_units(total_frames, keyint)
        target_bpp = bitrate / float(frame_rate) / (header.width * header.height)
        known = [i for i, p in enumerate(self.points) if p.bpp]
        self._at = min(known, key=lambda i: abs(self.points[i].bpp - target_bpp)) if known else 0

    def out_of_range(self, model: str) -> str | None:
        """A one-line note when the stream missed its target by more than :data:`TOLERANCE`: because the target
        lies outside what the model's rate points spend on this video (every chunk at the lowest point and still
        over budget, or at the highest and still under), or else because the clip's chunks are too few for the
        model's steps in size; None otherwise."""
        if not self.frames:
            return None
        got = self.spent / self.frames / self.bytes_per_frame - 1
        if abs(got) <= TOLERANCE:
            return None
        chunks = sum(self.used.values())
        if got > 0 and self.beyond[-1] and self.used[0] == chunks:
            end, verb = "lowest", "spends more"
        elif got < 0 and self.beyond[1] and self.used[len(self.points) - 1] == chunks:
            end, verb = "highest", "spends less"
        else:
            return (f"--bitrate {bitrate_text(self.bitrate)} landed at {(1 + got) * self.bitrate / 1000:.1f} kbit/s "
                    f"({got:+.1%}): this video has {chunks} chunk{'s' if chunks > 1 else ''}, too few to mix model "
                    f"{model}'s rate points finely enough")
        return (f"--bitrate {bitrate_text(self.bitrate)} is outside what model {model} offers for this video: its {end} "
                f"quality {verb} (about {(1 + got) * self.bitrate / 1000:.1f} kbit/s here)")

    @property
    def full_grid(self) -> tuple[int, int]:
        """(bits, levels) the tokenizer must produce for every rate point to be a prefix of it."""
        return full_grid(self.points)

    def _units(self, num_frames: int, continues: bool) -> int:
        """What a chunk of ``num_frames`` costs at one rate point, in frames of a whole latent frame: its latent
        frames x ``temporal_factor`` (a lone first frame or a padded last one counts as a whole latent frame)."""
        return self.config.latent_frames(num_frames, continues) * self.config.temporal_factor

    def _planned_units(self, total_frames: int, keyint: int | None) -> int:
        """:meth:`_units` of a stream of ``total_frames`` in keyframe periods of ``keyint`` frames (one period if
        None), as :func:`vcodec.stream.chunk_plan` lays them out."""
        period = total_frames if keyint is None else keyframe_period(keyint, self.config.window_frames,
                                                                     self.config.temporal_factor)
        whole, rest = divmod(total_frames, period)
        return whole * self._units(period, False) + (self._units(rest, False) if rest else 0)

    def _share(self, num_frames: int) -> float:
        """The part of the deviation so far that a chunk of ``num_frames`` makes up: its share of the frames left
        within :data:`HORIZON` chunks of its size (all of it when the length is unknown, or this is the last)."""
        if self.total_frames is None:
            return 1.0
        left = min(self.total_frames - self.frames, HORIZON * num_frames)
        return min(1.0, num_frames / left) if left > 0 else 1.0

    def _code(self, i: int, tokens: np.ndarray, num_frames: int, continues: bool) -> tuple[bytes, CoderContext]:
        from vcodec.tokenizer import token_prefix

        p = self.points[i]
        context = self.context.copy()
        data = encode_chunk(self.header, token_prefix(tokens, p.bits, p.levels), num_frames, self.tables[p.bits],
                            context, continues, p.bits)
        return data, context

    def _end_miss(self, k: int, tokens: np.ndarray, num_frames: int, continues: bool, left: int, tried: dict) -> float:
        """How far (bytes) the stream's total lands from its target when this chunk takes rung ``k`` and the last
        ``left`` frames after it the best of the rungs next to ``k`` (predicted as this chunk's sizes at those
        rungs, scaled to their latent frames; exact when ``left`` is 0). Codes the chunk at ``k``'s neighbours as needed
        (kept in ``tried``)."""
        size = {}
        for j in range(max(0, k - 1), min(len(self.points), k + 2)) if left else (k,):
            if j not in tried:
                tried[j] = self._code(j, tokens, num_frames, continues)
            size[j] = len(tried[j][0]) * self.scale
        after = self.spent + size[k] + CHUNK_OVERHEAD
        if not left:
            return abs(after - self.bytes_per_frame * self.total_frames)
        # as continuing chunks at one point, costing what this chunk does per latent frame
        scale = self._units(left, True) / self._units(num_frames, continues)
        rest = [s * scale + CHUNK_OVERHEAD for s in size.values()]
        return min(abs(after + r - self.bytes_per_frame * self.total_frames) for r in rest)

    def _end_choice(self, i: int, tokens: np.ndarray, num_frames: int, continues: bool, left: int, tried: dict,
                    miss) -> int:
        """The point for a chunk with only ``left`` <= its own frames after it (the stream's last chunk or the one
        before). ``i`` (the rate point closest to the chunk's own share, ``miss``) unless, with the best point for
        those frames next to this chunk's (:meth:`_end_miss`), ``i`` would leave the stream's total more than half
        of :data:`TOLERANCE` from its target: then the neighbouring rate point closest to the share that lands it
        within that, else the rung up to those neighbours (a width between rate points too, a step down in quality)
        that lands it closest. Neighbours only, for this chunk and for the rest: a far point shows as a quality
        step, and an overshoot that the last frames make up at a far lower point starves them (measured: a
        48-frame clip's last 15 frames at quality 1 after a chunk at 7, 1.5 dB below coding it all at 6)."""
        def end_miss(k: int) -> float:
            return self._end_miss(k, tokens, num_frames, continues, left, tried)

        limit = TOLERANCE / 2 * self.bytes_per_frame * self.total_frames
        if end_miss(i) <= limit:
            return i
        points = [k for k, r in enumerate(self.points) if not r.between]
        pos = points.index(i)
        landing = [k for k in points[max(0, pos - 1):pos + 2] if end_miss(k) <= limit]
        if landing:
            return min(landing, key=miss)
        return min(range(points[max(0, pos - 1)], points[min(len(points) - 1, pos + 1)] + 1), key=end_miss)

    def spend(self, extra: int) -> None:
        """Count ``extra`` bytes the last chunk carries besides its coded tokens (a colour correction)."""
        self.spent += extra
        self._written(extra, 0)

    def _written(self, actual: int, tokens: int) -> None:
        # the last chunk's bytes as written and as the encoder's tokens code (see scale)
        self._sizes = [self._sizes[0] + actual, self._sizes[1] + tokens]

    @property
    def scale(self) -> float:
        """What chunks cost as written (refined tokens, vcodec.refine; colour corrections) against the encoder's own
        tokens at the same rate points, so far: the ratio the choice of a rate point applies to the sizes (1 before
        the first chunk)."""
        return self._sizes[0] / self._sizes[1] if self._sizes[1] else 1.0

    def code(self, tokens: np.ndarray, num_frames: int, continues: bool) -> tuple[Rung, bytes]:
        """Choose the rate point of one chunk (``tokens``: the whole grid, ``uint32 (levels, T, H, W)`` of
        :attr:`full_grid`) and code it: ``(point, coded bytes)``; the caller writes exactly that chunk next."""
        behind = self.bytes_per_frame * self.frames - self.spent  # bytes under budget so far (negative: over)
        left = None if self.total_frames is None else self.total_frames - self.frames - num_frames
        # its frames' share, in what they cost (the stream's last chunk: exactly what is left)
        frames = num_frames if left == 0 else self._units(num_frames, continues) * self.frames_per_unit
        want = self.bytes_per_frame * frames + behind * self._share(num_frames) - CHUNK_OVERHEAD
        tried: dict[int, tuple[bytes, CoderContext]] = {}

        def miss(i: int) -> float:
            if i not in tried:
                tried[i] = self._code(i, tokens, num_frames, continues)
            return abs(len(tried[i][0]) * self.scale - want)

        points = [k for k, r in enumerate(self.points) if not r.between]  # the model's rate points
        pos = min(range(len(points)), key=lambda k: abs(points[k] - self._at))
        for step in (1, -1):  # walk while the next point lands closer (sizes grow along the ladder)
            while 0 <= pos + step < len(points) and miss(points[pos + step]) < miss(points[pos]):
                pos += step
        i = points[pos]
        if left is not None and left <= num_frames:  # this chunk or the next is the stream's last
            i = self._end_choice(i, tokens, num_frames, continues, left, tried, miss)
        self._last = (i, len(tried[i][0]), self.context)
        data, self.context = tried[i]
        self._at = i
        if i == 0 and len(data) > want:
            self.beyond[-1] += 1
        elif i == len(self.points) - 1 and len(data) < want:
            self.beyond[1] += 1
        self.spent += len(data) + CHUNK_OVERHEAD
        self._written(len(data), len(data))
        self.frames += num_frames
        self.used[i] += 1
        return self.points[i], data

    def recode(self, tokens: np.ndarray, num_frames: int, continues: bool) -> bytes:
        """Code the last chunk :meth:`code` chose again, from other ``tokens`` at its rate point (``uint32 (levels,
        T, H, W)`` of that point's levels and bits: refined ones) in place of the encoder's: the coded bytes, which
        the caller writes instead. The stream's account and coder state follow, and so does :attr:`scale`, the
        ratio of the chunks' sizes as written to the encoder's that later choices apply."""
        if self._last is None:
            raise ValueError("recode follows code")
        i, plain, before = self._last
        p = self.points[i]
        context = before.copy()
        data = encode_chunk(self.header, tokens, num_frames, self.tables[p.bits], context, continues, p.bits)
        self.context, self._last = context, None
        self.spent += len(data) - plain
        self._written(len(data) - plain, 0)
        return data

    def chunk_counts(self) -> dict[str, int]:
        """Chunks coded at each rung so far, by label, in ladder order (``{"2": 3, "2+": 1}``)."""
        return {self.points[i].label: n for i, n in sorted(self.used.items())}
