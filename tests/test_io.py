"""vcodec.io: reading any source as 8-bit RGB, writing y4m/mkv/mp4, audio passthrough, atomic output."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from fractions import Fraction

import av
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vcodec.errors import InputError, OutputError, OutputExistsError, VcodecWarning
from vcodec.io import VideoSink, atomic_output, open_source, output_kind, read_video, write_video
from vcodec.io.stills import jpeg_orientation, tiff_pages
from vcodec.io.synthetic import pattern_frames, write_clip, write_y4m_header_only


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def _quiet_read(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VcodecWarning)
        return read_video(path)


def _audio_packets(path) -> list[bytes]:
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size]


# --------------------------------------------------------------------------------------------------
# reading


def test_reads_frames_size_rate_and_windows(tmp_path):
    p = tmp_path / "a.mkv"
    src = write_clip(p, width=33, height=17, num_frames=7, codec="ffv1", pix_fmt="bgr0",
                     rate=Fraction(30000, 1001))
    with open_source(p) as s:
        assert (s.info.width, s.info.height, s.info.frame_rate) == (33, 17, Fraction(30000, 1001))
        wins = list(s.windows(3))
    assert [len(w) for w in wins] == [3, 3, 1]
    assert all(w.dtype == np.uint8 and w.shape[1:] == (17, 33, 3) for w in wins)
    np.testing.assert_array_equal(np.concatenate(wins), src)  # bgr0 FFV1 is lossless RGB


@pytest.mark.parametrize(
    "pix_fmt, transparent, gray, alpha, depth, warns",
    [
        ("yuv420p", False, False, False, 8, None),
        ("gray", False, True, False, 8, None),
        ("yuva420p", True, False, True, 8, "alpha channel dropped"),
        ("yuv420p10le", False, False, False, 10, "rounded to 8 bits"),
        ("bgra", True, False, True, 8, "alpha channel dropped"),
        ("bgra", False, False, False, 8, None),        # an opaque alpha plane drops nothing: no warning
        ("yuva420p", False, False, False, 8, None),
    ],
)
def test_pixel_formats_become_8bit_rgb(tmp_path, pix_fmt, transparent, gray, alpha, depth, warns):
    p = tmp_path / "a.mkv"
    src = write_clip(p, width=64, height=32, num_frames=2, codec="ffv1", pix_fmt=pix_fmt, transparent=transparent)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frames, info = read_video(p)
    msgs = [str(w.message) for w in caught if issubclass(w.category, VcodecWarning)]
    assert (info.gray, info.alpha, info.bit_depth, info.pix_fmt) == (gray, alpha, depth, pix_fmt)
    assert frames.shape == (2, 32, 64, 3) and frames.dtype == np.uint8
    if warns:
        assert any(warns in m for m in msgs), msgs
    else:
        assert not msgs
    if gray:
        assert (frames[..., 0] == frames[..., 1]).all() and (frames[..., 1] == frames[..., 2]).all()
    else:
        assert _psnr(frames, src) > 30


def _vcodec_messages(fn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn()
    return out, [str(w.message) for w in caught if issubclass(w.category, VcodecWarning)]


def test_a_16bit_y4m_that_holds_8bit_rgb_is_read_without_a_rounding_warning(tmp_path):
    """vcodec's own .y4m (yuv444p16le, the decoder's RGB exactly) loses nothing when read back: no warning. A frame
    that is not such (here the second, its luma nudged by 1/256 of a level) is warned about, from that frame."""
    rng = np.random.default_rng(0)
    src = rng.integers(0, 256, (3, 16, 24, 3), dtype=np.uint8)
    write_video(tmp_path / "own.y4m", src, 25)
    (frames, info), msgs = _vcodec_messages(lambda: read_video(tmp_path / "own.y4m"))
    assert info.bit_depth == 16 and not msgs
    np.testing.assert_array_equal(frames, src)
    data = bytearray((tmp_path / "own.y4m").read_bytes())
    second = data.index(b"FRAME\n", data.index(b"FRAME\n") + 1) + len(b"FRAME\n")
    data[second] ^= 1   # the first luma sample of frame 1 (16-bit little-endian) one step off
    (tmp_path / "nudged.y4m").write_bytes(bytes(data))
    _, msgs = _vcodec_messages(lambda: read_video(tmp_path / "nudged.y4m"))
    assert len(msgs) == 1 and msgs[0].endswith("nudged.y4m: 16-bit video (yuv444p16le) rounded to 8 bits per channel "
                                               "from frame 1"), msgs


@pytest.mark.parametrize("trc, warns", [(16, "HDR video (PQ, SMPTE ST 2084 transfer)"),
                                         (18, "HDR video (HLG, ARIB STD-B67 transfer)"), (1, None)])
def test_an_hdr_transfer_is_warned_about(tmp_path, trc, warns):
    p = tmp_path / "hdr.mkv"
    with av.open(os.fspath(p), "w") as c:
        s = c.add_stream("ffv1", rate=25)
        s.width, s.height, s.pix_fmt = 32, 16, "yuv420p10le"
        s.codec_context.color_trc = trc
        for i in range(2):
            frame = av.VideoFrame.from_ndarray(np.full((16, 32, 3), 60 * i, np.uint8), format="rgb24")
            frame = frame.reformat(format="yuv420p10le")
            frame.color_trc = trc
            c.mux(s.encode(frame))
        c.mux(s.encode())
    _, msgs = _vcodec_messages(lambda: read_video(p))
    assert [m for m in msgs if "HDR" in m] == ([] if warns is None else [f"{p}: {warns} is read as stored, as if it "
                                                                        f"were SDR: vcodec works in SDR, so what it "
                                                                        f"encodes decodes washed out (tone-map it to "
                                                                        f"SDR first)"])


@pytest.mark.parametrize("rotation", [90, 180, -90])
def test_rotation_metadata_is_applied(tmp_path, rotation):
    p = tmp_path / "r.mp4"
    src = write_clip(p, width=64, height=32, num_frames=2, rotation=rotation, options={"crf": "0"})
    frames, info = _quiet_read(p)
    expected = np.rot90(src, k=rotation // 90, axes=(1, 2))
    assert info.rotation == rotation % 360
    assert frames.shape == expected.shape
    assert (info.width, info.height) == (expected.shape[2], expected.shape[1])
    assert _psnr(frames, expected) > 25  # the wrong way round gives about 8 dB


def test_a_png_with_an_icc_profile_reads_without_crashing_the_process(tmp_path):
    """PyAV 18 frees side-data metadata twice once frame.side_data has been looked at: a PNG with a named ICC
    profile then crashed the interpreter at the next garbage collection (`make data` died on scikit-image's
    photos). Run in a child process, so that a crash fails this test instead of the whole run."""
    from PIL import Image, ImageCms

    p = tmp_path / "icc.png"
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(np.full((16, 24, 3), 90, np.uint8)).save(p, icc_profile=profile)
    code = ("import gc, sys; from vcodec.io.source import read_video\n"
            "for _ in range(2):\n    frames, _ = read_video(sys.argv[1])\n    gc.collect()\n"
            "print(frames.shape)")
    r = subprocess.run([sys.executable, "-c", code, str(p)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, (r.returncode, r.stderr[-500:])
    assert r.stdout.strip() == "(1, 16, 24, 3)"


def test_a_palette_image_is_read_in_colour_not_as_gray(tmp_path):
    """pal8 has one plane (of palette indices): it once passed for grayscale, and vcodec decoded such PNGs gray."""
    from PIL import Image

    yy, xx = np.mgrid[0:24, 0:40]
    Image.fromarray(np.stack([xx * 6, yy * 10, (xx + yy) * 4], -1).astype(np.uint8)).convert("P", palette=Image.ADAPTIVE, colors=64).save(tmp_path / "pal.png")
    frames, info = _quiet_read(tmp_path / "pal.png")
    assert info.pix_fmt == "pal8" and not info.gray
    assert np.array_equal(frames[0], np.asarray(Image.open(tmp_path / "pal.png").convert("RGB")))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_of_a_jpeg_is_applied(tmp_path, orientation):
    """FFmpeg reports the EXIF orientation as a rotation only; the mirrored ones (2, 4, 5, 7) came out mirrored
    wrongly (e.g. 2, a left-right mirror, as an upside-down picture). Pillow's exif_transpose is the reference."""
    from PIL import Image, ImageOps

    yy, xx = np.mgrid[0:24, 0:40]
    img = Image.fromarray(np.stack([xx * 6, yy * 10, (xx + 2 * yy) * 2], -1).astype(np.uint8))   # no symmetry
    exif = img.getexif()
    exif[0x0112] = orientation
    img.save(tmp_path / "o.jpg", quality=95, exif=exif.tobytes())
    frames, info = _quiet_read(tmp_path / "o.jpg")
    expected = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "o.jpg")))
    assert frames[0].shape == expected.shape
    assert np.abs(frames[0].astype(int) - expected).mean() < 4   # FFmpeg vs Pillow decoding: ~2; a wrong mirror or turn: 40+


@given(st.binary(max_size=300))
@settings(max_examples=200, deadline=None)
def test_the_exif_reader_takes_any_bytes(tmp_path_factory, data):
    p = tmp_path_factory.mktemp("exif") / "x.jpg"
    p.write_bytes(b"\xff\xd8\xff\xe1" + len(data).to_bytes(2, "big") + b"Exif\0\0" + data)
    assert jpeg_orientation(p) in (None, *range(1, 9))
    p.write_bytes(b"II*\0" + data)
    assert tiff_pages(p) is None or tiff_pages(p) >= 1


def test_a_multi_page_tiff_warns_that_only_its_first_page_is_read(tmp_path):
    from PIL import Image

    pages = [Image.fromarray(f) for f in pattern_frames(3, 16, 24)]
    pages[0].save(tmp_path / "m.tiff", save_all=True, append_images=pages[1:])
    pages[0].save(tmp_path / "one.tiff")
    assert tiff_pages(tmp_path / "m.tiff") == 3 and tiff_pages(tmp_path / "one.tiff") == 1
    with pytest.warns(VcodecWarning, match="a TIFF of 3 pages; only the first is read"):
        frames, _ = read_video(tmp_path / "m.tiff")
    assert len(frames) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error", VcodecWarning)
        read_video(tmp_path / "one.tiff")
    loop = bytearray((tmp_path / "one.tiff").read_bytes())      # a directory chain pointing back at itself
    first = int.from_bytes(loop[4:8], "little")
    count = int.from_bytes(loop[first:first + 2], "little")
    loop[first + 2 + 12 * count:first + 6 + 12 * count] = first.to_bytes(4, "little")
    (tmp_path / "loop.tiff").write_bytes(bytes(loop))
    assert tiff_pages(tmp_path / "loop.tiff") == 1 and tiff_pages(tmp_path / "missing.tiff") is None


def test_a_cmyk_jpeg_reads_in_colour_without_an_alpha_warning(tmp_path):
    """FFmpeg gives a CMYK JPEG a fourth, fully opaque plane (gbrap): nothing is dropped, so nothing is said."""
    from PIL import Image

    yy, xx = np.mgrid[0:32, 0:48]
    rgb = np.stack([xx * 5, yy * 7, 255 - xx * 4], -1).astype(np.uint8)
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    with warnings.catch_warnings():
        warnings.simplefilter("error", VcodecWarning)
        frames, info = read_video(tmp_path / "cmyk.jpg")
    assert not info.alpha and frames.shape == (1, 32, 48, 3) and info.frame_count_hint == 1   # a still: 1 frame
    assert _psnr(frames, np.asarray(Image.open(tmp_path / "cmyk.jpg").convert("RGB"))[None]) > 35


def test_variable_frame_rate_warns_and_keeps_every_frame(tmp_path):
    p = tmp_path / "vfr.mkv"
    write_clip(p, width=16, height=8, num_frames=6, codec="ffv1", pix_fmt="yuv420p",
               pts=[0, 40, 80, 200, 240, 400], time_base=Fraction(1, 1000))
    with pytest.warns(VcodecWarning, match="variable frame rate"):
        frames, info = read_video(p)
    # the rate is the average over the whole stream (5 intervals in 0.4 s), not FFmpeg's estimate from the first
    # frames (25 fps here), which made the video shorter than its audio; the count is the packets'
    assert len(frames) == 6 and info.frame_rate == Fraction(25, 2) and info.frame_count_hint == 6
    write_clip(tmp_path / "cfr.mkv", width=16, height=8, num_frames=6, codec="ffv1", pix_fmt="yuv420p",
               rate=Fraction(30000, 1001))
    assert _quiet_read(tmp_path / "cfr.mkv")[1].frame_rate == Fraction(30000, 1001)   # a steady rate stays exact


def test_an_mpeg_ts_cut_after_two_frames_keeps_its_frame_rate(tmp_path):
    """Too short for FFmpeg to average, a cut H.264 TS had its rate guessed as the field rate (50 for 25 fps)."""
    write_clip(tmp_path / "t.ts", width=64, height=48, num_frames=20, rate=25, fmt="mpegts")
    data = (tmp_path / "t.ts").read_bytes()
    for cut in range(188, len(data), 188):                    # the shortest cut that still holds 2 frames
        (tmp_path / "cut.ts").write_bytes(data[:cut])
        try:
            frames, info = _quiet_read(tmp_path / "cut.ts")
        except InputError:
            continue
        if len(frames) == 2:
            break
    assert len(frames) == 2 and info.frame_rate == 25


def test_reads_y4m_from_a_pipe_like_file_object(tmp_path):
    p = tmp_path / "a.y4m"
    src = pattern_frames(3, 8, 10)
    write_video(p, src, Fraction(24000, 1001))

    class Pipe:  # readable, not seekable
        def __init__(self, f):
            self.f = f

        def read(self, n=-1):
            return self.f.read(n)

    with open(p, "rb") as f, warnings.catch_warnings(), open_source(Pipe(f)) as s:
        warnings.simplefilter("error", VcodecWarning)  # 16 bits holding 8-bit RGB exactly: nothing is rounded
        frames = np.stack(list(s.frames()))
        assert s.info.frame_rate == Fraction(24000, 1001)
    np.testing.assert_array_equal(frames, src)  # the default y4m (C444p16) is exact


@pytest.mark.parametrize(
    "make, match",
    [
        ("missing", "no such file"),
        ("directory", "is a directory"),
        ("text", "not a video file"),
        ("empty", "not a video file"),
        ("zero_frames", "no video frames"),
        ("audio_only", "audio only"),
    ],
)
def test_bad_inputs_raise_input_error(tmp_path, make, match):
    p = tmp_path / "in.bin"
    if make == "directory":
        p.mkdir()
    elif make == "text":
        p.write_text("hello, not a video\n" * 20)
    elif make == "empty":
        p.write_bytes(b"")
    elif make == "zero_frames":
        write_y4m_header_only(p)
    elif make == "audio_only":
        p = tmp_path / "a.m4a"
        with av.open(str(p), "w") as c:
            a = c.add_stream("aac", rate=48000)
            a.layout = "stereo"
            frame = av.AudioFrame.from_ndarray(np.zeros((2, 1024), np.float32), format="fltp", layout="stereo")
            frame.sample_rate, frame.pts = 48000, 0
            c.mux(a.encode(frame))
            c.mux(a.encode())
    with pytest.raises(InputError, match=match):
        open_source(p)


# --------------------------------------------------------------------------------------------------
# writing


def test_output_kind_follows_extension():
    assert [output_kind(x) for x in ("a.y4m", "B.MKV", "c.mp4", "-", "d.webm", "f_%05d.png")] == [
        "y4m", "mkv", "mp4", "y4m", "webm", "png"]
    with pytest.raises(OutputError, match="unknown output format"):
        output_kind("a.avi")
    assert output_kind("a.png") == "png"       # one picture (a photo); VideoSink refuses a second frame


def test_a_plain_png_name_holds_one_frame(tmp_path):
    frames = np.random.default_rng(1).integers(0, 256, (2, 9, 13, 3), dtype=np.uint8)
    write_video(tmp_path / "one.png", frames[:1], Fraction(25))
    back, _ = read_video(tmp_path / "one.png")
    np.testing.assert_array_equal(back, frames[:1])
    with pytest.raises(OutputError, match="holds one picture, and this video has more than one frame"):
        write_video(tmp_path / "two.png", frames, Fraction(25))
    assert not (tmp_path / "two.png").exists()


def test_y4m_default_and_mkv_are_exact_rgb(tmp_path):
    frames = np.random.default_rng(0).integers(0, 256, (3, 17, 33, 3), dtype=np.uint8)
    for ext in ("y4m", "mkv"):
        write_video(tmp_path / f"o.{ext}", frames, Fraction(25))
        back, _ = _quiet_read(tmp_path / f"o.{ext}")
        np.testing.assert_array_equal(back, frames, err_msg=ext)
    assert (tmp_path / "o.y4m").read_bytes().startswith(b"YUV4MPEG2 W33 H17 F25:1")
    assert b" C444p16 " in (tmp_path / "o.y4m").read_bytes()[:80]


def test_conversions_are_repeatable(tmp_path):
    # swscale's slice threading corrupted a row now and then (about 1 run in 8 at 33x17): conversions run in
    # one thread, and the same frames must give the same file and the same frames back, every time.
    frames = np.random.default_rng(1).integers(0, 256, (2, 17, 33, 3), dtype=np.uint8)
    for ext in ("y4m", "mkv", "mp4"):
        files = set()
        for _ in range(12):
            write_video(tmp_path / f"o.{ext}", frames, 25)
            files.add((tmp_path / f"o.{ext}").read_bytes())
            back, _ = _quiet_read(tmp_path / f"o.{ext}")
            if ext != "mp4":
                np.testing.assert_array_equal(back, frames)
        assert len(files) == 1, ext


def test_y4m_8bit_layouts(tmp_path):
    frames = pattern_frames(2, 32, 64)
    write_video(tmp_path / "a.y4m", frames, 25, pix_fmt="yuv444p")
    back, _ = read_video(tmp_path / "a.y4m")
    assert np.abs(back.astype(int) - frames).max() <= 2  # 8-bit Y'CbCr rounding
    write_video(tmp_path / "b.y4m", frames, 25, pix_fmt="yuv420p")
    assert b" C420" in (tmp_path / "b.y4m").read_bytes()[:60]
    back, _ = read_video(tmp_path / "b.y4m")
    assert _psnr(back, frames) > 28  # chroma halved
    with pytest.raises(OutputError, match="not offered"):
        write_video(tmp_path / "c.y4m", frames, 25, pix_fmt="rgb24")


@pytest.mark.parametrize("size, pix_fmt, coded", [((32, 64), None, (32, 64)), ((17, 33), None, (18, 34)),
                                                   ((17, 33), "yuv444p", (17, 33))])
def test_mp4_is_playable_h264_and_odd_sizes_are_padded(tmp_path, size, pix_fmt, coded):
    """yuv420p (what browsers play) with the index first; 4:2:0 needs even sizes, so odd ones are padded by an
    edge row/column (warning) unless yuv444p is asked for."""
    frames = pattern_frames(3, *size)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", VcodecWarning)
        with VideoSink(tmp_path / "a.mp4", width=size[1], height=size[0], frame_rate=25, pix_fmt=pix_fmt) as sink:
            assert sink.description["lossy"] and sink.description["pix_fmt"] == (pix_fmt or "yuv420p")
            sink.write(frames)
    assert any("padded to 34x18" in str(w.message) for w in caught) == (coded != size)
    with av.open(str(tmp_path / "a.mp4")) as c:
        v = c.streams.video[0]
        assert v.codec_context.name == "h264" and v.codec_context.pix_fmt == (pix_fmt or "yuv420p")
    data = (tmp_path / "a.mp4").read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")  # faststart
    back, _ = _quiet_read(tmp_path / "a.mp4")
    assert back.shape[1:3] == coded and _psnr(back[:, : size[0], : size[1]], frames) > 25  # 4:2:0 of tiny frames


@pytest.mark.parametrize("ext", ["y4m", "mkv", "mp4"])
@pytest.mark.parametrize(
    "rate", [Fraction(25), Fraction(30000, 1001), Fraction(60000, 1001), Fraction(25, 2), Fraction(1, 2)]
)
def test_frame_rate_kept_exactly(tmp_path, ext, rate):
    write_video(tmp_path / f"r.{ext}", np.zeros((3, 4, 6, 3), np.uint8), rate)
    frames, info = _quiet_read(tmp_path / f"r.{ext}")
    assert len(frames) == 3 and info.frame_rate == rate


@pytest.mark.parametrize("ext", ["y4m", "mkv", "mp4", "webm"])
@pytest.mark.parametrize("size, n", [((2, 2), 2), ((17, 33), 2), ((361, 641), 1)])
def test_odd_sizes_kept(tmp_path, ext, size, n):
    frames = pattern_frames(n, *size)
    write_video(tmp_path / f"s.{ext}", frames, 25, **({"pix_fmt": "yuv444p"} if ext == "mp4" else {}))
    back, info = _quiet_read(tmp_path / f"s.{ext}")
    assert back.shape == frames.shape and (info.height, info.width) == size


# --------------------------------------------------------------------------------------------------
# audio


def _remux(src, dst, **kw):
    with open_source(src) as s:
        frames = np.stack(list(s.frames()))
        packets = s.take_audio()
        with VideoSink(dst, width=s.info.width, height=s.info.height, frame_rate=s.info.frame_rate,
                       audio_tracks=s.audio_tracks, **kw) as sink:
            sink.write(frames)
            sink.write_audio(packets)
    return packets


@pytest.mark.parametrize("codec, out", [("aac", "mkv"), ("aac", "mp4"), ("flac", "mkv"), ("flac", "mp4"),
                                        ("libmp3lame", "mp4"), ("pcm_s16le", "mkv")])
def test_audio_packets_copied_unchanged(tmp_path, codec, out):
    src = tmp_path / "a.mkv"
    write_clip(src, width=16, height=8, num_frames=10, codec="ffv1", pix_fmt="yuv420p", audio=codec)
    packets = _remux(src, tmp_path / f"o.{out}")
    assert [p.data for p in packets] == _audio_packets(src)
    assert _audio_packets(tmp_path / f"o.{out}") == _audio_packets(src)


@pytest.mark.parametrize("codec", ["pcm_u8", "pcm_s16le"])
def test_audio_reencoded_to_aac_when_the_container_refuses_it_or_browsers_would_not_play_it(tmp_path, codec):
    src = tmp_path / "a.mkv"
    write_clip(src, width=16, height=8, num_frames=10, codec="ffv1", pix_fmt="yuv420p", audio=codec)
    with pytest.warns(VcodecWarning, match="re-encoded to AAC"):
        _remux(src, tmp_path / "o.mp4")
    with av.open(str(tmp_path / "o.mp4")) as c:
        a = c.streams.audio[0]
        assert a.codec_context.name == "aac"
        assert sum(f.samples for f in c.decode(a)) >= 48000 * 10 // 25


def test_y4m_output_says_audio_is_not_written(tmp_path):
    src = tmp_path / "a.mkv"
    write_clip(src, width=16, height=8, num_frames=2, codec="ffv1", pix_fmt="yuv420p", audio="aac")
    with pytest.warns(VcodecWarning, match="audio track"):
        _remux(src, tmp_path / "o.y4m")


# --------------------------------------------------------------------------------------------------
# atomic output


def test_atomic_output_renames_on_success_and_cleans_up_on_error(tmp_path):
    dst = tmp_path / "out.bin"
    with atomic_output(dst, overwrite=False) as tmp:
        assert os.path.dirname(tmp) == str(tmp_path) and not dst.exists()
        open(tmp, "wb").write(b"ok")
    assert dst.read_bytes() == b"ok"
    with pytest.raises(OutputExistsError):
        with atomic_output(dst, overwrite=False):
            pass
    with pytest.raises(RuntimeError):
        with atomic_output(dst, overwrite=True) as tmp:
            open(tmp, "wb").write(b"partial")
            raise RuntimeError("boom")
    assert dst.read_bytes() == b"ok"
    assert sorted(os.listdir(tmp_path)) == ["out.bin"]


def test_atomic_output_refuses_bad_destinations(tmp_path):
    src = tmp_path / "in.mp4"
    src.write_bytes(b"x")
    with pytest.raises(OutputError, match="is the input"):
        with atomic_output(src, overwrite=True, src=str(src)):
            pass
    with pytest.raises(OutputError, match="does not exist"):
        with atomic_output(tmp_path / "nope" / "o.vcb", overwrite=True):
            pass
    with pytest.raises(OutputError, match="not a directory"):
        with atomic_output(src / "o.vcb", overwrite=True):
            pass
    with pytest.raises(OutputError, match="is a directory"):
        with atomic_output(tmp_path, overwrite=True):
            pass
    assert src.read_bytes() == b"x"


def test_matroska_frame_count_comes_from_the_video_track_not_a_longer_audio_track(tmp_path):
    """Matroska has no stream duration, only a DURATION tag per track; the container's duration is the longest
    track's, so audio that runs on past the last frame made the count too high for a file vcodec wrote (its exact
    rate tag skips the timestamp scan; compare then warned that a DIST of exactly the range's length held more
    frames)."""
    from vcodec.io.source import VideoSource

    path = tmp_path / "av.mkv"
    with av.open(str(path), "w") as c:
        v = c.add_stream("ffv1", rate=25)
        v.width, v.height, v.pix_fmt = 16, 8, "yuv420p"
        v.metadata["VCODEC_FRAME_RATE"] = "25"              # as vcodec's own .mkv output tags it
        a = c.add_stream("aac", rate=48000)
        for i in range(33):
            for p in v.encode(av.VideoFrame.from_ndarray(np.full((8, 16, 3), i * 5, np.uint8), format="rgb24")):
                c.mux(p)
        for p in v.encode():
            c.mux(p)
        tone = av.AudioFrame.from_ndarray(np.zeros((1, 48000 * 36 // 25), np.float32), format="fltp", layout="mono")
        tone.sample_rate, tone.pts = 48000, 0
        for p in [*a.encode(tone), *a.encode()]:
            c.mux(p)
    with av.open(str(path)) as c:
        assert c.duration / av.time_base * 25 > 34          # the container's duration: the audio track's
    with VideoSource(path, audio=False) as s:
        assert s.info.frame_count_hint == 33
