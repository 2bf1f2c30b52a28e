"""End-to-end tests of the ``vcodec`` CLI: click's CliRunner in-process, and real subprocesses for pipes, exit
codes and thread counts. A tiny random-weight model (saved as a checkpoint, passed with --model) keeps them cheap;
the shipped sample clip is the real-video case."""

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

import vcodec
from vcodec.cli import main
from vcodec.errors import VcodecWarning
from vcodec.io import read_video
from vcodec.io.synthetic import write_clip, write_y4m_header_only
from vcodec.testing import save_tokenizer, tiny_tokenizer

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "vcodec" / "samples" / "bikes_17f.mp4"


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> str:
    """A tiny model with the default model's 17-frame window."""
    return save_tokenizer(tiny_tokenizer(window_frames=17), tmp_path_factory.mktemp("model") / "tiny17.pt")


@pytest.fixture(scope="module")
def sample_vcb(model, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sample") / "bikes.vcb"
    r = run("encode", str(SAMPLE), "-o", str(out), "--model", model, "--device", "cpu")
    assert r.exit_code == 0, r.output
    return out


def run(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input, catch_exceptions=True)


def _read(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VcodecWarning)
        return read_video(path)


def _sha(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _audio(path) -> list[bytes]:
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size]


def _error_line(r) -> str:
    """The single ``vcodec: error:`` line of a failed run (and check there is no traceback)."""
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("vcodec: error:")]
    assert len(errors) == 1, r.stderr
    assert r.stderr.rstrip("\n").endswith(errors[0])
    return errors[0]


def _env(threads: int = 1) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONPATH=str(ROOT))
    env.pop("VCODEC_DEBUG", None)
    return env


def _cli(*args) -> list[str]:
    return [sys.executable, "-m", "vcodec.cli", *map(str, args)]


# --------------------------------------------------------------------------------------------------
# the real sample clip into every container


@pytest.mark.slow
@pytest.mark.parametrize("ext", ["y4m", "mkv", "mp4", "-"])
def test_sample_clip_round_trip(sample_vcb, model, tmp_path, ext):
    decoded = vcodec.decompress(sample_vcb.read_bytes(), model=model, device="cpu")
    out = tmp_path / f"out.{ext}" if ext != "-" else tmp_path / "stdout.y4m"
    r = run("decode", "--model", model, sample_vcb, "-o", out if ext != "-" else "-")
    assert r.exit_code == 0, r.output
    if ext == "-":
        out.write_bytes(r.stdout_bytes)
    frames, info = _read(out)
    assert frames.shape == (17, 272, 640, 3) and info.frame_rate == 25
    if ext == "mp4":  # a lossy re-encode (of the random model's noisy output here): frame i is closest to frame i
        err = np.array([[np.mean((a.astype(float) - b) ** 2) for b in decoded] for a in frames])
        assert (err.argmin(axis=1) == np.arange(17)).all()
    else:
        np.testing.assert_array_equal(frames, decoded)  # y4m (C444p16) and FFV1 are exact


@pytest.mark.slow
def test_encode_json_summary_and_no_bar(model, tmp_path):
    r = run("encode", SAMPLE, "-o", tmp_path / "a.vcb", "--model", model, "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    for key in ("frames", "bytes", "bpp", "seconds", "fps", "model", "quality"):
        assert key in d
    assert d["frames"] == 17 and d["bytes"] == (tmp_path / "a.vcb").stat().st_size
    assert d["bpp"] == pytest.approx(d["bytes"] * 8 / (17 * 640 * 272))
    assert "frame/s" not in r.stderr
    r = run("decode", "--model", model, tmp_path / "a.vcb", "-o", tmp_path / "a.mp4", "--json")
    d = json.loads(r.stdout)
    assert d["lossy"] is True and d["codec"] == "h264" and d["frames"] == 17


def test_progress_on_stderr_as_plain_lines_when_it_is_not_a_terminal(model, tmp_path, monkeypatch):
    """A log gets plain progress lines (at most one every LOG_PROGRESS_S seconds: none for a short run, so a failing
    one leaves its error line alone), never a terminal's carriage returns."""
    from vcodec import api
    monkeypatch.setattr(api, "LOG_PROGRESS_S", 1e9)
    r = run("encode", SAMPLE, "-o", tmp_path / "a.vcb", "--model", model)
    assert r.exit_code == 0 and "frame/s" not in r.stderr and "\r" not in r.stderr and r.stdout == ""
    monkeypatch.setattr(api, "LOG_PROGRESS_S", 0.0)
    r = run("encode", SAMPLE, "-o", tmp_path / "b.vcb", "--model", model)
    lines = [line for line in r.stderr.splitlines() if line.startswith("encode: ")]
    assert r.exit_code == 0 and "\r" not in r.stderr and lines and lines[-1].startswith("encode: 17/17 frames (100%), ")


def test_info_and_models(sample_vcb):
    r = run("info", sample_vcb, "--json")
    d = json.loads(r.stdout)
    assert (d["frames"], d["width"], d["height"], d["frame_rate"], d["chunks"]) == (17, 640, 272, "25/1", 1)
    r = run("info", sample_vcb)
    assert r.exit_code == 0 and "640x272" in r.stdout
    r = run("models", "--json")
    assert r.exit_code == 0 and isinstance(json.loads(r.stdout), list)


# --------------------------------------------------------------------------------------------------
# any size, any length, exact rate


@pytest.mark.parametrize(
    "h, w, n",
    [(2, 2, 2), (17, 33, 2), (361, 641, 1), (17, 33, 1), (17, 33, 16), (17, 33, 17), (17, 33, 18)],
)
def test_size_count_and_rate_preserved(model, tmp_path, h, w, n):
    src = tmp_path / "in.mkv"
    write_clip(src, width=w, height=h, num_frames=n, codec="ffv1", pix_fmt="bgr0", rate=Fraction(30000, 1001))
    assert run("encode", src, "-o", tmp_path / "a.vcb", "--model", model).exit_code == 0
    ext = "y4m" if n % 2 else "mkv"
    r = run("decode", "--model", model, tmp_path / "a.vcb", "-o", tmp_path / f"out.{ext}")
    assert r.exit_code == 0, r.output
    frames, info = _read(tmp_path / f"out.{ext}")
    assert frames.shape == (n, h, w, 3) and info.frame_rate == Fraction(30000, 1001)


def test_audio_preserved(model, tmp_path):
    src = tmp_path / "in.mkv"
    write_clip(src, width=32, height=16, num_frames=18, codec="ffv1", pix_fmt="yuv420p", audio="aac")
    r = run("encode", src, "-o", tmp_path / "a.vcb", "--model", model, "--json")
    assert r.exit_code == 0
    video_bpp = json.loads(r.stdout)["video_bpp"]
    rate = next(line for line in run("info", tmp_path / "a.vcb").stdout.splitlines() if line.startswith("rate:"))
    assert rate.split()[1:4] == [f"{video_bpp:.4f}", "bpp", "video"] and "bpp with the audio" in rate  # as encode
    for ext in ("mkv", "mp4"):
        assert run("decode", "--model", model, tmp_path / "a.vcb", "-o", tmp_path / f"o.{ext}").exit_code == 0
        assert _audio(tmp_path / f"o.{ext}") == _audio(src), ext
    r = run("decode", "--model", model, tmp_path / "a.vcb", "-o", tmp_path / "o.y4m")
    assert r.exit_code == 0 and "vcodec: warning:" in r.stderr and "audio" in r.stderr


def test_encoding_is_deterministic(model, tmp_path):
    src = tmp_path / "in.mkv"
    write_clip(src, width=24, height=16, num_frames=5, codec="ffv1", pix_fmt="yuv420p", audio="aac")
    for name in ("a.vcb", "b.vcb"):
        assert run("encode", src, "-o", tmp_path / name, "--model", model).exit_code == 0
    assert (tmp_path / "a.vcb").read_bytes() == (tmp_path / "b.vcb").read_bytes()


# --------------------------------------------------------------------------------------------------
# bad input: one line, exit 1, no traceback, no partial output, input untouched


def _audio_only(path):
    with av.open(str(path), "w") as c:
        a = c.add_stream("aac", rate=48000)
        a.layout = "stereo"
        f = av.AudioFrame.from_ndarray(np.zeros((2, 1024), np.float32), format="fltp", layout="stereo")
        f.sample_rate, f.pts = 48000, 0
        c.mux(a.encode(f))
        c.mux(a.encode())


@pytest.mark.parametrize(
    "kind, match",
    [
        ("missing", "no such file"),
        ("text", "not a video file"),
        ("zero_frames", "no video frames"),
        ("audio_only", "audio only"),
        ("directory", "is a directory"),
    ],
)
def test_encode_bad_inputs(model, tmp_path, kind, match):
    src = {"audio_only": tmp_path / "in.m4a", "zero_frames": tmp_path / "in.y4m"}.get(kind, tmp_path / "in.mp4")
    if kind == "text":
        src.write_text("this is not a video\n" * 50)
    elif kind == "zero_frames":
        write_y4m_header_only(src)
    elif kind == "audio_only":
        _audio_only(src)
    elif kind == "directory":
        src.mkdir()
    before = sorted(os.listdir(tmp_path))
    digest = _sha(src) if src.is_file() else None
    line = _error_line(run("encode", src, "-o", tmp_path / "out.vcb", "--model", model))
    assert match in line and str(src) in line
    assert sorted(os.listdir(tmp_path)) == before  # no output, no temporary file left behind
    if digest:
        assert _sha(src) == digest


def _damaged(sample_vcb, tmp_path, how) -> Path:
    data = bytearray(sample_vcb.read_bytes())
    path = tmp_path / f"{how}.vcb"
    if how == "truncated":
        data = data[: len(data) * 2 // 3]
    else:  # flip a byte in the middle of chunk 0's payload
        data[len(data) // 2] ^= 0x55
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("how, match", [("corrupt", "chunk 0"), ("truncated", "truncated")])
def test_decode_damaged_vcb(sample_vcb, model, tmp_path, how, match):
    bad = _damaged(sample_vcb, tmp_path, how)
    digest = _sha(bad)
    line = _error_line(run("decode", "--model", model, bad, "-o", tmp_path / "out.mkv"))
    assert match in line and "--salvage" in line and bad.name in line
    assert not (tmp_path / "out.mkv").exists() and _sha(bad) == digest
    assert sorted(os.listdir(tmp_path)) == [bad.name]


def test_salvage_decodes_the_intact_chunks(model, tmp_path):
    src = tmp_path / "in.mkv"
    write_clip(src, width=16, height=16, num_frames=40, codec="ffv1", pix_fmt="yuv420p")  # chunks 17+17+6
    assert run("encode", src, "-o", tmp_path / "a.vcb", "--model", model, "--keyint", "17").exit_code == 0
    import bitstream

    offsets = [e.offset for e in bitstream.VcbReader(str(tmp_path / "a.vcb")).index()]
    data = bytearray((tmp_path / "a.vcb").read_bytes())
    data[offsets[1] + 60] ^= 0xFF
    (tmp_path / "b.vcb").write_bytes(bytes(data))
    line = _error_line(run("decode", "--model", model, tmp_path / "b.vcb", "-o", tmp_path / "o.mkv"))
    assert "chunk 1" in line
    r = run("decode", "--model", model, tmp_path / "b.vcb", "-o", tmp_path / "o.mkv", "--salvage", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["frames"] == 40 and "vcodec: warning:" in r.stderr and "chunk 1" in r.stderr
    assert "frames 17-33 lost (17 frames): filled with repeats of the last intact frame" in r.stderr
    r = run("info", tmp_path / "b.vcb", "--verify")
    assert r.exit_code == 1 and "--salvage` decodes the intact chunks" in r.stdout
    one = tmp_path / "one.vcb"                       # a one-chunk stream with its chunk damaged: nothing to salvage
    assert run("encode", src, "-o", one, "--model", model, "--frames", "5").exit_code == 0
    data = bytearray(one.read_bytes())
    data[bitstream.VcbReader(str(one)).index()[0].offset + 60] ^= 0xFF
    one.write_bytes(bytes(data))
    r = run("info", one, "--verify")
    assert r.exit_code == 1 and "nothing can be salvaged" in r.stdout and "--salvage" not in r.stdout
    out = _read(tmp_path / "o.mkv")[0]
    assert len(out) == 40 and (out[17:34] == out[16]).all()  # later frames keep their times


def test_decode_with_unavailable_weights(tmp_path):
    path = save_tokenizer(tiny_tokenizer(seed=5), tmp_path / "gone.pt")
    src = tmp_path / "in.mkv"
    write_clip(src, width=8, height=8, num_frames=1, codec="ffv1", pix_fmt="yuv420p")
    assert run("encode", src, "-o", tmp_path / "a.vcb", "--model", path).exit_code == 0
    os.unlink(path)
    line = _error_line(run("decode", tmp_path / "a.vcb", "-o", tmp_path / "o.mkv"))
    assert "not available here" in line and "--model" in line
    assert not (tmp_path / "o.mkv").exists()


def test_decode_not_a_vcb_and_unknown_container(sample_vcb, tmp_path):
    assert "not a VCB stream" in _error_line(run("decode", SAMPLE, "-o", tmp_path / "o.mkv"))
    assert "unknown output format" in _error_line(run("decode", sample_vcb, "-o", tmp_path / "o.avi"))
    assert "no such file" in _error_line(run("decode", tmp_path / "nope.vcb", "-o", tmp_path / "o.mkv"))


def test_existing_output_needs_y(sample_vcb, model, tmp_path):
    out = tmp_path / "o.mkv"
    out.write_bytes(b"precious")
    line = _error_line(run("decode", sample_vcb, "-o", out))
    assert line.endswith("o.mkv already exists (use -y to replace it)")  # the command line's remedy, not the API's
    assert out.read_bytes() == b"precious"
    assert run("decode", "--model", model, sample_vcb, "-o", out, "-y").exit_code == 0
    assert out.read_bytes() != b"precious"


def test_a_bad_input_is_reported_before_an_existing_output(sample_vcb, model, tmp_path):
    (tmp_path / "o.mkv").write_bytes(b"precious")
    (tmp_path / "o.vcb").write_bytes(b"precious")
    (tmp_path / "k.txt").write_text("hello")
    assert "not a VCB stream" in _error_line(run("decode", SAMPLE, "-o", tmp_path / "o.mkv"))
    assert "not a VCB stream" in _error_line(run("decode", tmp_path / "k.txt", "-o", tmp_path / "o.mkv"))
    assert "not a video file" in _error_line(run("encode", tmp_path / "k.txt", "-o", tmp_path / "o.vcb"))
    assert (tmp_path / "o.mkv").read_bytes() == (tmp_path / "o.vcb").read_bytes() == b"precious"


def test_no_hint_that_cannot_help_when_the_file_header_is_cut(sample_vcb, tmp_path):
    cut = tmp_path / "cut.vcb"
    cut.write_bytes(sample_vcb.read_bytes()[:10])
    line = _error_line(run("info", cut))
    assert "truncated in the file header" in line and "--verify" not in line
    assert "--salvage" not in _error_line(run("decode", cut, "-o", tmp_path / "o.mkv"))


def test_a_vcb_given_as_a_video_says_to_decode_it_first(sample_vcb, tmp_path):
    for args in (("encode", sample_vcb, "-o", tmp_path / "z.vcb"), ("compare", SAMPLE, sample_vcb)):
        line = _error_line(run(*args))
        assert "it is a .vcb stream: decode it first" in line and f"vcodec decode {sample_vcb}" in line


def test_decode_into_a_character_device(sample_vcb, model):
    r = run("decode", "--model", model, sample_vcb, "-o", os.devnull)    # no extension: y4m, written straight in
    assert r.exit_code == 0, r.output
    import pty
    leader, follower = pty.openpty()                                      # but never binary video onto a terminal
    try:
        line = _error_line(run("decode", "--model", model, sample_vcb, "-o", os.ttyname(follower)))
        assert "refusing to write video to a terminal" in line
    finally:
        os.close(leader)
        os.close(follower)


def test_unwritable_destinations(sample_vcb, model, tmp_path):
    assert "does not exist" in _error_line(run("decode", sample_vcb, "-o", tmp_path / "no" / "o.mkv"))
    line = _error_line(run("encode", SAMPLE, "-o", f"{tmp_path / 'newdir'}{os.sep}"))
    assert "newdir/: directory" in line and "does not exist" in line
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    assert "is not a directory" in _error_line(run("encode", SAMPLE, "-o", f"{blocker}{os.sep}"))
    assert "not a directory" in _error_line(run("decode", sample_vcb, "-o", blocker / "o.mkv"))
    digest = _sha(SAMPLE)
    assert "is the input" in _error_line(run("encode", SAMPLE, "-o", SAMPLE, "-y"))
    assert _sha(SAMPLE) == digest
    if os.geteuid() != 0:  # root can write anywhere
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        assert "cannot write" in _error_line(run("decode", "--model", model, sample_vcb, "-o", ro / "o.mkv"))


def test_usage_error_exit_code():
    r = run("encode")  # no INPUT
    assert r.exit_code == 2 and "Missing argument" in r.output and r.stderr.startswith("vcodec: error:")


# --------------------------------------------------------------------------------------------------
# real processes: pipes, exit status, thread counts


@pytest.mark.slow
def test_subprocess_pipeline_stdin_to_stdout(model, tmp_path):
    src = tmp_path / "in.y4m"
    vcodec.io.write_video(src, vcodec.io.synthetic.pattern_frames(5, 24, 40), Fraction(25, 2), pix_fmt="yuv420p")
    with open(src, "rb") as f:
        enc = subprocess.run(_cli("encode", "-", "-o", "-", "--model", model, "--json"), stdin=f,
                             capture_output=True, env=_env(), timeout=300)
    assert enc.returncode == 0, enc.stderr.decode()
    assert json.loads(enc.stderr.decode().strip().splitlines()[-1])["frames"] == 5  # stdout carries the .vcb
    dec = subprocess.run(_cli("decode", "--model", model, "-", "-o", "-", "--json"), input=enc.stdout,
                         capture_output=True, env=_env(), timeout=300)
    assert dec.returncode == 0, dec.stderr.decode()
    (tmp_path / "out.y4m").write_bytes(dec.stdout)
    frames, info = _read(tmp_path / "out.y4m")
    assert frames.shape == (5, 24, 40, 3) and info.frame_rate == Fraction(25, 2)


def test_subprocess_error_is_one_line(tmp_path):
    p = subprocess.run(_cli("encode", tmp_path / "missing.mp4", "-o", tmp_path / "o.vcb"), capture_output=True,
                       env=_env(), timeout=300)
    assert p.returncode == 1
    assert p.stderr.decode() == f"vcodec: error: {tmp_path / 'missing.mp4'}: no such file\n"
    assert p.stdout == b"" and not (tmp_path / "o.vcb").exists()


@pytest.mark.slow
def test_subprocess_decode_identical_across_thread_counts(model, tmp_path):
    src = tmp_path / "in.mkv"
    write_clip(src, width=40, height=24, num_frames=6, codec="ffv1", pix_fmt="yuv420p")
    assert run("encode", src, "-o", tmp_path / "a.vcb", "--model", model).exit_code == 0
    for threads in (1, 2):
        out = tmp_path / f"t{threads}.mkv"
        p = subprocess.run(_cli("decode", "--model", model, tmp_path / "a.vcb", "-o", out, "--json"),
                           capture_output=True, env=_env(threads), timeout=300)
        assert p.returncode == 0, p.stderr.decode()
    assert _sha(tmp_path / "t1.mkv") == _sha(tmp_path / "t2.mkv")


# --------------------------------------------------------------------------------------------------
# make demo, and the streaming-memory benchmark's measuring step


@pytest.mark.slow
def test_demo_prints_bpp_psnr_fps(model, capsys):
    from vcodec import demo

    assert demo.main(["--model", model, "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "bpp" in out and "PSNR-RGB" in out and "frames/s" in out


def test_demo_without_a_model_says_so(capsys, tmp_path):
    from vcodec import demo

    assert demo.main(["--model", str(tmp_path / "none.pt"), "--device", "cpu"]) == 1
    assert "not found" in capsys.readouterr().err


def test_stream_memory_measure(tmp_path):
    from benchmarks import stream_memory

    write_clip(tmp_path / "c.mp4", width=16, height=16, num_frames=3)
    enc = stream_memory.measure("encode", str(tmp_path / "c.mp4"), str(tmp_path / "c.vcb"), model=None,
                                device="cpu", tiny=True)
    dec = stream_memory.measure("decode", str(tmp_path / "c.vcb"), str(tmp_path / "c.mkv"), model=None,
                                device="cpu", tiny=True)
    assert enc["frames"] == dec["frames"] == 3 and enc["peak_rss_bytes"] > 0 and dec["fps"] > 0
