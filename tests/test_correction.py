"""Per-chunk colour correction (vcodec.correction, ``--colour-correct``, format version 4)."""
import io
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import bitstream
import vcodec
from vcodec.cli import main
from vcodec.colour import rgb_to_yuv420
from vcodec.correction import (
    _FROM_YCC,
    _TO_YCC,
    SCALE,
    _clipped_target,
    _frame_mse,
    _normal_equations,
    _refit_clipped,
    _solve,
    _terms,
    _weighted_equations,
    apply_to_frames,
    apply_to_video,
    correction_bytes,
    fit_colour,
)
from vcodec.errors import ArgumentError
from vcodec.io.synthetic import pattern_frames, write_clip
from vcodec.metrics import psnr_frames, psnr_yuv_611
from vcodec.testing import save_tokenizer, tiny_tokenizer


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


def _tinted(frames: np.ndarray, seed: int = 0) -> np.ndarray:
    """``frames`` as a decoder with a colour fault might give them: chroma pulled towards grey and shifted, luma
    darker and flatter, plus noise; uint8."""
    rng = np.random.default_rng(seed)
    x = frames.astype(np.float64)
    grey = x.mean(axis=-1, keepdims=True)
    out = 0.9 * (grey + 0.6 * (x - grey)) + np.array([9.0, -4.0, 14.0]) + rng.normal(0, 3, x.shape)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _psnr_yuv(ref: np.ndarray, test: np.ndarray) -> float:
    return psnr_yuv_611(rgb_to_yuv420(ref), rgb_to_yuv420(test))["psnr_yuv"]


@pytest.mark.parametrize("terms", [4, 10])
def test_the_zero_correction_is_the_identity(terms):
    video = torch.rand(1, 3, 2, 4, 5) * 2 - 1
    torch.testing.assert_close(apply_to_video(video, (0,) * (3 * terms)), video, atol=1e-6, rtol=0)
    frames = np.random.default_rng(0).integers(0, 256, (2, 4, 5, 3), dtype=np.uint8)
    np.testing.assert_array_equal(apply_to_frames(frames, (0,) * (3 * terms)), frames)
    assert correction_bytes((0,) * (3 * terms)) == 4 + 6 * terms
    with pytest.raises(ValueError, match="3 x 4 or 10"):
        apply_to_frames(frames, (0,) * 13)


def test_a_luma_offset_lifts_every_channel():
    """E'y + 0.1 (its constant term, 0.1 * 4096) is +0.1 on R', G' and B' (0..1), +0.2 on the model's [-1, 1]
    scale; E'y^2 (the quadratic map's fifth term) adds E'y^2 to each."""
    colour = (0, 0, 0, round(0.1 * SCALE)) + (0,) * 8
    video = torch.zeros(1, 3, 1, 2, 2)
    torch.testing.assert_close(apply_to_video(video, colour), torch.full_like(video, 0.2), atol=2e-4, rtol=0)
    square = (0, 0, 0, 0, SCALE) + (0,) * 25
    grey = torch.full((1, 3, 1, 2, 2), 0.0)    # mid grey: E'y = 0.5, corrected to 0.75
    torch.testing.assert_close(apply_to_video(grey, square), torch.full_like(grey, 0.5), atol=1e-5, rtol=0)


def test_decoder_and_fit_round_the_same_way():
    """The decoder's float map (apply_to_video, then the tokenizer's rounding) and the fit's own model of it agree
    to a level."""
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    colour = tuple(int(v) for v in rng.integers(-600, 600, 30))
    video = torch.from_numpy(frames).permute(3, 0, 1, 2)[None].float() / 127.5 - 1
    decoded = ((apply_to_video(video, colour) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)[0].permute(1, 2, 3, 0)
    assert np.abs(decoded.numpy().astype(int) - apply_to_frames(frames, colour)).max() <= 1
    batch = torch.cat([video, video.flip(2)])            # (2, 3, T, H, W): each item corrected on its own
    torch.testing.assert_close(apply_to_video(batch, colour)[1:], apply_to_video(video.flip(2), colour))


def test_fit_undoes_a_colour_fault():
    frames = pattern_frames(6, 40, 48)
    decoded = _tinted(frames)
    colour = fit_colour(frames, decoded, coded_bytes=2000)
    assert colour is not None and len(colour) in (12, 30) and all(-(2**15) <= c < 2**15 for c in colour)
    fixed = apply_to_frames(decoded, colour)
    assert _psnr_yuv(frames, fixed) > _psnr_yuv(frames, decoded) + 3
    signed = (fixed.astype(float) - frames).mean(axis=(0, 1, 2))
    assert np.abs(signed).max() < 1.0, signed   # the channels' mean shifts are gone


def test_fit_sends_nothing_that_does_not_pay():
    frames = pattern_frames(4, 32, 32)
    assert fit_colour(frames, frames, coded_bytes=500) is None                 # nothing to correct
    noise = np.random.default_rng(2).normal(0, 3, frames.shape) + [2, 0, 0]      # noise and a slight red cast...
    slight = np.clip(np.rint(frames + noise), 0, 255).astype(np.uint8)
    assert fit_colour(frames, slight, coded_bytes=10**6) is not None           # ...pays in a big chunk
    assert fit_colour(frames, slight, coded_bytes=20) is None                  # not where 28 bytes double it
    with pytest.raises(ValueError, match="coded_bytes"):
        fit_colour(frames, slight, coded_bytes=0)
    with pytest.raises(ValueError, match="must both be"):
        fit_colour(frames, slight[:, :16], coded_bytes=100)


def test_fit_keeps_the_frames_mean_psnr():
    """A chunk whose first frames decode nearly perfectly and whose last have a fault (a scene cut): the fit may
    not buy the faulty frames' error with the good frames' PSNR-Y (frames weighted by their errors)."""
    frames = pattern_frames(8, 32, 40)
    decoded = np.concatenate([np.clip(frames[:5].astype(int) + 1, 0, 255).astype(np.uint8), _tinted(frames[5:])])
    colour = fit_colour(frames, decoded, coded_bytes=5000)
    assert colour is not None
    fixed = apply_to_frames(decoded, colour)
    y_ref, y_dec, y_fix = (rgb_to_yuv420(f).y for f in (frames, decoded, fixed))
    assert psnr_frames(y_ref, y_fix).mean() >= psnr_frames(y_ref, y_dec).mean() - 0.005


def _noisy_bars(seed: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Saturated colour bars (channels at 0 and 191) and a decoding of them with chroma pulled towards grey and
    noise on both sides of 0, clipped: (source, decoded) uint8 (4, 16, 64, 3)."""
    from benchmarks.diagnostics import colour_bars
    source = colour_bars(4, 16, 64)
    x = source.astype(np.float64)
    grey = x.mean(axis=-1, keepdims=True)
    noisy = grey + 0.8 * (x - grey) + np.random.default_rng(seed).normal(0, 8, x.shape)
    return source, np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def _ycc(frames: np.ndarray) -> np.ndarray:
    return frames.astype(np.float64) / 255.0 @ _TO_YCC.T


def test_the_clipping_aware_step_is_the_least_squares_of_the_clipped_output():
    """_clipped_target's normal equations (patterns of clipped channels, corrections to the unclipped sums) give
    the same map as a plain least-squares solve over every pixel's output components, with the channels that clip
    held at their bound."""
    source, decoded = _noisy_bars()
    y, x = _ycc(source), _ycc(decoded)
    k = 4
    a = np.random.default_rng(5).normal(0, 0.05, (3, k))
    yf, xf, t = y.reshape(-1, 3), x.reshape(-1, 3), _terms(x.reshape(-1, 3), k)
    equations = _normal_equations(y, x, _frame_mse(y, x))
    pixel_weight = np.repeat(equations[2], 16 * 64, axis=0)
    plain = _weighted_equations(equations, equations[2], k)
    target = _clipped_target(yf, xf, t, a, pixel_weight, plain)
    # by hand: output = C clip(F (x + A t)); linearised with the clipped channels held, row per (pixel, component)
    rgb = (xf + t @ a.T) @ _FROM_YCC.T
    inside = (rgb >= 0) & (rgb <= 1)
    assert 0.05 < (~inside).any(axis=1).mean() < 0.95        # some pixels clip, most of them not
    m = (_TO_YCC[None] * inside[:, None, :]) @ _FROM_YCC                              # (pixels, 3, 3)
    held = np.clip(rgb, 0, 1) * ~inside @ _TO_YCC.T
    design = (m[:, :, :, None] * t[:, None, None, :]).reshape(-1, 3, 3 * k)           # d out_c / d A[i][kk]
    root = np.sqrt(pixel_weight)[..., None]
    rows = (design * root).reshape(-1, 3 * k)
    goal = ((yf - np.einsum("pij,pj->pi", m, xf) - held) * root[..., 0]).ravel()
    expected = np.linalg.lstsq(rows, goal, rcond=None)[0].reshape(3, k)
    np.testing.assert_allclose(target, expected, atol=2e-4)
    assert _clipped_target(yf, xf, t, np.zeros((3, k)), pixel_weight, plain) is not None
    mid = (64 + decoded // 2).reshape(-1, 3)                # nothing clips: no step
    xm = _ycc(mid)
    assert _clipped_target(xm, xm, _terms(xm, k), np.zeros((3, k)), pixel_weight, plain) is None


@pytest.mark.parametrize("terms", [4, 10])
def test_the_refit_mends_clipped_colours(terms):
    """On saturated colours the least-squares map leaves the clipped channels biased upwards (noise below 0 is
    cut off); the clipping-aware refit lowers the clipped output's error and that bias."""
    source, decoded = _noisy_bars()
    y, x = _ycc(source), _ycc(decoded)
    equations = _normal_equations(y, x, _frame_mse(y, x))
    plain = _solve(*equations, terms)
    refit = _refit_clipped(y, x, equations, plain)
    assert refit != plain and len(refit) == len(plain)
    before, after = (apply_to_frames(decoded, c) for c in (plain, refit))
    assert _psnr_yuv(source, after) > _psnr_yuv(source, before) + 0.3
    zero = source == 0
    bias_before, bias_after = ((out.astype(float) - source)[zero].mean() for out in (before, after))
    assert bias_after < bias_before - 0.5, (bias_before, bias_after)


def test_the_refit_leaves_a_fit_where_nothing_clips():
    frames = 64 + pattern_frames(4, 32, 32) // 2                     # 64..191: nothing near the bounds
    decoded = _tinted(frames)
    y, x = _ycc(frames), _ycc(decoded)
    equations = _normal_equations(y, x, _frame_mse(y, x))
    for terms in (4, 10):
        plain = _solve(*equations, terms)
        assert _refit_clipped(y, x, equations, plain) == plain


def test_compress_with_colour_correction(tok):
    """``colour=True``: a version-4 stream whose chunks carry the corrections that pay, decoded closer to the
    source in PSNR-YUV (the tiny random model's colours are far off); the same chunks, tokens and decoded frames
    by random access; ``colour=False`` writes none (format version 2), refinement fits them by default."""
    frames = pattern_frames(21, 24, 40)
    plain = vcodec.compress(frames, tokenizer=tok, quality=3, keyint=25, colour=False)
    data = vcodec.compress(frames, tokenizer=tok, quality=3, keyint=25, colour=True)
    assert plain[4] == 2
    reader = bitstream.VcbReader(io.BytesIO(data))
    assert data[4] == 5 and reader.header.chunk_colour and reader.header.chunk_bits == (reader.header.token_bits,)
    chunks = list(reader.chunks())
    plain_chunks = list(bitstream.VcbReader(io.BytesIO(plain)).chunks())
    assert [c.continues for c in chunks] == [c.continues for c in plain_chunks] == [False, True, True]
    for c, p in zip(chunks, plain_chunks):
        np.testing.assert_array_equal(c.tokens, p.tokens)
    assert any(c.colour is not None for c in chunks)
    out = vcodec.decompress(data, tokenizer=tok)
    assert _psnr_yuv(frames, out) > _psnr_yuv(frames, vcodec.decompress(plain, tokenizer=tok)) + 0.5
    from vcodec.coding import decoded_range
    part = np.concatenate(list(decoded_range(bitstream.VcbReader(io.BytesIO(data), tok.tables_for(
        reader.header.token_bits, reader.header.coder_version)), tok, 12, 6)))
    np.testing.assert_array_equal(part, out[12:18])
    assert vcodec.info(data)["colour_chunks"] == sum(c.colour is not None for c in chunks)
    assert vcodec.compress(frames, tokenizer=tok, quality=3, refine=1)[4] == 5
    assert vcodec.compress(frames, tokenizer=tok, quality=3, refine=1, colour=False)[4] == 2
    with pytest.raises(ArgumentError, match="colour must be"):
        vcodec.compress(frames, tokenizer=tok, colour="yes")


def test_by_default_keyframe_chunks_are_fitted_and_their_periods_carry_the_map(tok):
    """``colour`` None without refinement: each keyframe chunk gets the correction ``colour=True`` fits it (the
    decoder starts afresh there, so the encoder's decoding of it is exact), the chunks continuing it carry the same
    map (none decoded: the encoder's speed), the tokens are those of a stream without corrections."""
    frames = pattern_frames(45, 24, 40)
    plain, key, every = (vcodec.compress(frames, tokenizer=tok, quality=3, keyint=21, colour=c)
                         for c in (False, None, True))
    chunks = [list(bitstream.VcbReader(io.BytesIO(d)).chunks()) for d in (plain, key, every)]
    assert key[4] == 5 and [c.continues for c in chunks[1]] == [c.continues for c in chunks[2]]
    assert [c.continues for c in chunks[1]].count(False) >= 2 and any(c.continues for c in chunks[1])
    period_map = None
    for p, k, e in zip(*chunks):
        np.testing.assert_array_equal(k.tokens, p.tokens)
        if not k.continues:
            assert k.colour == e.colour
            period_map = k.colour
        assert k.colour == period_map
    assert any(c.colour is not None for c in chunks[1])
    assert _psnr_yuv(frames, vcodec.decompress(key, tokenizer=tok)) > _psnr_yuv(
        frames, vcodec.decompress(plain, tokenizer=tok)) + 0.5


def test_rate_control_counts_the_corrections(tok):
    """--bitrate with colour corrections: a target between two of the tiny model's points (measured with the
    corrections) is met about as well as without them; the corrections' bytes are counted as written."""
    frames = pattern_frames(40, 24, 40)
    lo, hi = (len(vcodec.compress(frames, tokenizer=tok, quality=q, colour=True)) * 8 / (40 / 25) for q in (2, 3))
    target = (lo + hi) / 2
    data = vcodec.compress(frames, tokenizer=tok, bitrate=target, colour=True)
    assert data[4] == 5 and vcodec.decompress(data, tokenizer=tok).shape == frames.shape
    assert vcodec.info(data)["colour_chunks"] >= 1
    assert abs(len(data) * 8 / (40 / 25) - target) <= 0.25 * (hi - lo)


def test_a_gray_source_is_judged_by_its_luma():
    """The decoder makes a gray source's output gray: a correction that only mends chroma buys nothing there."""
    frames = np.repeat(64 + pattern_frames(4, 32, 32)[..., :1] // 2, 3, axis=-1)    # mid-range: nothing clips
    ycc = frames.astype(np.float64) / 255.0 @ np.array(_TO_YCC).T
    ycc[..., 1:] += np.random.default_rng(3).normal(0, 0.02, ycc[..., 1:].shape) + 0.02
    decoded = np.clip(np.rint(ycc @ np.linalg.inv(_TO_YCC).T * 255.0), 0, 255).astype(np.uint8)
    assert fit_colour(frames, decoded, coded_bytes=2000) is None
    coloured = frames.copy()
    coloured[:, :8, :8] = (200, 40, 40)          # the same with a red corner: chroma counts, and pays
    assert fit_colour(coloured, decoded, coded_bytes=2000) is not None


def test_cli_colour_correct(tok, tmp_path):
    model = save_tokenizer(tok, tmp_path / "tiny.pt")
    write_clip(tmp_path / "in.mkv", width=48, height=32, num_frames=10, codec="ffv1", rate=25)
    runner = CliRunner()
    r = runner.invoke(main, ["encode", str(tmp_path / "in.mkv"), "--model", model, "--colour-correct", "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["colour"] is True and summary["colour_chunks"] == vcodec.info(str(tmp_path / "in.vcb"))["colour_chunks"]
    r = runner.invoke(main, ["encode", str(tmp_path / "in.mkv"), "--model", model, "--colour-correct", "-y"])
    assert r.exit_code == 0 and "colour-corrected (" in r.output, r.output
    r = runner.invoke(main, ["info", str(tmp_path / "in.vcb")])
    assert r.exit_code == 0 and "colour-corrected" in r.output and "format version 5" in r.output, r.output
    assert runner.invoke(main, ["decode", str(tmp_path / "in.vcb"), "-o", str(tmp_path / "out.mkv"),
                                "--model", model]).exit_code == 0


def test_diagnostics_colour_through_the_codec(tok):
    """benchmarks.diagnostics' colour section through the codec: every encoder setting measured on (small) bars
    and rendered; the settings with a correction send one."""
    from benchmarks.diagnostics import ENCODER_SETTINGS, colour_bars, colour_through_codec, markdown
    bars = colour_bars(5, 16, 64)
    report = colour_through_codec(tok, bars)
    assert report["quality"] == len(tok.rate_points) and list(report["settings"]) == [s for s, _ in ENCODER_SETTINGS]
    plain, corrected = report["settings"]["--no-colour-correct"], report["settings"]["--colour-correct"]
    assert corrected["bytes"] > plain["bytes"] and corrected["psnr_yuv"] > plain["psnr_yuv"]
    assert report["settings"]["default"] == corrected                    # one chunk: its keyframe chunk's fit
    assert all(len(v["mean_error_rgb"]) == 3 and 0 <= v["worst_bar"]["bar"] < 8 for v in report["settings"].values())
    colour = {"quality": 3, "mean_error_rgb": [0, 0, 0], "mean_abs_error_rgb": [0, 0, 0], "bars": colour_bars(1, 1, 8)[0, 0].tolist(),
              "per_bar_error_rgb": [[0, 0, 0]] * 8}
    text = markdown([{"model": "tiny", "weights_hash": "0" * 12, "command": "x", "frame_positions": [],
                      "rate_points": [], "static_bit_flips": [], "colour": colour, "colour_codec": report}])
    assert "| --refine 10 |" in text and "Through the codec" in text


def test_rate_controlled_chunks_carry_the_map_only_at_the_rate_point_it_was_fitted_at(tok):
    """By default a keyframe chunk's map is carried on by the chunks that continue it, but a map fitted to one rate
    point's decoding misleads at another (measured: 1.5 dB lost at 20 kbit/s on megamind): under --bitrate a
    continuing chunk coded at another rate point (token width or planes) than its keyframe chunk carries none."""
    frames = pattern_frames(45, 24, 40)
    lo, hi = (len(vcodec.compress(frames, tokenizer=tok, quality=q)) * 8 / (45 / 25) for q in (2, 3))
    data = vcodec.compress(frames, tokenizer=tok, bitrate=(lo + hi) / 2)
    chunks = list(bitstream.VcbReader(io.BytesIO(data)).chunks())
    point = lambda c: (c.bits, c.tokens.shape[0])  # noqa: E731
    key, same, other = None, 0, 0
    for c in chunks:
        if not c.continues:
            key = c
        elif point(c) == point(key):
            assert c.colour == key.colour
            same += key.colour is not None
        else:
            assert c.colour is None
            other += key.colour is not None             # (a period whose keyframe has a map: the case that matters)
    assert other >= 1 and same >= 1 and any(c.colour is not None for c in chunks)
