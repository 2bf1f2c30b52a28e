"""Each classical codec codes a tiny clip at the common conditions; missing codecs are skipped with a reason."""

import os
import stat

import numpy as np
import pytest

from benchmarks import codecs as bc
from benchmarks.clips import SMOKE, get_clip
from vcodec.metrics import psnr_yuv_611


@pytest.fixture(scope="module")
def clip():
    return get_clip(SMOKE[0])  # 9 frames of 96x64, synthetic


@pytest.mark.parametrize("name,point", [("x264", 32), ("x265", 32), ("svtav1", 39), ("vvenc", 32)])
def test_roundtrip_quality_band(name, point, clip, tmp_path):
    kwargs = {"preset": "faster"} if name == "vvenc" else {}
    codec = bc.make_codec(name, points=[point], **kwargs)
    try:
        codec.check()
    except bc.CodecUnavailable as e:
        pytest.skip(str(e))
    desc = codec.description()
    assert desc["version"] and "unknown" not in desc["version"]
    assert desc["intra_period"] == bc.INTRA_PERIOD
    enc = codec.encode(clip, point, str(tmp_path / f"s{codec.extension}"))
    assert enc.num_bytes == os.path.getsize(enc.path) > 0
    assert 0 < codec.payload_bytes(enc) <= enc.num_bytes
    dec = codec.decode(enc, clip)
    assert dec.yuv.y.shape == clip.yuv.y.shape and dec.yuv.y.dtype == np.uint8
    q = psnr_yuv_611(clip.yuv, dec.yuv)["psnr_yuv"]
    assert 32 < q < 60, q


def test_x265_stream_has_no_encoder_info_sei(clip, tmp_path):
    codec = bc.make_codec("x265", points=[32])
    enc = codec.encode(clip, 32, str(tmp_path / "s.265"))
    assert b"x265 (build" not in open(enc.path, "rb").read()


def test_x264_version_sei_is_stripped_and_stream_still_decodes(clip, tmp_path):
    codec = bc.make_codec("x264", points=[32])
    enc = codec.encode(clip, 32, str(tmp_path / "s.264"))
    data = open(enc.path, "rb").read()
    assert b"x264 - core" not in data
    assert enc.info["sei_removed_bytes"] > 300
    assert codec.decode(enc, clip).yuv.y.shape[0] == clip.num_frames
    assert codec.version().startswith("x264 - core")


def test_x264_qp_is_on_the_hevc_scale_at_10_bits():
    assert bc.make_codec("x264", bit_depth=10).options(32)["qp"] == "44"
    assert bc.make_codec("x264", bit_depth=8).options(32)["qp"] == "32"


def test_vvenc_settings_replace_ffmpeg_defaults():
    cmd = " ".join(bc.VVenC(preset="medium").command(416, 240, 25, 32, "o.266"))
    assert "-qpa 0" in cmd and "intraperiod=16" in cmd and "gopsize=16" in cmd and "poc0idr=1" in cmd
    assert "decodingrefreshtype=idr_no_radl" in cmd
    assert "-pix_fmt yuv420p10le" in cmd


def test_missing_pyav_encoder_is_unavailable_with_reason():
    class Missing(bc.PyAVCodec):
        name = "missing"
        encoder = "libdefinitely-not-built"
        raw_format = "h264"

    with pytest.raises(bc.CodecUnavailable, match="libdefinitely-not-built not in this PyAV"):
        Missing().check()


def write_fake_ffmpeg(path):
    """An 'FFmpeg' whose build has x264/x265 but neither libvvenc nor libvmaf."""
    path.write_text(
        "#!/bin/sh\n"
        'case "$*" in\n'
        '  *-encoders*) printf " V....D libx264  libx264 H.264\\n V....D libx265  libx265 H.265\\n" ;;\n'
        '  *-filters*) printf " ... scale  V->V  Scale\\n" ;;\n'
        '  *-version*) echo "ffmpeg version fake-without-vvenc" ;;\n'
        "  *) exit 1 ;;\n"
        "esac\n"
    )
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_vvenc_missing_from_ffmpeg_build_is_unavailable(tmp_path):
    fake = write_fake_ffmpeg(tmp_path / "ffmpeg")
    with pytest.raises(bc.CodecUnavailable, match="libvvenc not in this FFmpeg build"):
        bc.VVenC(ffmpeg=fake).check()


def test_codec_names_and_aliases():
    assert bc.canonical_name("HEVC") == "x265" and bc.canonical_name("vvc") == "vvenc"
    with pytest.raises(ValueError, match="unknown codec"):
        bc.canonical_name("mpeg2")


def test_vcodec_refine_is_a_setting_only_when_used():
    """`--refine` (vcodec's encoder-side refinement) keys the result cache and shows in the command line; a vcodec
    without refinement and colour corrections has the settings it had before either existed (earlier caches stay
    valid); the default encoder's keyframe-chunk corrections and --colour-correct's are settings of their own."""
    from benchmarks.codec_vcodec import VCodec
    from bitstream.header import REPEAT_VERSION
    from vcodec.testing import tiny_tokenizer

    tok = tiny_tokenizer()
    plain, refined = VCodec(model=tok, colour=False), VCodec(model=tok, refine=3, colour=False)
    assert "refine" not in plain.settings(2) and "--refine" not in plain.command_line(2)
    assert plain.command_line(2).endswith("--device cpu --no-colour-correct")
    assert refined.command_line(2).endswith("--refine 3 --no-colour-correct")
    assert refined.settings(2) == {**plain.settings(2), "refine": 3, "refine_passes": refined._refine_precision()}
    # refinement turns the colour correction on for every chunk, as --colour-correct does (format version 5)
    both, colour, default = VCodec(model=tok, refine=3), VCodec(model=tok, colour=True), VCodec(model=tok)
    assert both.settings(2) == {**refined.settings(2), "colour": True, "format_version": REPEAT_VERSION}
    assert colour.settings(2) == {**plain.settings(2), "colour": True, "format_version": REPEAT_VERSION}
    assert default.settings(2) == {**plain.settings(2), "colour": "key", "format_version": REPEAT_VERSION}
    assert both.command_line(2).endswith("--refine 3") and colour.command_line(2).endswith("--colour-correct")
    assert default.command_line(2).endswith("--device cpu")
