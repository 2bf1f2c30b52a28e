"""The Python API: files and streams in and out of ``.vcb``, and arrays in and out of bytes.

Video at this boundary is ``numpy.uint8`` ``(T, H, W, 3)``, RGB, full range. Encoding streams: frames are read,
encoded and written one temporal window (``tokenizer.window_frames`` frames) at a time, so memory does not grow
with the length of the video. Decoding streams the same way, chunk by chunk.

Errors are :class:`vcodec.errors.VcodecError` subclasses, or ``bitstream.BitstreamError`` subclasses for a
damaged or foreign ``.vcb``; FFmpeg and OS errors are wrapped (kept as ``__cause__``).
"""

from __future__ import annotations

import base64
import contextlib
import io
import os
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

import bitstream
from bitstream import StreamHeader, TrackInfo, VcbReader, VcbWriter
from vcodec.errors import (
    InputError,
    ModelError,
    ModelNotFoundError,
    OutputError,
    VcodecError,
    VcodecWarning,
    raises_stream_errors,
)
from vcodec.io.audio import AudioTrack
from vcodec.io.files import STDIO, atomic_output, check_output, display_name, is_path
from vcodec.io.sink import VideoSink, describe_kind, output_kind
from vcodec.io.source import VideoSource

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

DEFAULT_MODEL = "default"
_TEMPLATE_KEY = "ffmpeg_nut_template"  # TrackInfo.params key: base64 NUT header holding FFmpeg's codec parameters


# ----------------------------------------------------------------------------------------------
# results


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
    quality: int
    levels: int
    device: str
    audio_tracks: int
    audio_bytes: int
    warnings: list[str] = field(default_factory=list)

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
    levels: int
    device: str
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


# ----------------------------------------------------------------------------------------------
# models and devices


def resolve_device(device: str = "auto") -> str:
    """``"auto"`` -> ``"cuda"`` when available, else ``"cpu"``; ``"cuda"`` without CUDA is an error."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelError("device 'cuda' asked for, but CUDA is not available here (use --device cpu or auto)")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise ModelError(f"unknown device {device!r} (use auto, cpu or cuda)")
    return device


_CACHE: dict[tuple, Tokenizer] = {}


def load_tokenizer(model: str | os.PathLike = DEFAULT_MODEL, device: str = "auto") -> Tokenizer:
    """Load (and cache) a tokenizer by shipped name or ``.pt`` path. Raises :class:`ModelNotFoundError`."""
    from vcodec.tokenizer import Tokenizer, resolve_model_path

    dev = resolve_device(device)
    path = resolve_model_path(os.fspath(model))
    st = path.stat()
    key = (os.fspath(model), os.fspath(path.resolve()), st.st_mtime_ns, st.st_size, dev)  # a rewritten file reloads
    if key not in _CACHE:
        if len(_CACHE) >= 4:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = Tokenizer.load(os.fspath(model), device=dev)
    return _CACHE[key]


def _encoder_tokenizer(tokenizer, model, device) -> Tokenizer:
    if tokenizer is not None:
        return tokenizer
    return load_tokenizer(model if model is not None else DEFAULT_MODEL, device)


def _decoder_tokenizer(header: StreamHeader, tokenizer, model, device, name: str = "stream") -> Tokenizer:
    """The tokenizer whose weights made this stream: the one given, the model named (by the caller or the
    header), or a shipped model with the same weights hash. Anything else is :class:`ModelNotFoundError`."""
    want = header.weights_hash
    if tokenizer is not None:
        _check_weights(header, tokenizer, name)
        return tokenizer
    if model is not None:
        tok = load_tokenizer(model, device)
        _check_weights(header, tok, name)
        return tok
    # The header's name is looked up among shipped models only, never as a path: a .vcb must not make us
    # unpickle an arbitrary local file. Models loaded from a path are found again with model=PATH (--model).
    name_is_path = "/" in header.model_name or os.sep in header.model_name or header.model_name.endswith(".pt")
    if not name_is_path:
        with contextlib.suppress(ModelNotFoundError):
            tok = load_tokenizer(header.model_name, device)
            if tok.weights_hash == want:
                return tok
    from vcodec.tokenizer import available_models

    for m in available_models():
        if m.weights_hash == want:
            tok = load_tokenizer(m.path, device)
            if tok.weights_hash == want:
                return tok
    shipped = ", ".join(m.name for m in available_models()) or "none"
    raise ModelNotFoundError(
        f"{name}: made with model {header.model_name!r} (weights sha256 {want[:12]}...), which is not available here "
        f"(shipped models: {shipped}); pass its weights with --model PATH"
    )


def _check_weights(header: StreamHeader, tok, name: str) -> None:
    if tok.weights_hash != header.weights_hash:
        raise ModelNotFoundError(
            f"{name}: made with model {header.model_name!r} (weights sha256 {header.weights_hash[:12]}...), "
            f"not with the model given ({tok.name!r}, weights sha256 {tok.weights_hash[:12]}...)"
        )


def _quality(tok, quality: int | None) -> tuple[int, int]:
    """(quality, levels). The default is the model's highest quality point."""
    if quality is None:
        quality = max(rp.quality for rp in tok.rate_points)
    return quality, tok.levels_for_quality(quality)


def list_models() -> list[dict]:
    """Shipped models: name, path, weights hash, parameter count, and rate points (quality, levels, measured
    bpp or None)."""
    from vcodec.tokenizer import available_models

    out = []
    for m in available_models():
        out.append(
            {
                "name": m.name,
                "path": str(m.path),
                "weights_hash": m.weights_hash,
                "parameters": m.parameters,
                "default": m.name == DEFAULT_MODEL,
                "rate_points": [asdict(rp) for rp in m.rate_points],
            }
        )
    return out


# ----------------------------------------------------------------------------------------------
# header and tracks


def _header(tok, levels: int, quality: int, width: int, height: int, rate: Fraction, extra: dict,
            num_frames: int | None = None) -> StreamHeader:
    if rate.numerator > bitstream.header.MAX_RATE or rate.denominator > bitstream.header.MAX_RATE:
        approx = rate.limit_denominator(1001)
        warnings.warn(f"frame rate {rate} stored as {approx}", VcodecWarning, stacklevel=3)
        rate = approx
    cfg = tok.config
    return StreamHeader(
        model_name=tok.name,
        weights_hash=tok.weights_hash,
        token_bits=tok.token_bits,
        levels=levels,
        max_levels=tok.max_levels,
        width=width,
        height=height,
        frame_rate=(rate.numerator, rate.denominator),
        temporal_factor=cfg.temporal_factor,
        spatial_factor=cfg.spatial_factor,
        window_frames=tok.window_frames,
        num_frames=num_frames,
        extra={"encoder": f"vcodec {_version()}", "quality": quality, **extra},
    )


def _track_info(t: AudioTrack) -> TrackInfo:
    return TrackInfo(
        kind="audio",
        codec=t.codec,
        time_base=(t.time_base.numerator, t.time_base.denominator),
        params={
            "sample_rate": t.sample_rate,
            "channels": t.channels,
            "layout": t.layout,
            "language": t.language,
            _TEMPLATE_KEY: base64.b64encode(t.template).decode("ascii"),
        },
        extradata=t.extradata,
    )


def _audio_track(info: TrackInfo) -> AudioTrack | None:
    p = info.params
    if info.kind != "audio" or not isinstance(p.get(_TEMPLATE_KEY), str):
        return None
    try:
        template = base64.b64decode(p[_TEMPLATE_KEY], validate=True)
    except ValueError:
        return None
    return AudioTrack(
        codec=info.codec,
        sample_rate=int(p.get("sample_rate") or 0),
        channels=int(p.get("channels") or 0),
        layout=str(p.get("layout") or ""),
        time_base=Fraction(*info.time_base),
        template=template,
        language=p.get("language"),
        extradata=bytes(info.extradata),
    )


def _rate_str(rate: Fraction) -> str:
    return f"{rate.numerator}/{rate.denominator}"


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


@contextlib.contextmanager
def _output_target(dst, *, overwrite: bool, src, binary: bool):
    """Yields what to write to: a temporary path (renamed to ``dst`` on success), stdout, or the file object."""
    if is_path(dst):
        with atomic_output(dst, overwrite=overwrite, src=src) as tmp:
            yield tmp
    elif isinstance(dst, (str, os.PathLike)):  # "-"
        yield _Counting(sys.stdout.buffer) if binary else STDIO
    else:
        yield _Counting(dst) if binary else dst


class _Counting:
    """A write-only wrapper that counts the bytes written (for sizes of non-file outputs)."""

    def __init__(self, f):
        self._f, self.count = f, 0

    def write(self, data) -> int:
        n = self._f.write(data)
        n = len(data) if n is None else n
        self.count += n
        return n

    def flush(self) -> None:
        self._f.flush()


def _progress(enabled: bool, total: int | None, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", desc=desc, file=sys.stderr, disable=not enabled, leave=False,
                dynamic_ncols=True)


def _wrap_os_error(e: OSError, name: str, writing: bool) -> VcodecError:
    reason = e.strerror or str(e)
    cls = OutputError if writing else InputError
    return cls(f"cannot {'write' if writing else 'read'} {name}: {reason}")


# ----------------------------------------------------------------------------------------------
# encode


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
    in_name, out_name = display_name(src), display_name(dst) if dst != STDIO else "<stdout>"
    if is_path(dst):
        check_output(dst, overwrite=overwrite, src=src)
    notes = _Warnings()
    with notes.collect():
        with VideoSource(src) as source:
            t0 = time.perf_counter()
            tok = _encoder_tokenizer(tokenizer, model, device)
            load_s = time.perf_counter() - t0
            q, levels = _quality(tok, quality)
            si = source.info
            header = _header(tok, levels, q, si.width, si.height, si.frame_rate, {"source": si.to_json()})
            t0 = time.perf_counter()
            audio_bytes = 0
            try:
                with _output_target(dst, overwrite=overwrite, src=src, binary=True) as target:
                    with VcbWriter(target, header, tables=tok.coder_tables) as w:
                        ids = [w.add_track(_track_info(t)) for t in source.audio_tracks]
                        with _progress(progress, si.frame_count_hint, "encode") as bar:
                            for window in source.windows(tok.window_frames):
                                w.write_chunk(tok.encode_window(window, levels), len(window))
                                audio_bytes += _write_audio(w, ids, source.take_audio())
                                bar.update(len(window))
                        audio_bytes += _write_audio(w, ids, source.take_audio())
                        frames = w.num_frames
                    size = None if is_path(dst) else target.count
            except OSError as e:
                raise _wrap_os_error(e, out_name, writing=True) from e
            seconds = time.perf_counter() - t0
    if size is None:
        size = os.path.getsize(dst)
    pixels = frames * si.width * si.height
    return EncodeResult(
        input=in_name,
        output=out_name,
        frames=frames,
        width=si.width,
        height=si.height,
        frame_rate=_rate_str(si.frame_rate),
        bytes=size,
        bpp=size * 8 / pixels,
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


def _write_audio(w: VcbWriter, ids: list[int], packets) -> int:
    n = 0
    for p in packets:
        w.write_packet(ids[p.track], p.data, pts=p.pts, dts=p.dts, duration=p.duration, keyframe=p.keyframe)
        n += len(p.data)
    return n


# ----------------------------------------------------------------------------------------------
# decode


@contextlib.contextmanager
def _open_vcb(src, tables_for=None):
    """Open a ``.vcb`` (path, file object or ``-``); with ``tables_for``, decode with the coder tables of the
    model its header names: ``tables_for(header)`` is called once the header is read (a pipe is read once)."""
    name = display_name(src)
    try:
        if is_path(src):
            path = os.fspath(src)
            if not os.path.exists(path):
                raise InputError(f"{name}: no such file")
            if os.path.isdir(path):
                raise InputError(f"{name}: is a directory, not a .vcb file")
            reader = VcbReader(path)
        else:
            reader = VcbReader(sys.stdin.buffer if src == STDIO else src)
    except OSError as e:
        raise _wrap_os_error(e, name, writing=False) from e
    with reader:
        if tables_for is not None:
            reader.set_tables(tables_for(reader.header))
        yield reader


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
    in_name, out_name = display_name(src), display_name(dst) if dst != STDIO else "<stdout>"
    kind = output_kind(dst)
    if is_path(dst):
        check_output(dst, overwrite=overwrite, src=src)
    notes = _Warnings()
    loaded = {}

    def tables_for(header: StreamHeader):
        t0 = time.perf_counter()
        loaded["tok"] = _decoder_tokenizer(header, tokenizer, model, device, in_name)
        loaded["load_s"] = time.perf_counter() - t0
        return loaded["tok"].coder_tables

    with notes.collect():
        with _open_vcb(src, tables_for) as reader:
            tok, load_s = loaded["tok"], loaded["load_s"]
            h = reader.header
            rate = Fraction(*h.frame_rate)
            source = h.extra.get("source") if isinstance(h.extra.get("source"), dict) else {}
            gray = source.get("gray") is True
            sar = _parse_rational(source.get("sample_aspect_ratio"))
            tracks = [_audio_track(t) for t in reader.tracks.values()]
            if any(t is None for t in tracks):
                warnings.warn(f"{in_name}: skipping tracks vcodec cannot restore", VcodecWarning, stacklevel=2)
            kept = {tid: i for i, (tid, t) in enumerate(zip(reader.tracks, tracks)) if t is not None}
            tracks = [t for t in tracks if t is not None]
            desc = describe_kind(kind, pix_fmt)
            t0 = time.perf_counter()
            frames = 0
            try:
                with _output_target(dst, overwrite=overwrite, src=src, binary=False) as target:
                    with VideoSink(target, kind=kind, width=h.width, height=h.height, frame_rate=rate,
                                   audio_tracks=tracks, pix_fmt=pix_fmt, sample_aspect_ratio=sar,
                                   name=out_name) as sink:
                        desc = sink.description
                        with _progress(progress, reader.total_frames if is_path(src) else None, "decode") as bar:
                            for item in reader.records(salvage=salvage):
                                if isinstance(item, bitstream.Chunk):
                                    out = tok.decode_window(item.tokens, item.num_frames, h.height, h.width)
                                    sink.write(_to_gray(out) if gray else out)
                                    frames += item.num_frames
                                    bar.update(item.num_frames)
                                elif item.track_id in kept:
                                    sink.write_audio([_audio_packet(kept[item.track_id], item)])
                        skipped = [_damage_text(d) for d in reader.damage]
                        for s in skipped:
                            warnings.warn(f"{in_name}: skipped {s}", VcodecWarning, stacklevel=2)
                        if frames == 0:
                            raise InputError(f"{in_name}: no intact video chunks to decode")
            except OSError as e:
                raise _wrap_os_error(e, out_name, writing=True) from e
            seconds = time.perf_counter() - t0
    size = os.path.getsize(src) if is_path(src) else None
    return DecodeResult(
        input=in_name,
        output=out_name,
        frames=frames,
        width=h.width,
        height=h.height,
        frame_rate=_rate_str(rate),
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


def _audio_packet(track: int, p: bitstream.Packet):
    from vcodec.io.audio import AudioPacket

    return AudioPacket(track=track, data=p.data, pts=p.pts, dts=p.dts, duration=p.duration, keyframe=p.keyframe)


def _damage_text(d) -> str:
    where = f"chunk {d.chunk}" if d.chunk is not None else f"data at offset {d.offset}"
    return f"{where}: {d.message}"


def _parse_rational(s) -> Fraction | None:
    if not isinstance(s, str):
        return None
    try:
        f = Fraction(s)
    except (ValueError, ZeroDivisionError):
        return None
    return f if f > 0 else None


def _to_gray(frames: np.ndarray) -> np.ndarray:
    """R = G = B = BT.601 luma, rounded (for sources that were grayscale)."""
    f = frames.astype(np.uint32)
    y = (299 * f[..., 0] + 587 * f[..., 1] + 114 * f[..., 2] + 500) // 1000
    return np.repeat(y.astype(np.uint8)[..., None], 3, axis=-1)


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
    tok = _encoder_tokenizer(tokenizer, model, device)
    q, levels = _quality(tok, quality)
    rate = Fraction(frame_rate).limit_denominator(1001) if isinstance(frame_rate, float) else Fraction(frame_rate)
    T, H, W, _ = frames.shape
    header = _header(tok, levels, q, W, H, rate, {}, num_frames=T)
    buf = io.BytesIO()
    with VcbWriter(buf, header, tables=tok.coder_tables) as w:
        n = tok.window_frames
        for s in range(0, T, n):
            window = np.ascontiguousarray(frames[s : s + n])
            w.write_chunk(tok.encode_window(window, levels), len(window))
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
    loaded = {}

    def tables_for(header):
        loaded["tok"] = _decoder_tokenizer(header, tokenizer, model, device)
        return loaded["tok"].coder_tables

    with _open_vcb(io.BytesIO(bytes(data)), tables_for) as reader:
        tok, h = loaded["tok"], reader.header
        gray = isinstance(h.extra.get("source"), dict) and h.extra["source"].get("gray") is True
        out = [tok.decode_window(c.tokens, c.num_frames, h.height, h.width) for c in reader.chunks(salvage=salvage)]
        for d in reader.damage:
            warnings.warn(f"skipped {_damage_text(d)}", VcodecWarning, stacklevel=2)
    if not out:
        raise InputError("no intact video chunks to decode")
    frames = np.concatenate(out)
    return _to_gray(frames) if gray else frames


# ----------------------------------------------------------------------------------------------
# info


@raises_stream_errors
def info(src) -> dict:
    """What a ``.vcb`` holds, without decoding tokens: header fields, tracks, chunks, frames, size, bpp."""
    name = display_name(src)
    with _open_vcb(src) as reader:
        h = reader.header
        total = reader.total_frames if is_path(src) else None
        chunks = reader.num_chunks if is_path(src) else None
        if total is None:  # a pipe, or no valid end record: walk the records (checks CRCs, decodes nothing)
            chunks = total = 0
            for item in reader.records(decode=False):
                if isinstance(item, bitstream.Chunk):
                    chunks += 1
                    total += item.num_frames
        size = os.path.getsize(src) if is_path(src) else None
        rate = Fraction(*h.frame_rate)
        return {
            "file": name,
            "bytes": size,
            "frames": total,
            "chunks": chunks,
            "width": h.width,
            "height": h.height,
            "frame_rate": _rate_str(rate),
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


def _version() -> str:
    from vcodec import __version__

    return __version__
