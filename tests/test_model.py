"""The tokenizer network: shapes, exact causality, LFQ round trips, nested rate levels, checkpoints."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vcodec.model import TokenizerConfig, VideoTokenizer
from vcodec.model.checkpoint import atomic_save, build_from_checkpoint, load_checkpoint, weights_hash
from vcodec.model.layers import (
    block_pixels,
    depth_to_space,
    haar2d,
    haar_block_matrix,
    ihaar2d,
    mix_in_channels,
    mix_out_channels,
    pixel_blocks,
    space_to_depth,
)
from vcodec.model.lfq import ResidualLFQ, plane_mask
from vcodec.tokenizer import Tokenizer

torch.set_num_threads(1)


def _model(seed=0):
    torch.manual_seed(seed)
    m = VideoTokenizer(TokenizerConfig.tiny()).eval()
    with torch.no_grad():   # the zero-initialised residual branches would hide causality bugs
        for p in m.parameters():
            if p.dim() > 1:
                p.normal_(0, 0.3)
    return m


def test_invertible_reshapes():
    x = torch.randn(2, 3, 9, 16, 24)
    assert torch.allclose(ihaar2d(haar2d(x)), x, atol=1e-5)
    assert torch.equal(block_pixels(pixel_blocks(x, 4), 4), x)
    assert torch.equal(block_pixels(pixel_blocks(x[:, :, 1:], 4, first=False), 4, first=False), x[:, :, 1:])
    assert torch.equal(depth_to_space(space_to_depth(x)), x)


def _time_patched(x, factor=4):
    """The causal time patching spelled out: frame 0 repeated in front, then factor frames' channels side by side."""
    x = torch.cat([x[:, :, :1].expand(-1, -1, factor - 1, -1, -1), x], dim=2)
    B, C, T, H, W = x.shape
    return x.reshape(B, C, T // factor, factor, H, W).permute(0, 3, 1, 2, 4, 5).reshape(B, factor * C, -1, H, W)


def test_pixel_blocks_are_the_causal_time_patching_of_4x4_blocks():
    x = torch.randn(2, 3, 9, 16, 24)
    blocks = pixel_blocks(x, 4)                                 # (2, 192, 3, 4, 6)
    assert torch.equal(blocks[:, 48 * 3:, 1], pixel_blocks(x[:, :, 4:5], 1)[:, :, 0])   # frame 4, last of group 1
    assert torch.equal(blocks[:, :48, 0], blocks[:, 48 * 3:, 0])                         # frame 0 stands for all 4
    assert blocks[0, 16 * 1 + 4 * 2 + 3, 0, 1, 2] == x[0, 1, 0, 4 + 2, 8 + 3]           # channel (c, dy, dx)


def test_haar_taken_into_the_edge_convolutions():
    """The stem with the Haar matrix in its weights, on pixel blocks, is the stem on two levels of Haar of the
    frames; to_pixels with it in its weights, followed by block_pixels, is the inverse Haar of to_pixels' output."""
    torch.manual_seed(0)
    x = torch.randn(1, 3, 9, 16, 24, dtype=torch.float64)
    M = haar_block_matrix()
    assert torch.allclose(M @ M.T, torch.eye(48, dtype=torch.float64))
    haar = haar2d(haar2d(x))                                    # (1, 48, 9, 4, 6)
    assert torch.allclose(torch.einsum("km,bmthw->bkthw", M, pixel_blocks(x, 1)), haar)
    w = torch.randn(8, 192, 1, 3, 3, dtype=torch.float64)
    assert torch.allclose(F.conv3d(pixel_blocks(x, 4), mix_in_channels(w, M), padding=(0, 1, 1)),
                          F.conv3d(_time_patched(haar), w, padding=(0, 1, 1)))
    z = torch.randn(1, 8, 3, 4, 6, dtype=torch.float64)
    w, b = torch.randn(192, 8, 1, 3, 3, dtype=torch.float64), torch.randn(192, dtype=torch.float64)
    coeffs = F.conv3d(z, w, b, padding=(0, 1, 1)).reshape(1, 4, 48, 3, 4, 6).permute(0, 2, 3, 1, 4, 5)
    coeffs = coeffs.reshape(1, 48, 12, 4, 6)
    expected = ihaar2d(ihaar2d(coeffs))[:, :, 3:]               # frames 3.. (frame 0's group is its repetition)
    assert torch.allclose(block_pixels(F.conv3d(z, *mix_out_channels(w, b, M), padding=(0, 1, 1)), 4), expected)


@pytest.mark.parametrize("frames", [1, 2, 5, 16, 17, 18])
@pytest.mark.parametrize("size", [(2, 2), (33, 17), (24, 40)])
def test_shapes_any_length_and_size(frames, size):
    tok = Tokenizer.from_config(TokenizerConfig.tiny())
    H, W = size
    video = np.random.default_rng(0).integers(0, 256, (frames, H, W, 3), dtype=np.uint8)
    tokens = tok.encode_window(video, levels=2)
    assert tokens.dtype == np.uint32
    assert tokens.shape == (2, tok.config.latent_frames(frames), -(-H // 8), -(-W // 8))
    assert tok.config.latent_size(H, W) == (-(-H // 8), -(-W // 8))
    assert int(tokens.max()) < 2 ** tok.token_bits
    out = tok.decode_window(tokens, frames, H, W)
    assert out.shape == video.shape and out.dtype == np.uint8


def test_exact_causality():
    """Latents of frames 0..t never depend on later frames."""
    m = _model()
    x = torch.rand(1, 3, 13, 16, 16) * 2 - 1
    y = x.clone()
    y[:, :, 6:] = torch.rand_like(y[:, :, 6:]) * 2 - 1   # change frames 6.. (latent frame 2 covers 5..8)
    with torch.no_grad():
        zx, zy = m.encoder(x), m.encoder(y)
        assert torch.equal(zx[:, :, :2], zy[:, :, :2])     # latent frames 0 (frame 0) and 1 (frames 1..4)
        assert not torch.allclose(zx[:, :, 2:], zy[:, :, 2:])
        # the decoder is causal too: output frames 0..4 depend only on latent frames 0..1
        rx, ry = m.decoder(zx), m.decoder(zy)
        assert torch.equal(rx[:, :, :5], ry[:, :, :5])


def test_lfq_indices_codes_round_trip():
    q = ResidualLFQ(channels=8, token_bits=8, max_levels=3, group_bits=4).eval()
    z = torch.rand(2, 8, 3, 4, 5) * 2 - 1
    out = q(z)
    codes = q.indices_to_codes(out.indices)
    assert torch.allclose(codes, out.quantized, atol=1e-6)
    # indices -> codes -> indices is the identity
    idx = torch.randint(0, 256, (2, 3, 3, 4, 5))
    _, signs = q.quantize(q.indices_to_codes(idx), 3)
    assert torch.equal(q.signs_to_indices(signs), idx)


def test_nested_levels_decode_with_fewer_levels():
    """The first l levels of a token grid are exactly the grid encoded with l levels."""
    m = _model()
    x = torch.rand(1, 3, 5, 16, 16) * 2 - 1
    full = m.encode_indices(x, 3)
    for levels in (1, 2):
        assert torch.equal(m.encode_indices(x, levels), full[:, :levels])
        assert m.decode_indices(full[:, :levels]).shape == x.shape
    # and more levels reconstruct the latent more precisely
    z = m.encoder(x)
    errs = [(m.quantizer.indices_to_codes(full[:, :l]) - z).abs().mean().item() for l in (1, 2, 3)]
    assert errs[0] > errs[1] > errs[2]


def test_entropy_penalty_runs_in_training_mode():
    q = ResidualLFQ(channels=8, token_bits=8, max_levels=2, group_bits=4).train()
    z = (torch.rand(2, 8, 2, 4, 4) * 2 - 1).requires_grad_()
    out = q(z, plane_mask(8, torch.tensor([1, 2]), 2, 8, 2))
    out.aux_loss.backward()
    assert z.grad is not None and torch.isfinite(z.grad).all()
    assert len(out.stats["codebook_entropy_bits"]) == 2


def test_checkpoint_save_load_reproduces_outputs(tmp_path):
    m = _model(3)
    ck = {"config": m.cfg.to_dict(), "model": m.state_dict(), "ema": None}
    atomic_save(ck, tmp_path / "m.pt")
    m2 = build_from_checkpoint(load_checkpoint(tmp_path / "m.pt"))
    x = torch.rand(1, 3, 5, 16, 16) * 2 - 1
    with torch.no_grad():
        assert torch.equal(m.encode_indices(x, 3), m2.encode_indices(x, 3))
        idx = m.encode_indices(x, 3)
        assert torch.equal(m.decode_indices(idx), m2.decode_indices(idx))
    assert weights_hash(m.state_dict()) == weights_hash(m2.state_dict())


def test_weights_hash_independent_of_dict_order():
    m = _model()
    sd = m.state_dict()
    reordered = dict(reversed(list(sd.items())))
    assert weights_hash(sd) == weights_hash(reordered)
    sd2 = dict(sd)
    k = next(iter(sd2))
    sd2[k] = sd2[k] + 1
    assert weights_hash(sd2) != weights_hash(sd)


def test_encoder_and_decoder_load_separately():
    """Tokens need only the encoder's (and quantizer's) weights, frames only the decoder's (and quantizer's): each half
    loads into a model whose other half is different, and gives the same result; without loading, it does not."""
    m = _model(0)
    other = _model(1)                      # different weights everywhere
    x = torch.rand(1, 3, 5, 16, 16) * 2 - 1
    with torch.no_grad():
        idx = m.encode_indices(x, 2)
        frames = m.decode_indices(idx)
        assert not torch.equal(other.encode_indices(x, 2), idx)
        assert not torch.allclose(other.decode_indices(idx), frames)
        enc_only = _model(1)
        enc_only.encoder.load_state_dict(m.encoder.state_dict())
        enc_only.quantizer.load_state_dict(m.quantizer.state_dict())
        assert torch.equal(enc_only.encode_indices(x, 2), idx)
        dec_only = _model(1)
        dec_only.decoder.load_state_dict(m.decoder.state_dict())
        dec_only.quantizer.load_state_dict(m.quantizer.state_dict())
        assert torch.equal(dec_only.decode_indices(idx), frames)
    # the two halves share no parameters
    assert not {id(p) for p in m.encoder.parameters()} & {id(p) for p in m.decoder.parameters()}


def test_decode_deterministic_across_thread_counts():
    tok = Tokenizer.from_config(TokenizerConfig.tiny())
    video = np.random.default_rng(1).integers(0, 256, (5, 24, 32, 3), dtype=np.uint8)
    tokens = tok.encode_window(video, 3)
    outs = []
    for n in (1, 2):
        torch.set_num_threads(n)
        outs.append(tok.decode_window(tokens, 5, 24, 32))
        assert np.array_equal(tok.encode_window(video, 3), tokens)
    torch.set_num_threads(1)
    assert np.array_equal(outs[0], outs[1])


# ---- v2: several token planes per level and nested (bits, planes) rate points ----------------------------


def _two_group_quantizer():
    return ResidualLFQ(channels=16, token_bits=8, max_levels=2, group_bits=4).eval()


def test_planes_round_trip_and_prefixes_match_masks():
    """Every (bits, planes) prefix of the full token grid decodes to what the training mask keeps."""
    q = _two_group_quantizer()
    z = torch.rand(2, 16, 3, 4, 5) * 2 - 1
    full = q(z)
    assert full.indices.shape == (2, 4, 3, 4, 5)
    assert torch.allclose(q.indices_to_codes(full.indices), full.quantized, atol=1e-6)
    for bits, planes in [(1, 1), (3, 1), (8, 1), (8, 2), (8, 3), (5, 4)]:
        masked = q(z, plane_mask(bits, planes, 4, 8, 2)).quantized
        prefix = full.indices[:, :planes] & ((1 << bits) - 1)
        assert torch.allclose(q.indices_to_codes(prefix, bits=bits), masked, atol=1e-6), (bits, planes)
    # plane order: plane 1 holds level 0 of channels 8..15, plane 2 level 1 of channels 0..7
    only_plane1 = torch.zeros_like(full.indices[:, :2])
    only_plane1[:, 1] = 0xFF
    codes = q.indices_to_codes(only_plane1)
    assert torch.all(codes[:, 8:] == 0.5) and torch.all(codes[:, :8] == -0.5)   # plane 0 all-zero bits = -1/2


def test_bits_are_straight_through_and_match_indices():
    q = _two_group_quantizer().train()
    z = (torch.rand(2, 16, 3, 4, 5) * 2 - 1).requires_grad_()
    out = q(z)
    weights = (2 ** torch.arange(8, dtype=torch.float64)).view(1, 1, -1, 1, 1, 1)
    assert torch.equal((out.bits.detach().double() * weights).sum(2).long(), out.indices)
    out.bits[:, 0].sum().backward()              # pushing level-0 bits of group 0 up moves those channels
    assert (z.grad[:, :8] > 0).any() and torch.all(z.grad[:, :8] >= 0)


def test_rate_proxy_contexts_equal_the_coders():
    """The training rate term sees exactly the contexts the range coder uses."""
    from bitstream import coder
    from vcodec.model.rate import bit_contexts
    rng = np.random.default_rng(5)
    P, K, T, H, W = 3, 5, 4, 6, 7
    bits = rng.integers(0, 2, (P, K, T, H, W))
    ctx = bit_contexts(torch.from_numpy(bits)[None].float())[0].numpy()
    model = coder._Model(P, K, H, W, None)
    planes = bits.transpose(2, 0, 3, 4, 1).reshape(T, P, H * W, K).astype(np.uint8)   # (T, P, HW, K)
    for t in range(T):
        for lv in range(P):
            for g in (0, 1):
                nb = (planes[t - 1, lv] if t else None) if g == 0 else planes[t, lv]
                want = model.contexts(g, nb, planes[t - 1, lv] if t else None, planes[t, lv - 1] if lv else None)
                idx = model.groups[g][0]
                got = ctx[lv, :, t].reshape(K, H * W)[:, idx].T + model.kbase
                assert np.array_equal(got, want), (t, lv, g)


def test_rate_proxy_prefers_predictable_bits():
    from vcodec.model.rate import ContextRateModel
    rm = ContextRateModel(planes=1, token_bits=4)
    with torch.no_grad():
        rm.logits.fill_(3.0)                       # P(bit = 1) ~ 0.95 in every context
    ones, zeros = torch.ones(1, 1, 4, 2, 3, 3), torch.zeros(1, 1, 4, 2, 3, 3)
    mask = torch.ones(1, 1, 4)
    assert rm(ones, mask).item() < 0.1 * rm(zeros, mask).item()
    assert rm(ones, torch.zeros(1, 1, 4)).item() == 0.0


def test_mix_rate_proxy_sees_what_the_coder_sees():
    """MixRateModel (coder versions 2-3's logistic model): a bit's logit depends on the lower blocks of its own
    token, never on its own block or higher, nor on later latent frames or finer planes; uncoded bits cost
    nothing; predictable bits cost less; the gradient reaches the bits."""
    from vcodec.model.rate import MixRateModel
    torch.manual_seed(0)
    rm = MixRateModel(planes=2, token_bits=8)                  # version 3: blocks of 2 bits
    with torch.no_grad():
        for prm in rm.parameters():
            prm.normal_()
    bits = (torch.rand(1, 2, 8, 3, 4, 5) > 0.5).float()
    mask = torch.ones(1, 2, 8)
    base = rm.logits(bits, mask)
    flipped = bits.clone()
    flipped[0, 1, 2, 1, 2, 3] = 1 - flipped[0, 1, 2, 1, 2, 3]   # plane 1, bit 2 (block 1), frame 1
    diff = (rm.logits(flipped, mask) - base).abs() > 1e-6
    token = diff[0, 1, :, 1, 2, 3]
    assert not token[:4].any() and token[4:].all()              # its own block and below: unchanged; above: changed
    assert not diff[:, :, :, :1].any() and not diff[:, :1].any()  # earlier frames and the coarser plane: unchanged
    assert rm(bits, torch.zeros(1, 2, 8)).item() == 0.0
    sure = MixRateModel(planes=1, token_bits=4)
    with torch.no_grad():
        sure.bias.fill_(4.0)                                    # P(bit = 1) ~ 0.98 everywhere
    ones, zeros = torch.ones(1, 1, 4, 2, 3, 3), torch.zeros(1, 1, 4, 2, 3, 3)
    assert sure(ones, torch.ones(1, 1, 4)).item() < 0.1 * sure(zeros, torch.ones(1, 1, 4)).item()
    b = bits.clone().requires_grad_()
    rm(b, mask).sum().backward()
    assert b.grad.abs().sum() > 0


def test_mix_rate_proxy_from_tables_is_the_coders_logistic_stage():
    """MixRateModel.from_tables: every bit's logit is the one the coder's logistic stage forms from the same tables
    (the integer sum of weights x inputs, in units of 2^-8), bit for bit, over frames, planes and both groups."""
    import bitstream
    from bitstream.coder import _mix_walk
    from bitstream.coder_mix import lower_mask
    from vcodec.model.rate import MixRateModel
    rng = np.random.default_rng(0)
    k, planes, frames, h, w = 8, 2, 3, 5, 6
    smooth = rng.integers(0, 2, (planes, 1, h, w, k)) ^ (rng.random((planes, frames, h, w, k)) < 0.2)
    grid = (smooth.astype(np.uint32) << np.arange(k, dtype=np.uint32)).sum(-1).astype(np.uint32)
    tables = bitstream.fit_tables([grid], k, version=3)
    weights = np.asarray(tables.weights)
    proxy = MixRateModel.from_tables(weights, version=3)
    bits = torch.from_numpy(((grid[..., None] >> np.arange(k)) & 1).astype(np.float32)).permute(0, 4, 1, 2, 3)
    logits = proxy.logits(bits[None], torch.ones(1, planes, k))[0]           # (P, K, T, h, w)
    mask = lower_mask(k, 2)                                                   # version 3's blocks of 2 bits
    seen = []

    def check(level, group, model, group_bits):
        x, nbprev = model.inputs
        signs = (2 * group_bits.astype(np.int64) - 1)
        wt = weights[level, group]
        z = signs @ (wt[:, :k] * mask).T + x.astype(np.int64) @ wt[:, k:4 * k].T + nbprev * wt[:, 4 * k] \
            + wt[:, 4 * k + 1]
        t = len(seen) // (2 * planes)
        expect = logits[level, :, t].reshape(k, -1)[:, model.groups[group][0]].T.numpy()
        np.testing.assert_allclose(expect, z / 256.0, atol=1e-4)
        seen.append((level, group))

    for _ in _mix_walk(grid, k, None, 3, check):
        pass
    assert len(seen) == frames * planes * 2


def test_v2_config_round_trips_and_orders_rate_points():
    cfg = TokenizerConfig.v2()
    assert TokenizerConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.planes == 4 and cfg.channels == 64
    raw = [bits * planes for bits, planes in cfg.qualities]
    assert raw == sorted(raw) and len(raw) >= 6
    tok = Tokenizer.from_config(TokenizerConfig(name="t", hi_channels=8, lo_channels=16, enc_hi_blocks=1,
                                                enc_lo_blocks=1, dec_lo_blocks=1, dec_hi_blocks=1, token_bits=8,
                                                latent_channels=16, max_levels=2, entropy_group_bits=4,
                                                window_frames=9, quality_points=((2, 1), (8, 1), (8, 4))))
    video = np.random.default_rng(0).integers(0, 256, (5, 16, 24, 3), dtype=np.uint8)
    for q in (1, 2, 3):
        bits, planes = tok.quality_point(q)
        tokens = tok.encode_window(video, planes, bits)
        assert tokens.shape[0] == planes and int(tokens.max()) < 2 ** bits
        assert tok.decode_window(tokens, 5, 16, 24, bits).shape == video.shape


def test_config_geometry_and_strict_loading(tmp_path):
    cfg = TokenizerConfig.tiny()
    assert (cfg.latent_frames(1), cfg.latent_frames(5), cfg.latent_frames(6)) == (1, 2, 3)
    assert cfg.padded_frames(6) == 9 and cfg.latent_size(17, 33) == (3, 5) and cfg.spatial_factor == 8
    d = cfg.to_dict()
    assert "spatial_factor" not in d and TokenizerConfig.from_dict(d) == cfg
    assert TokenizerConfig.from_dict({**d, "spatial_factor": 8}) == cfg  # older checkpoints carry it
    with pytest.raises(ValueError, match="spatial_factor=16"):
        TokenizerConfig.from_dict({**d, "spatial_factor": 16})
    with pytest.raises(ValueError, match="unknown TokenizerConfig field.*'wavelet_levels'"):
        TokenizerConfig.from_dict({**d, "wavelet_levels": 3})
    atomic_save({"format": "vcodec-model-9", "config": d}, tmp_path / "future.pt")
    with pytest.raises(ValueError, match="unknown checkpoint format 'vcodec-model-9'"):
        load_checkpoint(tmp_path / "future.pt")


def test_shipped_checkpoint_config_still_loads():
    """The shipped v1.pt (the first default) was written with the legacy spatial_factor key."""
    from vcodec.models import model_path

    ck = load_checkpoint(model_path("v1"))
    assert ck["config"].get("spatial_factor") == 8
    assert TokenizerConfig.from_dict(ck["config"]).spatial_factor == 8


def test_streaming_in_pieces_equals_the_whole_sequence():
    """Fed as frame 0, then groups of 4 frames, the causal encoder and decoder give the outputs of the whole
    sequence at once (what a continuous stream needs: state carried across pieces)."""
    from vcodec.model.layers import streaming
    m = _model(4)
    x = torch.rand(1, 3, 17, 16, 24) * 2 - 1
    with torch.no_grad():
        z = m.encoder(x)
        with streaming(m.encoder) as s:
            parts = [m.encoder(x[:, :, :1]), m.encoder(x[:, :, 1:9], first=False), m.encoder(x[:, :, 9:17], first=False)]
            zs = torch.cat(parts, dim=2)
            s.reset()                                   # a keyframe: the stream starts again
            again = m.encoder(x[:, :, :1])
        assert torch.allclose(zs, z, atol=1e-5) and torch.allclose(again, z[:, :, :1], atol=1e-6)
        rec = m.decoder(z)
        with streaming(m.decoder):
            rs = torch.cat([m.decoder(z[:, :, :1]), m.decoder(z[:, :, 1:3], first=False),
                            m.decoder(z[:, :, 3:], first=False)], dim=2)
        assert rs.shape == rec.shape and torch.allclose(rs, rec, atol=1e-5)
        # outside the context, history is gone: a lone group is coded as if nothing came before
        assert all(c.history is None and not c.streaming for c in m.modules() if hasattr(c, "history"))
