"""One small `Codec` interface (codec_base.py), one implementation per codec (CompressAI's pattern), and the registry.

The classical codecs are here; vcodec's is codec_vcodec.py.

A codec takes the clip as uint8 RGB (T, H, W, 3) plus its 8-bit YUV 4:2:0 planes (our one conversion, see
vcodec/colour.py), codes it at one rate point into a file, and decodes that file back. Classical codecs consume and
produce YUV 4:2:0; vcodec consumes and produces RGB. Each codec describes itself (exact tool versions and every setting) in
`description()`, which goes into the results as is.

Common test conditions for the classical codecs (see README.md for the reasoning):
- the same 8-bit YUV 4:2:0 source for all, coded at 10 bits (Main10 / AV1 Main 10-bit; libvvenc takes only 10-bit),
  decoded and rounded back to 8 bits;
- constant QP (no rate control), PSNR tuning, no adaptive quantisation, one thread;
- intra period 16 frames, closed GOPs (IDR / key frames), no scene-cut detection, random-access mini-GOPs;
- raw elementary streams (Annex B for AVC/HEVC/VVC, the AV1 low-overhead OBU stream for AV1).
"""

from __future__ import annotations

import functools
import glob
import os
import re
from fractions import Fraction

import numpy as np

from benchmarks.codec_base import INTRA_PERIOD, Clip, Codec, CodecUnavailable, Decoded, Encoded
from benchmarks.codec_vcodec import VCodec
from benchmarks.measure import run_process
from vcodec.colour import Yuv420, from_high_bit_depth, to_high_bit_depth

# coding structures (see conditions.py): "default" = closed GOPs every intra period with random-access mini-GOPs
# (the original benchmark conditions), "ra" = JVET-style random access, "ld" = low delay (one intra picture)
STRUCTURES = ("default", "ra", "ld")


# ------------------------------------------------------------------ helpers
def ffmpeg_exe() -> str:
    """The FFmpeg binary of the imageio-ffmpeg wheel (override with VCODEC_BENCH_FFMPEG)."""
    exe = os.environ.get("VCODEC_BENCH_FFMPEG")
    if exe:
        return exe
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


@functools.lru_cache(maxsize=8)
def ffmpeg_encoders(ffmpeg: str) -> frozenset[str]:
    try:
        rc, out, err = run_process([ffmpeg, "-hide_banner", "-encoders"])
    except OSError as e:
        raise CodecUnavailable(f"ffmpeg binary {ffmpeg} not runnable: {e}") from e
    if rc != 0:
        raise CodecUnavailable(f"ffmpeg -encoders failed: {err.decode(errors='replace').strip()[:200]}")
    names = set()
    for line in out.decode(errors="replace").splitlines():
        parts = line.split()
        if len(parts) >= 2 and len(parts[0]) == 6 and parts[0][0] in "VAS":
            names.add(parts[1])
    return frozenset(names)


@functools.lru_cache(maxsize=8)
def ffmpeg_version(ffmpeg: str) -> str:
    rc, out, _ = run_process([ffmpeg, "-hide_banner", "-version"])
    return out.decode(errors="replace").splitlines()[0] if rc == 0 and out else "unknown"


def _loaded_library(substr: str) -> str | None:
    """File name of a shared library loaded in this process whose name contains `substr` (version in the soname)."""
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1] if len(line.split()) >= 6 else ""
                if substr in os.path.basename(path):
                    return os.path.basename(path)
    except OSError:
        pass
    import av

    hits = glob.glob(os.path.join(os.path.dirname(av.__file__), os.pardir, "av.libs", f"*{substr}*"))
    return os.path.basename(hits[0]) if hits else None


def pyav_versions() -> dict:
    import av

    return {
        "pyav": av.__version__,
        "libavcodec": ".".join(map(str, av.library_versions["libavcodec"])),
        "libavformat": ".".join(map(str, av.library_versions["libavformat"])),
    }


def convert_depth(plane: np.ndarray, src: int, dst: int) -> np.ndarray:
    """Samples from `src` to `dst` bits: left shift up (the usual way to code an 8-bit source at 10 bits), rounding
    half up down; uint8 at 8 bits, else uint16."""
    if dst == src:
        return plane.astype(np.uint8 if dst == 8 else np.uint16, copy=False)
    if src == 8 and dst > 8:
        return to_high_bit_depth(plane, dst)
    if dst == 8:
        return from_high_bit_depth(plane, src)
    if dst > src:
        return plane.astype(np.uint16) << (dst - src)
    shift = src - dst
    return np.minimum((plane.astype(np.uint32) + (1 << (shift - 1))) >> shift, (1 << dst) - 1).astype(np.uint16)


def _planes_to_frame_array(yuv: Yuv420, i: int, bit_depth: int, src_depth: int = 8) -> np.ndarray:
    # PyAV's planar yuv420p / yuv420p10le ndarray layout: (H * 3/2, W), U then V rows packed below Y
    h, w = yuv.y.shape[1:]
    y, u, v = (convert_depth(p, src_depth, bit_depth) for p in (yuv.y[i], yuv.u[i], yuv.v[i]))
    return np.concatenate([y, u.reshape(h // 4, w), v.reshape(h // 4, w)], axis=0)


def _frame_to_planes(frame, out_depth: int = 8) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    fmt = frame.format.name
    if fmt not in ("yuv420p", "yuv420p10le", "yuvj420p"):
        raise RuntimeError(f"unexpected decoded pixel format {fmt}")
    depth = 10 if fmt.endswith("10le") else 8
    arr = frame.to_ndarray()
    h, w = frame.height, frame.width
    y = arr[:h]
    u = arr[h : h + h // 4].reshape(h // 2, w // 2)
    v = arr[h + h // 4 :].reshape(h // 2, w // 2)
    return tuple(convert_depth(p, depth, out_depth) for p in (y, u, v))


def decode_with_pyav(
    path: str, fmt: str | None, bit_depth: int, expect_frames: int, out_depth: int = 8
) -> tuple[Yuv420, str]:
    """Decode a raw elementary stream with PyAV; returns planes at `out_depth` bits (the source's) and the decoder's
    name."""
    import av

    ys, us, vs = [], [], []
    with av.open(path, format=fmt) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        decoder = stream.codec_context.name
        for frame in container.decode(stream):
            y, u, v = _frame_to_planes(frame, out_depth)
            ys.append(y)
            us.append(u)
            vs.append(v)
    if len(ys) != expect_frames:
        raise RuntimeError(f"{path}: decoded {len(ys)} frames, expected {expect_frames}")
    return Yuv420(np.stack(ys), np.stack(us), np.stack(vs)), decoder


def demuxed_payload_bytes(path: str, fmt: str | None) -> int:
    import av

    with av.open(path, format=fmt) as container:
        return sum(p.size for p in container.demux(container.streams.video[0]) if p.size)


_START = re.compile(b"\x00\x00\x01")


def annexb_nal_units(data: bytes) -> list[tuple[int, int]]:
    """(start, end) byte ranges of the NAL units in an Annex B stream, each including its start code."""
    starts = [m.start() for m in _START.finditer(data)]
    units = []
    for k, s in enumerate(starts):
        begin = s - 1 if s > 0 and data[s - 1] == 0 else s  # 4-byte start code
        end = starts[k + 1] if k + 1 < len(starts) else len(data)
        if k + 1 < len(starts) and data[end - 1] == 0:
            end -= 1
        units.append((begin, end))
    return units


def strip_h264_encoder_sei(data: bytes) -> tuple[bytes, str | None]:
    """Remove x264's user-data SEI (its version and option string, ~600 bytes) from an Annex B H.264 stream.

    Returns (stream without it, the x264 version string it carried). SEI is not needed to decode.
    """
    out = bytearray()
    version = None
    for begin, end in annexb_nal_units(data):
        unit = data[begin:end]
        hdr = unit.index(b"\x00\x00\x01") + 3
        if unit[hdr] & 0x1F == 6 and b"x264 - core" in unit:
            m = re.search(rb"x264 - core \d+( r\d+ [0-9a-f]+)?", unit)  # the revision is absent in some builds
            version = m.group(0).decode() if m else "x264"
            continue
        out += unit
    return bytes(out), version


# ------------------------------------------------------------------ classical codecs through PyAV
class PyAVCodec(Codec):
    encoder: str = ""
    raw_format: str = ""
    default_points: tuple = ()
    default_preset = "medium"

    def __init__(
        self,
        points=None,
        preset: str | None = None,
        bit_depth: int = 10,
        intra_period: int = INTRA_PERIOD,
        structure: str = "default",
    ):
        self.points = list(points) if points is not None else list(self.default_points)
        self.preset = preset or self.default_preset
        self.bit_depth = bit_depth
        self.intra_period = intra_period
        self.structure = _check_structure(structure)

    def check(self) -> None:
        import av

        try:
            codec = av.codec.Codec(self.encoder, "w")
        except Exception as e:  # av raises its own UnknownCodecError / FFmpegError
            raise CodecUnavailable(f"encoder {self.encoder} not in this PyAV/FFmpeg build ({e})") from e
        pix = f"yuv420p{'10le' if self.bit_depth == 10 else ''}"
        formats = {f.name for f in (codec.video_formats or [])}
        if formats and pix not in formats:
            raise CodecUnavailable(f"encoder {self.encoder} does not take {pix}")

    def rate_points(self) -> list:
        return list(self.points)

    def options(self, point) -> dict:
        raise NotImplementedError

    def version(self) -> str:
        raise NotImplementedError

    def description(self) -> dict:
        return {
            "name": self.name,
            "tool": f"{self.encoder} via PyAV",
            "version": self.version(),
            "libraries": pyav_versions(),
            "bit_depth": self.bit_depth,
            "pix_fmt": self.pix_fmt,
            "container": f"raw {self.raw_format} elementary stream",
            "intra_period": self.intra_period if self.structure != "ld" else -1,
            "structure": self.structure,
            "rate_points": self.rate_points(),
            "preset": self.preset,
            "options_at_first_point": self.options(self.rate_points()[0]),
            "command_at_first_point": self.command_line(self.rate_points()[0]),
        }

    def settings(self, point) -> dict:
        """Everything that determines the stream at `point`: tool versions and the exact encoder options."""
        return {
            "version": self.version(),
            "libraries": pyav_versions(),
            "bit_depth": self.bit_depth,
            "options": self.options(point),
        }

    def command_line(self, point) -> str:
        """An FFmpeg command line that runs the same encoder with the same options (we call it through PyAV)."""
        opts = " ".join(f"-{k} {v}" for k, v in self.options(point).items())
        return (
            f"ffmpeg -f rawvideo -pix_fmt {self.pix_fmt} -s WxH -r FPS -i IN.yuv -c:v {self.encoder} -threads 1 "
            f"{opts} -f {self.raw_format} OUT{self.extension}"
        )

    @property
    def pix_fmt(self) -> str:
        return "yuv420p10le" if self.bit_depth == 10 else "yuv420p"

    def _encode_packets(self, clip: Clip, options: dict, path: str) -> None:
        import av

        rate = Fraction(clip.fps).limit_denominator(1001)
        with av.open(path, "w", format=self.raw_format) as out:
            stream = out.add_stream(self.encoder, rate=rate)
            stream.width, stream.height = clip.width, clip.height
            stream.pix_fmt = self.pix_fmt
            stream.codec_context.thread_count = 1
            stream.options = options
            for i in range(clip.num_frames):
                frame = av.VideoFrame.from_ndarray(
                    _planes_to_frame_array(clip.yuv, i, self.bit_depth, clip.bit_depth), format=self.pix_fmt
                )
                frame.pts = i
                out.mux(stream.encode(frame))
            out.mux(stream.encode(None))

    def _probe_stream(self, options: dict) -> bytes:
        """The stream of a one-frame 16x16 encode with ``options`` (encoders write their version into it)."""
        import tempfile

        from vcodec.colour import rgb_to_yuv420

        rgb = np.zeros((1, 16, 16, 3), np.uint8)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "probe" + self.extension)
            self._encode_packets(Clip("probe", rgb, rgb_to_yuv420(rgb)), options, path)
            with open(path, "rb") as f:
                return f.read()

    def encode(self, clip: Clip, point, path: str) -> Encoded:
        self._encode_packets(clip, self.options(point), path)
        return Encoded(path, os.path.getsize(path))

    def payload_bytes(self, encoded: Encoded) -> int:
        return demuxed_payload_bytes(encoded.path, self.raw_format)

    def decode(self, encoded: Encoded, clip: Clip) -> Decoded:
        yuv, decoder = decode_with_pyav(
            encoded.path, self.raw_format, self.bit_depth, clip.num_frames, out_depth=clip.bit_depth
        )
        encoded.info["decoder"] = decoder
        return Decoded(yuv=yuv)


class X264(PyAVCodec):
    name = "x264"
    encoder = "libx264"
    raw_format = "h264"
    extension = ".264"
    default_points = (47, 42, 37, 32, 27, 22, 17)

    def options(self, qp) -> dict:
        # Rate points are QPs on the HEVC/VVC scale. x264's high-bit-depth QP scale is shifted by 6 per extra bit
        # (x264 10-bit qp 59 == 8-bit qp 47), unlike x265/vvenc whose QP means the same step at any bit depth.
        x264_qp = int(qp) + 6 * (self.bit_depth - 8)
        params = {
            "default": f"keyint={self.intra_period}:min-keyint={self.intra_period}:scenecut=0:open-gop=0:threads=1",
            # x264 has no dyadic 32-frame hierarchy: a fixed 8-frame mini-GOP with a B-pyramid is the closest
            "ra": f"keyint={self.intra_period}:min-keyint={self.intra_period}:scenecut=0:open-gop=1"
            ":bframes=7:b-adapt=0:b-pyramid=normal:threads=1",
            "ld": "keyint=infinite:scenecut=0:bframes=0:threads=1",
        }[self.structure]
        return {"preset": self.preset, "tune": "psnr", "qp": str(x264_qp), "x264-params": params}

    @functools.cached_property
    def _version(self) -> str:
        # x264 writes its exact version into a user-data SEI: encode one tiny frame and read it back
        _, version = strip_h264_encoder_sei(self._probe_stream({"qp": "30"}))
        lib = _loaded_library("libx264")
        return f"{version or 'x264 (version SEI not found)'}; library {lib}"

    def version(self) -> str:
        return self._version

    def encode(self, clip: Clip, point, path: str) -> Encoded:
        self._encode_packets(clip, self.options(point), path)
        with open(path, "rb") as f:
            data = f.read()
        stripped, _ = strip_h264_encoder_sei(data)
        with open(path, "wb") as f:
            f.write(stripped)
        return Encoded(path, len(stripped), {"sei_removed_bytes": len(data) - len(stripped)})


class X265(PyAVCodec):
    name = "x265"
    encoder = "libx265"
    raw_format = "hevc"
    extension = ".265"
    default_points = (47, 42, 37, 32, 27, 22, 17)

    def options(self, qp) -> dict:
        gop = {
            "default": f"keyint={self.intra_period}:min-keyint={self.intra_period}:scenecut=0:open-gop=0",
            # x265 docs: --b-adapt 0 fixes the GOP from --keyint and --bframes; --b-pyramid makes B-frames references
            "ra": f"keyint={self.intra_period}:min-keyint={self.intra_period}:scenecut=0:open-gop=1"
            ":bframes=7:b-adapt=0:b-pyramid=1",
            # --keyint -1: one key frame at the start (x265's "infinite GOP"); P-frames only (low-delay P)
            "ld": "keyint=-1:scenecut=0:bframes=0",
        }[self.structure]
        params = f"qp={qp}:{gop}:info=0:pools=none:frame-threads=1:log-level=error"
        return {"preset": self.preset, "tune": "psnr", "x265-params": params}

    @functools.cached_property
    def _version(self) -> str:
        # with info=1 x265 writes its version into an SEI; read it from a one-frame probe encode
        data = self._probe_stream({"x265-params": "info=1:log-level=error"})
        m = re.search(rb"x265 \(build \d+\) - [0-9A-Za-z.+_-]+", data)
        lib = _loaded_library("libx265")
        return f"{m.group(0).decode() if m else 'x265 (version SEI not found)'}; library {lib}"

    def version(self) -> str:
        return self._version


class SvtAv1(PyAVCodec):
    name = "svtav1"
    encoder = "libsvtav1"
    raw_format = "obu"
    extension = ".obu"
    # SVT-AV1's --qp scale is 1..63 (quantiser index / 4)
    default_points = (63, 55, 47, 39, 31, 23, 15)
    default_preset = "4"

    def options(self, qp) -> dict:
        gop = {
            "default": f"keyint={self.intra_period}:irefresh-type=2:hierarchical-levels=4",
            # random access, mini-GOP 32 (5 levels), forward key frames (open GOP, like a CRA)
            "ra": f"keyint={self.intra_period}:irefresh-type=1:hierarchical-levels=5:pred-struct=2",
            # low delay: pred-struct 1, keyint -1 = no key frame after the first
            "ld": "keyint=-1:pred-struct=1",
        }[self.structure]
        params = f"rc=0:aq-mode=0:qp={qp}:tune=1:{gop}:scd=0:lp=1"
        return {"preset": str(self.preset), "svtav1-params": params}

    def version(self) -> str:
        self.check()
        import av

        av.codec.Codec(self.encoder, "w")  # loads the library so /proc/self/maps shows it
        lib = _loaded_library("libSvtAv1Enc")
        m = re.search(r"\.so\.(\d+\.\d+\.\d+)", lib or "")
        return f"SVT-AV1 {m.group(1) if m else 'unknown'}; library {lib}"

    def encode(self, clip: Clip, point, path: str) -> Encoded:
        try:
            return super().encode(clip, point, path)
        finally:
            _drop_realtime_scheduling()

    def decode(self, encoded: Encoded, clip: Clip) -> Decoded:
        out = super().decode(encoded, clip)
        encoded.info["decoder_library"] = _loaded_library("libdav1d")
        return out


def _drop_realtime_scheduling() -> None:
    """SVT-AV1, when run as root, switches its threads -- the calling thread included -- to SCHED_FIFO
    priority 99 (seen here: the worker process then starved every other process on the machine). Put every
    thread of this process back on the normal scheduler."""
    if not hasattr(os, "sched_setscheduler"):
        return
    for tid in os.listdir("/proc/self/task"):
        try:
            if os.sched_getscheduler(int(tid)) != os.SCHED_OTHER:
                os.sched_setscheduler(int(tid), os.SCHED_OTHER, os.sched_param(0))
        except OSError:
            pass


# ------------------------------------------------------------------ VVC: libvvenc in the FFmpeg binary
class VVenC(Codec):
    """VVC through libvvenc in the imageio-ffmpeg FFmpeg binary; decoded by PyAV's native VVC decoder.

    libvvenc takes only yuv420p10le. Its FFmpeg defaults (perceptual QPA on, 1-second intra period, GOP 32) are
    replaced by the common conditions: qpa=0 (PSNR-driven), intra period 16 with GOP size 16, closed GOPs of IDR
    pictures without leading pictures (idr_no_radl, like the other codecs' closed GOPs), and POC 0 an IDR
    (otherwise vvenc codes the first frames as leading pictures of an IDR placed at the end of the first GOP).
    Not `decodingrefreshtype=idr` with `poc0idr=1`: with libvvenc 1.15.0-dev in this FFmpeg that combination often
    emits only the first picture and then an empty stream (exit code 0).
    """

    name = "vvenc"
    extension = ".266"
    raw_format = "vvc"
    default_points = (47, 42, 37, 32, 27, 22, 17)

    def __init__(
        self,
        points=None,
        preset: str = "medium",
        intra_period: int = INTRA_PERIOD,
        ffmpeg: str | None = None,
        structure: str = "default",
    ):
        self.points = list(points) if points is not None else list(self.default_points)
        self.preset = preset
        self.intra_period = intra_period
        self.structure = _check_structure(structure)
        self.bit_depth = 10
        self.ffmpeg = ffmpeg or ffmpeg_exe()

    def check(self) -> None:
        if not os.path.exists(self.ffmpeg):
            raise CodecUnavailable(f"ffmpeg binary {self.ffmpeg} not found")
        if "libvvenc" not in ffmpeg_encoders(self.ffmpeg):
            raise CodecUnavailable(f"libvvenc not in this FFmpeg build ({self.ffmpeg})")
        import av

        try:
            av.codec.Codec("vvc", "r")
        except Exception as e:
            raise CodecUnavailable(f"PyAV has no VVC decoder ({e})") from e

    def rate_points(self) -> list:
        return list(self.points)

    def vvenc_params(self) -> str:
        if self.structure == "ra":  # JVET RA: CRA every intra period, hierarchical GOP 32, first picture IDR
            gop = f"intraperiod={self.intra_period}:gopsize=32:decodingrefreshtype=cra:poc0idr=1"
        elif self.structure == "ld":  # JVET LD: one intra picture, GOP 8 without reordering (low-delay B)
            gop = "intraperiod=-1:gopsize=8:picreordering=0:decodingrefreshtype=none"
        else:
            size = 16 if self.intra_period % 32 else 32
            gop = f"intraperiod={self.intra_period}:gopsize={size}:decodingrefreshtype=idr_no_radl:poc0idr=1"
        return gop + ":threads=1:maxparallelframes=1"

    def command(self, width: int, height: int, fps: float, qp, path: str) -> list[str]:
        fps = Fraction(fps).limit_denominator(1001)
        return [
            self.ffmpeg, "-hide_banner", "-nostats", "-loglevel", "error", "-y",
            "-f", "rawvideo", "-pix_fmt", "yuv420p10le", "-s", f"{width}x{height}",
            "-r", f"{fps.numerator}/{fps.denominator}", "-i", "pipe:0",
            "-c:v", "libvvenc", "-preset", self.preset, "-qp", str(qp), "-qpa", "0",
            "-vvenc-params", self.vvenc_params(), "-threads", "1",
            "-f", "vvc", path,
        ]  # fmt: skip

    @functools.cached_property
    def _version(self) -> str:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            cmd = [
                self.ffmpeg, "-hide_banner", "-nostats", "-loglevel", "verbose", "-f", "lavfi",
                "-i", "color=black:size=64x64:rate=25", "-frames:v", "1", "-pix_fmt", "yuv420p10le",
                "-c:v", "libvvenc", "-preset", "faster", "-f", "vvc", os.path.join(tmp, "p.266"),
            ]  # fmt: skip
            _, _, err = run_process(cmd)
        m = re.search(r"libvvenc version: (\S+)", err.decode(errors="replace"))
        return f"libvvenc {m.group(1) if m else 'unknown'}"

    def description(self) -> dict:
        return {
            "name": self.name,
            "tool": "libvvenc in the FFmpeg binary of imageio-ffmpeg; decoded by PyAV's native VVC decoder",
            "version": self._version,
            "ffmpeg": ffmpeg_version(self.ffmpeg),
            "libraries": pyav_versions(),
            "bit_depth": 10,
            "pix_fmt": "yuv420p10le",
            "container": "raw vvc (Annex B) elementary stream",
            "intra_period": self.intra_period if self.structure != "ld" else -1,
            "structure": self.structure,
            "rate_points": self.rate_points(),
            "preset": self.preset,
            "command_at_first_point": ("ffmpeg " + " ".join(self.command(0, 0, 25, self.points[0], "OUT.266")[1:]))
            .replace("-s 0x0", "-s WxH")
            .replace("-r 25/1", "-r FPS"),
        }

    def settings(self, point) -> dict:
        """Everything that determines the stream at `point`: the libvvenc version and the exact command."""
        return {"version": self._version, "ffmpeg": ffmpeg_version(self.ffmpeg), "command": self.command_line(point)}

    def command_line(self, point) -> str:
        return (
            ("ffmpeg " + " ".join(self.command(0, 0, 25, point, "OUT.266")[1:]))
            .replace("-s 0x0", "-s WxH")
            .replace("-r 25/1", "-r FPS")
        )

    def encode(self, clip: Clip, point, path: str) -> Encoded:
        t = clip.num_frames
        raw = b"".join(
            _planes_to_frame_array(clip.yuv, i, 10, clip.bit_depth).astype("<u2").tobytes() for i in range(t)
        )
        rc, _, err = run_process(self.command(clip.width, clip.height, clip.fps, point, path), stdin_data=raw)
        if rc != 0:
            raise RuntimeError(f"libvvenc encode failed (rc {rc}): {err.decode(errors='replace').strip()[-500:]}")
        if not os.path.exists(path) or os.path.getsize(path) == 0:
            raise RuntimeError(
                f"libvvenc wrote an empty stream (exit code 0): {err.decode(errors='replace').strip()[-300:]}"
            )
        return Encoded(path, os.path.getsize(path))

    def payload_bytes(self, encoded: Encoded) -> int:
        return demuxed_payload_bytes(encoded.path, self.raw_format)

    def decode(self, encoded: Encoded, clip: Clip) -> Decoded:
        yuv, decoder = decode_with_pyav(encoded.path, self.raw_format, 10, clip.num_frames, out_depth=clip.bit_depth)
        encoded.info["decoder"] = decoder
        return Decoded(yuv=yuv)


def _check_structure(structure: str) -> str:
    if structure not in STRUCTURES:
        raise ValueError(f"unknown coding structure {structure!r}; choose from {', '.join(STRUCTURES)}")
    return structure


# ------------------------------------------------------------------ registry
CODECS = {"x264": X264, "x265": X265, "svtav1": SvtAv1, "vvenc": VVenC, "vcodec": VCodec}
ALIASES = {
    "avc": "x264",
    "h264": "x264",
    "hevc": "x265",
    "h265": "x265",
    "av1": "svtav1",
    "vvc": "vvenc",
    "h266": "vvenc",
}


def canonical_name(name: str) -> str:
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in CODECS:
        raise ValueError(f"unknown codec {name!r}; choose from {', '.join(CODECS)} (aliases: {', '.join(ALIASES)})")
    return key


def make_codec(name: str, **kwargs) -> Codec:
    return CODECS[canonical_name(name)](**kwargs)
