"""vcodec's Python API (encode_video, decode_video, compress, decompress, info) with a tiny random-weight model."""

from __future__ import annotations

import io
import math
import warnings
from fractions import Fraction

import av
import numpy as np
import pytest
import torch

import bitstream
import vcodec
from vcodec.errors import ArgumentError, InputError, ModelNotFoundError, OutputExistsError, VcodecError, VcodecWarning
from vcodec.io import read_video
from vcodec.io.synthetic import pattern_frames, write_clip
from vcodec.testing import save_tokenizer, tiny_tokenizer


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer(window_frames=17)  # the default model's window, so 16/17/18 frames straddle it


@pytest.fixture(scope="module")
def tok9():
    return tiny_tokenizer()  # window of 9 frames: more chunks for fewer frames


@pytest.fixture(scope="module")
def model_path(tok9, tmp_path_factory):
    return save_tokenizer(tok9, tmp_path_factory.mktemp("model") / "tiny.pt")


def _quiet_read(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VcodecWarning)
        return read_video(path)


# --------------------------------------------------------------------------------------------------
# arrays <-> bytes


@pytest.mark.parametrize("n", [1, 2, 16, 17, 18])
def test_compress_keeps_frame_count(tok, n):
    frames = pattern_frames(n, 17, 33)
    data = vcodec.compress(frames, tokenizer=tok)
    out = vcodec.decompress(data, tokenizer=tok)
    assert out.shape == frames.shape and out.dtype == np.uint8
    reader = bitstream.VcbReader(io.BytesIO(data))
    assert reader.total_frames == n and reader.num_chunks == math.ceil(n / 17)


@pytest.mark.parametrize("size", [(2, 2), (17, 33), (361, 641)])
def test_compress_keeps_odd_sizes(tok9, size):
    frames = pattern_frames(1, *size)
    out = vcodec.decompress(vcodec.compress(frames, tokenizer=tok9), tokenizer=tok9)
    assert out.shape == frames.shape


def test_compress_is_deterministic_and_decode_independent_of_threads(tok9):
    frames = pattern_frames(10, 24, 40)
    a = vcodec.compress(frames, tokenizer=tok9, quality=2)
    assert a == vcodec.compress(frames, tokenizer=tok9, quality=2)
    before = torch.get_num_threads()
    try:
        outs = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            outs.append(vcodec.decompress(a, tokenizer=tok9))
    finally:
        torch.set_num_threads(before)
    np.testing.assert_array_equal(outs[0], outs[1])


def test_a_model_given_as_another_kind_of_file_is_named_as_such(tmp_path):
    from vcodec.models import model_path

    script = tmp_path / "notes.py"
    script.write_text("x = 1\n")
    with pytest.raises(ModelNotFoundError, match=r"notes\.py' is not a \.pt checkpoint \(shipped models: .*default"):
        model_path(script)
    with pytest.raises(ModelNotFoundError, match="not found"):
        model_path(tmp_path / "gone.pt")


def test_quality_selects_levels(tok9):
    frames = pattern_frames(2, 16, 16)
    sizes = [len(vcodec.compress(frames, tokenizer=tok9, quality=q)) for q in (1, 2, 3)]
    assert sizes[0] < sizes[1] < sizes[2]
    h = bitstream.VcbReader(io.BytesIO(vcodec.compress(frames, tokenizer=tok9, quality=1))).header
    assert h.levels == 1 and h.extra["quality"] == 1
    with pytest.raises(VcodecError, match="quality 7"):
        vcodec.compress(frames, tokenizer=tok9, quality=7)
    for wrong in ("3", 2.0, True):  # not refused as "not offered" beside a list that holds it
        with pytest.raises(VcodecError, match=f"quality must be a whole number, got {type(wrong).__name__}"):
            vcodec.compress(frames, tokenizer=tok9, quality=wrong)
    assert vcodec.compress(frames, tokenizer=tok9, quality=np.int64(2)) == vcodec.compress(frames, tokenizer=tok9, quality=2)


def test_frame_rate_is_stored_as_a_rational(tok9):
    data = vcodec.compress(pattern_frames(1, 8, 8), tokenizer=tok9, frame_rate=Fraction(30000, 1001))
    assert bitstream.VcbReader(io.BytesIO(data)).header.frame_rate == (30000, 1001)


@pytest.mark.parametrize(
    "bad", [np.zeros((2, 8, 8, 3), np.float32), np.zeros((8, 8, 3), np.uint8), np.zeros((0, 8, 8, 3), np.uint8)]
)
def test_compress_rejects_bad_arrays(tok9, bad):
    with pytest.raises(InputError):
        vcodec.compress(bad, tokenizer=tok9)


def test_decompress_errors_are_bitstream_errors(tok9):
    with pytest.raises(bitstream.BitstreamError):
        vcodec.decompress(b"not a vcb stream at all", tokenizer=tok9)
    data = vcodec.compress(pattern_frames(3, 8, 8), tokenizer=tok9)
    with pytest.raises(bitstream.BitstreamError):
        vcodec.decompress(data[: len(data) // 2], tokenizer=tok9)


def test_one_error_tree(tok9):
    import pickle

    assert issubclass(ModelNotFoundError, vcodec.ModelError) and issubclass(vcodec.ModelError, VcodecError)
    data = bytearray(vcodec.compress(pattern_frames(3, 8, 8), tokenizer=tok9))
    data[-10] ^= 0xFF  # inside the end record's payload
    with pytest.raises(VcodecError) as caught:
        vcodec.decompress(bytes(data), tokenizer=tok9)
    e = caught.value
    assert isinstance(e, vcodec.StreamError) and isinstance(e, bitstream.ChecksumError)
    again = pickle.loads(pickle.dumps(e))  # crosses process pools as itself
    assert type(again) is type(e) and str(again) == str(e)
    with pytest.raises(VcodecError):
        vcodec.info(io.BytesIO(b"RIFF0000"))


def test_decompress_refuses_other_weights(tok9):
    data = vcodec.compress(pattern_frames(2, 8, 8), tokenizer=tok9)
    with pytest.raises(ModelNotFoundError, match="not with the model given"):
        vcodec.decompress(data, tokenizer=tiny_tokenizer(seed=1))


def test_salvage_skips_a_damaged_chunk(tok9):
    data = bytearray(vcodec.compress(pattern_frames(27, 16, 16), tokenizer=tok9, keyint=9))  # 3 keyframe chunks of 9
    offsets = [e.offset for e in bitstream.VcbReader(io.BytesIO(bytes(data))).index()]
    data[offsets[1] + 40] ^= 0xFF  # inside chunk 1's payload
    with pytest.raises(bitstream.ChecksumError, match="chunk 1"):
        vcodec.decompress(bytes(data), tokenizer=tok9)
    with pytest.warns(VcodecWarning, match="chunk 1"):
        out = vcodec.decompress(bytes(data), tokenizer=tok9, salvage=True)
    assert len(out) == 27 and (out[9:18] == out[8]).all()  # the gap is filled: frame 18 stays frame 18
    data[offsets[0] + 40] ^= 0xFF  # and chunk 0 too: nothing before the gap to repeat, so grey
    with pytest.warns(VcodecWarning, match=r"frames 0-17 lost \(18 frames\): filled with grey"):
        out2 = vcodec.decompress(bytes(data), tokenizer=tok9, salvage=True)
    assert len(out2) == 27 and (out2[:18] == 128).all() and (out2[18:] == out[18:]).all()


def test_keyframe_periods(tok9):
    """keyint 18 with a 9-frame window: chunks 9 (keyframe) + 8 + 1 (continuing), then the next period. Continuing
    chunks decode after their keyframe chunk; a damaged chunk loses the rest of its period (filled), and
    the next period decodes exactly as in the intact stream."""
    frames = pattern_frames(27, 16, 16)
    data = bytearray(vcodec.compress(frames, tokenizer=tok9, keyint=18))
    r = bitstream.VcbReader(io.BytesIO(bytes(data)))
    assert [(e.num_frames, e.continues) for e in r.index()] == [(9, False), (8, True), (1, True), (9, False)]
    intact = vcodec.decompress(bytes(data), tokenizer=tok9)
    data[r.index()[1].offset + 40] ^= 0xFF
    with pytest.warns(VcodecWarning, match=r"frames 9-17 lost \(9 frames\)"):
        out = vcodec.decompress(bytes(data), tokenizer=tok9, salvage=True)
    assert (out[:9] == intact[:9]).all() and (out[9:18] == out[8]).all() and (out[18:] == intact[18:]).all()
    with pytest.raises(ArgumentError, match="keyint"):
        vcodec.compress(frames, tokenizer=tok9, keyint=0)
    # keyint up to the window codes every window on its own, as format version 1 did
    alone = bitstream.VcbReader(io.BytesIO(vcodec.compress(frames, tokenizer=tok9, keyint=9)))
    assert [(e.num_frames, e.continues) for e in alone.index()] == [(9, False)] * 3


# --------------------------------------------------------------------------------------------------
# files and streams


def test_encode_decode_files_with_audio(tok9, tmp_path):
    src = tmp_path / "in.mkv"
    write_clip(src, width=33, height=17, num_frames=11, codec="ffv1", pix_fmt="yuv420p", audio="aac",
               rate=Fraction(30000, 1001))
    res = vcodec.encode_video(src, tmp_path / "a.vcb", tokenizer=tok9)
    assert (res.frames, res.width, res.height, res.frame_rate) == (11, 33, 17, "30000/1001")
    assert res.bytes == (tmp_path / "a.vcb").stat().st_size
    assert res.bpp == pytest.approx(res.bytes * 8 / (11 * 33 * 17))
    assert res.audio_tracks == 1 and res.audio_bytes > 0
    d = vcodec.info(tmp_path / "a.vcb")
    assert (d["frames"], d["chunks"], d["frame_rate"]) == (11, 2, "30000/1001")
    assert d["tracks"][0]["codec"] == "aac" and d["source"]["pix_fmt"] == "yuv420p"
    dec = vcodec.decode_video(tmp_path / "a.vcb", tmp_path / "out.mkv", tokenizer=tok9)
    assert (dec.frames, dec.container, dec.lossy) == (11, "mkv", False)
    frames, info = read_video(tmp_path / "out.mkv")
    assert frames.shape == (11, 17, 33, 3) and info.frame_rate == Fraction(30000, 1001)
    np.testing.assert_array_equal(frames, vcodec.decompress((tmp_path / "a.vcb").read_bytes(), tokenizer=tok9))

    def audio(path):
        with av.open(str(path)) as c:
            return [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size]

    assert audio(tmp_path / "out.mkv") == audio(src)


def test_video_rate_leaves_out_all_that_the_audio_takes(tok9, tmp_path):
    """video_kbps counts the stream less the audio's records (track declarations and packets, headers included):
    the same clip with and without an audio track has the same video rate, in encode's result and in info.
    (It once subtracted only the audio data, so ~62 bytes per audio packet counted as video: 23.5 -> 67 kbit/s.)"""
    kw = dict(width=33, height=17, num_frames=11, codec="ffv1", pix_fmt="yuv420p", rate=Fraction(25))
    write_clip(tmp_path / "mute.mkv", **kw)
    write_clip(tmp_path / "loud.mkv", **kw, audio="aac")
    mute = vcodec.encode_video(tmp_path / "mute.mkv", tmp_path / "mute.vcb", tokenizer=tok9)
    loud = vcodec.encode_video(tmp_path / "loud.mkv", tmp_path / "loud.vcb", tokenizer=tok9)
    assert loud.audio_tracks == 1 and loud.bytes > mute.bytes + loud.audio_bytes
    # the two headers differ only in the source description the stream keeps (a few bytes)
    assert loud.video_kbps == pytest.approx(mute.video_kbps, rel=0.02)
    for res, name in ((mute, "mute.vcb"), (loud, "loud.vcb")):
        assert vcodec.info(tmp_path / name)["video_kbps"] == pytest.approx(res.video_kbps)


@pytest.mark.parametrize("rate", [float("nan"), float("inf"), "abc", None, (30000, 1001), 0, -5, True])
def test_compress_refuses_a_frame_rate_that_is_not_a_positive_number(tok9, rate):
    with pytest.raises(ArgumentError, match="frame_rate must be a positive number"):
        vcodec.compress(pattern_frames(3, 8, 8), tokenizer=tok9, frame_rate=rate)


def test_decompress_takes_what_info_takes_and_refuses_the_rest(tok9, tmp_path):
    data = vcodec.compress(pattern_frames(3, 8, 8), tokenizer=tok9, frame_rate=Fraction(30000, 1001))
    (tmp_path / "a.vcb").write_bytes(data)
    frames = vcodec.decompress(data, tokenizer=tok9)
    np.testing.assert_array_equal(vcodec.decompress(tmp_path / "a.vcb", tokenizer=tok9), frames)
    np.testing.assert_array_equal(vcodec.decompress(str(tmp_path / "a.vcb"), tokenizer=tok9), frames)
    # the stream's size is known once it is read, from a path or not
    by_path = vcodec.decode_video(tmp_path / "a.vcb", tmp_path / "p.y4m", tokenizer=tok9, progress=False)
    from_bytes = vcodec.decode_video(data, tmp_path / "b.y4m", tokenizer=tok9, progress=False)
    assert by_path.bytes == from_bytes.bytes == len(data) and from_bytes.bpp == by_path.bpp
    for bad in (123, None, 1.5):   # an int once decoded as that many zero bytes
        for fn in (vcodec.decompress, vcodec.info):
            with pytest.raises(ArgumentError, match="expected a path, '-', bytes or a readable binary file"):
                fn(bad)


def test_encode_from_and_to_file_objects(tok9, tmp_path):
    src = tmp_path / "in.y4m"
    vcodec.io.write_video(src, pattern_frames(3, 8, 12), 25)

    class Pipe:  # a non-seekable reader, like a pipe
        def __init__(self, data):
            self._b = io.BytesIO(data)

        def read(self, n=-1):
            return self._b.read(n)

        def seekable(self):
            return False

    out = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VcodecWarning)
        res = vcodec.encode_video(Pipe(src.read_bytes()), out, tokenizer=tok9)
    assert res.bytes == len(out.getvalue()) and res.frames == 3
    described = vcodec.info(Pipe(out.getvalue()))  # a pipe's size is unknown: what was read of it counts
    assert described["bytes"] == res.bytes and described["bpp"] == pytest.approx(res.bpp)
    y4m = io.BytesIO()
    vcodec.decode_video(Pipe(out.getvalue()), y4m, tokenizer=tok9)
    assert y4m.getvalue().startswith(b"YUV4MPEG2 W12 H8 F25:1")


def test_encode_refuses_existing_output_before_work(tok9, tmp_path):
    src = tmp_path / "in.mkv"
    write_clip(src, width=8, height=8, num_frames=1, codec="ffv1", pix_fmt="yuv420p")
    (tmp_path / "a.vcb").write_bytes(b"keep")
    with pytest.raises(OutputExistsError, match=r"a\.vcb already exists \(pass overwrite=True to replace it\)"):
        vcodec.encode_video(src, tmp_path / "a.vcb", tokenizer=tok9)
    assert (tmp_path / "a.vcb").read_bytes() == b"keep"
    vcodec.encode_video(src, tmp_path / "a.vcb", tokenizer=tok9, overwrite=True)
    assert (tmp_path / "a.vcb").read_bytes()[:4] == bitstream.MAGIC


def test_decode_never_loads_a_path_named_by_the_header(tok9, model_path, tmp_path):
    src = tmp_path / "in.mkv"
    write_clip(src, width=8, height=8, num_frames=2, codec="ffv1", pix_fmt="yuv420p")
    vcodec.encode_video(src, tmp_path / "a.vcb", model=model_path, device="cpu")
    assert vcodec.info(tmp_path / "a.vcb")["model"] == "tiny"   # the header names a path-loaded model by its stem
    with pytest.raises(ModelNotFoundError, match="--model PATH"):
        vcodec.decode_video(tmp_path / "a.vcb", tmp_path / "o.y4m", device="cpu")
    vcodec.decode_video(tmp_path / "a.vcb", tmp_path / "o.y4m", model=model_path, device="cpu")
    vcodec.decode_video(tmp_path / "a.vcb", tmp_path / "p.y4m", tokenizer=tok9)
    assert (tmp_path / "o.y4m").read_bytes() == (tmp_path / "p.y4m").read_bytes()


def test_weights_not_available(tok9, tmp_path):
    other = tiny_tokenizer(seed=3)
    path = save_tokenizer(other, tmp_path / "gone.pt")
    src = tmp_path / "in.mkv"
    write_clip(src, width=8, height=8, num_frames=1, codec="ffv1", pix_fmt="yuv420p")
    vcodec.encode_video(src, tmp_path / "a.vcb", model=path, device="cpu")
    (tmp_path / "gone.pt").unlink()
    with pytest.raises(ModelNotFoundError, match="not available here"):
        vcodec.decode_video(tmp_path / "a.vcb", tmp_path / "o.mkv", device="cpu")
    assert not (tmp_path / "o.mkv").exists()


def test_gray_source_decodes_gray(tok9, tmp_path):
    src = tmp_path / "g.mkv"
    write_clip(src, width=16, height=16, num_frames=2, codec="ffv1", pix_fmt="gray")
    vcodec.encode_video(src, tmp_path / "g.vcb", tokenizer=tok9)
    frames = vcodec.decompress((tmp_path / "g.vcb").read_bytes(), tokenizer=tok9)
    assert (frames[..., 0] == frames[..., 1]).all() and (frames[..., 0] == frames[..., 2]).all()


def test_warnings_are_reported_in_the_result(tok9, tmp_path):
    src = tmp_path / "a.mkv"
    write_clip(src, width=16, height=8, num_frames=1, codec="ffv1", pix_fmt="yuva420p", transparent=True)
    with pytest.warns(VcodecWarning, match="alpha"):
        res = vcodec.encode_video(src, tmp_path / "a.vcb", tokenizer=tok9)
    assert any("alpha" in w for w in res.warnings)


@pytest.mark.parametrize("ext", ["y4m", "mkv", "mp4", "webm", "png"])
def test_decode_output_containers(tok9, tmp_path, ext):
    data = vcodec.compress(pattern_frames(5, 17, 33), tokenizer=tok9, frame_rate=Fraction(24000, 1001))
    (tmp_path / "a.vcb").write_bytes(data)
    out = tmp_path / ("o_%04d.png" if ext == "png" else f"o.{ext}")
    res = vcodec.decode_video(tmp_path / "a.vcb", out, tokenizer=tok9)
    frames, info = _quiet_read(out)
    # .mp4 is 4:2:0 for browsers: odd sizes padded by an edge row/column
    assert frames.shape == ((5, 18, 34, 3) if ext == "mp4" else (5, 17, 33, 3))
    if ext != "png":  # an image sequence has no frame rate
        assert info.frame_rate == Fraction(24000, 1001)
    assert res.lossy == (ext in ("mp4", "webm"))
    if not res.lossy:  # y4m (C444p16), mkv (FFV1 RGB) and png carry the decoded RGB exactly
        np.testing.assert_array_equal(frames, vcodec.decompress(data, tokenizer=tok9))
    if ext == "png":
        assert sorted(p.name for p in tmp_path.glob("o_*.png")) == [f"o_{i:04d}.png" for i in range(1, 6)]
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


def test_unreadable_audio_track_is_skipped_with_a_warning(tok9, tmp_path):
    import base64

    from vcodec.coding import stream_header as _header

    header = _header(tok9, tok9.token_bits, 1, 1, 8, 8, Fraction(25), {})
    with bitstream.VcbWriter(str(tmp_path / "a.vcb"), header) as w:
        tid = w.add_track(bitstream.TrackInfo(kind="audio", codec="aac", time_base=(1, 48000),
                                              params={"ffmpeg_nut_template": base64.b64encode(b"junk").decode()}))
        w.write_chunk(tok9.encode_window(pattern_frames(1, 8, 8), 1), 1)
        w.write_packet(tid, b"\x00" * 10, pts=0, dts=0, duration=1024, keyframe=True)
    with pytest.warns(VcodecWarning, match="unreadable codec parameters"):
        res = vcodec.decode_video(tmp_path / "a.vcb", tmp_path / "o.mkv", tokenizer=tok9)
    assert res.frames == 1 and _quiet_read(tmp_path / "o.mkv")[0].shape == (1, 8, 8, 3)


def test_importing_vcodec_and_its_cli_does_not_load_torch():
    import subprocess
    import sys

    code = "import sys, vcodec, vcodec.cli; print('torch' in sys.modules, 'av' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=str(__import__("pathlib").Path(__file__).resolve().parents[1]))
    assert out.stdout.split() == ["False", "False"], out.stderr


def test_the_header_hash_picks_the_shipped_weights(tmp_path, monkeypatch):
    """Several .pt files may be shipped; a stream decodes with the one whose weights hash its header names."""
    from vcodec import models

    monkeypatch.setattr(models, "WEIGHTS_DIR", tmp_path)
    save_tokenizer(tiny_tokenizer(seed=0), tmp_path / "default.pt")
    old = models.load_tokenizer("default", "cpu")
    data = vcodec.compress(pattern_frames(2, 8, 8), tokenizer=old)
    (tmp_path / "default.pt").rename(tmp_path / "tiny-v0.pt")  # the default model is replaced ...
    save_tokenizer(tiny_tokenizer(seed=1), tmp_path / "default.pt")
    assert [m.name for m in models.shipped_models()] == ["default", "tiny-v0"]
    header = bitstream.VcbReader(io.BytesIO(data)).header
    assert header.model_name == "default" and models.find_by_hash(header.weights_hash).name == "tiny-v0"
    np.testing.assert_array_equal(vcodec.decompress(data), vcodec.decompress(data, tokenizer=old))  # ... old files decode
    (tmp_path / "tiny-v0.pt").unlink()
    with pytest.raises(ModelNotFoundError, match=r"model 'default' \(weights sha256 [0-9a-f]{12}\.\.\.\), which is not"):
        vcodec.decompress(data)


def test_info_needs_no_model(tok9, tmp_path, monkeypatch):
    from vcodec import models

    def no_model(*args, **kwargs):
        raise AssertionError("info() loaded a model")

    (tmp_path / "a.vcb").write_bytes(vcodec.compress(pattern_frames(10, 8, 8), tokenizer=tok9))
    monkeypatch.setattr(models, "load_tokenizer", no_model)
    monkeypatch.setattr(models, "stream_tokenizer", no_model)
    assert vcodec.info(tmp_path / "a.vcb")["frames"] == 10
    with open(tmp_path / "a.vcb", "rb") as f:  # not seekable in spirit: counted from the coded chunks
        d = vcodec.info(io.BufferedReader(io.BytesIO(f.read())))
    assert (d["frames"], d["chunks"]) == (10, 2)


def test_decoding_in_bf16_gives_the_same_tokens_and_nearly_the_same_pixels(tok9, model_path, monkeypatch):
    """precision="bf16" runs the decoder network in bfloat16 (allowed here whatever the CPU: a tiny model is quick
    even where bf16 is emulated); the encoder and the tokens are untouched."""
    from vcodec import models

    monkeypatch.setattr(models, "bf16_is_fast", lambda device: True)
    frames = pattern_frames(10, 16, 24)
    data = vcodec.compress(frames, tokenizer=tok9)
    exact = vcodec.decompress(data, model=model_path)
    fast = vcodec.decompress(data, model=model_path, precision="bf16")
    assert fast.shape == exact.shape and fast.dtype == np.uint8
    diff = np.abs(fast.astype(int) - exact.astype(int))
    assert 0 < diff.max() <= 8 and diff.mean() < 1.0   # bfloat16 keeps 8 significant bits: a level or so
    tok16 = models.load_tokenizer(model_path, "cpu", "bf16")
    assert tok16.weights_hash == tok9.weights_hash and tok16.precision == "bf16"
    assert next(tok16.model.encoder.parameters()).dtype == torch.float32  # streams never depend on it
    assert next(tok16.model.decoder.parameters()).dtype == torch.bfloat16


def test_bf16_is_refused_where_it_would_be_emulated(tok9, model_path, monkeypatch, tmp_path):
    from click.testing import CliRunner

    from vcodec import models
    from vcodec.cli import main

    monkeypatch.setattr(models, "bf16_is_fast", lambda device: False)
    data = vcodec.compress(pattern_frames(3, 8, 8), tokenizer=tok9)
    with pytest.raises(vcodec.ModelError, match="precision bf16 needs a GPU or a CPU with native bfloat16"):
        vcodec.decompress(data, model=model_path, precision="bf16")
    with pytest.raises(vcodec.ModelError, match="unknown precision 'fp16'"):
        vcodec.decompress(data, model=model_path, precision="fp16")
    (tmp_path / "a.vcb").write_bytes(data)
    r = CliRunner().invoke(main, ["decode", str(tmp_path / "a.vcb"), "-o", str(tmp_path / "a.mkv"), "--model",
                                  model_path, "--precision", "bf16"])
    assert r.exit_code == 1 and r.stderr.startswith("vcodec: error: ") and len(r.stderr.splitlines()) == 1
    assert not (tmp_path / "a.mkv").exists()
