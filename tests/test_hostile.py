"""Hostile ``.vcb`` files: valid CRCs, lying values. Every lie ends as a VcodecError (or a warning and a skipped
side field), before the decoder allocates for it. The long run of the same fuzzer is ``python -m tests.fuzz_values``."""

from __future__ import annotations

import dataclasses
import io
import resource
import time
import warnings
from fractions import Fraction

import pytest

import vcodec
from bitstream import TrackInfo, VcbReader, VcbWriter
from tests.fuzz_values import Fuzzer, base_streams, forged, forged_corpus, tiny
from vcodec.errors import VcodecWarning


@pytest.fixture(scope="module")
def tok():
    return tiny()


@pytest.fixture(scope="module")
def bases(tok, tmp_path_factory):
    return base_streams(tok, str(tmp_path_factory.mktemp("bases")))


def _outcome(fn, *args, **kwargs) -> str | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", VcodecWarning)
            fn(*args, **kwargs)
        return None
    except vcodec.VcodecError as e:
        return type(e).__name__


def test_forged_geometry_corpus(tok, bases, tmp_path):
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for name, data, want in forged_corpus(tok, bases[1]):
        assert _outcome(vcodec.decompress, data, tokenizer=tok) == want, name
        assert _outcome(vcodec.decode_video, io.BytesIO(data), tmp_path / "o.mkv", overwrite=True,
                        tokenizer=tok) == want, name
        assert not list(tmp_path.glob(".o.mkv*")), name
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    assert grown < 300, f"peak memory grew by {grown:.0f} MB"


def test_long_window_refused_before_decoding(tok, bases):
    data = forged(tok, bases[1], window_frames=1024, frames=1024)
    with pytest.raises(vcodec.VcodecError) as e:
        vcodec.decompress(data, tokenizer=tok)
    assert "window of 1024 frames is longer than model" in str(e.value)


def _with_source(tok, base: bytes, source: dict | None = None, tracks=()) -> bytes:
    r = VcbReader(io.BytesIO(base))
    h = r.header
    if source is not None:
        h = dataclasses.replace(h, extra={**h.extra, "source": source})
    buf = io.BytesIO()
    with VcbWriter(buf, h, tables=tok.tables_for(h.token_bits, h.coder_version)) as w:
        for t in tracks:
            w.add_track(t)
        for c in VcbReader(io.BytesIO(base)).chunks():
            w.write_chunk(c.tokens, c.num_frames, continues=c.continues)
    return buf.getvalue()


@pytest.mark.parametrize("sar", ["1000000000000/1", "1e400", "1/1e400", "-5/3", "abc", "2147483648/1", "1025/1"])
@pytest.mark.parametrize("ext", ["mkv", "mp4"])
def test_implausible_sample_aspect_ratio_is_ignored_with_a_warning(tok, bases, tmp_path, sar, ext):
    data = _with_source(tok, bases[1], {"sample_aspect_ratio": sar})
    with pytest.warns(VcodecWarning, match="implausible sample aspect ratio"):
        res = vcodec.decode_video(io.BytesIO(data), tmp_path / f"o.{ext}", tokenizer=tok)
    assert res.frames == 12


def test_plausible_sample_aspect_ratio_is_kept(tok, bases, tmp_path):
    import av

    data = _with_source(tok, bases[1], {"sample_aspect_ratio": "4/3"})  # checked in .mp4 (PyAV reads no SAR back from .mkv)
    vcodec.decode_video(io.BytesIO(data), tmp_path / "o.mp4", tokenizer=tok)
    with av.open(str(tmp_path / "o.mp4")) as c:
        assert c.streams.video[0].sample_aspect_ratio == Fraction(4, 3)


@pytest.mark.parametrize("params", [{"sample_rate": "48k"}, {"channels": 2.5}, {"channels": "2"}, {"sample_rate": -1},
                                    {"sample_rate": 10**12}, {"channels": 1000}, {"layout": 5}, {"language": ["en"]},
                                    {"sample_rate": True}])
@pytest.mark.parametrize("ext", ["y4m", "mkv", "mp4"])
def test_bad_track_params_skip_the_track_with_a_warning(tok, bases, tmp_path, params, ext):
    good = VcbReader(io.BytesIO(bases[0])).tracks[0]
    bad = TrackInfo(good.kind, good.codec, good.time_base, {**good.params, **params}, good.extradata)
    data = _with_source(tok, bases[1], tracks=[good, bad])
    with pytest.warns(VcodecWarning, match=r"skipping track\(s\) 1"):
        res = vcodec.decode_video(io.BytesIO(data), tmp_path / f"o.{ext}", tokenizer=tok)
    assert res.frames == 12 and res.audio_tracks == (0 if ext == "y4m" else 1)


def test_value_fuzzer_bounded(tmp_path):
    """A few hundred lying streams through the reader, decompress and decode_video: nothing but VcodecErrors."""
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    fz = Fuzzer(str(tmp_path))
    t0 = time.monotonic()
    stats = fz.run(0, 400, seed=20261125, stop_at=t0 + 60, case_timeout=60)
    failures = stats["failures"]
    assert not failures, "\n".join(f"seed={s} case={c}: {m}\n{tb}" for s, c, m, tb in failures[:5])
    assert stats["cases"] >= 100
    assert stats["outcomes"].get("ok", 0) > 0 and len(stats["outcomes"]) >= 5
    assert stats["peak_rss_mb"] - rss0 < 512, f"peak memory grew by {stats['peak_rss_mb'] - rss0:.0f} MB"


def test_frames_too_big_for_the_memory_are_refused(tok, bases, monkeypatch):
    import vcodec.tokenizer

    data = forged(tok, bases[1], width=16384, height=64)
    monkeypatch.setattr(vcodec.tokenizer, "available_memory", lambda: 2 << 20)
    with pytest.raises(vcodec.ResourceError, match="window of 16384x64 needs about"):
        vcodec.decompress(data, tokenizer=tok)


@pytest.mark.parametrize("ext", ["mkv", "mp4"])
def test_audio_packets_the_muxer_refuses_are_dropped_with_a_warning(tok, bases, tmp_path, ext):
    import struct

    from tests.fuzz_values import join, split

    hdr, recs = split(bases[0])
    packets = [p for t, p in recs if t == 0x03]
    assert len(packets) >= 3
    for p in packets[1:3]:  # timestamps going backwards
        struct.pack_into("<qq", p, 4, -1000, -1000)
    with pytest.warns(VcodecWarning, match="audio track 0: dropping packets the muxer refuses"):
        res = vcodec.decode_video(io.BytesIO(join(hdr, recs)), tmp_path / f"o.{ext}", tokenizer=tok)
    assert res.frames == 5 and res.audio_tracks == 1
