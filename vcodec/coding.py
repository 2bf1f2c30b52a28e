"""Between the tokenizer and the ``.vcb``: stream headers and tracks from and to vcodec's objects, and the two
cores that the file API (``encode_video`` / ``decode_video``) and the array API (``compress`` / ``decompress``)
share: :func:`encode_windows` (frames -> chunks) and :func:`decoded` (chunks -> frames).

Video here is ``numpy.uint8`` ``(n, H, W, 3)`` RGB, one temporal window (at most ``tok.window_frames`` frames) at
a time; token grids are ``uint32`` ``(L, T_lat, H_lat, W_lat)``.
"""

from __future__ import annotations

import base64
import warnings
from collections.abc import Callable, Iterable, Iterator
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

from bitstream import (
    Chunk,
    CoderContext,
    ModelMismatchError,
    Packet,
    StreamHeader,
    TrackInfo,
    VcbReader,
    VcbWriter,
    cut_tables,
    encode_chunk,
)
from bitstream.header import MAX_RATE
from vcodec.correction import EVERY_CHUNK, NO_CORRECTION, colour_map, fit_colour
from vcodec.errors import ArgumentError, ModelError, VcodecWarning
from vcodec.io.audio import AudioPacket, AudioTrack
from vcodec.models import stream_tokenizer
from vcodec.scenecut import with_cuts
from vcodec.stream import DEFAULT_KEYINT, StreamState, chunk_plan

if TYPE_CHECKING:
    from vcodec.ratecontrol import RateController
    from vcodec.tokenizer import Tokenizer

TEMPLATE_KEY = "ffmpeg_nut_template"  # TrackInfo.params key: base64 NUT header holding FFmpeg's codec parameters


# ----------------------------------------------------------------------------------------------
# stream header <-> tokenizer and source


def quality_point(tok: Tokenizer, quality: int | None) -> tuple[int, int, int]:
    """(quality, bits per token, token planes). The default is the model's default quality (its highest trained
    point: ``Tokenizer.default_quality``)."""
    if quality is None:
        quality = tok.default_quality
    bits, planes = tok.quality_point(quality)  # (refuses anything but a whole number it offers)
    return int(quality), bits, planes


def coding_plan(tok: Tokenizer, quality: int | None, bitrate: float | None
                ) -> tuple[int | None, int, int, tuple[int, ...] | None]:
    """``(quality, bits, levels, chunk_bits)`` of a new stream: one rate point's (``quality``, default the
    highest), or with a target ``bitrate`` (bits per second; rate control) no fixed quality, the model's whole
    token grid and every token width its rate points use (see :mod:`vcodec.ratecontrol`)."""
    if bitrate is None:
        return (*quality_point(tok, quality), None)
    from vcodec.ratecontrol import full_grid, ladder, rate_widths

    if quality is not None:
        raise ArgumentError("choose a quality or a bitrate, not both")
    return None, *full_grid(ladder(tok)), rate_widths(tok)


def rate_controller(tok: Tokenizer, w: VcbWriter, bitrate: float | None, frame_rate: Fraction,
                    total_frames: int | None = None, audio_bytes: int = 0,
                    keyint: int | None = None) -> RateController | None:
    """The rate controller of a stream whose header and tracks ``w`` has written (None without a ``bitrate``);
    ``total_frames``: the stream's length if known beforehand (see :class:`vcodec.ratecontrol.RateController`);
    ``audio_bytes``: what of the bytes written so far is audio (its track records), not counted as video;
    ``keyint``: the stream's keyframe period (its chunks' budgets follow their latent frames)."""
    if bitrate is None:
        return None
    from vcodec.ratecontrol import RateController

    return RateController(tok, w.header, writer_tables(tok, w.header), bitrate, frame_rate,
                          w.bytes_written - audio_bytes, total_frames, keyint)


def stream_header(tok: Tokenizer, bits: int, levels: int, quality: int | None, width: int, height: int,
                  rate: Fraction, extra: dict, num_frames: int | None = None,
                  chunk_bits: tuple[int, ...] | None = None, colour: str = NO_CORRECTION) -> StreamHeader:
    """The header of a stream that ``tok`` codes with ``levels`` token planes of ``bits`` bits, or (rate control)
    with chunks of any width in ``chunk_bits`` (ascending, ending with ``bits``); the geometry comes from
    ``tok.config``, the entropy coder's version from the tables ``tok`` has (write with :func:`writer_tables`).
    ``quality`` None: chosen per chunk. ``colour``: how the encoder fits colour corrections
    (:func:`vcodec.correction.fits_colour`); unless NO_CORRECTION, chunks may carry one (format version 4, which
    lists the chunks' widths: ``(bits,)`` for one rate point)."""
    colour = colour != NO_CORRECTION
    if colour and chunk_bits is None:
        chunk_bits = (bits,)
    if rate.numerator > MAX_RATE or rate.denominator > MAX_RATE:
        approx = rate.limit_denominator(1001)
        warnings.warn(f"frame rate {rate} stored as {approx}", VcodecWarning, stacklevel=3)
        rate = approx
    cfg = tok.config
    return StreamHeader(
        model_name=tok.name,
        weights_hash=tok.weights_hash,
        token_bits=bits,
        levels=levels,
        max_levels=tok.max_levels,
        width=width,
        height=height,
        frame_rate=(rate.numerator, rate.denominator),
        temporal_factor=cfg.temporal_factor,
        spatial_factor=cfg.spatial_factor,
        window_frames=cfg.window_frames,
        num_frames=num_frames,
        coder_version=_coder_version(tok, chunk_bits or (bits,)),
        chunk_bits=chunk_bits,
        chunk_colour=colour,
        extra={"encoder": f"vcodec {_version()}", "quality": quality, **extra},
    )


def _coder_version(tok: Tokenizer, widths: tuple[int, ...]) -> int:
    versions = {tok.coder_version(b) for b in widths}
    if len(versions) > 1:
        raise ModelError(f"model {tok.name} has coder tables of different versions for token widths {list(widths)}; "
                         "it cannot code a stream that switches between them (--bitrate)")
    return versions.pop()


def writer_tables(tok: Tokenizer, header: StreamHeader):
    """The coder tables a writer or reader of ``header``'s stream needs: one set, or one per token width when the
    stream's chunks choose their width (``header.chunk_bits``). They cover at most the header's ``max_levels``
    planes: a stream written before its model gained a level (``export --add-level``) names the tables its model
    had then, which are the first levels of today's."""
    def tables(bits):
        return cut_tables(tok.tables_for(bits, header.coder_version), header.max_levels)

    if header.chunk_bits is None:
        return tables(header.token_bits)
    return {b: tables(b) for b in header.chunk_bits}


def check_geometry(header: StreamHeader, tok: Tokenizer, name: str) -> None:
    """Refuse a header whose token geometry is not the model's (ModelMismatchError): same weights, other grid.
    A stream may code fewer bits per token than the model has (its low bits), may come from the model before it
    gained a level (fewer planes: ``max_levels`` up to the model's), and may use shorter windows than the model's
    (never longer: a chunk's size, and so the memory its decode takes, is bounded by the model's window, whatever
    the header says). Runs before any chunk is read; the reader then checks every chunk's token grid against
    these header values (FORMAT.md 4.2), so no chunk can be larger than the model's window."""
    cfg = tok.config
    want = (cfg.token_bits, tok.max_levels, cfg.temporal_factor, cfg.spatial_factor)
    got = (header.token_bits, header.max_levels, header.temporal_factor, header.spatial_factor)
    if got[2:] != want[2:] or not 1 <= got[0] <= want[0] or not 1 <= got[1] <= want[1]:
        raise ModelMismatchError(
            f"{name}: header geometry (token_bits, max_levels, temporal_factor, spatial_factor) = {got} "
            f"is not that of model {tok.name!r}: {want}"
        )
    if not 1 <= header.window_frames <= cfg.window_frames:
        raise ModelMismatchError(
            f"{name}: header window of {header.window_frames} frames is longer than model {tok.name!r}'s "
            f"({cfg.window_frames} frames)"
        )


def source_info(header: StreamHeader) -> dict:
    """What the encoder recorded about its source (``extra["source"]``), or ``{}``."""
    src = header.extra.get("source")
    return src if isinstance(src, dict) else {}


MAX_SAR_TERM = 2**31 - 1  # FFmpeg keeps a sample aspect ratio as a pair of C ints
MAX_SAR = 1024  # pixels 1024 times wider (or narrower) than tall: beyond any real video


def sample_aspect_ratio(header: StreamHeader) -> Fraction | None:
    """The source's sample aspect ratio from ``extra.source`` (a ``"num/den"`` string), or None when absent.
    The header is untrusted: anything but a short rational with terms of at most 2^31 - 1 within
    1/1024..1024 is ignored with a warning (the output then has square pixels)."""
    s = source_info(header).get("sample_aspect_ratio")
    if s is None:
        return None
    f = None
    if isinstance(s, str) and len(s) <= 32:
        try:
            f = Fraction(s)
        except (ValueError, ZeroDivisionError):
            f = None
    if f is None or not (0 < f.numerator <= MAX_SAR_TERM and 0 < f.denominator <= MAX_SAR_TERM
                         and Fraction(1, MAX_SAR) <= f <= MAX_SAR):
        warnings.warn(f"ignoring implausible sample aspect ratio {str(s)[:40]!r} in the stream header",
                      VcodecWarning, stacklevel=2)
        return None
    return f


# ----------------------------------------------------------------------------------------------
# audio tracks <-> TrackInfo


def track_info(t: AudioTrack) -> TrackInfo:
    return TrackInfo(
        kind="audio",
        codec=t.codec,
        time_base=(t.time_base.numerator, t.time_base.denominator),
        params={
            "sample_rate": t.sample_rate,
            "channels": t.channels,
            "layout": t.layout,
            "language": t.language,
            TEMPLATE_KEY: base64.b64encode(t.template).decode("ascii"),
        },
        extradata=t.extradata,
    )


MAX_SAMPLE_RATE = 10**6  # Hz; beyond any audio FFmpeg decodes
MAX_CHANNELS = 64
MAX_PARAM_STR = 256  # layout and language names


def audio_track(info: TrackInfo) -> AudioTrack | None:
    """The audio track a TrackInfo describes, or None when vcodec cannot restore it: not audio, no FFmpeg
    template, or a parameter of the wrong type or out of range (``sample_rate`` an int in 0..10^6,
    ``channels`` an int in 0..64 (0 or absent: unknown), ``layout``/``language`` short strings). The stream is untrusted, so every
    field is checked here, before FFmpeg sees it."""
    p = info.params
    if info.kind != "audio" or not isinstance(p.get(TEMPLATE_KEY), str):
        return None
    rate, channels, layout, language = (p.get(k) for k in ("sample_rate", "channels", "layout", "language"))
    rate, channels = (0 if v is None else v for v in (rate, channels))  # absent: unknown
    if not (_int_in(rate, 0, MAX_SAMPLE_RATE) and _int_in(channels, 0, MAX_CHANNELS)
            and (layout is None or isinstance(layout, str) and len(layout) <= MAX_PARAM_STR)
            and (language is None or isinstance(language, str) and len(language) <= MAX_PARAM_STR)):
        return None
    try:
        template = base64.b64decode(p[TEMPLATE_KEY], validate=True)
    except ValueError:
        return None
    return AudioTrack(
        codec=info.codec,
        sample_rate=rate,
        channels=channels,
        layout=layout or "",
        time_base=Fraction(*info.time_base),
        template=template,
        language=language,
        extradata=bytes(info.extradata),
    )


def _int_in(v, lo: int, hi: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def audio_packet(track: int, p: Packet) -> AudioPacket:
    return AudioPacket(track=track, data=p.data, pts=p.pts, dts=p.dts, duration=p.duration, keyframe=p.keyframe)


def write_audio(w: VcbWriter, ids: list[int], packets) -> int:
    """Append audio packets (``ids[p.track]`` is each one's track id in ``w``); returns the bytes written."""
    n = 0
    for p in packets:
        w.write_packet(ids[p.track], p.data, pts=p.pts, dts=p.dts, duration=p.duration, keyframe=p.keyframe)
        n += len(p.data)
    return n


# ----------------------------------------------------------------------------------------------
# the two cores


def check_range(start, frames, duration) -> None:
    """Refuse (:class:`ArgumentError`) a range that cannot select frames: a negative ``start`` (seconds), both a
    frame count and a duration, or either not positive."""
    if start is not None and start < 0:
        raise ArgumentError(f"start time {start} is negative")
    if frames is not None and duration is not None:
        raise ArgumentError("give the number of frames or the duration, not both")
    if frames is not None and frames < 1:
        raise ArgumentError(f"frame count {frames} is not positive")
    if duration is not None and duration <= 0:
        raise ArgumentError(f"duration {duration} is not positive")


def frame_range(rate: Fraction, start, frames: int | None, duration) -> tuple[int, int | None]:
    """(first frame, frame count or None for all) for a start time and a frame count or duration in seconds, at
    ``rate`` frames per second (what :func:`plan_chunks` takes)."""
    first = round(Fraction(start) * rate) if start else 0
    if duration is not None:
        frames = max(1, round(Fraction(duration) * rate))
    return first, frames


def frames_in_range(frames: Iterable[np.ndarray], first: int = 0, count: int | None = None) -> Iterator[np.ndarray]:
    """Frames ``first .. first + count - 1`` (``count`` None: to the end) of a stream of frame groups ``uint8
    (k, H, W, 3)``, one ``(H, W, 3)`` view at a time. Stops reading once ``count`` are out."""
    pos = 0
    for group in frames:
        lo, hi = max(first - pos, 0), len(group)
        if count is not None:
            hi = min(hi, first + count - pos)
        pos += len(group)
        yield from group[lo:hi]
        if count is not None and pos >= first + count:
            return


def plan_chunks(frames: Iterable[np.ndarray], plan: Iterable[tuple[int, object]], first: int = 0,
                count: int | None = None) -> Iterator[tuple[np.ndarray, object]]:
    """The frames of :func:`frames_in_range` cut into chunks of the sizes ``plan`` gives, each with its tag:
    ``(chunk, tag)`` (the last chunk may be shorter)."""
    return _chunked(((frame, False) for frame in frames_in_range(frames, first, count)), lambda: iter(plan))


def _chunked(frames: Iterable[tuple[np.ndarray, bool]], plan: Callable[[], Iterator[tuple[int, object]]]
             ) -> Iterator[tuple[np.ndarray, object]]:
    """``(frame, restart)`` pairs cut into chunks of the sizes ``plan()`` gives, with their tags; a frame with
    ``restart`` (a scene cut) starts ``plan()`` anew unless the layout starts a chunk tagged False (a keyframe
    chunk) there anyway, ending the chunk open before it early."""
    layout = plan()
    n, tag = next(layout)
    held: list[np.ndarray] = []
    for frame, restart in frames:
        if restart and (held or tag):
            if held:
                yield np.stack(held), tag
            held, layout = [], plan()
            n, tag = next(layout)
        held.append(frame)
        if len(held) == n:
            yield np.stack(held), tag
            held = []
            n, tag = next(layout)
    if held:
        yield np.stack(held), tag


def stream_chunks(frames: Iterable[np.ndarray], tok: Tokenizer, keyint: int = DEFAULT_KEYINT, first: int = 0,
                  count: int | None = None, end_pieces: int = 1,
                  scenecut: bool = True) -> Iterator[tuple[np.ndarray, bool]]:
    """``(chunk, continues)``: the frames (as :func:`plan_chunks`) in the chunks :func:`chunk_plan` lays out for
    ``tok``'s window, with ``scenecut`` a new keyframe period at every scene cut (:func:`scene_chunks`); with
    ``end_pieces`` 2 or 3, one of the chunks that end the stream cut in that many (see :func:`split_end`)."""

    def plan() -> Iterator[tuple[int, bool]]:
        return chunk_plan(tok.window_frames, tok.config.temporal_factor, keyint)

    chunks = scene_chunks(frames, plan, first, count) if scenecut else plan_chunks(frames, plan(), first, count)
    return split_end(chunks, tok.config.temporal_factor, end_pieces) if end_pieces > 1 else chunks


def scene_chunks(frames: Iterable[np.ndarray], plan: Callable[[], Iterator[tuple[int, bool]]], first: int = 0,
                 count: int | None = None) -> Iterator[tuple[np.ndarray, bool]]:
    """:func:`plan_chunks` with ``plan()``'s layout (``(frames, continues)`` per chunk) started anew at every scene
    cut (:mod:`vcodec.scenecut`, which decides on a frame when the next one is read): the chunk open there ends
    early (a keyframe chunk follows, so it may end inside a latent frame, FORMAT.md 4.2) and the cut's frame starts
    a keyframe chunk (unless the layout starts one there anyway). Without cuts, the chunks of ``plan_chunks``."""
    return _chunked(with_cuts(frames_in_range(frames, first, count)), plan)


def split_end(chunks: Iterable[tuple[np.ndarray, bool]], temporal_factor: int,
              pieces: int = 2) -> Iterator[tuple[np.ndarray, bool]]:
    """``chunks`` (``(frames, continues)``) with one of the two that end the stream cut in two continuing chunks:
    the last, or the one before when the last would hold too few frames, whichever continues the chunk before it
    and holds at least ``2 * temporal_factor`` frames; the first piece is a whole number of latent frames. Rate
    control then chooses the stream's end at half the granularity, for one more chunk's overhead (76 bytes). With
    ``pieces=3`` the second piece is cut in two again where it is long enough (16 frames: 8 + 4 + 4, a quarter of
    the granularity for a second chunk's overhead).

    Works on the chunks as they come, one chunk ahead (so also for a stream whose length nobody knows, such as a
    pipe): a chunk is passed on once the next one exists; the last two are known when the input ends."""
    held: list[tuple[np.ndarray, bool]] = []
    for chunk in chunks:
        held.append(chunk)
        if len(held) > 2:
            yield held.pop(0)
    for k in (len(held) - 1, len(held) - 2):
        if k >= 0 and held[k][1] and len(held[k][0]) >= 2 * temporal_factor:
            frames, cut = held[k][0], []
            for _ in range(pieces - 1):
                if len(frames) < 2 * temporal_factor:
                    break
                half = temporal_factor * (len(frames) // (2 * temporal_factor))
                cut.append(frames[:half])
                frames = frames[half:]
            held[k:k + 1] = [(piece, True) for piece in (*cut, frames)]
            break
    yield from held


def encode_windows(w: VcbWriter, tok: Tokenizer, chunks: Iterable[tuple[np.ndarray, bool]], bits: int, levels: int,
                   after: Callable[[int], None] | None = None,
                   coded: Callable[[np.ndarray, np.ndarray, bool, int, tuple | None], None] | None = None,
                   progress: Callable[[int], None] | None = None, rate: RateController | None = None,
                   refine: int = 0, colour: str = EVERY_CHUNK) -> list[int]:
    """The window-encode core: each ``(window, continues)`` of :func:`stream_chunks` (window ``uint8 (n, H, W,
    3)``) becomes one chunk of ``levels`` token planes of ``bits`` bits (with ``rate``: of the rate point it
    chooses for the chunk), continuing the previous chunk's stream (model state and coder contexts) when
    ``continues``; ``after(n)`` runs after each (to interleave audio), ``coded(window, tokens, continues, bits,
    colour)`` before it (to measure what a decoder will see), ``progress(k)`` after each latent frame (``k`` frames, at
    most 4). With ``rate``, a target outside what the model's rate points spend on this video is a VcodecWarning
    (:meth:`RateController.out_of_range`). ``refine``: steps of encoder-side latent refinement per latent frame
    (:mod:`vcodec.refine`; with ``rate``, at the rate point chosen on the encoder's own tokens, whose sizes the
    controller then scales by what refinement has added so far). Where the writer's header has ``chunk_colour``, chunks
    get the colour correction that pays for itself (:mod:`vcodec.correction`; the encoder decodes what it codes to
    fit it): ``colour`` EVERY_CHUNK fits each chunk, KEY_CHUNKS (:func:`vcodec.correction.fits_colour`) only the
    keyframe chunks, whose map the chunks that continue them carry where coded at the same rate point. Returns the
    first frame of every keyframe chunk."""
    from vcodec.refine import encode_refined, latent_buffer, refine_tokens
    from vcodec.tokenizer import token_prefix

    fit = w.header.chunk_colour
    fit_every = colour == EVERY_CHUNK               # else a keyframe chunk's map serves its whole period
    period_colour, period_point = None, None        # a keyframe chunk's map, and the rate point it was fitted at
    stream, decoder = StreamState(), StreamState()  # the encoder's, and (refine, colour) the decoder's
    coder = CoderContext()                          # (colour, fixed rate point) the coder's, as the writer keeps it
    tables = writer_tables(tok, w.header) if fit and rate is None else None
    key_starts: list[int] = []
    before = None                                   # (refine) the last chunk's tokens and bits, for the rate term
    for window, continues in chunks:
        if not continues:
            key_starts.append(w.num_frames)
            stream.reset()
            decoder.reset()
        elif not stream.started:
            raise ValueError("a chunk can continue only a chunk that ends on a whole latent frame")
        seen = np.empty_like(window) if refine and fit else None   # what the decoder makes of the chunk
        if rate is None:
            if refine:
                tokens = encode_refined(tok, window, levels, bits, stream, decoder, refine, progress, seen, before)
            else:
                tokens = tok.encode_window(window, levels, bits, progress, stream)
            chunk_bits, chunk_levels = bits, levels
            data = encode_chunk(w.header, tokens, len(window), tables[bits], coder, continues, bits) if fit else None
        else:
            full_bits, full_levels = rate.full_grid
            latent = latent_buffer(tok, window, continues) if refine else None
            full = tok.encode_window(window, full_levels, full_bits, None if refine else progress, stream, latent=latent)
            point, data = rate.code(full, len(window), continues)   # the rate point, chosen on the encoder's tokens
            chunk_bits, chunk_levels = point.bits, point.levels
            if refine:
                tokens = refine_tokens(tok, window, latent, point.bits, point.levels, refine, decoder, continues,
                                       progress, decoded=seen, before=before)
                data = rate.recode(tokens, len(window), continues)
            else:
                tokens = token_prefix(full, point.bits, point.levels) if coded is not None or fit else None
        chunk_colour = None
        if fit:
            if continues and not fit_every:
                # a map fitted at one rate point misleads at another (rate control: 1.5 dB lost at 20 kbit/s on
                # megamind): a chunk coded at another point than the period's fitted one carries none
                chunk_colour = period_colour if (chunk_bits, chunk_levels) == period_point else None
            else:
                if seen is None:
                    seen = tok.decode_window(tokens, len(window), *window.shape[1:3], chunk_bits, decoder)
                chunk_colour = period_colour = fit_colour(window, seen, len(data))
                period_point = (chunk_bits, chunk_levels)
        colour_bytes = w.colour_bytes
        if data is None:
            w.write_chunk(tokens, len(window), continues=continues)
        else:
            w.write_coded_chunk(data, len(window), chunk_levels, continues, chunk_bits, chunk_colour)
        if rate is not None and w.colour_bytes > colour_bytes:
            rate.spend(w.colour_bytes - colour_bytes)
        if coded is not None:
            coded(window, tokens, continues, chunk_bits, chunk_colour)
        if refine:
            before = (tokens, chunk_bits)
        if after is not None:
            after(len(window))
    note = None if rate is None else rate.out_of_range(tok.name)
    if note:
        warnings.warn(note, VcodecWarning, stacklevel=3)
    return key_starts


def decoder_for(reader: VcbReader, *, tokenizer: Tokenizer | None, model, device: str, name: str,
                precision: str = "fp32") -> Tokenizer:
    """The tokenizer that made the stream ``reader`` opened (see :func:`vcodec.models.stream_tokenizer`; its
    decoder in ``precision``), checked against the header's geometry; the reader is given its coder tables."""
    h = reader.header
    tok = stream_tokenizer(h.model_name, h.weights_hash, tokenizer=tokenizer, model=model, device=device, what=name,
                           precision=precision)
    check_geometry(h, tok, name)
    reader.set_tables(writer_tables(tok, h))
    return tok


def decoded(reader: VcbReader, tok: Tokenizer, *, salvage: bool = False) -> Iterator[np.ndarray | Packet]:
    """The chunk-decode core: the stream's items in file order, each chunk's frames ``uint8 (k, H, W, 3)`` one
    latent frame at a time (k <= 4; grayscale sources restored to R = G = B), each auxiliary-track packet as itself. With ``salvage``,
    damaged records are skipped and listed in ``reader.damage``, and the frames they held are filled in (see
    :func:`gap_frames`), so that every later frame keeps its time and the audio stays in sync."""
    h = reader.header
    gray = source_info(h).get("gray") is True
    frames, last, stream = 0, None, StreamState()
    for item in reader.records(salvage=salvage):
        if isinstance(item, Chunk):
            if item.first_frame > frames:
                yield from gap_frames(last, item.first_frame - frames, frames, h.height, h.width)
            if not item.continues:
                stream.reset()
            for out in tok.decode_pieces(item.tokens, item.num_frames, h.height, h.width, item.bits or h.token_bits,
                                         stream, colour_map(item.colour)):
                out = to_gray(out) if gray else out
                last = out[-1]
                yield out
            frames = item.first_frame + item.num_frames
        else:
            yield item
    total = reader.total_frames if salvage else None
    if total is not None and total > frames and last is not None:
        yield from gap_frames(last, total - frames, frames, h.height, h.width)


GAP_GREY = 128  # what fills frames lost before the first intact one


def gap_frames(last: np.ndarray | None, n: int, start: int, height: int, width: int) -> Iterator[np.ndarray]:
    """``n`` frames standing in for damaged ones from frame ``start`` on: repeats of the last good frame, or mid
    grey when there is none yet; with a warning that says how many."""
    what = "repeats of the last intact frame" if last is not None else "grey frames"
    s = "" if n == 1 else "s"
    warnings.warn(f"frame{s} {start}-{start + n - 1} lost ({n} frame{s}): filled with {what} to keep the timing",
                  VcodecWarning, stacklevel=3)
    fill = last if last is not None else np.full((height, width, 3), GAP_GREY, np.uint8)
    for s0 in range(0, n, 16):  # a bounded amount at a time: the gap may be long
        yield np.repeat(fill[None], min(16, n - s0), axis=0)


def decoded_range(reader: VcbReader, tok: Tokenizer, first: int, count: int | None) -> Iterator[np.ndarray]:
    """Frames ``first .. first + count - 1`` (``count`` None: to the end), decoding only the chunks that hold
    them, from the keyframe chunk before the first of them (found through the stream's index; seekable inputs)."""
    h = reader.header
    gray = source_info(h).get("gray") is True
    end = None if count is None else first + count
    entries = reader.index()
    held = [e.index for e in entries if e.first_frame + e.num_frames > first and (end is None or e.first_frame < end)]
    if not held:
        return
    stream = StreamState()
    for chunk in reader.read_chunks(held[0], held[-1] + 1):
        if not chunk.continues:
            stream.reset()
        out = tok.decode_window(chunk.tokens, chunk.num_frames, h.height, h.width, chunk.bits or h.token_bits, stream,
                                colour_map(chunk.colour))
        if chunk.index < held[0]:
            continue  # decoded for the stream state only
        out = to_gray(out) if gray else out
        f0 = chunk.first_frame
        lo, hi = max(first - f0, 0), chunk.num_frames if end is None else min(chunk.num_frames, end - f0)
        yield out[lo:hi]


def damage_messages(reader: VcbReader) -> list[str]:
    """One line for each damaged part that a salvage pass skipped."""
    out = []
    for d in reader.damage:
        where = f"chunk {d.chunk}" if d.chunk is not None else f"data at offset {d.offset}"
        out.append(f"{where}: {d.message}")
    return out


def to_gray(frames: np.ndarray) -> np.ndarray:
    """R = G = B = BT.601 luma, rounded (for sources that were grayscale)."""
    f = frames.astype(np.uint32)
    y = (299 * f[..., 0] + 587 * f[..., 1] + 114 * f[..., 2] + 500) // 1000
    return np.repeat(y.astype(np.uint8)[..., None], 3, axis=-1)


def _version() -> str:
    from vcodec import __version__

    return __version__
