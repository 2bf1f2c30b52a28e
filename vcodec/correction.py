"""Per-chunk colour correction (format version 4, FORMAT.md 4.2.1): an affine map of BT.709 Y'CbCr that the encoder
fits to the source and the decoder applies to its output, after the network and before rounding.

Why: the tokenizer's chroma is its weakest part. Its decoded chroma is only partly correlated with the source's
(the decoder invents chroma detail, and at low rates shifts whole colours), so pulling it towards what the source
has, by the least-squares affine map of the chunk, buys 0.1-2.5 dB of PSNR-YUV for 24 bytes a chunk: measured on the
standard suite with the default encoder, -8% to -35% BD-rate in PSNR-YUV, -0.2% to -2.2% in PSNR-Y
(``/work/runs/s19/affine_suite.py``, README). Fitting needs the decoded frames, so the encoder fits only when it
decodes anyway (``--refine``) or is asked to (``--colour-correct``).

Layouts: frames are uint8 ``(n, H, W, 3)`` RGB; the decoder's video is float ``(B, 3, T, H, W)`` on the model's
[-1, 1] scale; a correction is 12 ints (3 rows of 4, in 1/4096), rows E'y, E'cb, E'cr of ``A`` in
``out = x + A [x; 1]`` with ``x`` the pixel's (E'y, E'cb, E'cr) on the 0..1 scale.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from bitstream.header import COLOUR_PARAMS
from vcodec.colour import KB, KG, KR
from vcodec.metrics import PSNR_CAP_DB

SCALE = 4096  # a coefficient's unit: 1/4096
COLOUR_BYTES = COLOUR_PARAMS.size  # what a correction adds to its chunk
SAMPLES_PER_FRAME = 1 << 16  # pixels of each frame the fit looks at (a regular grid of them)
DB_PER_DOUBLING = 1.5  # what doubling the bytes buys in PSNR-YUV at the low rate points (model card); prices the bytes
LUMA_SLACK_DB = 0.005  # a correction may not lower the frames' mean PSNR-Y by more than this
_EPS_MSE = 0.25  # (8-bit levels^2) keeps the weight of a near-perfect frame finite

# R'G'B' -> E'y E'cb E'cr on the same scale (vcodec.colour.rgb_to_ycbcr as a matrix)
_TO_YCC = np.array([[KR, KG, KB],
                    [-KR / (2 * (1 - KB)), -KG / (2 * (1 - KB)), 0.5],
                    [0.5, -KG / (2 * (1 - KR)), -KB / (2 * (1 - KR))]])
_FROM_YCC = np.linalg.inv(_TO_YCC)
_WEIGHTS_611 = np.array([6.0, 1.0, 1.0]) / 8.0  # PSNR-YUV's weights (vcodec.metrics.psnr_yuv_611)


def _ycc(frames: np.ndarray) -> np.ndarray:
    # uint8 (..., 3) -> float64 E'y E'cb E'cr (..., 3) on the 0..1 scale
    return (frames.astype(np.float64) / 255.0) @ _TO_YCC.T


def _sample(frames: np.ndarray) -> np.ndarray:
    # uint8 (n, H, W, 3) -> (n, h', w', 3): a regular grid of at most about SAMPLES_PER_FRAME pixels of each frame
    n, height, width, _ = frames.shape
    step = max(1, math.ceil(math.sqrt(height * width / SAMPLES_PER_FRAME)))
    return frames[:, step // 2::step, step // 2::step]


def rgb_affine(colour) -> np.ndarray:
    """A correction (12 ints) -> the float64 (3, 4) map ``[M | b]`` of R', G', B' on the 0..1 scale it amounts to:
    ``out = M rgb + b``."""
    a = np.asarray(colour, np.float64).reshape(3, 4) / SCALE
    m = _FROM_YCC @ (np.eye(3) + a[:, :3]) @ _TO_YCC
    return np.concatenate([m, (_FROM_YCC @ a[:, 3])[:, None]], axis=1)


def apply_to_video(video: torch.Tensor, colour) -> torch.Tensor:
    """The decoder's float video ``(B, 3, T, H, W)`` on the model's [-1, 1] scale, corrected by ``colour`` (12 ints;
    FORMAT.md 4.2.1), same layout and scale, unclipped."""
    affine = rgb_affine(colour)
    m = affine[:, :3]
    bias = 2.0 * affine[:, 3] + m.sum(axis=1) - 1.0  # the map on v = 2 rgb - 1: M v + (M 1 + 2 b - 1)
    m_t = torch.as_tensor(m, dtype=video.dtype, device=video.device)
    b_t = torch.as_tensor(bias, dtype=video.dtype, device=video.device)
    return torch.einsum("ij,bjthw->bithw", m_t, video) + b_t.view(1, 3, 1, 1, 1)


def _apply_u8(frames: np.ndarray, colour) -> np.ndarray:
    # uint8 (..., 3) -> the corrected pixels as a decoder rounds them, uint8 (..., 3)
    affine = rgb_affine(colour)
    rgb = frames.astype(np.float64) / 255.0 @ affine[:, :3].T + affine[:, 3]
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def _frame_mse(ref: np.ndarray, test: np.ndarray) -> np.ndarray:
    # float (n, h, w, 3) Y'CbCr on the 0..1 scale -> (n, 3) mean squared error per frame and component
    return ((ref - test) ** 2).mean(axis=(1, 2))


def _psnr(mse: np.ndarray) -> np.ndarray:
    # mean squared errors on the 0..1 scale -> PSNR (dB), capped as vcodec.metrics caps it
    with np.errstate(divide="ignore"):
        return np.minimum(-10.0 * np.log10(mse), PSNR_CAP_DB)


def fit_colour(source: np.ndarray, decoded: np.ndarray, coded_bytes: int) -> tuple[int, ...] | None:
    """The colour correction of one chunk, or None where none pays: ``source`` and ``decoded`` uint8 (n, H, W, 3)
    (what the decoder outputs without a correction); ``coded_bytes``: the chunk's coded size, which prices the
    correction's 24 bytes.

    The fit is least squares in Y'CbCr, each component of each frame weighted by 1 / its error, so that it raises
    the frames' mean PSNR rather than pleasing the worst frame at the others' cost (a scene cut inside a chunk).
    The correction is kept when, rounded as the decoder will use it, its gain in mean PSNR-YUV (6:1:1) is more than what the bytes
    would buy (DB_PER_DOUBLING) and it does not lower mean PSNR-Y."""
    if source.shape != decoded.shape or source.ndim != 4 or source.shape[-1] != 3:
        raise ValueError(f"source {source.shape} and decoded {decoded.shape} must both be (n, H, W, 3)")
    if not coded_bytes > 0:
        raise ValueError(f"coded_bytes must be positive, got {coded_bytes!r}")
    src_px, dec_px = _sample(source), _sample(decoded)
    y, x = _ycc(src_px), _ycc(dec_px)
    n = len(x)
    design = np.concatenate([x, np.ones(x.shape[:-1] + (1,))], axis=-1).reshape(n, -1, 4)
    grams = np.einsum("fpi,fpj->fij", design, design)                                  # (n, 4, 4)
    rhs = np.einsum("fpi,fpc->fic", design, (y - x).reshape(n, -1, 3))                  # (n, 4, 3)
    weight = 1.0 / (_frame_mse(y, x) * 255.0**2 + _EPS_MSE)   # (n, 3): PSNR is a mean of log errors, per component
    a = np.empty((3, 4))
    for c in range(3):   # each output component its own least squares, frames weighted by its own errors
        gram = np.einsum("f,fij->ij", weight[:, c], grams)
        gram = gram + np.eye(4) * 1e-9 * np.trace(gram)   # a flat chunk (one colour) leaves the gains undetermined
        a[c] = np.linalg.solve(gram, np.einsum("f,fi->i", weight[:, c], rhs[:, :, c]))
    colour = tuple(int(v) for v in np.clip(np.rint(a * SCALE), -(2**15), 2**15 - 1).ravel())
    if not any(colour):
        return None
    before, after = _frame_mse(y, x), _frame_mse(y, _ycc(_apply_u8(dec_px, colour)))   # as the decoder rounds
    gain = (_psnr(after) - _psnr(before)).mean(axis=0)                                  # (3,) mean dB gain
    gain_yuv = float(gain @ _WEIGHTS_611)
    price = DB_PER_DOUBLING * math.log2(1.0 + COLOUR_BYTES / coded_bytes)
    if gain_yuv <= price or gain[0] < -LUMA_SLACK_DB:
        return None
    return colour
