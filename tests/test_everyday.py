"""Issue 11, the everyday codec: awkward real-world files, and what an ffmpeg/x265 user expects of the CLI.

Files are synthesised with PyAV (see :mod:`vcodec.io.synthetic`); the model is a tiny random-weight one."""

from __future__ import annotations

import hashlib
import json
import os
import re
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

def test_an_mp4_edit_list_is_not_taken_for_truncation(tmp_path):
    """An MP4 whose edit list plays fewer samples than it stores (a stream copy cut with -ss) reads without the
    "truncated or damaged file?" warning, which compared with the stored sample count."""
    write_clip(tmp_path / "full.mp4", width=32, height=16, num_frames=20, options={"bf": "2"})
    subprocess.run([_ffmpeg(), "-v", "error", "-ss", "0.3", "-i", tmp_path / "full.mp4", "-c", "copy",
                    tmp_path / "cut.mp4"], check=True)
    with av.open(str(tmp_path / "cut.mp4")) as c:
        v = c.streams.video[0]
        assert v.frames == 20 and v.duration * v.time_base * 25 < 15   # the edit list plays ~12 of 20 samples
    with warnings.catch_warnings():
        warnings.simplefilter("error", VcodecWarning)
        frames, _ = read_video(tmp_path / "cut.mp4", timing_warnings=False)
    assert 10 <= len(frames) < 20



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
    assert (d["frames"], d["width"], d["chunks"], d["bytes"]) == (7, 16, 2, len(data))
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


def test_info_of_a_photo_names_the_image_format(tmp_path):
    from PIL import Image

    frames = pattern_frames(2, 16, 24)
    Image.fromarray(frames[0]).save(tmp_path / "p.jpg")
    Image.fromarray(frames[0]).save(tmp_path / "p.webp")
    for name, kind in (("p.jpg", "JPEG image"), ("p.webp", "WebP image")):
        r = run("info", tmp_path / name)
        assert r.exit_code == 1 and f"this is a {kind}, not a .vcb" in r.stderr


def test_an_animated_webp_is_refused_in_one_line_that_says_why(model, tmp_path):
    """FFmpeg reads still WebP images but not animated ones: say so, instead of 'Invalid data found'."""
    from PIL import Image

    Image.fromarray(pattern_frames(1, 16, 24)[0]).save(tmp_path / "still.webp")
    anim = [Image.fromarray(f) for f in pattern_frames(3, 16, 24)]
    anim[0].save(tmp_path / "anim.webp", save_all=True, append_images=anim[1:], duration=40)
    r = run("encode", tmp_path / "anim.webp", "-o", tmp_path / "a.vcb", "--model", model)
    assert r.exit_code == 1 and "an animated WebP" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "a.vcb").exists()
    assert run("encode", tmp_path / "still.webp", "-o", tmp_path / "s.vcb", "--model", model).exit_code == 0


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
    assert r.exit_code == 0 and "verify:      OK" in r.stdout and "after the end-of-stream" not in r.stdout
    # bytes after the END record (junk, or a second file concatenated) are ignored, and said so
    (tmp_path / "tail.vcb").write_bytes(Path(clip_vcb).read_bytes() + bytes(100))
    r = run("info", "--verify", tmp_path / "tail.vcb")
    assert r.exit_code == 0 and "OK" in r.stdout and "100 bytes after the end-of-stream record, ignored" in r.stdout
    assert json.loads(run("info", "--verify", "--json", tmp_path / "tail.vcb").stdout)["verify"]["trailing_bytes"] == 100
    # one keyframe period of chunks of 5 + 4 + 3 frames: damage in chunk 1 (frames 5-8) takes chunk 2, which
    # continues it, along
    bad = _damage(clip_vcb, tmp_path / "bad.vcb", 1)
    r = run("info", "--verify", "--json", bad)
    v = json.loads(r.stdout)["verify"]
    assert r.exit_code == 1 and not v["ok"]
    assert (v["lost_frames"], v["gaps"], v["damaged_chunks"], v["intact_frames"]) == (7, [[5, 7]], 2, 5)
    r = run("info", "--verify", bad)
    assert "DAMAGED" in r.stdout and "frames 5-11 lost (7 frames)" in r.stdout
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
    assert "frames 5-11 lost (7 frames): filled with repeats" in r.stderr  # chunk 1 and chunk 2, which continues it
    frames, info = _quiet_read(tmp_path / "o.mkv")
    assert len(frames) == 12 and (frames[5:12] == frames[4]).all()
    with av.open(str(tmp_path / "o.mkv")) as c:
        assert c.streams.audio[0].codec_context.name == "flac"


# ----------------------------------------------------------------------------------------------
# compare, encode --psnr


def _distorted(tmp_path, n=6, h=32, w=48) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    ref = pattern_frames(n, h, w)
    noise = np.random.default_rng(0).integers(-6, 7, ref.shape)
    dist = np.clip(ref.astype(int) + noise, 0, 255).astype(np.uint8)
    dist[2] = ref[2]  # one identical frame: infinite PSNR
    write_video(tmp_path / "ref.mkv", ref, 25)
    write_video(tmp_path / "dist.mkv", dist, 25)
    return tmp_path / "ref.mkv", tmp_path / "dist.mkv", ref, dist


def test_compare_per_frame_and_means(tmp_path):
    from vcodec import metrics

    ref_p, dist_p, ref, dist = _distorted(tmp_path)
    r = run("compare", ref_p, dist_p, "--json", "--csv", tmp_path / "pf.csv")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    pf = d["per_frame"]
    assert d["frames"] == 6 and pf["psnr_y"][2] == metrics.PSNR_CAP_DB  # identical frame: the metric's cap
    assert pf["psnr_y"][0] == pytest.approx(metrics.psnr_y_bt709_limited(ref[:1], dist[:1]))
    assert pf["ms_ssim"][1] == pytest.approx(metrics.ms_ssim_rgb(ref[1:2], dist[1:2])[0])
    m = d["mean"]
    assert m["psnr_y"] == pytest.approx(np.mean(pf["psnr_y"]))   # per-frame mean, capped frames included
    from vcodec.colour import rgb_to_y
    mses = [np.mean((rgb_to_y(ref[i:i + 1]).astype(float) - rgb_to_y(dist[i:i + 1])) ** 2) for i in range(6)]
    assert m["psnr_y_global"] == pytest.approx(10 * np.log10(255 ** 2 / np.mean(mses)), abs=1e-6)
    rows = (tmp_path / "pf.csv").read_text().splitlines()
    assert rows[0] == "frame,psnr_y,psnr_yuv,ms_ssim" and len(rows) == 7 and rows[3].startswith("2,100.0")
    text = run("compare", ref_p, dist_p).stdout
    assert "per-frame mean" in text and "global" in text and "6 frames" in text
    # an existing CSV (or an input named as the CSV) is kept without -y, before any measuring
    (tmp_path / "keep.csv").write_text("mine")
    r = run("compare", ref_p, dist_p, "--csv", tmp_path / "keep.csv")
    assert r.exit_code == 1 and "keep.csv already exists (use -y to replace it)" in r.stderr
    assert (tmp_path / "keep.csv").read_text() == "mine"
    assert run("compare", ref_p, dist_p, "--csv", dist_p, "-y").exit_code == 1 and dist_p.stat().st_size > 100
    assert run("compare", ref_p, dist_p, "--csv", tmp_path / "keep.csv", "-y").exit_code == 0
    assert (tmp_path / "keep.csv").read_text().startswith("frame,")


def test_compare_says_when_chroma_is_identical(tmp_path):
    """A gray source decoded gray has identical chroma: its PSNR-U and -V sit at the 100 dB cap and lift PSNR-YUV
    far above PSNR-Y; compare says so (and says nothing for a colour video)."""
    ref_p, dist_p, ref, dist = _distorted(tmp_path)
    d = json.loads(run("compare", ref_p, dist_p, "--json").stdout)
    assert d["mean"]["chroma_exact"] is False and "chroma identical" not in run("compare", ref_p, dist_p).stdout
    gray_ref, gray_dist = (np.repeat(v[..., :1], 3, axis=-1) for v in (ref, dist))
    write_video(tmp_path / "gref.mkv", gray_ref, 25)
    write_video(tmp_path / "gdist.mkv", gray_dist, 25)
    d = json.loads(run("compare", tmp_path / "gref.mkv", tmp_path / "gdist.mkv", "--json").stdout)
    assert d["mean"]["chroma_exact"] is True and d["mean"]["psnr_yuv"] > d["mean"]["psnr_y"] + 5
    assert "chroma identical to the reference" in run("compare", tmp_path / "gref.mkv", tmp_path / "gdist.mkv").stdout


def test_compare_warns_when_dist_is_longer_than_the_range(tmp_path):
    ref_p, dist_p, _, _ = _distorted(tmp_path)   # 6 frames each at 25 fps
    r = run("compare", ref_p, dist_p, "--start", "0.04", "--frames", "2")
    assert r.exit_code == 0 and "dist.mkv has about 6 frames, more than the 2 of the range" in r.stderr
    r = run("compare", ref_p, dist_p, "--frames", "2")   # from the start: both begin at frame 0, nothing to say
    assert r.exit_code == 0 and "warning" not in r.stderr


def test_compare_and_encode_psnr_take_odd_sizes(model, tmp_path):
    """Odd widths and heights (a 17x9 clip) are measured, not refused: PSNR-YUV's chroma is that of yuv420p."""
    ref_p, dist_p, _, _ = _distorted(tmp_path, n=3, h=9, w=17)
    r = run("compare", ref_p, dist_p, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["frames"] == 3
    r = run("encode", ref_p, "-o", tmp_path / "odd.vcb", "--model", model, "--psnr", "--json")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "odd.vcb").exists()


def test_compare_refuses_different_videos(tmp_path):
    write_video(tmp_path / "a.mkv", pattern_frames(5, 16, 16), 25)
    write_video(tmp_path / "b.mkv", pattern_frames(4, 16, 16), 25)
    write_video(tmp_path / "c.mkv", pattern_frames(5, 16, 24), 25)
    r = run("compare", tmp_path / "a.mkv", tmp_path / "b.mkv")
    assert r.exit_code == 1 and "has 5 frames but" in r.stderr and "has 4" in r.stderr
    r = run("compare", tmp_path / "a.mkv", tmp_path / "c.mkv")
    assert r.exit_code == 1 and "is 24x16 but" in r.stderr


def test_compare_a_range_of_ref_against_a_part(tmp_path):
    """--start/--frames/--duration pick REF's frames that DIST holds (e.g. a range decode): REF from --start
    against DIST from its first frame."""
    from vcodec import metrics

    ref = pattern_frames(10, 32, 48)
    part = np.clip(ref[3:8].astype(int) + np.random.default_rng(1).integers(-5, 6, ref[3:8].shape), 0, 255).astype(np.uint8)
    write_video(tmp_path / "ref.mkv", ref, 25)
    write_video(tmp_path / "part.mkv", part, 25)
    for extra in (["--frames", "5"], ["--duration", "0.2"]):
        r = run("compare", tmp_path / "ref.mkv", tmp_path / "part.mkv", "--start", "0.12", *extra, "--json")
        assert r.exit_code == 0, r.output
        d = json.loads(r.stdout)
        assert d["frames"] == 5 and d["ref_start_frame"] == 3
        assert d["per_frame"]["psnr_y"][1] == pytest.approx(metrics.psnr_y_bt709_limited(ref[4:5], part[4 - 3:5 - 3]))
    r = run("compare", tmp_path / "ref.mkv", tmp_path / "part.mkv", "--start", "0.12")  # REF has 7 from there
    assert r.exit_code == 1 and "has 7 frames from frame 3 but" in r.stderr and "has 5" in r.stderr
    r = run("compare", tmp_path / "ref.mkv", tmp_path / "part.mkv", "--frames", "2", "--duration", "1")
    assert r.exit_code != 0 and "not both" in r.stderr


def test_compare_vmaf_or_says_unavailable(tmp_path):
    write_video(tmp_path / "a.mkv", pattern_frames(3, 144, 176), 25)
    r = run("compare", tmp_path / "a.mkv", tmp_path / "a.mkv", "--vmaf", "--json")
    v = json.loads(r.stdout)["vmaf"]
    if v["available"]:
        assert v["mean"] > 95 and len(v["per_frame"]) == 3
    else:
        assert v["reason"]
    assert "VMAF" in run("compare", tmp_path / "a.mkv", tmp_path / "a.mkv", "--vmaf").stdout


def test_encode_psnr_is_what_decode_gives(model, tmp_path):
    write_clip(tmp_path / "in.mkv", width=24, height=16, num_frames=7, codec="ffv1", pix_fmt="yuv444p")
    r = run("encode", tmp_path / "in.mkv", "-o", tmp_path / "a.vcb", "--model", model, "--psnr", "--json")
    q = json.loads(r.stdout)["quality_metrics"]
    assert run("decode", tmp_path / "a.vcb", "-o", tmp_path / "o.mkv", "--model", model).exit_code == 0
    d = json.loads(run("compare", tmp_path / "in.mkv", tmp_path / "o.mkv", "--json").stdout)["mean"]
    for k in ("psnr_y", "psnr_y_global", "psnr_yuv", "ms_ssim"):
        assert q[k] == pytest.approx(d[k], abs=1e-9), k
    r = run("encode", tmp_path / "in.mkv", "-o", tmp_path / "b.vcb", "--model", model, "--psnr")
    assert "quality: PSNR-Y" in r.stderr and "per-frame mean" in r.stderr


# ----------------------------------------------------------------------------------------------
# default output names, units, threads


def test_default_output_names_and_no_overwrite(model, tmp_path):
    write_clip(tmp_path / "clip.mp4", width=16, height=16, num_frames=3)
    assert run("encode", tmp_path / "clip.mp4", "--model", model).exit_code == 0
    assert (tmp_path / "clip.vcb").exists()
    assert run("decode", tmp_path / "clip.vcb", "--model", model).exit_code == 0
    assert len(_quiet_read(tmp_path / "clip.mkv")[0]) == 3
    before = _sha(tmp_path / "clip.vcb")
    r = run("encode", tmp_path / "clip.mp4", "--model", model)
    assert r.exit_code == 1 and "already exists" in r.stderr and _sha(tmp_path / "clip.vcb") == before
    assert run("encode", tmp_path / "clip.mp4", "--model", model, "-y").exit_code == 0
    r = run("encode", "-", "--model", model, input=b"")
    assert r.exit_code == 2 and "-o is required" in r.stderr


def test_an_mp4_with_its_index_at_the_end_from_a_pipe_is_told_what_to_do(model, tmp_path):
    # noise, lossless: larger than FFmpeg's read buffer, so the demuxer cannot go back from the index to the media
    rng = np.random.default_rng(0)
    with av.open(str(tmp_path / "late.mp4"), "w") as c:
        v = c.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt, v.options = 96, 96, "yuv420p", {"qp": "0"}
        for _ in range(12):
            c.mux(v.encode(av.VideoFrame.from_ndarray(rng.integers(0, 256, (96, 96, 3), np.uint8), format="rgb24")))
        c.mux(v.encode())
    assert (tmp_path / "late.mp4").stat().st_size > 100_000
    r = subprocess.run([sys.executable, "-m", "vcodec.cli", "encode", "-", "-o", str(tmp_path / "a.vcb"),
                        "--model", model], input=(tmp_path / "late.mp4").read_bytes(), capture_output=True,
                       env=_env(), timeout=120)
    err = r.stderr.decode()
    assert r.returncode == 1 and len(err.strip().splitlines()) == 1, err
    assert "cannot be read from a pipe: give its path" in err and "+faststart" in err
    assert not (tmp_path / "a.vcb").exists()
    assert run("encode", tmp_path / "late.mp4", "-o", tmp_path / "a.vcb", "--model", model).exit_code == 0


def test_human_units_in_summaries(model, tmp_path):
    write_clip(tmp_path / "one.mkv", width=16, height=16, num_frames=1, codec="ffv1", pix_fmt="yuv420p",
               rate=Fraction(30000, 1001), audio="aac")
    r = run("encode", tmp_path / "one.mkv", "-o", tmp_path / "one.vcb", "--model", model)
    assert " 1 frame " in r.stderr and not re.search(r"(?<![\d.])1 frames", r.stderr)  # not "77.1 frames/s"
    assert "30000/1001 (29.97) fps" in r.stderr and " kB" in r.stderr and "kbit/s" in r.stderr
    assert "audio " in r.stderr
    out = run("info", tmp_path / "one.vcb").stdout
    assert "1 frame (" in out and "1 chunk," in out and "video " in out and "kbit/s" in out
    assert "48000 Hz" in out and "audio:" in out


def test_threads_option_sets_torch_threads(model, tmp_path):
    import torch

    before = torch.get_num_threads()
    write_clip(tmp_path / "in.mkv", width=16, height=16, num_frames=2, codec="ffv1", pix_fmt="yuv420p")
    try:
        torch.set_num_threads(2)
        assert run("encode", tmp_path / "in.mkv", "-o", tmp_path / "a.vcb", "--model", model,
                   "--threads", "1").exit_code == 0
        assert torch.get_num_threads() == 1
        torch.set_num_threads(2)
        assert run("decode", tmp_path / "a.vcb", "-o", tmp_path / "o.y4m", "--model", model,
                   "--threads", "1").exit_code == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    assert run("encode", tmp_path / "in.mkv", "-o", tmp_path / "b.vcb", "--threads", "0").exit_code == 2
    assert run("bench", "--threads", "x").exit_code == 2


# ----------------------------------------------------------------------------------------------
# frame ranges


def test_encode_range_codes_just_those_frames(model, tmp_path):
    import vcodec
    from vcodec.tokenizer import Tokenizer

    src = tmp_path / "in.mkv"
    write_clip(src, width=16, height=16, num_frames=20, codec="ffv1", pix_fmt="yuv444p", audio="flac")
    frames, _ = _quiet_read(src)  # as vcodec reads them
    r = run("encode", src, "-o", tmp_path / "a.vcb", "--model", model, "--start", "0.2", "--frames", "7", "--json")
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["frames"] == 7 and res["start_frame"] == 5 and res["keyint"] == 129
    tok = Tokenizer.load(model)
    want = vcodec.decompress(vcodec.compress(frames[5:12], tokenizer=tok), tokenizer=tok)
    assert run("decode", tmp_path / "a.vcb", "-o", tmp_path / "o.mkv", "--model", model).exit_code == 0
    got, _ = _quiet_read(tmp_path / "o.mkv")
    assert np.array_equal(got, want)
    with av.open(str(tmp_path / "o.mkv")) as c:  # audio cut to the range (packet boundaries)
        a = c.streams.audio[0]
        secs = sum(f.samples for f in c.decode(a)) / a.sample_rate
    assert 7 / 25 - 0.05 <= secs <= 7 / 25 + 0.1
    r = run("encode", src, "-o", tmp_path / "b.vcb", "--model", model, "--start", "0:00.4", "--duration", "0.2",
            "--json")
    assert json.loads(r.stdout)["frames"] == 5
    r = run("encode", src, "-o", tmp_path / "c.vcb", "--model", model, "--start", "5")
    assert r.exit_code == 1 and "no frames in the range" in r.stderr
    # a range longer than what is left is cut short, with a word
    r = run("encode", src, "-o", tmp_path / "d.vcb", "--model", model, "--start", "0.4", "--frames", "100", "--json")
    assert r.exit_code == 0 and "ends 10 frames into the range of 100 frames asked for" in r.stderr
    assert json.loads(r.stdout)["frames"] == 10
    r = run("decode", tmp_path / "d.vcb", "-o", tmp_path / "d.mkv", "--model", model, "--frames", "12")
    assert r.exit_code == 0 and "the stream ends 10 frames into the range of 12 frames asked for" in r.stderr


def test_decode_range_decodes_only_the_chunks_it_needs(model, tmp_path, monkeypatch):
    from vcodec.tokenizer import Tokenizer

    src = tmp_path / "in.mkv"
    write_clip(src, width=16, height=16, num_frames=22, codec="ffv1", pix_fmt="yuv420p", audio="aac")
    assert run("encode", src, "-o", tmp_path / "a.vcb", "--model", model).exit_code == 0  # chunks 5 4 4 4 4 1
    assert run("decode", tmp_path / "a.vcb", "-o", tmp_path / "all.mkv", "--model", model).exit_code == 0
    full, _ = _quiet_read(tmp_path / "all.mkv")
    calls = []
    real = Tokenizer.decode_window
    monkeypatch.setattr(Tokenizer, "decode_window", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    r = run("decode", tmp_path / "a.vcb", "-o", tmp_path / "part.mkv", "--model", model, "--start", "0.28",
            "--frames", "4")  # frames 7..10: chunks 1 and 2, which continue chunk 0 (decoded for its state)
    assert r.exit_code == 0, r.output
    assert len(calls) == 3
    part, info = _quiet_read(tmp_path / "part.mkv")
    assert np.array_equal(part, full[7:11]) and info.frame_rate == 25
    with av.open(str(tmp_path / "part.mkv")) as c:
        assert c.streams.audio and c.streams.audio[0].codec_context.name == "aac"
    with open(tmp_path / "a.vcb", "rb") as f:  # from a pipe: decoded from the start, same frames
        r = run("decode", "-", "-o", tmp_path / "pipe.mkv", "--model", model, "--start", "0.28", "--frames", "4",
                input=f.read())
    assert r.exit_code == 0, r.output
    assert np.array_equal(_quiet_read(tmp_path / "pipe.mkv")[0], full[7:11])


# ----------------------------------------------------------------------------------------------
# awkward real-world files round-trip to every output format


def _theora(path):
    exe = _ffmpeg()
    r = subprocess.run([exe, "-v", "error", "-f", "lavfi", "-i", "testsrc=size=46x30:rate=25", "-frames:v", "7",
                        "-c:v", "libtheora", "-pix_fmt", "yuv420p", str(path)], capture_output=True)
    if r.returncode:
        pytest.skip("this ffmpeg cannot write Theora")


AWKWARD = {  # name -> (file, how to make it, (frames, width, height, rate, sar, audio?))
    "theora_no_avg_rate": ("t.ogv", _theora, (7, 46, 30, Fraction(25), None, False)),
    "mjpeg_avi_11khz_pcm": ("m.avi", lambda p: write_clip(
        p, width=32, height=24, num_frames=10, codec="mjpeg", pix_fmt="yuvj420p", audio="pcm_u8", audio_rate=11024),
        (10, 32, 24, Fraction(25), None, True)),
    "vp9_odd_fps_opus": ("v.webm", lambda p: write_clip(
        p, width=24, height=16, num_frames=9, codec="libvpx-vp9", pix_fmt="yuv420p", rate=Fraction(24000, 1001),
        audio="libopus"), (9, 24, 16, Fraction(24000, 1001), None, True)),
    "mp4_aac_sar": ("a.mp4", lambda p: write_clip(
        p, width=30, height=24, num_frames=8, audio="aac", sample_aspect_ratio=Fraction(16, 15)),
        (8, 30, 24, Fraction(25), Fraction(16, 15), True)),
    "avi_16_frames": ("s.avi", lambda p: write_clip(p, width=32, height=16, num_frames=16, codec="mpeg4"),
                      (16, 32, 16, Fraction(25), None, False)),
}


@pytest.fixture(scope="module")
def tok5():
    return tiny_tokenizer(window_frames=5)


@pytest.mark.parametrize("name", sorted(AWKWARD))
def test_awkward_files_round_trip_to_every_output(tok5, tmp_path, name):
    import vcodec

    fname, make, (n, w, h, rate, sar, audio) = AWKWARD[name]
    make(tmp_path / fname)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VcodecWarning)
        vcodec.encode_video(tmp_path / fname, tmp_path / "a.vcb", tokenizer=tok5)
        for ext in ("y4m", "mkv", "mp4", "webm", "png"):
            out = tmp_path / ("o_%03d.png" if ext == "png" else f"o.{ext}")
            res = vcodec.decode_video(tmp_path / "a.vcb", out, tokenizer=tok5)
            frames, info = read_video(out)
            assert frames.shape == (n, h, w, 3) and res.frames == n, (ext, frames.shape)
            if ext != "png":
                assert info.frame_rate == rate, ext
            if ext != "png":
                assert info.sample_aspect_ratio == sar, ext
            if ext in ("mkv", "mp4", "webm"):
                with av.open(str(out)) as c:
                    assert len(c.streams.audio) == int(audio), ext
                    if audio:
                        a = c.streams.audio[0]
                        secs = sum(f.samples for f in c.decode(a)) / a.sample_rate
                        # re-encoded (AAC/Opus) audio adds encoder priming and pads its last frame
                        assert abs(secs - n / rate) < 0.05 + 2048 / a.sample_rate, (ext, secs)


def test_png_sequence_output_is_all_or_nothing(clip_vcb, model, tmp_path):
    pat = tmp_path / "f_%03d.png"
    r = run("decode", clip_vcb, "-o", pat, "--model", model)
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"f_{i:03d}.png" for i in range(1, 13)]
    r = run("decode", clip_vcb, "-o", pat, "--model", model)  # the sequence exists: refused without -y
    assert r.exit_code == 1 and "f_001.png already exists" in r.stderr
    (tmp_path / "f_013.png").write_bytes(b"stale")  # -y replaces the whole sequence
    (tmp_path / "f_040.png").write_bytes(b"stale")  # past a gap too
    assert run("decode", clip_vcb, "-o", pat, "--model", model, "-y").exit_code == 0
    assert len(list(tmp_path.iterdir())) == 12 and len(_quiet_read(pat)[0]) == 12
    for i in (1, 2):  # a sequence whose first files are gone is still refused, at the first file it has
        (tmp_path / f"f_{i:03d}.png").unlink()
    r = run("decode", clip_vcb, "-o", pat, "--model", model)
    assert r.exit_code == 1 and "f_003.png already exists (use -y to replace the sequence)" in r.stderr


def test_a_frame_number_pattern_in_any_other_output_name_is_part_of_one_files_name(clip_vcb, model, tmp_path):
    """Only a .png output is a sequence: a %d in a .vcb, .mkv or .y4m name is written as that name (it used to
    report success and leave nothing); an image-sequence input's default output drops the pattern."""
    vcb = tmp_path / "o_%03d.vcb"
    r = run("encode", tmp_path / "seq" / "f_%03d.png", "-o", vcb, "--model", model)
    assert r.exit_code == 1 and "no such files" in r.stderr  # (no sequence yet)
    (tmp_path / "seq").mkdir()
    assert run("decode", clip_vcb, "-o", tmp_path / "seq" / "f_%03d.png", "--model", model).exit_code == 0
    r = run("encode", tmp_path / "seq" / "f_%03d.png", "-o", vcb, "--model", model, "--json")
    assert r.exit_code == 0, r.output
    assert vcb.is_file() and json.loads(r.stdout)["bytes"] == vcb.stat().st_size > 0
    for ext in ("mkv", "y4m"):
        out = tmp_path / f"d_%03d.{ext}"
        assert run("decode", vcb, "-o", out, "--model", model).exit_code == 0
        assert len(_quiet_read(out)[0]) == 12
    assert run("encode", tmp_path / "seq" / "f_%03d.png", "--model", model).exit_code == 0
    assert (tmp_path / "seq" / "f.vcb").is_file()
    assert run("decode", vcb, "--model", model).exit_code == 0  # a file of that name: the name kept
    assert (tmp_path / "o_%03d.mkv").is_file()


def test_a_range_past_the_end_is_one_error_line_before_any_output(clip_vcb, model, tmp_path):
    r = run("decode", clip_vcb, "-o", tmp_path / "d.y4m", "--model", model, "--start", "2")
    assert r.exit_code == 1 and r.stderr.strip().splitlines() == [
        f"vcodec: error: {clip_vcb}: no frames in the range asked for (the stream has 12 frames)"]
    assert list(tmp_path.iterdir()) == []


def test_trim_audio_keeps_the_packets_of_the_range():
    from vcodec.io.audio import AudioPacket, trim_audio

    class T:
        time_base = Fraction(1, 1000)

    pk = [AudioPacket(track=0, data=b"x", pts=t, dts=t, duration=d, keyframe=True)
          for t, d in ((0, 100), (100, 100), (200, 100), (300, 100), (350, 0), (150, 0))]
    got = trim_audio(pk, [T], Fraction(1, 10), Fraction(3, 10))  # 0.1 s .. 0.3 s
    assert [(p.pts, p.duration) for p in got] == [(0, 100), (100, 100), (50, 0)]
    assert trim_audio(pk, [T], Fraction(0), None) == pk


def test_a_photo_decodes_to_a_plain_png_name_and_a_video_is_told_to_use_a_pattern(model, tmp_path):
    from PIL import Image

    Image.fromarray(pattern_frames(1, 16, 24)[0]).save(tmp_path / "photo.jpg")
    assert run("encode", tmp_path / "photo.jpg", "-o", tmp_path / "p.vcb", "--model", model).exit_code == 0
    r = run("decode", tmp_path / "p.vcb", "-o", tmp_path / "back.png", "--model", model)
    assert r.exit_code == 0 and read_video(tmp_path / "back.png")[0].shape == (1, 16, 24, 3)
    write_clip(tmp_path / "v.mkv", width=16, height=16, num_frames=3, codec="ffv1", pix_fmt="yuv420p")
    assert run("encode", tmp_path / "v.mkv", "-o", tmp_path / "v.vcb", "--model", model).exit_code == 0
    r = run("decode", tmp_path / "v.vcb", "-o", tmp_path / "v.png", "--model", model)
    assert r.exit_code == 1 and "this video has 3 frames; name it with a pattern" in r.stderr
    assert not (tmp_path / "v.png").exists()
    assert run("decode", tmp_path / "v.vcb", "-o", tmp_path / "f1.png", "--frames", "1", "--model", model).exit_code == 0
