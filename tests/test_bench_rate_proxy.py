"""benchmarks.rate_proxy: token grids to bits, and proxies that learn what is predictable."""
import numpy as np
import torch

from benchmarks.rate_proxy import fit, grid_bits
from vcodec.model.lfq import plane_mask


def test_grid_bits_are_the_tokens_bits():
    tokens = np.random.default_rng(0).integers(0, 2**8, (2, 3, 4, 5)).astype(np.uint32)
    bits = grid_bits(tokens, 8)
    assert bits.shape == (1, 2, 8, 3, 4, 5)
    weights = torch.tensor([1 << k for k in range(8)], dtype=torch.float32).view(1, 1, 8, 1, 1, 1)
    assert np.array_equal((bits * weights).sum(2)[0].numpy().astype(np.uint32), tokens)


def test_fitted_proxies_learn_predictable_bits():
    rng = np.random.default_rng(1)
    tokens = np.zeros((2, 3, 6, 6), np.uint32)
    tokens[:, :, :, :] = rng.integers(0, 2**4, (2, 1, 6, 6))   # the same tokens in every latent frame
    g = grid_bits(tokens, 4)
    mask = plane_mask(4, 2, 2, 4, 1)
    for kind in ("contexts", "mix"):
        proxy = fit(kind, [g], [(4, 2)], planes=2, token_bits=4, steps=150, lr=0.05)
        with torch.no_grad():
            assert float(proxy(g, mask)) < 0.6 * float(mask.sum()) * g[0, 0, 0].numel()  # well below 1 bit per bit
