"""The Python API: files and streams in and out of ``.vcb``, and arrays in and out of bytes.

Video at this boundary is ``numpy.uint8`` ``(T, H, W, 3)``, RGB, full range. Encoding streams: frames are read,
encoded and written one temporal window (``tokenizer.window_frames`` frames) at a time, so memory does not grow
with the length of the video. Decoding streams the same way, chunk by chunk.

Errors are :class:`vcodec.errors.VcodecError` subclasses; a damaged or foreign ``.vcb`` raises a
:class:`~vcodec.errors.StreamError` that is also the ``bitstream.BitstreamError`` subclass found. FFmpeg and OS
errors are wrapped (kept as ``__cause__``).

Where the work is: inputs and outputs are resolved by :mod:`vcodec.io.files`, models found by
:mod:`vcodec.models`, and frames coded by the two cores in :mod:`vcodec.coding`; this module wires them up.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import sys
import time
import warnings
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

from bitstream import BadMagicError, BitstreamError, VcbReader, VcbWriter, packet_record_size, track_record_size
from vcodec import stopping
from vcodec.coding import (
    audio_packet,
    audio_track,
    check_range,
    coding_plan,
    damage_messages,
    decoded,
    decoded_range,
    decoder_for,
    encode_windows,
    frame_range,
    rate_controller,
    sample_aspect_ratio,
    stream_chunks,
    stream_header,
    to_gray,
    track_info,
    write_audio,
    writer_tables,
)
from vcodec.compare import Quality
from vcodec.correction import NO_CORRECTION, colour_map, fits_colour
from vcodec.errors import ArgumentError, InputError, OutputError, VcodecWarning, raises_stream_errors
from vcodec.io.audio import trim_audio
from vcodec.io.files import Endpoint, reading, resolve_input, resolve_output
from vcodec.io.sink import VideoSink, image_sequence, output_kind, refuse_frames_for_single_image, single_image
from vcodec.io.source import VideoSource
from vcodec.models import DEFAULT_MODEL, encoder_tokenizer, list_models, load_tokenizer, resolve_device
from vcodec.ratecontrol import MAX_BITRATE, MIN_BITRATE, end_pieces, rate_key, rung_names
from vcodec.results import DecodeResult, EncodeResult, rate_str, video_rate
from vcodec.stream import DEFAULT_KEYINT, StreamState, early_keyframes, keyframe_period

if TYPE_CHECKING:
    from vcodec.tokenizer import Tokenizer

__all__ = [
    "DecodeResult",
    "EncodeResult",
    "compress",
    "decode_video",
    "decompress",
    "encode_video",
    "info",
    "list_models",
    "load_tokenizer",
    "resolve_device",
]


# ----------------------------------------------------------------------------------------------
# plumbing


class _Warnings:
    """Collects the messages of VcodecWarnings raised inside (they are re-emitted for the caller too)."""

    def __init__(self):
        self.messages: list[str] = []

    @contextlib.contextmanager
    def collect(self):
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", VcodecWarning)
                yield
        finally:
            for w in caught:
                if issubclass(w.category, VcodecWarning):
                    msg = str(w.message)
                    if msg in self.messages:
                        continue
                    self.messages.append(msg)
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _progress(enabled: bool, total: int | None, desc: str):
    """A progress bar on stderr (cleared when done); ``total`` None: a step with no count ("loading model"). Where
    stderr is not a terminal (a log, a pipe), plain lines instead, at most one every ``LOG_PROGRESS_S`` seconds."""
    from tqdm import tqdm

    if enabled and not sys.stderr.isatty():
        return _LogProgress(total, desc)
    return tqdm(total=total, unit="frame", desc=desc, file=sys.stderr, disable=not enabled, leave=False,
                dynamic_ncols=True)


LOG_PROGRESS_S = 30.0   # a log's progress lines: a long encode says how far it is, a short one (or a failing one) nothing


class _LogProgress:
    """Progress written to a stderr that is not a terminal: ``encode: 120/1000 frames (12%), 4.2 frame/s``, one
    line at most every LOG_PROGRESS_S seconds (no carriage returns, nothing to clear)."""

    def __init__(self, total: int | None, desc: str):
        self.total, self.desc, self.n = total, desc, 0
        self.t0 = self.last = time.perf_counter()

    def __enter__(self) -> "_LogProgress":
        return self

    def __exit__(self, *exc) -> None:
        pass

    def update(self, k: int) -> None:
        self.n += k
        now = time.perf_counter()
        if now - self.last >= LOG_PROGRESS_S:
            self.last = now
            of = f"/{self.total}" if self.total else ""
            pct = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
            print(f"{self.desc}: {self.n}{of} frames{pct}, {self.n / (now - self.t0):.1f} frame/s",
                  file=sys.stderr, flush=True)


@contextlib.contextmanager
def _open_vcb(src: Endpoint):
    """A reader on a ``.vcb`` (header and tracks read; no model or tables needed yet). A video given where a
    ``.vcb`` belongs is told apart from other foreign data, with a hint to encode it."""
    with reading(src, "a .vcb file") as f:
        try:
            reader = VcbReader(f)
        except BadMagicError as e:
            kind = _video_kind(src)
            if kind is None:
                e.salvageable = False  # the file header is required: --salvage cannot help
                raise
            err = BadMagicError(f"{e} (this is a {kind}, not a .vcb; to encode it: vcodec encode "
                                f"{src.name} -o NAME.vcb)")
            err.salvageable = False
            raise err from None
        except BitstreamError as e:
            e.salvageable = False  # the file header and track records are required: --salvage cannot help
            raise
    with reader:
        yield reader


# first bytes of containers a .vcb is mistaken for -> what to call them
_VIDEO_MAGIC = ((8, b"WEBP", "WebP image"), (0, b"RIFF", "RIFF (AVI) video"), (0, b"\x1aE\xdf\xa3", "Matroska/WebM video"),
                (0, b"OggS", "Ogg video"), (0, b"YUV4MPEG2", "YUV4MPEG2 video"), (4, b"ftyp", "MP4/QuickTime video"),
                (0, b"\x00\x00\x01\xba", "MPEG-PS video"), (0, b"FLV", "FLV video"), (0, b"\xff\xd8\xff", "JPEG image"),
                (0, b"\x89PNG", "PNG image"), (0, b"GIF8", "GIF image"))
VIDEO_EXTENSIONS = frozenset((".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".y4m", ".ogv", ".mpg", ".mpeg",
                              ".ts", ".flv", ".png", ".gif"))


def _video_kind(src: Endpoint) -> str | None:
    """The container ``src`` looks like (by its first bytes; paths only), or None."""
    if not src.is_path:
        return None
    try:
        with open(src.path, "rb") as f:
            head = f.read(16)
    except OSError:
        return None
    for off, magic, kind in _VIDEO_MAGIC:
        if head[off:off + len(magic)] == magic:
            return kind
    return None


def _refuse_video_output(out: Endpoint) -> None:
    """``encode`` writes a .vcb: an output named like a video is a mix-up (``decode`` makes videos)."""
    ext = os.path.splitext(out.path)[1].lower() if out.is_path else ""
    if ext in VIDEO_EXTENSIONS:
        raise OutputError(f"cannot write {out.name}: encode writes a .vcb stream, not {ext} video (did you mean "
                          f"`vcodec decode`? To encode, name the output NAME.vcb)")


def _warn_skipped(reader: VcbReader, prefix: str) -> list[str]:
    skipped = damage_messages(reader)
    for s in skipped:
        warnings.warn(f"{prefix}skipped {s}", VcodecWarning, stacklevel=3)
    return skipped


# ----------------------------------------------------------------------------------------------
# files and streams


@raises_stream_errors
def encode_video(
    src,
    dst,
    *,
    quality: int | None = None,
    model: str | os.PathLike | None = DEFAULT_MODEL,
    device: str = "auto",
    overwrite: bool = False,
    progress: bool = False,
    tokenizer: Tokenizer | None = None,
    start: float | Fraction | None = None,
    frames: int | None = None,
    duration: float | Fraction | None = None,
    psnr: bool = False,
    threads: int | None = None,
    keyint: int = DEFAULT_KEYINT,
    bitrate: float | None = None,
    scenecut: bool = True,
    refine: int = 0,
    colour: bool | None = None,
) -> EncodeResult:
    """Encode a video into a ``.vcb``.

    ``src``: a path to anything FFmpeg opens (``.mp4``, ``.mkv``, ``.y4m``, ...), ``"-"`` for stdin, or a
    readable binary file object. ``dst``: a path (written to a temporary file beside it and renamed when
    complete), ``"-"`` for stdout, or a writable binary file object. ``quality`` picks a rate point of the
    model (default: its default quality, the highest it was trained for); ``model`` a shipped name or a ``.pt``
    path; ``tokenizer`` an already loaded :class:`vcodec.tokenizer.Tokenizer` (overrides ``model``). Audio tracks
    are copied into the ``.vcb``.

    ``start`` (seconds), ``frames`` / ``duration`` (seconds): encode only that part (audio cut to match, at
    packet boundaries). ``psnr``: measure what a decoder will get against the source (the result's
    ``quality_metrics``, see :mod:`vcodec.compare`). ``threads``: torch CPU threads (default: torch's).
    ``keyint``: frames per keyframe period (decoding can start only at a period's first frame; ``keyint`` up to
    the model's window, 17, codes every window on its own); ``scenecut``: also start a keyframe period where a
    new shot begins (:mod:`vcodec.scenecut`; False: keyframes every ``keyint`` frames only). ``bitrate``: bits per
    second of video to aim at
    instead of a fixed ``quality``: each chunk gets the rate point that keeps the stream on target
    (:mod:`vcodec.ratecontrol`; the result's ``video_kbps`` says what it got). ``refine``: steps of encoder-side
    latent refinement per latent frame (:mod:`vcodec.refine`: better pictures for a few more bytes, encoding many
    times slower; frames of up to 1920x1080; with a ``bitrate``, at the rate points rate control chooses). ``colour``: colour corrections
    (:mod:`vcodec.correction`, format version 5): True fits every chunk its own (the encoder decodes all it codes: about
    twice the encoding time without ``refine``, nothing more with it), False none; None (default): every chunk with
    ``refine``, else each keyframe period's first chunk, whose map the period's other chunks carry on (under
    ``bitrate``, those coded at the same rate point as that chunk).
    """
    inp = resolve_input(src)
    check_range(start, frames, duration)
    _check_keyint(keyint)
    _check_scenecut(scenecut)
    _check_bitrate(bitrate)
    _check_refine(refine)
    colour = _colour_fit(colour, refine)
    notes = _Warnings()
    with notes.collect(), VideoSource(inp) as source:
        # the output is checked once the input has opened: a bad input is the error a user needs to see first
        out = resolve_output(dst, overwrite=overwrite, src=src)
        _refuse_video_output(out)
        t0 = time.perf_counter()
        _set_threads(threads)
        with _progress(progress, None, "loading model"):   # (a log gets nothing: no frames to count)
            tok = encoder_tokenizer(tokenizer, model, device)
        load_s = time.perf_counter() - t0
        q, bits, levels, chunk_bits = coding_plan(tok, quality, bitrate)
        si = source.info
        first, count = frame_range(si.frame_rate, start, frames, duration)
        t_first = Fraction(first) / si.frame_rate
        t_end = None if count is None else Fraction(first + count) / si.frame_rate
        measured = Quality() if psnr else None
        header = stream_header(tok, bits, levels, q, si.width, si.height, si.frame_rate,
                               {"source": si.to_json(), **_coding_extra(tok, keyint, bitrate)}, chunk_bits=chunk_bits,
                               colour=colour)
        tok.check_encode_memory(tok.window_frames, si.height, si.width, frames_held=False)  # before reading frames
        if refine:
            _check_refine_size(si.width, si.height)
        hint = count if count is not None else (si.frame_count_hint - first if si.frame_count_hint else None)
        audio_bytes = 0          # the audio packets' data
        audio_stream_bytes = 0   # what the audio takes in the stream: its track and packet records
        t0 = time.perf_counter()
        with (
            out.writing(overwrite=overwrite, src=src) as target,
            VcbWriter(target, header, tables=writer_tables(tok, header)) as w,
            _progress(progress, hint, "encode") as bar,
        ):
            ids = [w.add_track(track_info(t)) for t in source.audio_tracks]
            audio_stream_bytes = sum(track_record_size(i, track_info(t))
                                     for i, t in zip(ids, source.audio_tracks))

            def write_taken_audio() -> None:
                nonlocal audio_bytes, audio_stream_bytes
                packets = trim_audio(source.take_audio(), source.audio_tracks, t_first, t_end)
                audio_bytes += write_audio(w, ids, packets)
                audio_stream_bytes += sum(packet_record_size(len(p.data)) for p in packets)

            def after_window(n: int) -> None:  # audio read with the window goes in right behind it
                write_taken_audio()
                stopping.check()

            decoder_stream = StreamState()

            def coded(window, tokens, continues, chunk_bits, colour) -> None:
                if not continues:
                    decoder_stream.reset()
                rec = tok.decode_window(tokens, len(window), si.height, si.width, chunk_bits, decoder_stream,
                                        colour_map(colour))
                measured.add(window, to_gray(rec) if si.gray else rec)

            expected = None if bitrate is None else hint  # rate control spreads deviations over the last chunks
            chunks = stream_chunks(source.windows(tok.window_frames), tok, keyint, first, count,
                                   end_pieces=end_pieces(bitrate, si.frame_rate, tok.window_frames - 1),
                                   scenecut=scenecut)
            rate = rate_controller(tok, w, bitrate, si.frame_rate, total_frames=expected, audio_bytes=audio_stream_bytes,
                                   keyint=keyint)
            key_starts = encode_windows(w, tok, chunks, bits, levels, after_window, coded if psnr else None, bar.update,
                                        rate, refine, colour)
            if w.num_frames == 0:
                raise InputError(f"{inp.name}: no frames in the range asked for (the video has {source.frames_read})")
            _warn_short_range(inp.name, "video", w.num_frames, count)
            write_taken_audio()
        seconds = time.perf_counter() - t0
    size, frames, colour_chunks = out.written(target), w.num_frames, w.colour_chunks
    return EncodeResult(
        input=inp.name,
        output=out.name,
        frames=frames,
        width=si.width,
        height=si.height,
        frame_rate=rate_str(si.frame_rate),
        bytes=size,
        bpp=size * 8 / (frames * si.width * si.height),
        seconds=seconds,
        fps=frames / max(seconds, 1e-9),
        load_seconds=load_s,
        model=tok.name,
        weights_hash=tok.weights_hash,
        quality=q,
        levels=levels if rate is None else None,  # rate control: per chunk (chunk_qualities)
        device=str(tok.device),
        audio_tracks=len(source.audio_tracks),
        audio_bytes=audio_bytes,
        **video_rate(size, audio_stream_bytes, frames, si.width, si.height, si.frame_rate),
        bitrate_target=None if rate is None else rate.bitrate,
        chunk_qualities=None if rate is None else rate.chunk_counts(),
        warnings=notes.messages,
        start_frame=first,
        keyint=keyint,
        scenecut=bool(scenecut),
        scene_cut_keyframes=early_keyframes(key_starts, keyframe_period(keyint, tok.window_frames,
                                                                        tok.config.temporal_factor)),
        refine=refine,
        colour=colour != NO_CORRECTION,
        colour_chunks=colour_chunks,
        quality_metrics=measured.to_json() if measured is not None else None,
    )


@raises_stream_errors
def decode_video(
    src,
    dst,
    *,
    overwrite: bool = False,
    salvage: bool = False,
    model: str | os.PathLike | None = None,
    device: str = "auto",
    pix_fmt: str | None = None,
    progress: bool = False,
    tokenizer: Tokenizer | None = None,
    start: float | Fraction | None = None,
    frames: int | None = None,
    duration: float | Fraction | None = None,
    threads: int | None = None,
    precision: str = "fp32",
) -> DecodeResult:
    """Decode a ``.vcb`` to a video file; the container follows ``dst``'s extension (see
    :mod:`vcodec.io.sink`): ``.y4m`` raw and exact, ``.mkv`` FFV1 lossless, ``.mp4`` H.264 (a lossy re-encode),
    ``"-"`` y4m on stdout. The output has the stream's frame count, size and exact frame rate; audio tracks
    are muxed back where the container takes them.

    ``salvage``: skip damaged chunks (each reported as a warning and in ``DecodeResult.skipped``) instead of
    failing at the first. ``model``/``tokenizer`` supply the weights when the ones named in the header are
    not shipped; they must have the same weights hash. ``pix_fmt`` picks the y4m pixel format.

    ``start`` (seconds), ``frames`` / ``duration`` (seconds): decode only that part; on a file only the chunks
    holding it are decoded (found through the index), and the audio is cut to match. ``threads``: torch CPU
    threads. ``precision``: the decoder network's number format, ``"fp32"`` or ``"bf16"`` (faster on GPUs and on
    CPUs with native bfloat16, which it needs; the same tokens, pixels a little further from the source: see the
    README).
    """
    kind = output_kind(dst)
    inp = resolve_input(src)
    check_range(start, frames, duration)
    ranged = start is not None or frames is not None or duration is not None
    if ranged and salvage:
        raise ArgumentError("--salvage decodes the whole stream; it cannot be combined with a frame range")
    notes = _Warnings()
    with notes.collect(), _open_vcb(inp) as reader:
        out = resolve_output(dst, overwrite=overwrite, src=src)   # (after the input: its error comes first)
        t0 = time.perf_counter()
        _set_threads(threads)
        with _progress(progress, None, "loading model"):   # (a log gets nothing: no frames to count)
            tok = decoder_for(reader, tokenizer=tokenizer, model=model, device=device, name=inp.name,
                              precision=precision)
        load_s = time.perf_counter() - t0
        h = reader.header
        rate = Fraction(*h.frame_rate)
        tracks, track_of = _restorable_audio(reader, inp.name)
        first, count = frame_range(rate, start, frames, duration)
        # frames this call decodes, where known (a file's header counts them; a pipe's may not)
        known = reader.total_frames if inp.is_path else None   # None: a pipe, or a file cut short
        total = count if count is not None else None if known is None else max(0, known - first)
        if ranged and known is not None and first >= known:  # refused before any output (or warning about it)
            raise _empty_range(inp.name, known)
        if single_image(dst) and total is not None:
            refuse_frames_for_single_image(out.name, total)
        t0 = time.perf_counter()
        with (
            out.writing(overwrite=overwrite, src=src, binary=False, sequence=image_sequence(dst)) as target,
            VideoSink(target, kind=kind, width=h.width, height=h.height, frame_rate=Fraction(*h.frame_rate),
                      audio_tracks=tracks, pix_fmt=pix_fmt, sample_aspect_ratio=sample_aspect_ratio(h),
                      name=out.name) as sink,
            _progress(progress, total, "decode") as bar,
        ):
            n_out, pending = 0, []
            for item in _decoded_items(reader, tok, salvage, first, count, ranged, inp.is_path):
                if isinstance(item, np.ndarray):
                    sink.write(item)
                    n_out += len(item)
                    bar.update(len(item))
                    stopping.check()
                elif item.track_id in track_of:
                    p = audio_packet(track_of[item.track_id], item)
                    if ranged:
                        pending.append(p)
                    else:
                        sink.write_audio([p])
            if ranged and tracks:  # the audio of the range, cut to match (on a file: read now, nothing decoded)
                if inp.is_path:
                    pending = [audio_packet(track_of[p.track_id], p) for p in reader.packets()
                               if p.track_id in track_of]
                sink.write_audio(trim_audio(pending, tracks, Fraction(first) / rate, Fraction(first + n_out) / rate))
            frames = n_out
            if frames:
                _warn_short_range(inp.name, "stream", frames, count)
            skipped = _warn_skipped(reader, f"{inp.name}: ")
            if frames == 0:
                if ranged:
                    raise _empty_range(inp.name, reader.total_frames)
                raise InputError(f"{inp.name}: no intact video chunks to decode")
            stream_bytes = reader.bytes_read  # a pipe's or bytes' length, once the whole stream is read
        seconds = time.perf_counter() - t0
    size = inp.size() if inp.is_path else None if ranged else stream_bytes
    desc = sink.description
    return DecodeResult(
        input=inp.name,
        output=out.name,
        frames=frames,
        width=h.width,
        height=h.height,
        frame_rate=rate_str(Fraction(*h.frame_rate)),
        bytes=size,
        bpp=size * 8 / (frames * h.width * h.height) if size else None,
        seconds=seconds,
        fps=frames / max(seconds, 1e-9),
        load_seconds=load_s,
        model=h.model_name,
        weights_hash=h.weights_hash,
        quality=h.extra.get("quality") if isinstance(h.extra.get("quality"), int) else None,
        levels=None if _rate_controlled(h) else h.levels,
        device=str(tok.device),
        precision=tok.precision,
        container=desc["container"],
        codec=desc["codec"],
        pix_fmt=desc["pix_fmt"],
        lossy=desc["lossy"],
        note=desc["note"],
        audio_tracks=len(tracks) if kind != "y4m" else 0,
        skipped=skipped,
        warnings=notes.messages,
    )


def _warn_short_range(name: str, what: str, got: int, asked: int | None) -> None:
    """A warning when a range asked for by its length (``--frames``, ``--duration``) holds fewer frames."""
    def frames(k: int) -> str:
        return f"{k} frame{'' if k == 1 else 's'}"

    if asked is not None and got < asked:
        warnings.warn(f"{name}: the {what} ends {frames(got)} into the range of {frames(asked)} asked for",
                      VcodecWarning, stacklevel=3)


def _empty_range(name: str, total: int | None) -> InputError:
    return InputError(f"{name}: no frames in the range asked for (the stream has {total} frames)")


def _decoded_items(reader: VcbReader, tok, salvage: bool, first: int, count: int | None, ranged: bool,
                   seekable: bool):
    """What decode_video writes: the whole stream in file order (frames and audio packets), or for a range
    its frames alone (the audio is added after, cut to match): by the index on a file, else by decoding from the
    start and dropping what is outside."""
    if not ranged:
        yield from decoded(reader, tok, salvage=salvage)
    elif seekable:
        yield from decoded_range(reader, tok, first, count)
    else:  # a pipe: decode from the start, keep the range's frames and every packet
        pos, end = 0, None if count is None else first + count
        for x in decoded(reader, tok):
            if not isinstance(x, np.ndarray):
                yield x
                continue
            lo, hi = max(first - pos, 0), len(x) if end is None else min(len(x), end - pos)
            pos += len(x)
            if lo < hi:
                yield x[lo:hi]


MAX_KEYINT = 10**7  # frames: a keyframe period as long as the longest stream the format holds
MAX_REFINE = 1000  # refinement steps per latent frame: beyond this a typo (10 steps take 17x the encode time)


def _coding_extra(tok: Tokenizer, keyint: int, bitrate: float | None) -> dict:
    """What the header's ``extra`` records of how the stream was coded (``info`` reports it): the keyframe period,
    and for rate control the target and the quality label of each rate a chunk may take (:func:`rung_names`).
    (Keyframes at scene cuts need no field: ``info`` finds them in the layout, as periods that start early.)"""
    if bitrate is None:
        return {"keyint": keyint}
    return {"keyint": keyint, "bitrate": round(bitrate), "qualities": rung_names(tok)}


def _header_keyint(header) -> int | None:
    """The keyframe period the header's ``extra.keyint`` records (None where it records none, or no valid one)."""
    keyint = header.extra.get("keyint")
    return keyint if isinstance(keyint, int) and not isinstance(keyint, bool) and keyint >= 1 else None


def _keyframe_period(header) -> int | None:
    """:func:`vcodec.stream.keyframe_period` of the header's ``extra.keyint`` (None where it does not say)."""
    keyint = _header_keyint(header)
    return None if keyint is None else keyframe_period(keyint, header.window_frames, header.temporal_factor)


def _check_scenecut(scenecut) -> None:
    if not isinstance(scenecut, (bool, np.bool_)):
        raise ArgumentError(f"scenecut must be True or False, got {scenecut!r}")


def _check_bitrate(bitrate) -> None:
    if bitrate is not None and (isinstance(bitrate, bool) or not isinstance(bitrate, (int, float))
                                or not MIN_BITRATE <= bitrate <= MAX_BITRATE):
        raise ArgumentError(f"bitrate must be a number of bits per second in {MIN_BITRATE}..{MAX_BITRATE}, "
                            f"got {bitrate!r}")


def _check_refine(refine) -> None:
    if isinstance(refine, bool) or not isinstance(refine, int) or not 0 <= refine <= MAX_REFINE:
        raise ArgumentError(f"refine must be a whole number of steps in 0..{MAX_REFINE}, got {refine!r}")


def _colour_fit(colour, refine: int) -> str:
    """``colour`` checked (True, False or None), then :func:`vcodec.correction.fits_colour`."""
    if colour is not None and not isinstance(colour, bool):
        raise ArgumentError(f"colour must be True, False or None, got {colour!r}")
    return fits_colour(colour, refine)


def _check_refine_size(width: int, height: int) -> None:
    from vcodec.refine import check_frames

    try:
        check_frames(width, height)
    except ValueError as e:
        raise InputError(str(e)) from None


def _frame_rate(frame_rate) -> Fraction:
    """``compress``'s frame rate as an exact fraction: a positive Fraction or int, or a finite positive float
    (to the nearest fraction with a denominator up to 1001: 29.97 -> 2997/100; NTSC is Fraction(30000, 1001))."""
    ok = isinstance(frame_rate, (Fraction, int, float)) and not isinstance(frame_rate, bool)
    if ok and isinstance(frame_rate, float):
        ok = math.isfinite(frame_rate)
        frame_rate = Fraction(frame_rate).limit_denominator(1001) if ok else frame_rate
    if not ok or frame_rate <= 0:
        raise ArgumentError(f"frame_rate must be a positive number (Fraction, int or float), got {frame_rate!r}")
    return Fraction(frame_rate)


def _check_keyint(keyint) -> None:
    if isinstance(keyint, bool) or not isinstance(keyint, int) or not 1 <= keyint <= MAX_KEYINT:
        raise ArgumentError(f"keyint must be a whole number of frames in 1..{MAX_KEYINT}, got {keyint!r}")


def _set_threads(threads: int | None) -> None:
    if threads is None:
        return
    if threads < 1:
        raise ArgumentError(f"threads must be >= 1 (got {threads})")
    import torch

    torch.set_num_threads(threads)


def _restorable_audio(reader: VcbReader, name: str) -> tuple[list, dict[int, int]]:
    """The stream's audio tracks vcodec can restore, and for each one's track id its index in that list."""
    found = {tid: audio_track(t) for tid, t in reader.tracks.items()}
    bad = [str(tid) for tid, t in found.items() if t is None]
    if bad:
        warnings.warn(f"{name}: skipping track(s) {', '.join(bad)}: not audio vcodec can restore, or implausible "
                      "parameters", VcodecWarning, stacklevel=4)
    kept = [tid for tid, t in found.items() if t is not None]
    return [found[tid] for tid in kept], {tid: i for i, tid in enumerate(kept)}


# ----------------------------------------------------------------------------------------------
# arrays <-> bytes


@raises_stream_errors
def compress(
    frames: np.ndarray,
    *,
    quality: int | None = None,
    model: str | os.PathLike | None = DEFAULT_MODEL,
    device: str = "auto",
    frame_rate: Fraction | int | float = 25,
    tokenizer: Tokenizer | None = None,
    keyint: int = DEFAULT_KEYINT,
    bitrate: float | None = None,
    scenecut: bool = True,
    refine: int = 0,
    colour: bool | None = None,
) -> bytes:
    """Encode ``frames`` (``uint8`` ``(T, H, W, 3)`` RGB, T >= 1) into the bytes of a ``.vcb`` stream
    (``keyint``, ``scenecut``, ``bitrate``, ``refine`` and ``colour`` as for :func:`encode_video`)."""
    _check_keyint(keyint)
    _check_scenecut(scenecut)
    _check_bitrate(bitrate)
    _check_refine(refine)
    colour = _colour_fit(colour, refine)
    rate = _frame_rate(frame_rate)
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or min(frames.shape) < 1:
        raise InputError(f"frames must be uint8 (T, H, W, 3) with T, H, W >= 1; got {frames.dtype} {frames.shape}")
    T, H, W, _ = frames.shape
    if refine:
        _check_refine_size(W, H)
    tok = encoder_tokenizer(tokenizer, model, device)
    q, bits, levels, chunk_bits = coding_plan(tok, quality, bitrate)
    header = stream_header(tok, bits, levels, q, W, H, rate, _coding_extra(tok, keyint, bitrate), num_frames=T,
                           chunk_bits=chunk_bits, colour=colour)
    buf = io.BytesIO()
    with VcbWriter(buf, header, tables=writer_tables(tok, header)) as w:
        encode_windows(w, tok, stream_chunks([frames], tok, keyint, scenecut=scenecut,
                                             end_pieces=end_pieces(bitrate, rate, tok.window_frames - 1)),
                       bits, levels, rate=rate_controller(tok, w, bitrate, rate, total_frames=T, keyint=keyint),
                       refine=refine, colour=colour)
    return buf.getvalue()


@raises_stream_errors
def decompress(
    data,
    *,
    model: str | os.PathLike | None = None,
    device: str = "auto",
    salvage: bool = False,
    tokenizer: Tokenizer | None = None,
    precision: str = "fp32",
) -> np.ndarray:
    """Decode a ``.vcb`` stream -- its ``bytes``, or like :func:`info` a path, ``"-"`` or a binary file object --
    to ``uint8`` ``(T, H, W, 3)`` RGB frames.

    The model (and ``precision``) as in :func:`decode_video`. With ``salvage``, damaged chunks are skipped
    (warning).
    """
    with _open_vcb(resolve_input(data)) as reader:
        tok = decoder_for(reader, tokenizer=tokenizer, model=model, device=device, name="stream", precision=precision)
        out = [x for x in decoded(reader, tok, salvage=salvage) if isinstance(x, np.ndarray)]
        _warn_skipped(reader, "")
    if not out:
        raise InputError("no intact video chunks to decode")
    return np.concatenate(out)


# ----------------------------------------------------------------------------------------------
# info


@raises_stream_errors
def info(src, *, verify: bool = False) -> dict:
    """What a ``.vcb`` holds, without decoding tokens or loading a model: header fields, tracks, chunks,
    frames, size, bpp, the bytes of coded video tokens and of audio packets (``video_bytes``, ``audio_bytes``),
    the video's bitrate and bits per pixel (``video_kbps``, ``video_bpp``: :func:`vcodec.results.video_rate`), and
    how many chunks each rate point (``"levels x bits"``) coded (``chunk_rates``; rate control varies it) and, for a
    rate-controlled stream, the same by quality label as ``encode`` reports it (``chunk_qualities``; None
    otherwise). ``src``: a path, ``"-"``, a binary file object or the ``bytes`` of a stream.

    ``verify``: also read every record and check its CRC (no model needed); the result's ``"verify"`` says what
    is damaged and how many frames that costs (see :func:`_verify`). A damaged or truncated stream is then
    described rather than refused."""
    inp = resolve_input(src)
    with _open_vcb(inp) as reader:
        h = reader.header
        checked = _verify(reader)  # reads the records (cheap: no tokens decoded)
        stream_bytes = reader.bytes_read  # the stream's length, for inputs whose size is not known beforehand
        if not verify and reader.damage:
            raise reader.damage[0].error
        total = reader.total_frames
        if total is None:
            total = checked["expected_frames"] if checked["expected_frames"] is not None else checked["intact_frames"]
        chunks = reader.num_chunks
        if chunks is None:
            chunks = checked["intact_chunks"] + checked["damaged_chunks"]
        size = inp.size()
        # bytes after the end-of-stream record (two files concatenated, junk appended): readers ignore them
        checked["trailing_bytes"] = max(0, size - stream_bytes) if size is not None and reader.total_frames is not None \
            else 0
        rate = Fraction(*h.frame_rate)
        stream_size = size if size is not None else stream_bytes  # a pipe's: what was read, to the end record
        audio_bytes = checked.pop("audio_bytes")
        chunk_rates = checked.pop("chunk_rates")
        colour_chunks = checked.pop("colour_chunks")
        audio_stream_bytes = checked.pop("audio_stream_bytes") + sum(
            track_record_size(tid, t) for tid, t in reader.tracks.items())
        return {
            "file": inp.name,
            "bytes": stream_size,
            "frames": total,
            "chunks": chunks,
            "keyframe_chunks": checked.pop("keyframe_chunks"),  # intact ones: seeking and salvage restart there
            "width": h.width,
            "height": h.height,
            "frame_rate": rate_str(rate),
            "duration": float(total / rate) if total else 0.0,
            "bpp": stream_size * 8 / (total * h.width * h.height) if total else None,
            "model": h.model_name,
            "weights_hash": h.weights_hash,
            "quality": h.extra.get("quality"),
            "levels": None if _rate_controlled(h) else h.levels,  # rate control: per chunk (chunk_rates)
            "max_levels": h.max_levels,
            "token_bits": h.token_bits,
            "window_frames": h.window_frames,
            "keyint": _header_keyint(h),
            "scene_cut_keyframes": checked.pop("early_keyframes"),  # periods started before keyint: at scene cuts
            "format_version": h.format_version,
            "coder": f"{h.coder_id} v{h.coder_version}",
            "tracks": [
                {"id": tid, "kind": t.kind, "codec": t.codec,
                 **{k: t.params.get(k) for k in ("sample_rate", "channels", "layout") if k in t.params}}
                for tid, t in reader.tracks.items()
            ],
            "source": h.extra.get("source"),
            "bitrate_target": h.extra.get("bitrate") if _rate_controlled(h) else None,
            "chunk_rates": chunk_rates,
            "chunk_qualities": _chunk_qualities(h.extra.get("qualities"), chunk_rates),
            "colour_chunks": colour_chunks,  # chunks that carry a colour correction (format version 4)
            "video_bytes": checked.pop("video_bytes"),
            "audio_bytes": audio_bytes,
            **video_rate(stream_size, audio_stream_bytes, total, h.width, h.height, rate),
            **({"verify": checked} if verify else {}),
        }


def _rate_controlled(h) -> bool:
    """Whether a stream's header says rate control chose each chunk's rate (``extra.bitrate``)."""
    return isinstance(h.extra.get("bitrate"), int)


def _chunk_qualities(names, chunk_rates: dict[str, int]) -> dict[str, int] | None:
    """A rate-controlled stream's chunks counted by quality label, in ladder order (as ``encode`` reports them),
    from the labels its header records (``names``: :func:`rung_names`); None without them (a stream coded at one
    quality, or written before they were recorded)."""
    if not isinstance(names, dict) or not set(chunk_rates) <= set(names):
        return None
    return {label: chunk_rates[rate] for rate, label in names.items() if rate in chunk_rates}


def _verify(reader: VcbReader) -> dict:
    """Read every record of the stream (CRC-checked, tokens not decoded) and say what is damaged:
    ``ok``, ``intact_chunks``/``intact_frames``, ``damaged_chunks``, ``expected_frames`` (from the end record or
    the header; None when neither survives), ``lost_frames`` (None when unknown), ``gaps`` (``[first_frame,
    frames]`` of each run of lost frames), ``truncated``, and one line per damaged part in ``damage``."""
    from bitstream import CodedChunk, TruncatedError

    intact = intact_frames = frames = next_index = packets = damaged_chunks = video_bytes = audio_bytes = 0
    audio_stream_bytes = 0
    keyframes = colour_chunks = 0
    key_starts: list[int] = []  # first frames of the keyframe chunks (intact ones)
    period = _keyframe_period(reader.header)
    gaps: list[list[int]] = []
    rates: dict[str, int] = {}
    for item in reader.records(salvage=True, decode=False):
        if isinstance(item, CodedChunk):
            video_bytes += len(item.data) + item.colour_bytes
            colour_chunks += item.colour is not None
            rate = rate_key(item.levels, item.bits or reader.header.token_bits)
            rates[rate] = rates.get(rate, 0) + 1
            if not item.continues:
                keyframes += 1
                key_starts.append(item.first_frame)
            if item.first_frame > frames:
                gaps.append([frames, item.first_frame - frames])
            damaged_chunks += item.index - next_index
            intact, intact_frames = intact + 1, intact_frames + item.num_frames
            frames, next_index = item.first_frame + item.num_frames, item.index + 1
        else:
            packets += 1
            audio_bytes += len(item.data)
            audio_stream_bytes += packet_record_size(len(item.data))
    expected = reader.total_frames if reader.total_frames is not None else reader.header.num_frames
    if reader.num_chunks is not None and reader.num_chunks > next_index:
        damaged_chunks += reader.num_chunks - next_index
    if expected is not None and expected > frames:
        gaps.append([frames, expected - frames])
    return {
        "ok": not reader.damage,
        "intact_chunks": intact,
        "intact_frames": intact_frames,
        "damaged_chunks": damaged_chunks,
        "expected_frames": expected,
        "lost_frames": None if expected is None else expected - intact_frames,
        "gaps": gaps,
        "truncated": any(isinstance(d.error, TruncatedError) for d in reader.damage),
        "packets": packets,
        "damage": damage_messages(reader),
        "video_bytes": video_bytes,
        "audio_bytes": audio_bytes,
        "audio_stream_bytes": audio_stream_bytes,
        "keyframe_chunks": keyframes,
        "early_keyframes": None if period is None else early_keyframes(key_starts, period),
        "chunk_rates": rates,
        "colour_chunks": colour_chunks,
    }
