"""Issue 11, the everyday codec: awkward real-world files, and what an ffmpeg/x265 user expects of the CLI.

Files are synthesised with PyAV (see :mod:`vcodec.io.synthetic`); the model is a tiny random-weight one."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import warnings
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from click.testing import CliRunner

from vcodec.cli import main
from vcodec.errors import VcodecWarning
from vcodec.io import VideoSink, open_source, read_video, write_video
from vcodec.io.synthetic import pattern_frames, write_clip
from vcodec.testing import save_tokenizer, tiny_tokenizer

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> str:
    return save_tokenizer(tiny_tokenizer(window_frames=5), tmp_path_factory.mktemp("model") / "tiny5.pt")


def run(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input, catch_exceptions=True)


def _quiet_read(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VcodecWarning)
        return read_video(path)


def _sha(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _env() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    env.pop("VCODEC_DEBUG", None)
    return env


# ----------------------------------------------------------------------------------------------
# reading: cropping


def _cropped_h264(path, left: int, right: int, width: int = 224, height: int = 32) -> np.ndarray:
    """An H.264 file coded at ``width`` whose SPS crops ``left``/``right`` columns (as a Theora picture offset
    does): libavcodec crops the left edge only to an aligned position unless told otherwise."""
    frames = pattern_frames(3, height, width)
    frames[:, :, :left] = (255, 0, 255)
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        s.options = {"x264-params": f"crop-rect={left},0,{right},0", "preset": "ultrafast", "threads": "1",
                     "crf": "10"}
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(f, format="rgb24")
            vf.pts = i
            c.mux(s.encode(vf))
        c.mux(s.encode())
    return frames[:, :, left:width - right]


def test_picture_cropping_is_applied(tmp_path):
    want = _cropped_h264(tmp_path / "c.mp4", left=4, right=6)  # declared 214 wide; PyAV alone gives 218
    frames, info = _quiet_read(tmp_path / "c.mp4")
    assert (info.width, info.height) == (214, 32)
    assert frames.shape == want.shape
    # the magenta columns are cropped away: the left edge is the picture, not the padding
    assert np.abs(frames[:, :, 0].astype(int) - want[:, :, 0]).mean() < 12


def _ffmpeg() -> str:
    try:
        import imageio_ffmpeg
    except ImportError:
        pytest.skip("imageio-ffmpeg (the [bench] extra) is not installed")
    return imageio_ffmpeg.get_ffmpeg_exe()


def test_theora_without_frame_rate_and_odd_width(tmp_path):
    exe = _ffmpeg()
    src = tmp_path / "t.ogv"
    r = subprocess.run([exe, "-v", "error", "-f", "lavfi", "-i", "testsrc=size=214x160:rate=25", "-frames:v", "7",
                        "-c:v", "libtheora", "-pix_fmt", "yuv420p", str(src)], capture_output=True)
    if r.returncode:
        pytest.skip(f"this ffmpeg cannot write Theora: {r.stderr.decode()[-200:]}")
    frames, info = _quiet_read(src)
    assert frames.shape == (7, 160, 214, 3) and info.frame_rate == 25


# ----------------------------------------------------------------------------------------------
# writing: audio AAC cannot take, aspect ratio in .mkv, deterministic .mp4


def test_11024_hz_pcm_into_mp4_is_resampled_before_writing(tmp_path):
    src = tmp_path / "a.avi"
    write_clip(src, width=32, height=16, num_frames=10, codec="mjpeg", pix_fmt="yuvj420p", audio="pcm_u8",
               audio_rate=11024)
    with open_source(src) as s:
        frames, tracks, packets = np.stack(list(s.frames())), s.audio_tracks, s.take_audio()
        rate = s.info.frame_rate
    assert tracks[0].sample_rate == 11024
    with pytest.warns(VcodecWarning, match="AAC at 11025 Hz"):
        with VideoSink(tmp_path / "o.mp4", width=32, height=16, frame_rate=rate, audio_tracks=tracks) as sink:
            sink.write(frames)
            sink.write_audio(packets)
    with av.open(str(tmp_path / "o.mp4")) as c:
        a = c.streams.audio[0]
        assert (a.codec_context.name, a.sample_rate) == ("aac", 11025)
        assert sum(f.samples for f in c.decode(a)) >= 11025 * 10 // 25
        assert c.streams.video[0].frames == 10


@pytest.mark.parametrize("ext", ["mkv", "mp4"])
def test_sample_aspect_ratio_is_written(tmp_path, ext):
    frames = np.zeros((2, 576, 720, 3), np.uint8)
    write_video(tmp_path / f"o.{ext}", frames, 25, sample_aspect_ratio=Fraction(16, 15))
    _, info = _quiet_read(tmp_path / f"o.{ext}")
    assert info.sample_aspect_ratio == Fraction(16, 15)


def test_mp4_output_is_deterministic_across_processes(tmp_path):
    code = ("import sys, numpy as np; from vcodec.io import write_video; "
            "from vcodec.io.synthetic import pattern_frames; "
            "write_video(sys.argv[1], pattern_frames(12, 96, 160), 25)")
    outs = []
    for i, threads in enumerate(("1", "3")):
        env = dict(_env(), OMP_NUM_THREADS=threads)
        subprocess.run([sys.executable, "-c", code, str(tmp_path / f"{i}.mp4")], env=env, check=True)
        outs.append(_sha(tmp_path / f"{i}.mp4"))
    assert outs[0] == outs[1]


# ----------------------------------------------------------------------------------------------
# reading: truncated input, streams not carried


def test_truncated_input_warns(tmp_path):
    src = tmp_path / "t.mp4"
    write_clip(src, width=32, height=16, num_frames=30, codec="mjpeg", pix_fmt="yuvj420p", fmt="mp4")
    with av.open(str(src)) as c:  # move the index first, as a faststart file has it, then cut the data
        with av.open(str(tmp_path / "fs.mp4"), "w", options={"movflags": "+faststart"}) as o:
            s = o.add_stream_from_template(c.streams.video[0])
            for p in c.demux(c.streams.video[0]):
                if p.size:
                    p.stream = s
                    o.mux(p)
    data = (tmp_path / "fs.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) * 2 // 3])
    with pytest.warns(VcodecWarning, match=r"(only \d+ of the 30 frames the container declares|looks truncated)"):
        frames, _ = read_video(tmp_path / "cut.mp4")
    assert 0 < len(frames) < 30
    with warnings.catch_warnings():
        warnings.simplefilter("error", VcodecWarning)
        assert len(read_video(tmp_path / "fs.mp4")[0]) == 30  # the whole file: no warning


def test_extra_video_and_subtitle_streams_are_named(tmp_path):
    src = tmp_path / "two.mkv"
    with av.open(str(src), "w") as c:
        vs = [c.add_stream("ffv1", rate=25) for _ in range(2)]
        sub = c.add_stream("ass")
        for v in vs:
            v.width, v.height, v.pix_fmt = 16, 16, "yuv420p"
        for i, f in enumerate(pattern_frames(3, 16, 16)):
            for v in vs:
                vf = av.VideoFrame.from_ndarray(f, format="rgb24")
                vf.pts = i
                c.mux(v.encode(vf))
        for v in vs:
            c.mux(v.encode())
        del sub
    with pytest.warns(VcodecWarning, match="1 other video stream and 1 subtitle stream not carried"):
        frames, _ = read_video(src)
    assert len(frames) == 3


# ----------------------------------------------------------------------------------------------
# API and CLI


def test_info_takes_the_bytes_compress_returns():
    import vcodec

    data = vcodec.compress(pattern_frames(7, 16, 16), tokenizer=tiny_tokenizer(window_frames=5))
    d = vcodec.info(data)
    assert (d["frames"], d["width"], d["chunks"], d["bytes"]) == (7, 16, 2, None)
    assert vcodec.info(data, verify=True)["verify"]["ok"]


@pytest.fixture(scope="module")
def clip_vcb(model, tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("clip")
    write_clip(d / "in.mkv", width=16, height=16, num_frames=12, codec="ffv1", pix_fmt="yuv420p", audio="flac")
    r = run("encode", d / "in.mkv", "-o", d / "a.vcb", "--model", model)
    assert r.exit_code == 0, r.output
    return d / "a.vcb"


def test_encode_to_a_video_name_is_refused(model, tmp_path):
    write_clip(tmp_path / "in.mkv", width=16, height=16, num_frames=3, codec="ffv1", pix_fmt="yuv420p")
    r = run("encode", tmp_path / "in.mkv", "-o", tmp_path / "a.mp4", "--model", model)
    assert r.exit_code == 1 and "did you mean `vcodec decode`" in r.stderr
    assert not (tmp_path / "a.mp4").exists()


def test_decode_of_a_video_suggests_encode(model, tmp_path):
    write_clip(tmp_path / "in.avi", width=16, height=16, num_frames=3, codec="mjpeg", pix_fmt="yuvj420p")
    r = run("decode", tmp_path / "in.avi", "-o", tmp_path / "o.mkv", "--model", model)
    assert r.exit_code == 1 and "RIFF (AVI) video, not a .vcb; to encode it: vcodec encode" in r.stderr


@pytest.mark.parametrize("args, code", [
    (["encode", "x.mkv", "-o", "y.vcb", "--quality", "high"], 2),  # not an integer
    (["encode", "IN", "-o", "y.vcb", "--quality", "5"], 2),  # an integer the model does not offer
    (["decode"], 2),
    (["frobnicate"], 2),
])
def test_usage_errors_exit_2_in_one_style(model, tmp_path, args, code):
    write_clip(tmp_path / "in.mkv", width=16, height=16, num_frames=3, codec="ffv1", pix_fmt="yuv420p")
    args = [str(tmp_path / "in.mkv") if a == "IN" else a for a in args]
    if args[0] == "encode":
        args += ["--model", model]
    r = subprocess.run([sys.executable, "-m", "vcodec.cli", *args], capture_output=True, text=True, env=_env(),
                       cwd=tmp_path)
    assert r.returncode == code, r.stderr
    assert r.stderr.startswith("vcodec: error: ") and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "Usage:" not in r.stderr and "Traceback" not in r.stderr


def test_ctrl_c_exits_130(tmp_path):
    code = ("import vcodec.cli as c, vcodec.api as a\n"
            "def boom(*x, **k): raise KeyboardInterrupt\n"
            "a.info = boom\n"
            "c.main(['info', 'x.vcb'])\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), cwd=tmp_path)
    assert r.returncode == 130 and r.stderr.strip() == "vcodec: interrupted" and "Aborted" not in r.stderr


def test_top_level_help_does_not_import_torch():
    code = ("import sys\nfrom vcodec.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env())
    assert r.returncode == 0, r.stderr
    assert "train" in r.stdout and "Train the tokenizer" in r.stdout


def _damage(vcb: Path, dst: Path, chunk: int) -> Path:
    import bitstream

    with bitstream.VcbReader(str(vcb)) as rd:
        off = rd.index()[chunk].offset
    data = bytearray(vcb.read_bytes())
    data[off + 50] ^= 0xFF
    dst.write_bytes(bytes(data))
    return dst


def test_info_verify(clip_vcb, tmp_path):
    r = run("info", "--verify", clip_vcb)
    assert r.exit_code == 0 and "verify:      OK" in r.stdout
    bad = _damage(clip_vcb, tmp_path / "bad.vcb", 1)  # chunks of 5: frames 5-9
    r = run("info", "--verify", "--json", bad)
    v = json.loads(r.stdout)["verify"]
    assert r.exit_code == 1 and not v["ok"]
    assert (v["lost_frames"], v["gaps"], v["damaged_chunks"], v["intact_frames"]) == (5, [[5, 5]], 1, 7)
    r = run("info", "--verify", bad)
    assert "DAMAGED" in r.stdout and "frames 5-9 lost (5 frames)" in r.stdout
    data = clip_vcb.read_bytes()
    (tmp_path / "cut.vcb").write_bytes(data[: len(data) * 2 // 3])
    assert "info --verify" in run("info", tmp_path / "cut.vcb").stderr  # the hint
    r = run("info", "--verify", "--json", tmp_path / "cut.vcb")
    v = json.loads(r.stdout)["verify"]
    assert r.exit_code == 1 and v["truncated"] and v["intact_frames"] < 12


def test_salvage_keeps_timing_and_audio(clip_vcb, model, tmp_path):
    bad = _damage(clip_vcb, tmp_path / "bad.vcb", 1)
    r = run("decode", bad, "-o", tmp_path / "o.mkv", "--model", model, "--salvage")
    assert r.exit_code == 0, r.output
    assert "frames 5-9 lost (5 frames): filled with repeats" in r.stderr
    frames, info = _quiet_read(tmp_path / "o.mkv")
    assert len(frames) == 12 and (frames[5:10] == frames[4]).all()
    with av.open(str(tmp_path / "o.mkv")) as c:
        assert c.streams.audio[0].codec_context.name == "flac"
