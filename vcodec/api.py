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
import os
import sys
import time
import warnings
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

from bitstream import BitstreamError, VcbReader, VcbWriter
from vcodec.coding import (
    array_windows,
    audio_packet,
    audio_track,
    damage_messages,
    decoded,
    decoder_for,
    encode_windows,
    quality_point,
    sample_aspect_ratio,
    stream_header,
    track_info,
    write_audio,
)
from vcodec.errors import InputError, VcodecWarning, raises_stream_errors
from vcodec.io.files import Endpoint, reading, resolve_input, resolve_output
from vcodec.io.sink import VideoSink, output_kind
from vcodec.io.source import VideoSource
from vcodec.models import DEFAULT_MODEL, encoder_tokenizer, list_models, load_tokenizer, resolve_device
from vcodec.results import DecodeResult, EncodeResult, rate_str

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
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", desc=desc, file=sys.stderr, disable=not enabled, leave=False,
                dynamic_ncols=True)


@contextlib.contextmanager
def _open_vcb(src: Endpoint):
    """A reader on a ``.vcb`` (header and tracks read; no model or tables needed yet)."""
    with reading(src, "a .vcb file") as f:
        try:
            reader = VcbReader(f)
        except BitstreamError as e:
            e.salvageable = False  # the file header and track records are required: --salvage cannot help
            raise
    with reader:
        yield reader


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
) -> EncodeResult:
    """Encode a video into a ``.vcb``.

    ``src``: a path to anything FFmpeg opens (``.mp4``, ``.mkv``, ``.y4m``, ...), ``"-"`` for stdin, or a
    readable binary file object. ``dst``: a path (written to a temporary file beside it and renamed when
    complete), ``"-"`` for stdout, or a writable binary file object. ``quality`` picks a rate point of the
    model (default: its highest); ``model`` a shipped name or a ``.pt`` path; ``tokenizer`` an already loaded
    :class:`vcodec.tokenizer.Tokenizer` (overrides ``model``). Audio tracks are copied into the ``.vcb``.
    """
    inp, out = resolve_input(src), resolve_output(dst, overwrite=overwrite, src=src)
    notes = _Warnings()
    with notes.collect(), VideoSource(inp) as source:
        t0 = time.perf_counter()
        tok = encoder_tokenizer(tokenizer, model, device)
        load_s = time.perf_counter() - t0
        q, bits, levels = quality_point(tok, quality)
        si = source.info
        header = stream_header(tok, bits, levels, q, si.width, si.height, si.frame_rate, {"source": si.to_json()})
        tok.check_encode_memory(tok.window_frames, si.height, si.width, frames_held=False)  # before reading frames
        audio_bytes = 0
        t0 = time.perf_counter()
        with (
            out.writing(overwrite=overwrite, src=src) as target,
            VcbWriter(target, header, tables=tok.tables_for(bits)) as w,
            _progress(progress, si.frame_count_hint, "encode") as bar,
        ):
            ids = [w.add_track(track_info(t)) for t in source.audio_tracks]

            def after_window(n: int) -> None:  # audio read with the window goes in right behind it
                nonlocal audio_bytes
                audio_bytes += write_audio(w, ids, source.take_audio())
                bar.update(n)

            encode_windows(w, tok, source.windows(tok.window_frames), bits, levels, after_window)
            audio_bytes += write_audio(w, ids, source.take_audio())
        seconds = time.perf_counter() - t0
    size, frames = out.written(target), w.num_frames
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
        levels=levels,
        device=str(tok.device),
        audio_tracks=len(source.audio_tracks),
        audio_bytes=audio_bytes,
        warnings=notes.messages,
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
) -> DecodeResult:
    """Decode a ``.vcb`` to a video file; the container follows ``dst``'s extension (see
    :mod:`vcodec.io.sink`): ``.y4m`` raw and exact, ``.mkv`` FFV1 lossless, ``.mp4`` H.264 (a lossy re-encode),
    ``"-"`` y4m on stdout. The output has the stream's frame count, size and exact frame rate; audio tracks
    are muxed back where the container takes them.

    ``salvage``: skip damaged chunks (each reported as a warning and in ``DecodeResult.skipped``) instead of
    failing at the first. ``model``/``tokenizer`` supply the weights when the ones named in the header are
    not shipped; they must have the same weights hash. ``pix_fmt`` picks the y4m pixel format.
    """
    kind = output_kind(dst)
    inp, out = resolve_input(src), resolve_output(dst, overwrite=overwrite, src=src)
    notes = _Warnings()
    with notes.collect(), _open_vcb(inp) as reader:
        t0 = time.perf_counter()
        tok = decoder_for(reader, tokenizer=tokenizer, model=model, device=device, name=inp.name)
        load_s = time.perf_counter() - t0
        h = reader.header
        tracks, track_of = _restorable_audio(reader, inp.name)
        t0 = time.perf_counter()
        with (
            out.writing(overwrite=overwrite, src=src, binary=False) as target,
            VideoSink(target, kind=kind, width=h.width, height=h.height, frame_rate=Fraction(*h.frame_rate),
                      audio_tracks=tracks, pix_fmt=pix_fmt, sample_aspect_ratio=sample_aspect_ratio(h),
                      name=out.name) as sink,
            _progress(progress, reader.total_frames if inp.is_path else None, "decode") as bar,
        ):
            frames = 0
            for item in decoded(reader, tok, salvage=salvage):
                if isinstance(item, np.ndarray):
                    sink.write(item)
                    frames += len(item)
                    bar.update(len(item))
                elif item.track_id in track_of:
                    sink.write_audio([audio_packet(track_of[item.track_id], item)])
            skipped = _warn_skipped(reader, f"{inp.name}: ")
            if frames == 0:
                raise InputError(f"{inp.name}: no intact video chunks to decode")
        seconds = time.perf_counter() - t0
    size, desc = inp.size(), sink.description
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
        levels=h.levels,
        device=str(tok.device),
        container=desc["container"],
        codec=desc["codec"],
        pix_fmt=desc["pix_fmt"],
        lossy=desc["lossy"],
        note=desc["note"],
        audio_tracks=len(tracks) if kind != "y4m" else 0,
        skipped=skipped,
        warnings=notes.messages,
    )


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
) -> bytes:
    """Encode ``frames`` (``uint8`` ``(T, H, W, 3)`` RGB, T >= 1) into the bytes of a ``.vcb`` stream."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or min(frames.shape) < 1:
        raise InputError(f"frames must be uint8 (T, H, W, 3) with T, H, W >= 1; got {frames.dtype} {frames.shape}")
    tok = encoder_tokenizer(tokenizer, model, device)
    q, bits, levels = quality_point(tok, quality)
    rate = Fraction(frame_rate).limit_denominator(1001) if isinstance(frame_rate, float) else Fraction(frame_rate)
    T, H, W, _ = frames.shape
    header = stream_header(tok, bits, levels, q, W, H, rate, {}, num_frames=T)
    buf = io.BytesIO()
    with VcbWriter(buf, header, tables=tok.tables_for(bits)) as w:
        encode_windows(w, tok, array_windows(frames, tok.window_frames), bits, levels)
    return buf.getvalue()


@raises_stream_errors
def decompress(
    data: bytes,
    *,
    model: str | os.PathLike | None = None,
    device: str = "auto",
    salvage: bool = False,
    tokenizer: Tokenizer | None = None,
) -> np.ndarray:
    """Decode the bytes of a ``.vcb`` stream to ``uint8`` ``(T, H, W, 3)`` RGB frames.

    The model is found as in :func:`decode_video`. With ``salvage``, damaged chunks are skipped (warning).
    """
    with _open_vcb(resolve_input(io.BytesIO(bytes(data)))) as reader:
        tok = decoder_for(reader, tokenizer=tokenizer, model=model, device=device, name="stream")
        out = [x for x in decoded(reader, tok, salvage=salvage) if isinstance(x, np.ndarray)]
        _warn_skipped(reader, "")
    if not out:
        raise InputError("no intact video chunks to decode")
    return np.concatenate(out)


# ----------------------------------------------------------------------------------------------
# info


@raises_stream_errors
def info(src) -> dict:
    """What a ``.vcb`` holds, without decoding tokens or loading a model: header fields, tracks, chunks,
    frames, size, bpp."""
    inp = resolve_input(src)
    with _open_vcb(inp) as reader:
        h = reader.header
        total = reader.total_frames if inp.is_path else None
        chunks = reader.num_chunks if inp.is_path else None
        if total is None:  # a pipe, or no valid end record: walk the records (checks CRCs, decodes nothing)
            coded = [c.num_frames for c in reader.coded_chunks()]
            chunks, total = len(coded), sum(coded)
        size = inp.size()
        rate = Fraction(*h.frame_rate)
        return {
            "file": inp.name,
            "bytes": size,
            "frames": total,
            "chunks": chunks,
            "width": h.width,
            "height": h.height,
            "frame_rate": rate_str(rate),
            "duration": float(total / rate) if total else 0.0,
            "bpp": size * 8 / (total * h.width * h.height) if size and total else None,
            "model": h.model_name,
            "weights_hash": h.weights_hash,
            "quality": h.extra.get("quality"),
            "levels": h.levels,
            "max_levels": h.max_levels,
            "token_bits": h.token_bits,
            "window_frames": h.window_frames,
            "coder": f"{h.coder_id} v{h.coder_version}",
            "tracks": [
                {"id": tid, "kind": t.kind, "codec": t.codec,
                 **{k: t.params.get(k) for k in ("sample_rate", "channels", "layout") if k in t.params}}
                for tid, t in reader.tracks.items()
            ],
            "source": h.extra.get("source"),
        }
