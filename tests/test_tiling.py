"""Big frames run in spatial tiles with the layers' receptive field as overlap: tiled == untiled, exactly; memory
that cannot be had is refused before allocating; decoded pixels do not depend on the thread count."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

import vcodec
import vcodec.tokenizer as tokenizer_mod
from vcodec.errors import ResourceError
from vcodec.io.synthetic import pattern_frames
from vcodec.testing import tiny_tokenizer

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "vcodec" / "samples" / "bikes_17f.mp4"


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer(window_frames=9)


def _frames(n=5, h=75, w=106):
    rng = np.random.default_rng(1)
    base = pattern_frames(n, h, w).astype(np.int16)
    return np.clip(base + rng.integers(-40, 40, base.shape), 0, 255).astype(np.uint8)


def _tiled(tok, monkeypatch, core=3):
    monkeypatch.setattr(tok, "TILE_ABOVE", 0)
    monkeypatch.setattr(tok, "TILE_CORE", core)


def test_margins_are_the_receptive_field_of_the_layers(tok):
    # tiny: encoder stem 4 px + one 1/4-res block (2 convs x 4 px) + one 1/8-res block (2 x 8 px) = 28 px
    #       decoder 8 px + one 1/8-res block (16 px) + one 1/4-res block (8 px) + last conv 4 px = 36 px
    assert tok.margins() == (-(-28 // 8) + 1, -(-36 // 8) + 1)
    deeper = tiny_tokenizer(window_frames=9, enc_lo_blocks=3, dec_hi_blocks=4)
    assert deeper.margins() == (-(-60 // 8) + 1, -(-60 // 8) + 1)


def test_tiled_encode_gives_the_untiled_tokens(tok, monkeypatch):
    frames = _frames()
    whole = tok.encode_window(frames, tok.max_levels)
    _tiled(tok, monkeypatch)
    tiled = tok.encode_window(frames, tok.max_levels)
    assert tiled.shape == whole.shape and np.array_equal(tiled, whole)
    # the overlap matters: without it the tiles' edges see zero padding and tokens change
    monkeypatch.setattr(tok, "_margins", (0, 0))
    assert not np.array_equal(tok.encode_window(frames, tok.max_levels), whole)


def test_tiled_decode_gives_the_untiled_frames(tok, monkeypatch):
    frames = _frames()
    tokens = tok.encode_window(frames, tok.max_levels)
    whole = tok.decode_window(tokens, 5, 75, 106)
    _tiled(tok, monkeypatch)
    tiled = tok.decode_window(tokens, 5, 75, 106)
    assert tiled.shape == whole.shape == (5, 75, 106, 3)
    # the same up to float rounding (exact with oneDNN's AVX2 kernels; its AVX-512 ones sum a narrower input in
    # another order: 1 value of these 119,250 differs by 1)
    change = np.abs(tiled.astype(int) - whole)
    assert change.max() <= 1 and (change > 0).mean() <= 1e-4
    monkeypatch.setattr(tok, "_margins", (0, 0))   # without the overlap nearly every value changes, by up to 126
    assert (np.abs(tok.decode_window(tokens, 5, 75, 106).astype(int) - whole) > 1).mean() > 0.5


def test_tiles_through_the_api_round_trip(tok, monkeypatch):
    """Tiles give the same bytes and frames; with a colour correction (the default encoder's) the frames may differ
    by a level where the decoder's floats (the same up to their last bits) land on either side of a rounding."""
    frames = _frames(7, 40, 57)
    data, corrected = (vcodec.compress(frames, tokenizer=tok, colour=c) for c in (False, None))
    whole, whole_corrected = (vcodec.decompress(d, tokenizer=tok) for d in (data, corrected))
    _tiled(tok, monkeypatch, core=2)
    assert vcodec.compress(frames, tokenizer=tok, colour=False) == data
    assert vcodec.compress(frames, tokenizer=tok) == corrected
    assert np.array_equal(vcodec.decompress(data, tokenizer=tok), whole)
    change = np.abs(vcodec.decompress(corrected, tokenizer=tok).astype(int) - whole_corrected)
    assert change.max() <= 1 and np.count_nonzero(change) <= 1e-3 * change.size


def test_decode_that_cannot_fit_is_refused_before_allocating(tok, monkeypatch):
    data = vcodec.compress(_frames(3, 40, 57), tokenizer=tok)
    monkeypatch.setattr(tokenizer_mod, "available_memory", lambda: 10_000)
    with pytest.raises(ResourceError, match=r"decoding a 3-frame window of 57x40 needs about .* GiB of memory"):
        vcodec.decompress(data, tokenizer=tok)


def test_decoded_frames_do_not_depend_on_the_thread_count(tmp_path):
    """The shipped model on the sample clip: before decoding ran one thread per operation, 35 values of these
    17 frames differed by 1 between OMP_NUM_THREADS=1 and 2 (oneDNN splits its sums by thread count)."""
    vcb = tmp_path / "bikes.vcb"
    vcodec.encode_video(SAMPLE, vcb, model="default", device="cpu")
    outs = []
    for threads in (1, 2):
        out = tmp_path / f"t{threads}.y4m"
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONPATH=str(ROOT))
        p = subprocess.run([sys.executable, "-m", "vcodec.cli", "decode", str(vcb), "-o", str(out), "--device", "cpu",
                            "--json"], capture_output=True, env=env, timeout=600)
        assert p.returncode == 0, p.stderr.decode()
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]


def test_one_thread_per_op_restores_the_thread_count(tok):
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        tok.decode_window(tok.encode_window(_frames(1, 16, 16), 1), 1, 16, 16)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)


def test_encode_that_cannot_fit_is_refused_before_reading(tok, monkeypatch, tmp_path):
    from vcodec.io.synthetic import write_clip

    src = tmp_path / "in.y4m"
    write_clip(src, width=64, height=48, num_frames=3, codec="rawvideo", pix_fmt="yuv420p")
    monkeypatch.setattr(tokenizer_mod, "available_memory", lambda: 10_000)
    with pytest.raises(ResourceError, match=r"encoding a 9-frame window of 64x48 needs about"):
        vcodec.encode_video(src, tmp_path / "o.vcb", tokenizer=tok)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.y4m"]


def test_allocation_failures_are_resource_errors(tok, monkeypatch):
    def fail(*a, **k):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory")

    monkeypatch.setattr(tok, "encode_window", fail)
    with pytest.raises(ResourceError, match="out of memory"):
        vcodec.compress(_frames(1, 8, 8), tokenizer=tok)


def _whole_window_reference(tok, frames, tokens):
    """The network run on the whole window at once (no stream), as the tokenizer did before it streamed."""
    from vcodec.model.pixels import frames_to_model, model_to_frames
    n, H, W, _ = frames.shape
    lh, lw = tok.config.latent_size(H, W)
    sf = tok.config.spatial_factor
    rows, cols = np.minimum(np.arange(lh * sf), H - 1), np.minimum(np.arange(lw * sf), W - 1)
    padded = frames[np.minimum(np.arange(tok.config.padded_frames(n)), n - 1)][:, rows][:, :, cols]
    with torch.inference_mode():
        enc = tok.model.encode_indices(frames_to_model(torch.from_numpy(padded)[None]), tok.max_levels)
        dec = tok.model.decode_indices(torch.from_numpy(tokens.astype(np.int64))[None])
    return enc[0].numpy().astype(np.uint32), model_to_frames(dec[:, :, :n, :H, :W])[0].numpy()


@pytest.mark.parametrize("tiled", [False, True])
def test_big_frames_stream_one_latent_frame_at_a_time(tok, monkeypatch, tiled):
    """Tiled (big) frames run the causal networks as a stream, each tile its own (the first frame, then groups of
    4): tokens equal the whole window's, frames within one level of it, progress every latent frame (<= 4 frames).
    Untiled frames run as one piece: exactly the whole window's tokens and frames."""
    frames = _frames(n=7)
    if tiled:
        _tiled(tok, monkeypatch)
    steps = []
    tokens = tok.encode_window(frames, tok.max_levels, progress=steps.append)
    pieces = list(tok.decode_pieces(tokens, 7, 75, 106))
    assert steps == [len(p) for p in pieces] == ([1, 4, 2] if tiled else [7])   # 7 frames: the rest is padding
    joined = np.concatenate(pieces)
    assert np.array_equal(joined, tok.decode_window(tokens, 7, 75, 106))
    ref_tokens, ref_frames = _whole_window_reference(tok, frames, tokens)
    assert np.array_equal(tokens, ref_tokens)
    diff = np.abs(joined.astype(np.int16) - ref_frames)
    assert diff.max() <= (1 if tiled else 0) and (diff > 0).mean() < 1e-3


@pytest.mark.parametrize("tiled", [False, True])
def test_windows_that_continue_a_stream_code_as_one_window(tok, monkeypatch, tiled):
    """A 5-frame window, then 4- and 3-frame windows that continue its stream (StreamState): the tokens are exactly
    those of the 12 frames as one window, the frames those of decoding it at once (within one level),
    and a window that ends inside a latent frame (3 of 4 frames) leaves the stream empty: the next is a keyframe."""
    from vcodec.stream import StreamState
    frames = _frames(n=12)
    if tiled:
        _tiled(tok, monkeypatch)
    whole = tok.encode_window(frames, tok.max_levels)
    enc, parts = StreamState(), []
    for a, b in ((0, 5), (5, 9), (9, 12)):
        parts.append(tok.encode_window(frames[a:b], tok.max_levels, stream=enc))
    assert [p.shape[1] for p in parts] == [2, 1, 1] and not enc.started
    assert np.array_equal(np.concatenate(parts, axis=1), whole)
    dec = StreamState()
    out = np.concatenate([tok.decode_window(p, n, 75, 106, stream=dec) for p, n in zip(parts, (5, 4, 3))])
    diff = np.abs(out.astype(np.int16) - tok.decode_window(whole, 12, 75, 106))  # (sums split differently)
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3 and not dec.started
    tok.decode_window(parts[0], 5, 75, 106, stream=dec)
    with pytest.raises(ValueError, match="latent frames"):   # a grid that does not fit a continuing window
        tok.decode_window(parts[1], 5, 75, 106, stream=dec)


def test_frames_from_720p_stream_without_tiles(tok, monkeypatch):
    """From STREAM_FROM pixels (1280x720) the networks run one latent frame at a time even untiled: the same
    tokens, progress every latent frame, frames within one level of the whole window's."""
    frames = _frames(n=7)
    whole = tok.encode_window(frames, tok.max_levels)
    whole_frames = tok.decode_window(whole, 7, 75, 106)
    monkeypatch.setattr(tok, "STREAM_FROM", 75 * 106)
    steps = []
    assert np.array_equal(tok.encode_window(frames, tok.max_levels, progress=steps.append), whole)
    pieces = list(tok.decode_pieces(whole, 7, 75, 106))
    assert steps == [len(p) for p in pieces] == [1, 4, 2]
    diff = np.abs(np.concatenate(pieces).astype(np.int16) - whole_frames)
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3


def test_untiled_frames_run_as_two_strips_that_swap_edges(tok, monkeypatch):
    """From STRIPS_FROM latent columns an untiled frame decodes as two strips side by side, one thread each, that
    swap their edge columns before each convolution: no overlap, the layout depends on the frame size only, and the
    pixels are the whole frame's (within float rounding: one level at most, almost all equal)."""
    frames = _frames()
    monkeypatch.setattr(tok, "STRIPS_FROM", 10**6)
    whole_tokens = tok.encode_window(frames, tok.max_levels)
    whole = tok.decode_window(whole_tokens, 5, 75, 106)
    monkeypatch.setattr(tok, "STRIPS_FROM", 4)
    assert tok._layout(75, 106, 10, 14, 3) == ([((0, 10, 0, 7),) * 2, ((0, 10, 7, 14),) * 2], True)
    assert tok._layout(75, 106, 10, 3, 3) == ([((0, 10, 0, 3),) * 2], False)
    assert tok._layout(75, 106, 10, 14, 3, strips=False) == ([((0, 10, 0, 14),) * 2], False)   # the encoder's
    assert np.array_equal(tok.encode_window(frames, tok.max_levels), whole_tokens)
    strips = tok.decode_window(whole_tokens, 5, 75, 106)
    diff = np.abs(strips.astype(np.int16) - whole)
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3
    # the swapped edges matter: strips that see zeros past their inner edge decode other pixels
    monkeypatch.setattr(tokenizer_mod._PieceRunner, "__init__", _runner_without_exchange(tokenizer_mod._PieceRunner.__init__))
    assert not np.array_equal(tok.decode_window(whole_tokens, 5, 75, 106), strips)


def _runner_without_exchange(init):
    def patched(self, *args, **kwargs):
        init(self, *args, **kwargs)
        if self.exchange is not None:
            self.exchange.widen = lambda index, x, reach: torch.nn.functional.pad(x, (reach, reach))
    return patched


def test_a_failing_strip_stops_the_other(tok, monkeypatch):
    """A strip that fails breaks the lock step: the call raises instead of leaving the other strip waiting."""
    from vcodec.model.layers import HaloExchange

    monkeypatch.setattr(tok, "STRIPS_FROM", 4)
    tokens = tok.encode_window(_frames(), tok.max_levels)
    widen = HaloExchange.widen

    def failing(self, index, x, reach):
        if index == 1:
            raise MemoryError("strip 1")
        return widen(self, index, x, reach)

    monkeypatch.setattr(HaloExchange, "widen", failing)
    with pytest.raises((MemoryError, threading.BrokenBarrierError)):
        tok.decode_window(tokens, 5, 75, 106)
    monkeypatch.setattr(HaloExchange, "widen", widen)
    monkeypatch.setattr(tok, "STRIPS_FROM", 10**6)
    assert tok.decode_window(tokens, 5, 75, 106).shape == (5, 75, 106, 3)   # the model's own network whole again
