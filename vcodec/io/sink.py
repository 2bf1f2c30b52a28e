"""Writing decoded video. The container follows the output's extension:

========  ===========================================================================================
``.y4m``  Raw (uncompressed) YUV4MPEG2, video only. Default pixel format ``yuv444p16le`` (Y4M ``C444p16``):
          RGB -> BT.601 limited-range Y'CbCr at 16 bits, which FFmpeg's swscale converts back to exactly the
          decoder's RGB (tested for all 2^24 colours). ``pix_fmt="yuv444p"`` or ``"yuv420p"`` write the common
          8-bit layouts instead (not exact: within 2 code values for 4:4:4; 4:2:0 also halves chroma).
          Standard output (``"-"``) is always y4m.
``.mkv``  Matroska with FFV1 in ``bgr0``: lossless, the decoder's RGB bit for bit. Audio tracks are copied.
``.mp4``  H.264 (libx264, CRF 12, preset medium, fixed thread counts, BT.601 limited range, tagged), index
          first (faststart): a **lossy re-encode** that browsers play. ``yuv420p``; odd sizes are padded by
          repeating the last row/column (4:2:0 needs even sizes; warning), or ``pix_fmt="yuv444p"`` keeps the
          size. Audio is copied when browsers play its codec in MP4 (AAC, MP3, Opus, FLAC), else re-encoded to
          AAC at the nearest sample rate AAC offers (warning): PCM, which MP4 holds as ``ipcm``, no browser plays.
``.webm`` VP9 (libvpx-vp9, CRF 24, one thread), ``yuv420p``, BT.601: lossy, for the web. Audio copied when WebM
          can hold it (Opus, Vorbis), else re-encoded to Opus.
``.png``  An image sequence, the name a frame-number pattern (``frames_%05d.png``, numbered from 1): lossless
          RGB, no audio, no frame rate.
========  ===========================================================================================

Frames are written with timestamps 0, 1, 2, ... in a time base of 1/frame_rate: the output is constant rate at
exactly the rational rate given (``.mkv`` also keeps it in a ``VCODEC_FRAME_RATE`` tag, see ``_setup_video``).
Files are written bit-exact (no random IDs, dates, or thread-count-dependent encoding), so the same frames
always give the same bytes.
"""

from __future__ import annotations

import ctypes
import io
import os
import warnings
from fractions import Fraction

import av
import numpy as np
from av.video.reformatter import ColorRange, Colorspace

from vcodec.errors import OutputError, VcodecWarning
from vcodec.io.audio import AudioPacket, AudioTrack, TemplateStream, to_av_packet
from vcodec.io.files import endpoint, is_pattern, is_stream_device

KINDS = {".y4m": "y4m", ".mkv": "mkv", ".mp4": "mp4", ".webm": "webm", ".png": "png"}
_FORMATS = {"y4m": "yuv4mpegpipe", "mkv": "matroska", "mp4": "mp4", "webm": "webm", "png": "image2"}
_CODECS = {"y4m": "rawvideo", "mkv": "ffv1", "mp4": "libx264", "webm": "libvpx-vp9", "png": "png"}
VP9_CRF = 24
RATE_TAG = "VCODEC_FRAME_RATE"  # stream tag holding the exact frame rate (see _setup_video)
Y4M_PIX_FMTS = ("yuv444p16le", "yuv444p", "yuv420p")
DEFAULT_Y4M_PIX_FMT = "yuv444p16le"
X264_CRF = 12
X264_PRESET = "medium"
_AVCOL_SPC_SMPTE170M = 6  # AVColorSpace value for BT.601 (525/625 share the matrix)


def output_kind(dst) -> str:
    """``"y4m"``, ``"mkv"``, ``"mp4"``, ``"webm"`` or ``"png"`` from the output's extension; ``"-"``, file
    objects, and a FIFO or character device without a known extension (``/dev/null``, ``/dev/stdout``) are y4m. A
    ``.png`` output is a numbered pattern such as ``frames_%05d.png``, or a plain name for a single frame (a photo;
    :class:`VideoSink` refuses a second one)."""
    out = endpoint(dst, output=True)
    if not out.is_path:
        return "y4m"
    ext = os.path.splitext(out.path)[1].lower()
    if ext not in KINDS and is_stream_device(out.path):
        return "y4m"
    try:
        kind = KINDS[ext]
    except KeyError:
        raise OutputError(
            f"cannot write {out.path}: unknown output format {ext or '(no extension)'!r} "
            f"(use .y4m, .mkv, .mp4, .webm, NAME_%05d.png, or - for y4m on stdout)"
        ) from None
    return kind


def _png_path(dst) -> str | None:
    """``dst``'s path when it names a ``.png`` output, else None."""
    out = endpoint(dst, output=True)
    return out.path if out.is_path and os.path.splitext(out.path)[1].lower() == ".png" else None


def image_sequence(dst) -> bool:
    """Whether ``dst`` names a sequence of images, one file a frame: a ``.png`` path with a frame number pattern
    (``frames_%05d.png``). A pattern in any other name is part of that one file's name."""
    path = _png_path(dst)
    return path is not None and is_pattern(path)


def single_image(dst) -> bool:
    """Whether ``dst`` names one image file (a ``.png`` path without a frame number pattern): one frame only."""
    path = _png_path(dst)
    return path is not None and not is_pattern(path)


def refuse_frames_for_single_image(name: str, frames: int | None) -> None:
    """OutputError unless ``frames`` is 1: a single-image output (:func:`single_image`) holds one frame (None: a
    second frame arrived, the total is not known)."""
    if frames != 1:
        has = "more than one frame" if frames is None else f"{frames} frames"
        raise OutputError(f"cannot write {name}: a .png name without a frame number holds one picture, and this "
                          f"video has {has}; name it with a pattern, e.g. frames_%05d.png")


def describe_kind(kind: str, pix_fmt: str | None = None) -> dict:
    """What an output kind is, for summaries: ``{"container", "codec", "pix_fmt", "lossy", "note"}``."""
    if kind == "y4m":
        p = pix_fmt or DEFAULT_Y4M_PIX_FMT
        exact = p == "yuv444p16le"
        note = "raw, exact RGB round trip" if exact else "raw, 8-bit Y'CbCr (RGB within a few code values)"
        return {"container": "y4m", "codec": "rawvideo", "pix_fmt": p, "lossy": not exact, "note": note}
    if kind == "mkv":
        return {"container": "mkv", "codec": "ffv1", "pix_fmt": "bgr0", "lossy": False, "note": "lossless"}
    if kind == "png":
        return {"container": "png", "codec": "png", "pix_fmt": "rgb24", "lossy": False,
                "note": "lossless, one file a frame"}
    if kind == "webm":
        return {"container": "webm", "codec": "vp9", "pix_fmt": "yuv420p", "lossy": True,
                "note": f"lossy re-encode (VP9 crf {VP9_CRF})"}
    return {
        "container": "mp4",
        "codec": "h264",
        "pix_fmt": pix_fmt or "yuv420p",
        "lossy": True,
        "note": f"lossy re-encode (x264 crf {X264_CRF})",
    }


class VideoSink:
    """Writes uint8 (T, H, W, 3) RGB frames (and carried audio) to ``target``: a path, ``"-"`` or a writable
    binary file object. ``kind`` defaults to :func:`output_kind` of ``target``. Use as a context manager;
    ``close()`` flushes and finishes the file. Paths are written as given: callers wanting atomic output pass a
    temporary path (see :func:`vcodec.io.files.atomic_output`)."""

    def __init__(
        self,
        target,
        *,
        width: int,
        height: int,
        frame_rate: Fraction,
        kind: str | None = None,
        audio_tracks: tuple[AudioTrack, ...] | list[AudioTrack] = (),
        pix_fmt: str | None = None,
        sample_aspect_ratio: Fraction | None = None,
        name: str | None = None,
    ):
        out = endpoint(target, output=True)
        self.name = name or out.name
        self.kind = kind or output_kind(target)
        target = out.obj  # the path, or a binary stream (standard output's for "-")
        self.width, self.height = int(width), int(height)
        self.frame_rate = Fraction(frame_rate)
        self._count = 0
        self._closed = False
        self._templates: list[TemplateStream] = []
        self._audio: list[_AudioOut | None] = []
        self._dropped: set[int] = set()  # tracks that had packets dropped (warned once)
        pix_fmt = self._pix_fmt(pix_fmt)
        self.description = describe_kind(self.kind, pix_fmt)
        fmt = _FORMATS[self.kind]
        # bitexact: no random Matroska segment UID or muxing date, so the same frames give the same file.
        options = {"strict": "-1"} if self.kind == "y4m" else {"fflags": "+bitexact"}
        if self.kind == "mp4":
            options["movflags"] = "+faststart"  # the index first: browsers play it while it downloads
        self._single = self.kind == "png" and single_image(target)
        if self.kind == "png":
            options = {"update": "1"} if self._single else {}
        # 4:2:0 H.264 needs even sizes: pad by one edge row/column (the coded size; see _pix_fmt)
        self._coded = (self.width, self.height)
        if self.kind == "mp4" and pix_fmt == "yuv420p":
            self._coded = (self.width + self.width % 2, self.height + self.height % 2)
            if self._coded != (self.width, self.height):
                warnings.warn(f"{self.name}: {self.width}x{self.height} padded to {self._coded[0]}x"
                              f"{self._coded[1]} by repeating the last row/column (4:2:0 H.264, which browsers "
                              f"play, needs even sizes; --pix-fmt yuv444p keeps the size)", VcodecWarning,
                              stacklevel=2)
        try:
            self._out = av.open(target, "w", format=fmt, options=options)
        except (av.FFmpegError, OSError) as e:
            raise OutputError(f"cannot write {self.name}: {getattr(e, 'strerror', None) or e}") from e
        try:
            self._setup_video(pix_fmt, sample_aspect_ratio)
            self._setup_audio(list(audio_tracks))
        except BaseException:
            self._abort()
            raise

    def _pix_fmt(self, pix_fmt: str | None) -> str:
        if self.kind == "y4m":
            p = {"yuv444p16": "yuv444p16le"}.get(pix_fmt, pix_fmt) or DEFAULT_Y4M_PIX_FMT
            if p not in Y4M_PIX_FMTS:
                raise OutputError(f"cannot write {self.name}: y4m pixel format {p!r} not offered ({Y4M_PIX_FMTS})")
            return p
        if self.kind == "mp4" and pix_fmt in ("yuv420p", "yuv444p"):
            return pix_fmt
        if pix_fmt is not None:
            raise OutputError(f"cannot write {self.name}: a pixel format can be chosen for .y4m (and yuv420p/yuv444p "
                              f"for .mp4) only")
        return {"mkv": "bgr0", "png": "rgb24"}.get(self.kind, "yuv420p")

    def _setup_video(self, pix_fmt: str, sar: Fraction | None) -> None:
        s = self._out.add_stream(_CODECS[self.kind], rate=self.frame_rate)
        (s.width, s.height), s.pix_fmt = self._coded, pix_fmt
        cc = s.codec_context
        cc.time_base = 1 / self.frame_rate
        # Conversion from RGB in one swscale thread: its slice threading gives wrong rows now and then.
        self._conv = dict(format=pix_fmt, threads=1)
        if self.kind == "mkv":
            s.options = {"threads": "1"}  # slice threading would make bytes depend on the machine
        if self.kind in ("y4m", "mp4", "webm"):
            cc.color_range = ColorRange.MPEG
            cc.colorspace = _AVCOL_SPC_SMPTE170M
            self._conv.update(dst_colorspace=Colorspace.ITU601, dst_color_range=ColorRange.MPEG)
        if self.kind == "mp4":
            s.options = _x264_options()
        if self.kind == "webm":
            # one thread, no row multithreading: the same frames give the same bytes on any machine
            s.options = {"crf": str(VP9_CRF), "b": "0", "deadline": "good", "cpu-used": "4", "threads": "1",
                         "row-mt": "0", "tile-columns": "0"}
        if sar is not None and self.kind != "png":
            cc.sample_aspect_ratio = Fraction(sar)
            if self.kind in ("mkv", "webm", "y4m") and not _set_stream_sar(s, Fraction(sar)):
                warnings.warn(f"{self.name}: the sample aspect ratio {sar} could not be recorded (this PyAV build "
                              f"does not let vcodec set it on a {self.kind} stream)", VcodecWarning, stacklevel=3)
        if self.kind not in ("y4m", "png"):
            # Matroska keeps times in ms and FFmpeg reads its rate back as a fraction with numerator <= 30000,
            # so e.g. 60000/1001 would come back as 19001/317: keep the exact rate in a tag too.
            s.metadata[RATE_TAG] = f"{self.frame_rate.numerator}/{self.frame_rate.denominator}"
        self._stream = s

    def _setup_audio(self, tracks: list[AudioTrack]) -> None:
        if tracks and self.kind in ("y4m", "png"):
            warnings.warn(
                f"{self.name}: {len(tracks)} audio track(s) not written ({self.kind} holds video only; use .mkv, "
                f".mp4 or .webm)",
                VcodecWarning,
                stacklevel=3,
            )
            self._audio = [None] * len(tracks)
            return
        for i, t in enumerate(tracks):
            try:
                tpl = TemplateStream(t)
            except (av.FFmpegError, ValueError, IndexError) as e:
                warnings.warn(f"{self.name}: audio track {i} ({t.codec}) has unreadable codec parameters and is "
                              f"not written ({e})", VcodecWarning, stacklevel=3)
                self._audio.append(None)
                continue
            self._templates.append(tpl)
            if (self.kind != "mp4" or _canonical_codec(t.codec) in MP4_PLAYABLE_AUDIO) and _can_copy(
                    self._out.format.name, tpl.stream, t):
                s = self._out.add_stream_from_template(tpl.stream)
                _name_layout(s)
                s.time_base = t.time_base
                self._audio.append(_AudioOut(s, t, None))
            else:
                codec, label = ("libopus", "Opus") if self.kind == "webm" else ("aac", "AAC")
                rate = audio_rate(codec, t.sample_rate)
                at = "" if rate == t.sample_rate else f" at {rate} Hz ({label} cannot code {t.sample_rate} Hz)"
                warnings.warn(
                    f"{self.name}: audio track {i} ({t.codec}) re-encoded to {label}{at} ({self.kind} cannot hold "
                    f"{t.codec}" + (" where browsers play it)" if self.kind == "mp4" else ")"),
                    VcodecWarning,
                    stacklevel=3,
                )
                try:
                    self._audio.append(_AudioOut.transcoding(self._out, tpl.stream, t, codec))
                except (av.FFmpegError, ValueError) as e:
                    warnings.warn(f"{self.name}: audio track {i} ({t.codec}) cannot be re-encoded and is not "
                                  f"written ({e})", VcodecWarning, stacklevel=3)
                    self._audio.append(None)

    def write(self, frames: np.ndarray) -> None:
        """Append frames, uint8 (T, H, W, 3) RGB (or one (H, W, 3) frame)."""
        frames = np.asarray(frames)
        if frames.ndim == 3:
            frames = frames[None]
        if frames.dtype != np.uint8 or frames.shape[1:] != (self.height, self.width, 3):
            raise ValueError(
                f"expected uint8 frames of shape (T, {self.height}, {self.width}, 3), got {frames.dtype} {frames.shape}"
            )
        if self._single and self._count + len(frames) > 1:
            refuse_frames_for_single_image(self.name, None)
        pad = (self._coded[1] - self.height, self._coded[0] - self.width)
        if any(pad):
            frames = np.pad(frames, ((0, 0), (0, pad[0]), (0, pad[1]), (0, 0)), mode="edge")
        try:
            for f in frames:
                vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24").reformat(**self._conv)
                vf.pts = self._count
                vf.time_base = 1 / self.frame_rate
                self._count += 1
                self._out.mux(self._stream.encode(vf))
        except (av.FFmpegError, OSError) as e:
            raise OutputError(f"cannot write {self.name}: {getattr(e, 'strerror', None) or e}") from e

    def write_audio(self, packets: list[AudioPacket]) -> None:
        """Mux carried audio packets (times relative to the first frame, in their track's time base). A packet
        the muxer or decoder refuses as invalid (timestamps going backwards, an absurd duration, undecodable data:
        what a damaged or hostile ``.vcb`` can hold) is dropped with one warning per track; the video goes on."""
        try:
            for p in packets:
                out = self._audio[p.track] if p.track < len(self._audio) else None
                if out is None:
                    continue
                try:
                    out.write(self._out, p)
                except (av.error.ArgumentError, av.error.InvalidDataError) as e:
                    if p.track not in self._dropped:
                        warnings.warn(f"{self.name}: audio track {p.track}: dropping packets the muxer refuses "
                                      f"(first at pts {p.pts}: {getattr(e, 'strerror', None) or e})",
                                      VcodecWarning, stacklevel=2)
                    self._dropped.add(p.track)
        except (av.FFmpegError, OSError) as e:
            raise OutputError(f"cannot write {self.name}: {getattr(e, 'strerror', None) or e}") from e

    @property
    def frames_written(self) -> int:
        return self._count

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._out.mux(self._stream.encode(None))
            for a in self._audio:
                if a is not None:
                    a.flush(self._out)
            self._out.close()
        except (av.FFmpegError, OSError) as e:
            raise OutputError(f"cannot write {self.name}: {getattr(e, 'strerror', None) or e}") from e
        finally:
            for t in self._templates:
                t.close()

    def _abort(self) -> None:
        self._closed = True
        try:
            self._out.close()
        except Exception:  # noqa: BLE001 - the output is being thrown away; the first error is the one to report
            pass
        for t in self._templates:
            t.close()

    def __enter__(self) -> VideoSink:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self._abort()


_DEFAULT_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}


def _name_layout(stream) -> None:
    """Give a layout of unspecified channel order ("2 channels", as PCM in Matroska has) the default order for
    its channel count: MP4 refuses the former."""
    cc = stream.codec_context
    default = _DEFAULT_LAYOUTS.get(cc.channels)
    if cc.layout is not None and cc.layout.name.endswith("channels") and default:
        cc.layout = default


# audio codecs that browsers play inside MP4 (the .mp4 output is for playback); others are re-encoded to AAC
MP4_PLAYABLE_AUDIO = frozenset({"aac", "mp3", "opus", "flac"})


def _canonical_codec(name: str) -> str:
    """A track's codec by FFmpeg's canonical name (a track records its decoder's: ``mp3float`` is ``mp3``)."""
    try:
        return av.codec.Codec(name, "r").canonical_name
    except (ValueError, av.FFmpegError):
        return name


def _can_copy(fmt: str, template_stream, track: AudioTrack) -> bool:
    """Whether a container of format ``fmt`` takes this stream's codec, found by writing a whole small file in
    memory: FFmpeg's codec query accepts some codecs that a muxer then refuses when it writes its trailer."""
    try:
        with av.open(io.BytesIO(), "w", format=fmt) as probe:
            s = probe.add_stream_from_template(template_stream)
            _name_layout(s)
            pkt = av.Packet(bytes(16))
            pkt.pts = pkt.dts = 0
            pkt.time_base = track.time_base
            pkt.stream = s
            probe.mux(pkt)
        return True
    except (ValueError, av.FFmpegError):
        return False


class _Rational(ctypes.Structure):
    _fields_ = [("num", ctypes.c_int), ("den", ctypes.c_int)]


def _set_stream_sar(stream, sar: Fraction) -> bool:
    """Set ``AVStream.sample_aspect_ratio``, which the Matroska muxer writes (as DisplayWidth/DisplayHeight)
    instead of the codec's. PyAV offers no setter, so the field is written through the stream's pointer; the
    layout is checked first (the stream index and time base must read back as PyAV reports them) and nothing is
    written when it does not match. Returns whether it was set."""
    try:
        # a Cython object: PyObject header (16 bytes), vtable pointer, then ``AVStream *ptr``
        ptr = ctypes.c_void_p.from_address(id(stream) + 24).value
        if not ptr:
            return False
        index = ctypes.c_int.from_address(ptr + 8).value  # AVStream: av_class, index, id, codecpar, priv_data,
        tb = _Rational.from_address(ptr + 32)  # time_base, start_time, duration, nb_frames, disposition, discard,
        field = _Rational.from_address(ptr + 72)  # sample_aspect_ratio
        want_tb = Fraction(stream.time_base) if stream.time_base else None
        got_tb = Fraction(tb.num, tb.den) if tb.num and tb.den else None
        if index != stream.index or got_tb != want_tb or field.num != 0:
            return False
        field.num, field.den = sar.numerator, sar.denominator
        return True
    except (ValueError, TypeError, OverflowError):
        return False


def _x264_options() -> dict:
    """x264 settings with nothing left to the machine: x264's output depends on its thread counts, which it would
    otherwise derive from the number of CPUs, so the same frames would give other bytes elsewhere."""
    return {"crf": str(X264_CRF), "preset": X264_PRESET, "threads": "4",
            "x264-params": "lookahead-threads=1:sliced-threads=0"}


def audio_rate(codec: str, rate: int) -> int:
    """The sample rate ``codec`` will encode ``rate`` at: ``rate`` itself when the encoder offers it, else the
    nearest rate it offers (e.g. 11024 Hz PCM -> 11025 Hz for AAC, 12000 Hz for Opus)."""
    offered = av.Codec(codec, "w").audio_rates or (48000,)
    return min(offered, key=lambda r: (abs(r - rate), -r))


class _AudioOut:
    """One output audio stream: packets copied as they are, or (``decoder`` set) re-encoded to AAC."""

    def __init__(self, stream, track: AudioTrack, decoder, resampler=None):
        self.stream, self.track, self.decoder, self.resampler = stream, track, decoder, resampler

    @classmethod
    def transcoding(cls, out, template_stream, track: AudioTrack, codec: str = "aac") -> _AudioOut:
        rate = audio_rate(codec, track.sample_rate)
        s = out.add_stream(codec, rate=rate)
        s.codec_context.layout = "mono" if track.channels == 1 else "stereo"  # more channels: downmixed
        # Open the encoder now, not at the first packet: a failure must be known before any video is written,
        # so that the caller can still leave the track out.
        s.codec_context.open()
        fmt = s.codec_context.format.name if s.codec_context.format is not None else "fltp"
        resampler = av.AudioResampler(format=fmt, layout=s.codec_context.layout, rate=rate)
        return cls(s, track, template_stream.codec_context, resampler)

    def write(self, out, p: AudioPacket) -> None:
        pkt = to_av_packet(p, self.track.time_base)
        if self.decoder is None:
            pkt.stream = self.stream
            out.mux(pkt)
            return
        for frame in self.decoder.decode(pkt):
            self._encode(out, frame)

    def _encode(self, out, frame) -> None:
        for f in self.resampler.resample(frame):
            f.pts = None
            out.mux(self.stream.encode(f))

    def flush(self, out) -> None:
        if self.decoder is None:
            return
        for frame in self.decoder.decode(None):
            self._encode(out, frame)
        for f in self.resampler.resample(None):
            f.pts = None
            out.mux(self.stream.encode(f))
        out.mux(self.stream.encode(None))


def write_video(dst, frames: np.ndarray, frame_rate: Fraction = Fraction(25), **kwargs) -> None:
    """Write a whole (short) video in one call (tests, tools). ``kwargs`` go to :class:`VideoSink`."""
    frames = np.asarray(frames)
    with VideoSink(dst, width=frames.shape[2], height=frames.shape[1], frame_rate=frame_rate, **kwargs) as sink:
        sink.write(frames)
