"""The tokenizer network: shapes, exact causality, LFQ round trips, nested rate levels, checkpoints."""
import numpy as np
import pytest
import torch

from vcodec.model import TokenizerConfig, VideoTokenizer
from vcodec.model.checkpoint import atomic_save, build_from_checkpoint, load_checkpoint, weights_hash
from vcodec.model.layers import (channels_to_time, depth_to_space, haar2d, ihaar2d, space_to_depth,
                                 time_to_channels)
from vcodec.model.lfq import ResidualLFQ
from vcodec.tokenizer import Tokenizer, latent_frames

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
    assert torch.equal(channels_to_time(time_to_channels(x, 4), 4), x)
    assert torch.equal(depth_to_space(space_to_depth(x)), x)


@pytest.mark.parametrize("frames", [1, 2, 5, 16, 17, 18])
@pytest.mark.parametrize("size", [(2, 2), (33, 17), (24, 40)])
def test_shapes_any_length_and_size(frames, size):
    tok = Tokenizer.from_config(TokenizerConfig.tiny())
    H, W = size
    video = np.random.default_rng(0).integers(0, 256, (frames, H, W, 3), dtype=np.uint8)
    tokens = tok.encode_window(video, levels=2)
    assert tokens.dtype == np.uint32
    assert tokens.shape == (2, latent_frames(frames), -(-H // 8), -(-W // 8))
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
    q = ResidualLFQ(bits=8, max_levels=3, group_bits=4).eval()
    z = torch.rand(2, 8, 3, 4, 5) * 2 - 1
    out = q(z, 3)
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
    q = ResidualLFQ(bits=8, max_levels=2, group_bits=4).train()
    z = (torch.rand(2, 8, 2, 4, 4) * 2 - 1).requires_grad_()
    out = q(z, torch.tensor([1, 2]))
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
