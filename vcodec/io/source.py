"""Reading video: any file or stream FFmpeg (through PyAV) opens, one frame at a time, as 8-bit RGB.

How unusual sources are handled (each case that changes pixels or timing raises a :class:`VcodecWarning`):

- **Pixel formats.** Every source is converted to full-range 8-bit RGB by FFmpeg's swscale, honouring the
  frame's colour matrix and range tags (untagged video is read as BT.601 limited range, FFmpeg's default).
  Sources deeper than 8 bits are rounded to 8 bits (warning, unless every frame is exactly some 8-bit RGB, as
  vcodec's own 16-bit .y4m is). Grayscale sources become R = G = B and are
  recorded as gray, so that they decode back to gray. An alpha channel is dropped, colours kept as stored,
  not composited (warning, when the first frame has a pixel that is not fully opaque: an opaque alpha plane,
  as in RGBA screenshots, or the fourth plane FFmpeg gives a CMYK JPEG, drops nothing).
- **HDR.** A PQ or HLG transfer is read as stored (the samples as if SDR), with a warning that vcodec works in
  SDR, so what it encodes decodes washed out.
- **Photos.** A multi-page TIFF gives its first page (FFmpeg's reader; warning with the page count).
- **Rotation.** A display matrix (phone videos) that rotates by a multiple of 90 degrees is applied: frames are
  coded upright, width/height as displayed, and the rotation is recorded in the header. A non-right-angle
  rotation is refused. A mirroring matrix is applied as its rotation alone (see ``_rotation``), except for a JPEG
  whose EXIF orientation mirrors (2, 4, 5, 7; selfie cameras): that one is read from the file and applied whole.
- **Frame rate.** The stream's average frame rate is kept as an exact rational (``stream.average_rate``, else
  ``guessed_rate``; a ``VCODEC_FRAME_RATE`` stream tag, which vcodec writes into ``.mkv`` files because Matroska's
  millisecond times cannot hold rates such as 60000/1001, is preferred when it agrees within 0.1%). With no rate at all, 25 fps is assumed (warning). Variable frame rate: every decoded frame is
  kept, in order, and the output is constant rate at the average rate (warning naming the first irregular frame).
- **Audio.** Audio tracks are demuxed alongside the video and their packets buffered until
  :meth:`VideoSource.take_audio` collects them (see :mod:`vcodec.io.audio`).
- **Cropping.** The codec's picture cropping (H.264 SPS cropping, Theora picture offsets, ...) is applied exactly,
  so frames have the size the stream declares, as with the ``ffmpeg`` tool.
- Non-square pixels are kept as stored; the sample aspect ratio is recorded and restored in ``.mkv``/``.mp4``.
  Interlaced video is coded as progressive frames.
"""

from __future__ import annotations

import errno
import re
import shlex
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from fractions import Fraction

import av
import numpy as np

from bitstream.header import MAGIC as VCB_MAGIC
from vcodec import stopping
from vcodec.errors import InputError, VcodecWarning
from vcodec.io.audio import AudioPacket, AudioTrack, track_from_stream
from vcodec.io.files import resolve_input
from vcodec.io.rawyuv import av_open_args
from vcodec.io.stills import MIRRORED, animated_webp, jpeg_orientation, tiff_pages

DEFAULT_RATE = Fraction(25)
# FFmpeg's AVColorSpace / AVColorRange values, by the names ffprobe prints.
_COLORSPACES = {0: "gbr", 1: "bt709", 2: "unknown", 4: "fcc", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m",
                8: "ycgco", 9: "bt2020nc", 10: "bt2020c", 14: "ictcp"}
_RANGES = {0: "unknown", 1: "tv", 2: "pc"}
_HDR_TRANSFERS = {16: "PQ, SMPTE ST 2084", 18: "HLG, ARIB STD-B67"}  # AVColorTransferCharacteristic values
_TRACK_DURATION = re.compile(r"(\d+):(\d{2}):(\d{2}(?:\.\d+)?)")  # a Matroska track's DURATION tag


@dataclass(frozen=True)
class SourceInfo:
    """What vcodec learned about a video source. ``width``/``height`` are as coded (after rotation)."""

    width: int
    height: int
    frame_rate: Fraction
    pix_fmt: str
    bit_depth: int
    gray: bool
    alpha: bool  # the format has an alpha channel and the first frame is not fully opaque (it is dropped)
    rotation: int  # degrees counter-clockwise that were applied to the stored frames
    colorspace: str
    color_range: str
    sample_aspect_ratio: Fraction | None
    frame_count_hint: int | None  # from the container, for progress bars; may be wrong or absent
    notes: tuple[str, ...] = field(default=())

    def to_json(self) -> dict:
        """The fields worth keeping in a ``.vcb`` header (JSON-able, stable order)."""
        d = asdict(self)
        d.pop("frame_count_hint")
        d.pop("notes")
        d.pop("width")
        d.pop("height")
        d["frame_rate"] = f"{self.frame_rate.numerator}/{self.frame_rate.denominator}"
        sar = self.sample_aspect_ratio
        d["sample_aspect_ratio"] = None if sar is None else f"{sar.numerator}/{sar.denominator}"
        return d


def _rational(x) -> Fraction | None:
    if x is None:
        return None
    f = Fraction(x)
    return f if f > 0 else None


def _tagged_rate(stream) -> Fraction | None:
    """The exact rate vcodec stores as a stream tag (Matroska keeps only millisecond times), if present."""
    meta = {k.upper(): v for k, v in (stream.metadata or {}).items()}
    try:
        return _rational(Fraction(meta["VCODEC_FRAME_RATE"]))
    except (KeyError, ValueError, ZeroDivisionError):
        return None


def _rounded_note(name: str, depth: int, pix_fmt: str) -> str:
    return f"{name}: {depth}-bit video ({pix_fmt}) rounded to 8 bits per channel"


def _holds_8bit_rgb(frame: av.VideoFrame) -> bool:
    """Whether a deep frame's samples are exactly those its 8-bit RGB converts back to (as vcodec's 16-bit y4m
    writes them), so that rounding it to 8-bit RGB loses nothing."""
    try:
        rgb = frame.to_ndarray(format="rgb24", src_color_range=frame.color_range, threads=1)
        back = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
            format=frame.format.name, dst_colorspace=frame.colorspace, dst_color_range=frame.color_range, threads=1)
        return bool(np.array_equal(back.to_ndarray(), frame.to_ndarray()))
    except Exception:  # noqa: BLE001 -- a layout PyAV cannot hold as an array: not known to be exact, so rounded
        return False


def _transparent(frame: av.VideoFrame) -> bool:
    """Whether ``frame`` (a format with an alpha channel) has a pixel that is not fully opaque."""
    try:
        return bool(frame.to_ndarray(format="rgba", threads=1)[..., 3].min() < 255)
    except (av.FFmpegError, ValueError):
        return True   # cannot tell: say the alpha channel is dropped


def _rotation(frame: av.VideoFrame, name: str) -> int:
    """Counter-clockwise rotation (0, 90, 180, 270) the frame's display matrix asks for; refuse anything else.

    Only the rotation is read (``frame.rotation``), never ``frame.side_data``: PyAV 18 wraps each side-data entry's
    metadata in a Dictionary that frees it when collected, and the frame frees it again -- a double free that
    crashed the process at the next garbage collection for every PNG with a named ICC profile. So a display
    matrix that also mirrors the picture is applied as its rotation alone."""
    angle = frame.rotation  # counter-clockwise, in [-180, 180]
    if angle % 90:
        raise InputError(f"{name}: display rotation of {angle} degrees is not supported (only multiples of 90)")
    return int(angle) % 360


class VideoSource:
    """An open video source. Iterate :meth:`frames` or :meth:`windows`; collect audio with :meth:`take_audio`.

    ``src`` is a path, ``"-"`` (standard input) or a readable binary file object. Use as a context manager.
    The constructor decodes the first frame, so a file without decodable video fails here, before any output
    is made.
    """

    def __init__(self, src, *, audio: bool = True):
        inp = resolve_input(src)
        self.name = inp.name
        self._path = inp.path if inp.is_path else None   # a file that can be read twice (see _timestamp_rate)
        inp.check_readable("a video file")
        try:
            fmt, opts = av_open_args(inp)  # raw .yuv: format from the name or a RawYuv (vcodec.io.rawyuv)
            self._container = av.open(inp.readable(), "r", format=fmt, options=opts)
        except av.FFmpegError as e:
            raise InputError(f"{self.name}: not a video file FFmpeg can read ({_open_reason(inp, e)})") from e
        try:
            self._setup(audio)
        except BaseException:
            self._container.close()
            raise

    # -- opening ---------------------------------------------------------------------------------------------
    def _setup(self, audio: bool) -> None:
        c = self._container
        if not c.streams.video:
            kind = "audio only" if c.streams.audio else "no video stream"
            raise InputError(f"{self.name}: not a video ({kind})")
        self._video = c.streams.video[0]
        self._video.thread_type = "AUTO"  # frame order and values do not depend on threading in FFmpeg
        # Apply the stream's cropping exactly (as the ffmpeg tool does): by default libavcodec crops the left/top
        # edge only down to an aligned position, so e.g. a 214-wide picture with a 4-pixel left offset would
        # come out 218 wide.
        self._video.codec_context.flags |= av.codec.context.Flags.unaligned
        self._audio = []
        self.audio_tracks: list[AudioTrack] = []
        for s in c.streams.audio if audio else ():
            try:
                self.audio_tracks.append(track_from_stream(s))
                self._audio.append(s)
            except (av.FFmpegError, ValueError) as e:
                warnings.warn(f"{self.name}: audio track {s.index} ({s.codec_context.name}) cannot be carried and is "
                              f"dropped ({e})", VcodecWarning, stacklevel=3)
        extra = [f"{len(ss)} {kind} stream{'s' if len(ss) > 1 else ''}"
                 for kind, ss in (("other video", c.streams.video[1:]), ("subtitle", c.streams.subtitles)) if ss]
        if extra:
            warnings.warn(f"{self.name}: {' and '.join(extra)} not carried (vcodec codes the first video stream "
                          f"and the audio)", VcodecWarning, stacklevel=3)
        self._audio_offsets = [self._audio_offset(s) for s in self._audio]
        self._pending_audio: list[AudioPacket] = []
        self._read_error: str | None = None
        self._first = None
        self._frames = self._decode()
        self._index = 0
        self._last_time: float | None = None
        self._warned_timing = False
        first = next(self._frames, None)
        if first is None:
            raise InputError(f"{self.name}: contains no video frames")
        self._first = first
        self.info = self._describe(first)

    def _audio_offset(self, a) -> int:
        """Video start time in the audio track's time base: audio times are stored relative to the first frame."""
        v = self._video
        if v.start_time is None or a.time_base is None:
            return 0
        return round(Fraction(v.start_time) * Fraction(v.time_base) / Fraction(a.time_base))

    def _describe(self, frame: av.VideoFrame) -> SourceInfo:
        v = self._video
        notes: list[str] = []
        # a stream too short for FFmpeg to average (1-2 frames of a cut MPEG-TS) has no average rate, and its guess is
        # then the field rate (50 for 25 fps H.264): the codec's own declared frame rate comes before the guess
        rate = _rational(v.average_rate) or _rational(v.codec_context.framerate) or _rational(v.guessed_rate)
        tagged = _tagged_rate(v)
        if tagged is not None and (rate is None or abs(tagged / rate - 1) < 1e-3):
            rate = tagged  # written by vcodec where the container cannot hold the exact rate (Matroska)
        measured = None if tagged is not None else self._timestamp_rate()
        if measured is not None and (rate is None or abs(measured[0] / rate - 1) > measured[2]):
            rate = measured[0]   # variable frame rate: FFmpeg's average came from the first frames only
        if rate is None:
            rate = DEFAULT_RATE
            notes.append(f"{self.name}: frame rate unknown; assuming {rate} fps")
        fmt = frame.format
        comps = fmt.components
        alpha = any(c.is_alpha for c in comps) and _transparent(frame)
        color = [c for c in comps if not c.is_alpha]
        gray = len(color) == 1 and not fmt.is_rgb and not fmt.has_palette   # pal8: one plane of colour indices
        depth = max(c.bits for c in comps)
        if fmt.has_palette:
            depth = 8
        if alpha:
            notes.append(f"{self.name}: alpha channel dropped (vcodec codes RGB; colours kept as stored)")
        pages = tiff_pages(self._path) if self._path and v.codec_context.name == "tiff" else None
        if pages is not None and pages > 1:
            notes.append(f"{self.name}: a TIFF of {pages} pages; only the first is read (FFmpeg's TIFF reader)")
        # deeper than 8 bits: rounded, unless the samples are exactly what 8-bit RGB gives (vcodec's own 16-bit .y4m
        # holds its decoder's RGB exactly); such a stream is watched frame by frame until one is not
        self._watch_depth = depth > 8 and _holds_8bit_rgb(frame)
        if depth > 8 and not self._watch_depth:
            notes.append(_rounded_note(self.name, depth, fmt.name))
        hdr = _HDR_TRANSFERS.get(int(frame.color_trc))
        if hdr is not None:
            notes.append(f"{self.name}: HDR video ({hdr} transfer) is read as stored, as if it were SDR: vcodec "
                         f"works in SDR, so what it encodes decodes washed out (tone-map it to SDR first)")
        self._rot = _rotation(frame, self.name)
        # FFmpeg reports a mirrored EXIF orientation as its rotation alone: flip the stored picture before rotating
        orientation = jpeg_orientation(self._path) if self._path and v.codec_context.name == "mjpeg" else None
        self._mirror = MIRRORED.get(orientation) == self._rot
        h, w = (frame.height, frame.width) if self._rot % 180 == 0 else (frame.width, frame.height)
        sar = _rational(v.sample_aspect_ratio)
        if sar is not None and self._rot % 180:
            sar = 1 / sar
        if sar == 1:
            sar = None
        hint = v.frames or (measured[1] if measured is not None else None) or self._duration_frames(rate)
        if hint is None and self._container.duration:
            hint = round(Fraction(self._container.duration, av.time_base) * rate) or None
        if hint is None and self._container.format.name.endswith("_pipe"):
            hint = 1   # a still image (jpeg_pipe, png_pipe, webp_pipe, ...): FFmpeg reads one picture from it
        for n in notes:
            warnings.warn(n, VcodecWarning, stacklevel=3)
        return SourceInfo(
            width=w,
            height=h,
            frame_rate=rate,
            pix_fmt=fmt.name,
            bit_depth=depth,
            gray=gray,
            alpha=alpha,
            rotation=self._rot,
            colorspace=_COLORSPACES.get(int(frame.colorspace), str(int(frame.colorspace))),
            color_range=_RANGES.get(int(frame.color_range), str(int(frame.color_range))),
            sample_aspect_ratio=sar,
            frame_count_hint=hint,
            notes=tuple(notes),
        )

    # -- reading ---------------------------------------------------------------------------------------------
    def _decode(self) -> Iterator[av.VideoFrame]:
        v = self._video
        streams = [v, *self._audio]
        try:
            for packet in self._container.demux(streams):
                if packet.stream.type == "video":
                    yield from packet.decode()
                elif packet.size:
                    i = self._audio.index(packet.stream)
                    off = self._audio_offsets[i]
                    self._pending_audio.append(
                        AudioPacket(
                            track=i,
                            data=bytes(packet),
                            pts=None if packet.pts is None else packet.pts - off,
                            dts=None if packet.dts is None else packet.dts - off,
                            duration=int(packet.duration or 0),
                            keyframe=bool(packet.is_keyframe),
                        )
                    )
        except av.FFmpegError as e:
            stopping.check()  # a stop signal raised inside PyAV's read callback comes back as a read error
            if self._first is None and self._index == 0:  # nothing read yet: not a usable video
                if self._path and animated_webp(self._path):
                    raise InputError(f"{self.name}: an animated WebP, which FFmpeg's WebP decoder cannot read (it "
                                     "reads still WebP images only); convert it to a video or GIF first (ImageMagick, Pillow)") from e
                hint = ""
                if self._path is None and "mp4" in self._container.format.name.split(","):
                    hint = ("; an MP4 or MOV whose index comes after its media cannot be read from a pipe: give its "
                            "path, or remux it with the index first (ffmpeg -i IN -c copy -movflags +faststart OUT)")
                raise InputError(f"{self.name}: cannot decode video after {self._index} frames ({_reason(e)}){hint}") from e
            self._read_error = _reason(e)  # a damaged or cut tail: keep what was read (warned about at the end)

    def _check_timing(self, frame: av.VideoFrame) -> None:
        t = frame.time
        if t is None:
            if not self._warned_timing:
                self._warned_timing = True
                warnings.warn(
                    f"{self.name}: frames carry no timestamps; output is constant rate at {self.info.frame_rate} fps",
                    VcodecWarning,
                    stacklevel=4,
                )
            return
        if self._last_time is not None and not self._warned_timing:
            step = 1 / float(self.info.frame_rate)
            if abs((t - self._last_time) - step) > 0.5 * step:
                self._warned_timing = True
                warnings.warn(
                    f"{self.name}: variable frame rate (frame {self._index} at {t:.3f}s); every frame is kept and "
                    f"the output is constant rate at {self.info.frame_rate} fps",
                    VcodecWarning,
                    stacklevel=4,
                )
        self._last_time = t

    def _to_rgb(self, frame: av.VideoFrame) -> np.ndarray:
        # frame.rotation, never frame.side_data (see _rotation; it also makes a reference cycle that would keep
        # every frame alive until the garbage collector runs)
        rot = int(frame.rotation) % 360
        if rot != self._rot:
            raise InputError(f"{self.name}: display rotation changes at frame {self._index}; not supported")
        try:
            # threads=1: swscale's slice threading gives wrong rows now and then (seen with odd sizes)
            rgb = frame.to_ndarray(format="rgb24", src_color_range=frame.color_range, threads=1)
        except (av.FFmpegError, ValueError) as e:
            raise InputError(f"{self.name}: cannot convert {frame.format.name} video to RGB ({e})") from e
        if self._mirror:
            rgb = rgb[::-1]
        if rot or self._mirror:
            rgb = np.ascontiguousarray(np.rot90(rgb, k=rot // 90))
        return rgb

    def frames(self) -> Iterator[np.ndarray]:
        """Yield frames, uint8 (H, W, 3) RGB, in presentation order. A source that ends well short of the frame
        count its container declares (a truncated file) gets a warning at the end."""
        frame = self._first
        while frame is not None:
            self._check_timing(frame)
            if self._watch_depth and not _holds_8bit_rgb(frame):
                self._watch_depth = False
                note = _rounded_note(self.name, self.info.bit_depth, frame.format.name)
                warnings.warn(f"{note} from frame {self._index}", VcodecWarning, stacklevel=2)
            rgb = self._to_rgb(frame)
            self._index += 1
            self._first = None
            yield rgb
            frame = next(self._frames, None)
        self._check_complete()

    def _check_complete(self) -> None:
        if self._read_error is not None:
            warnings.warn(f"{self.name}: reading stopped after {self._index} frames ({self._read_error}): the file "
                          f"looks truncated or damaged; encoding the frames read", VcodecWarning, stacklevel=4)
            return
        declared = self._video.frames or None  # an exact count where the container has one (MP4, AVI)
        timed = self._duration_frames(self.info.frame_rate)
        if declared is None or (timed is not None and timed < declared):  # an MP4 edit list plays fewer samples
            # from the duration: allow for rounding and edit lists
            declared = self.info.frame_count_hint if declared is None else timed
            if declared is not None and self._index >= declared - max(2, declared // 20):
                return
        if declared is not None and self._index < declared:
            warnings.warn(f"{self.name}: only {self._index} of the {declared} frames the container declares could "
                          f"be read (truncated or damaged file?); encoding what was read", VcodecWarning,
                          stacklevel=4)

    def _timestamp_rate(self) -> tuple[Fraction, int, float] | None:
        """For a Matroska/WebM file, which stores no frame count and whose average frame rate FFmpeg estimates from
        the first frames (wrong for variable frame rate: the video then came out shorter than its audio): the
        average over the whole stream, (frames - 1) / (last - first timestamp), the frame count, and how far
        (relative) a steady rate may lie from that average (1%, plus two ticks of the timestamps' resolution over
        the span: Matroska keeps milliseconds), from one demuxing pass over the file (nothing decoded). None for
        other inputs or when the timestamps cannot tell."""
        if self._path is None or not self._container.format.name.startswith("matroska"):
            return None
        try:
            with av.open(self._path) as c:
                v = c.streams.video[0]
                pts = [p.pts for p in c.demux(v) if p.size and p.pts is not None]
                tb = v.time_base
        except (av.FFmpegError, OSError, IndexError):
            return None
        if len(pts) < 2 or tb is None or max(pts) == min(pts):
            return None
        span = max(pts) - min(pts)
        return Fraction(len(pts) - 1) / (span * Fraction(tb)), len(pts), 0.01 + 2 / span

    def _duration_frames(self, rate: Fraction) -> int | None:
        """The frame count the video stream's duration (after any edit list) gives at ``rate``, or None. Matroska
        stores no stream duration but a ``DURATION`` tag per track (``HH:MM:SS.fraction``): the video track's own,
        where the container's duration would be the longest track's (an audio track that runs on)."""
        v = self._video
        if v.duration is not None and v.time_base is not None:
            return round(v.duration * v.time_base * rate) or None
        tag = _TRACK_DURATION.fullmatch((v.metadata or {}).get("DURATION", "").strip())
        if tag is None:
            return None
        hours, minutes, seconds = tag.groups()
        return round((int(hours) * 3600 + int(minutes) * 60 + Fraction(seconds)) * rate) or None

    def windows(self, n: int) -> Iterator[np.ndarray]:
        """Yield groups of ``n`` frames, uint8 (n, H, W, 3); the last may be shorter. Memory holds one group."""
        if n < 1:
            raise ValueError("window size must be >= 1")
        buf = np.empty((n, self.info.height, self.info.width, 3), np.uint8)
        k = 0
        for f in self.frames():
            if f.shape != buf.shape[1:]:
                raise InputError(
                    f"{self.name}: frame size changes at frame {self._index - 1} "
                    f"({buf.shape[2]}x{buf.shape[1]} -> {f.shape[1]}x{f.shape[0]}); not supported"
                )
            buf[k] = f
            k += 1
            if k == n:
                yield buf.copy()
                k = 0
        if k:
            yield buf[:k].copy()

    @property
    def frames_read(self) -> int:
        return self._index

    def take_audio(self) -> list[AudioPacket]:
        """Audio packets demuxed so far and not yet taken."""
        out, self._pending_audio = self._pending_audio, []
        return out

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _reason(e: BaseException) -> str:
    """FFmpeg's message without the errno and file name PyAV adds."""
    return getattr(e, "strerror", None) or str(e)


Y4M_MAGIC = b"YUV4MPEG2 "
MAX_Y4M_HEADER = 4096


def _open_reason(inp, e: BaseException) -> str:
    """Why FFmpeg could not open ``inp``, in words that fit: FFmpeg's y4m reader answers a header it cannot use
    with errno values (EBUSY, EINVAL) whose text ("Device or resource busy") would mislead."""
    head = b""
    if inp.is_path:
        try:
            with open(inp.path, "rb") as f:
                head = f.read(MAX_Y4M_HEADER + 1)
        except OSError:
            head = b""
    if head.startswith(VCB_MAGIC):
        return f"it is a .vcb stream: decode it first, e.g. vcodec decode {shlex.quote(inp.name)} -o NAME.mkv"
    if not head.startswith(Y4M_MAGIC):
        if getattr(e, "errno", None) == errno.EBUSY:
            return "FFmpeg cannot use its stream parameters"
        return _reason(e)
    line, nl, _ = head.partition(b"\n")
    if not nl:
        return f"y4m header line longer than {MAX_Y4M_HEADER} bytes"
    w, h = (re.search(rb" %s(\d+)" % k, line) for k in (b"W", b"H"))
    if w is None or h is None:
        return "y4m header without a frame width and height"
    size = f"{int(w.group(1))}x{int(h.group(1))}"
    return f"y4m header declares {size} frames, which FFmpeg cannot read ({_reason(e)})" \
        if getattr(e, "errno", None) != errno.EBUSY else f"y4m header declares {size} frames, too large for FFmpeg to read"


def open_source(src, *, audio: bool = True) -> VideoSource:
    """Open a video source (path, ``"-"`` for stdin, or binary file object). See :class:`VideoSource`."""
    return VideoSource(src, audio=audio)


def read_video(src, *, start: int = 0, frames: int | None = None,
               timing_warnings: bool = True) -> tuple[np.ndarray, SourceInfo]:
    """Read a (short) video, or the segment ``[start, start + frames)`` of it, into memory: uint8 (T, H, W, 3) RGB
    frames and its :class:`SourceInfo`.

    The one reader for reference and decoded videos (demo, benchmarks, corpus building, tests), so that they all
    share one colour rule: swscale converts with the frame's own matrix and range tags (untagged = BT.601 limited
    range), single-threaded (``threads=1``: threaded swscale gives wrong rows at odd sizes). Frames are the decoder's
    output as PyAV hands it over (PyAV applies no codec cropping of its own); display rotation is applied.
    ``timing_warnings=False`` leaves out the variable-frame-rate / missing-timestamp warnings, which matter only
    when frames are written out again.
    """
    if start < 0 or (frames is not None and frames < 1):
        raise ValueError(f"bad segment: start={start}, frames={frames}")
    out = []
    with VideoSource(src, audio=False) as s:
        s._warned_timing = not timing_warnings  # (set: the timing check stays silent)
        for i, rgb in enumerate(s.frames()):
            if i >= start:
                out.append(rgb)
                if frames is not None and len(out) == frames:
                    break
        if not out:
            raise InputError(f"{s.name}: no frames at or after frame {start}")
        return np.stack(out), s.info
