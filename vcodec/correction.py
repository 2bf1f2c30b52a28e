"""Per-chunk colour correction (format version 4, FORMAT.md 4.2.1): a map of BT.709 Y'CbCr, affine or quadratic,
that the encoder fits to the source and the decoder applies to its output, after the network and before rounding.

Why: the tokenizer's chroma is its weakest part. Its decoded chroma is only partly correlated with the source's
(the decoder invents chroma detail, and at low rates shifts whole colours), so pulling it towards what the source
has, by the chunk's least-squares map, buys 0.1-2.8 dB of PSNR-YUV for 28-64 bytes a chunk (README). Fitting needs
the decoded frames, so the encoder fits only when it decodes anyway (``--refine``) or is asked to
(``--colour-correct``).

Layouts: frames are uint8 ``(n, H, W, 3)`` RGB; the decoder's video is float ``(B, 3, T, H, W)`` on the model's
[-1, 1] scale. A correction is 3 rows of K = 4 (affine) or 10 (quadratic) ints in 1/4096: row i of ``A`` in
``out_i = x_i + sum_k A[i][k] t_k(x)``, ``x`` = (E'y, E'cb, E'cr) on the 0..1 scale (E'cb, E'cr centred on 0) and
the terms ``t`` = (E'y, E'cb, E'cr, 1, E'y^2, E'y E'cb, E'y E'cr, E'cb^2, E'cb E'cr, E'cr^2), the first K of them.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np
import torch

from bitstream import COLOUR_TERMS, colour_size
from vcodec.colour import rgb_to_ycbcr

SCALE = 4096  # a coefficient's unit: 1/4096
SAMPLES_PER_FRAME = 1 << 14  # pixels of each frame the fit looks at (a regular grid of them)
DB_PER_DOUBLING = 1.5  # what doubling the bytes buys in PSNR-YUV at the low rate points (model card); prices the bytes
LUMA_SLACK_DB = 0.005  # a correction may not lower the frames' mean PSNR-Y by more than this
DECISION_CAP_DB = 60.0  # a frame's PSNR counts up to this in the decision (a frame made exact must not outvote the rest)
_EPS_MSE = 0.25 / 255.0**2  # keeps the weight of a near-perfect frame finite (a quarter of a level, squared)
_RIDGE = 1e-7  # (relative) keeps the coefficients of terms the chunk hardly varies in (one flat colour) small

# R'G'B' -> E'y E'cb E'cr on the same scale: vcodec.colour.rgb_to_ycbcr as a matrix (of the three primaries)
_TO_YCC = np.stack(rgb_to_ycbcr(np.eye(3)))
_FROM_YCC = np.linalg.inv(_TO_YCC)
_WEIGHTS_611 = np.array([6.0, 1.0, 1.0]) / 8.0  # PSNR-YUV's weights (vcodec.metrics.psnr_yuv_611)
_PAIRS = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))  # the quadratic terms' factors
_BLOCK = 1 << 17  # pixels apply_to_video corrects at a time
CLIP_STEPS = 8  # Gauss-Newton steps of the clipping-aware refit at most
CLIP_GAIN = 0.01  # ... which stops once a step lowers the clipped error by less than this fraction


def correction_bytes(colour) -> int:
    """What a correction adds to its chunk (FORMAT.md 4.2.1: 4 bytes of head, 2 a coefficient)."""
    return colour_size(colour)


def _terms(x: np.ndarray, k: int) -> np.ndarray:
    """The first ``k`` terms of Y'CbCr ``x`` (..., 3): (..., k)."""
    parts = [x, np.ones_like(x[..., :1])]
    if k > 4:
        parts += [x[..., i:i + 1] * x[..., j:j + 1] for i, j in _PAIRS]
    return np.concatenate(parts, -1)


def _matrix(colour) -> np.ndarray:
    a = np.asarray(colour, np.float64)
    if a.size not in [3 * k for k in COLOUR_TERMS]:
        raise ValueError(f"a colour correction has 3 x {' or '.join(map(str, COLOUR_TERMS))} values, got {a.size}")
    return a.reshape(3, -1) / SCALE


def apply_to_video(video: torch.Tensor, colour) -> torch.Tensor:
    """The decoder's float video ``(B, 3, T, H, W)`` on the model's [-1, 1] scale, corrected by ``colour`` (FORMAT.md
    4.2.1), same layout and scale, unclipped (float32 arithmetic).

    With v = 2 R'G'B' - 1 and C the R'G'B' -> Y'CbCr matrix: x = C (v + 1) / 2 and the corrected v' = v + 2 C^-1 A t(x),
    computed in blocks of _BLOCK pixels that stay in the CPU's cache (4x as fast as whole-frame operations: about
    1 ms a 640x360 frame on 2 cores)."""
    a = _matrix(colour)
    k = a.shape[1]
    dev = video.device
    to_ycc = torch.as_tensor(_TO_YCC * 0.5, dtype=torch.float32, device=dev)
    offset = torch.as_tensor(_TO_YCC.sum(axis=1, keepdims=True) * 0.5, dtype=torch.float32, device=dev)
    weights = torch.as_tensor(2.0 * _FROM_YCC @ a, dtype=torch.float32, device=dev)      # (3, k)
    x = video.float().movedim(1, 0).reshape(3, -1)                                       # (3, pixels)
    out = torch.empty_like(x)
    terms = torch.empty(k, min(_BLOCK, x.shape[1]), device=dev)
    for start in range(0, x.shape[1], _BLOCK):
        xs = x[:, start:start + _BLOCK]
        t = terms[:, :xs.shape[1]]
        torch.addmm(offset, to_ycc, xs, out=t[:3])                                        # E'y, E'cb, E'cr
        t[3].fill_(1.0)
        for r, (i, j) in enumerate(_PAIRS[:k - 4]):
            torch.mul(t[i], t[j], out=t[4 + r])
        torch.addmm(xs, weights, t, out=out[:, start:start + xs.shape[1]])
    shape = video.shape
    return out.reshape(3, shape[0], *shape[2:]).movedim(0, 1)


EVERY_CHUNK, KEY_CHUNKS, NO_CORRECTION = "every", "key", "off"  # how an encoder fits colour corrections


def fits_colour(colour: bool | None, refine: int) -> str:
    """How an encoder fits colour corrections: ``colour`` True fits every chunk its own (EVERY_CHUNK: decoding all it
    codes, about half the encoding speed), False none (NO_CORRECTION); by default (None) every chunk when it refines
    (``refine`` steps > 0: it decodes what it codes then anyway), else KEY_CHUNKS: the keyframe chunk of each keyframe
    period (17 frames, which decode without the chunks before them) is decoded and fitted, and the chunks that
    continue it carry the same map (a keyframe period is one shot: the encoder starts one at each scene cut), where
    coded at the same rate point (rate control may change it: a map fitted to one point's decoding misleads at
    another)."""
    if colour is None:
        return EVERY_CHUNK if refine else KEY_CHUNKS
    return EVERY_CHUNK if colour else NO_CORRECTION


def colour_map(colour) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The decoder's output map of a chunk whose colour correction is ``colour`` (None: none), for
    ``Tokenizer.decode_pieces(post=)``."""
    return None if colour is None else functools.partial(apply_to_video, colour=colour)


def apply_to_frames(frames: np.ndarray, colour) -> np.ndarray:
    """uint8 RGB frames (..., 3) corrected by ``colour`` and rounded as a decoder rounds them: uint8 (..., 3) (float64
    arithmetic; within a level of what :func:`apply_to_video` gives the decoder)."""
    x = frames.astype(np.float64) / 255.0 @ _TO_YCC.T
    a = _matrix(colour)
    rgb = (x + _terms(x, a.shape[1]) @ a.T) @ _FROM_YCC.T
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def _sample(frames: np.ndarray) -> np.ndarray:
    # uint8 (n, H, W, 3) -> (n, h', w', 3): a regular grid of at most about SAMPLES_PER_FRAME pixels of each frame
    n, height, width, _ = frames.shape
    step = max(1, math.ceil(math.sqrt(height * width / SAMPLES_PER_FRAME)))
    return frames[:, step // 2::step, step // 2::step]


def _frame_mse(ref: np.ndarray, test: np.ndarray) -> np.ndarray:
    # Y'CbCr (n, h, w, 3) on the 0..1 scale -> (n, 3) mean squared error per frame and component
    return ((ref - test) ** 2).mean(axis=(1, 2))


def _psnr(mse: np.ndarray) -> np.ndarray:
    # mean squared errors on the 0..1 scale -> PSNR (dB), capped at DECISION_CAP_DB
    with np.errstate(divide="ignore"):
        return np.minimum(-10.0 * np.log10(mse), DECISION_CAP_DB)


def _normal_equations(y: np.ndarray, x: np.ndarray, mse: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per frame, the least-squares normal equations of the quadratic correction of decoded Y'CbCr ``x`` towards
    the source's ``y`` (both (n, h, w, 3); ``mse``: their :func:`_frame_mse`): ``(grams (n, 10, 10), rhs (n, 10,
    3), weights (n, 3))``. The affine
    map's are their first 4 rows and columns. Each output component gets its own least squares, each frame weighted
    by 1 / that component's error in it (PSNR is a mean of log errors: the fit raises the frames' mean PSNR rather
    than pleasing the worst frame at the others' cost, e.g. across a scene cut inside a chunk)."""
    n, k = len(x), max(COLOUR_TERMS)
    t = _terms(x, k).reshape(n, -1, k)
    t_t = t.transpose(0, 2, 1)
    return t_t @ t, t_t @ (y - x).reshape(n, -1, 3), 1.0 / (mse + _EPS_MSE)


def _solve(grams: np.ndarray, rhs: np.ndarray, weight: np.ndarray, k: int) -> tuple[int, ...]:
    # the k-term correction from the normal equations of _normal_equations, rounded to the format's integers
    a = np.empty((3, k))
    for c in range(3):
        gram = np.tensordot(weight[:, c], grams[:, :k, :k], axes=1)
        gram = gram + np.eye(k) * _RIDGE * np.trace(gram) / k
        a[c] = np.linalg.solve(gram, np.tensordot(weight[:, c], rhs[:, :k, c], axes=1))
    return _to_ints(a)


def _to_ints(a: np.ndarray) -> tuple[int, ...]:
    # a correction's coefficients (3, k), on the 0..1 scale -> the format's integers
    return tuple(int(v) for v in np.clip(np.rint(a * SCALE), -(2**15), 2**15 - 1).ravel())


def _clipped_error(y: np.ndarray, x: np.ndarray, t: np.ndarray, a: np.ndarray, weight: np.ndarray) -> float:
    """The weighted squared error that the decoder's clipping leaves: the sum over pixels and components of
    ``weight`` x the squared Y'CbCr error of clip(R'G'B' after the map) (no rounding); ``y``, ``x``, ``weight``
    (pixels, 3), ``t`` (pixels, k) the terms of ``x``, ``a`` (3, k) the map."""
    out = np.clip(x @ _FROM_YCC.T + t @ (a.T @ _FROM_YCC.T), 0.0, 1.0) @ _TO_YCC.T
    out -= y
    out *= out
    return float(np.vdot(out, weight))


def _clipped_target(y: np.ndarray, x: np.ndarray, t: np.ndarray, a: np.ndarray, weight: np.ndarray,
                    plain: tuple[np.ndarray, np.ndarray]) -> np.ndarray | None:
    """One Gauss-Newton step of :func:`_clipped_error` from the map ``a`` (3, k): the map (3, k) that minimises the
    weighted squared Y'CbCr error with every channel that ``a`` clips held at its bound (the output no longer
    depends on the map there), or None where nothing clips. ``y``, ``x``, ``weight`` (pixels, 3), ``t`` (pixels,
    k); ``plain``: :func:`_weighted_equations` of the same pixels, which this corrects for the pixels that clip."""
    k = t.shape[1]
    rgb = x @ _FROM_YCC.T + t @ (a.T @ _FROM_YCC.T)
    inside = (rgb >= 0.0) & (rgb <= 1.0)
    pattern = (inside @ np.array([1, 2, 4], np.uint8)).astype(np.uint8)       # bit c: channel c inside 0..1
    clipping = np.flatnonzero(pattern != 7)
    if not len(clipping):
        return None
    clipping = clipping[np.argsort(pattern[clipping], kind="stable")]          # grouped by pattern
    counts = np.bincount(pattern[clipping], minlength=8)
    tc, w, yc, xc, rgb = t[clipping], weight[clipping], y[clipping], x[clipping], rgb[clipping]
    weighted = [tc * w[:, c:c + 1] for c in range(3)]
    hessian, rhs = plain[0].copy(), plain[1].copy()
    start = 0
    for d, count in enumerate(counts):
        if not count:
            continue
        at = slice(start, start + count)
        start += count
        # these pixels' output Y'CbCr is M (x + A t) + C held, M = C diag(inside) F: their terms swap W (as if
        # unclipped) for M^T W M, and their residual y - x for y - M x - C held
        keep = np.array([(d >> c) & 1 for c in range(3)], dtype=bool)
        m = _TO_YCC @ np.diag(keep.astype(np.float64)) @ _FROM_YCC
        held = np.where(rgb[at] > 1.0, 1.0, 0.0)
        held[:, keep] = 0.0
        resid = yc[at] - xc[at] @ m.T - held @ _TO_YCC.T
        for c in range(3):
            unit = np.zeros((3, 3))
            unit[c, c] = 1.0
            hessian += np.kron(np.outer(m[c], m[c]) - unit, weighted[c][at].T @ tc[at])
        rhs += m.T @ ((w[at] * resid).T @ tc[at]) - (w[at] * (yc[at] - xc[at])).T @ tc[at]
    hessian += np.eye(3 * k) * _RIDGE * np.trace(hessian) / (3 * k)
    return np.linalg.solve(hessian, rhs.ravel()).reshape(3, k)


def _weighted_equations(equations, weight: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The normal equations (hessian (3k, 3k), rhs (3, k)) of the map A (3, k), parameters A[i][kk] in i-major order,
    that minimises the sum over frames, pixels and components of ``weight`` (n, 3) x (y - x - A t)^2, as if nothing
    clipped: the per-frame sums of ``equations`` (:func:`_normal_equations`) weighted and added up."""
    grams, rhs, _ = equations
    blocks = np.einsum("fi,fkl->ikl", weight, grams[:, :k, :k])                # per output component
    hessian = np.zeros((3 * k, 3 * k))
    for i in range(3):
        hessian[i * k:(i + 1) * k, i * k:(i + 1) * k] = blocks[i]
    return hessian, np.einsum("fi,fki->ik", weight, rhs[:, :k])


def _refit_clipped(y: np.ndarray, x: np.ndarray, equations, colour: tuple[int, ...]) -> tuple[int, ...]:
    """``colour`` (a least-squares fit, which ignores that the decoder clips R'G'B' to 0..1) improved for the
    clipped output: Gauss-Newton steps (:func:`_clipped_target`) on :func:`_clipped_error`, weighted per frame as
    ``equations`` (their :func:`_normal_equations`) weigh it and as PSNR-YUV weighs the components, each step halved until the error falls; at most
    CLIP_STEPS, until a step gains less than CLIP_GAIN. Unchanged where nothing clips.

    Why: saturated colours (a source at 0 or 255 in a channel) decode with noise on both sides of the bound; the
    plain fit centres the unclipped values on it, so clipping leaves a bias (+1-2 levels a channel on colour bars)
    and error that this removes (measured against the plain fit: +6.5-6.9 dB PSNR-YUV on 75% colour bars at qualities
    5 and 9, 0-0.035 dB on the standard clips).

    ``y``, ``x``: Y'CbCr (n, h, w, 3) on the 0..1 scale. A step costs about 50 ms on 17 frames where most pixels
    clip (a test pattern), a few ms where few do."""
    a = _matrix(colour)
    k = a.shape[1]
    frame_weight = equations[2] * _WEIGHTS_611
    plain = _weighted_equations(equations, frame_weight, k)
    weight = np.repeat(frame_weight, x[0].size // 3, axis=0)                               # (pixels, 3)
    y, x = y.reshape(-1, 3), x.reshape(-1, 3)
    t = _terms(x, k)
    best = _clipped_error(y, x, t, a, weight)
    for _ in range(CLIP_STEPS):
        target = _clipped_target(y, x, t, a, weight, plain)
        if target is None:
            break
        step = 1.0
        while step >= 1 / 8:
            trial = _matrix(_to_ints(a + step * (target - a)))
            error = _clipped_error(y, x, t, trial, weight)
            if error < best:
                break
            step /= 2
        else:
            break
        a, best, gain = trial, error, 1.0 - error / best
        if gain < CLIP_GAIN:
            break
    return _to_ints(a)


def fit_colour(source: np.ndarray, decoded: np.ndarray, coded_bytes: int) -> tuple[int, ...] | None:
    """The colour correction of one chunk, or None where none pays: ``source`` and ``decoded`` uint8 (n, H, W, 3)
    (``decoded``: what the decoder outputs without a correction); ``coded_bytes``: the chunk's coded size, which
    prices the correction's bytes.

    Both maps, affine and quadratic, are fitted (:func:`_normal_equations`), the better of them (or the quadratic,
    where neither pays) is refitted for the decoder's clipping (:func:`_refit_clipped`), and of these the one whose
    gain in mean PSNR-YUV (6:1:1, rounded as the decoder will round) most exceeds what its bytes would buy at
    DB_PER_DOUBLING is kept, provided it does not lower mean PSNR-Y. A gray source (R = G = B: the decoder's output is
    made gray) is judged by its PSNR-Y alone."""
    if source.shape != decoded.shape or source.ndim != 4 or source.shape[-1] != 3:
        raise ValueError(f"source {source.shape} and decoded {decoded.shape} must both be (n, H, W, 3)")
    if not coded_bytes > 0:
        raise ValueError(f"coded_bytes must be positive, got {coded_bytes!r}")
    src_px, dec_px = _sample(source), _sample(decoded)
    gray = bool((src_px[..., :1] == src_px).all())
    judge = np.array([1.0, 0.0, 0.0]) if gray else _WEIGHTS_611
    y, x = (px.astype(np.float64) / 255.0 @ _TO_YCC.T for px in (src_px, dec_px))
    mse_before = _frame_mse(y, x)
    psnr_before = _psnr(mse_before)
    equations = _normal_equations(y, x, mse_before)

    def worth(colour) -> float:
        # what a correction nets in the judged PSNR over its bytes' price (-inf where it may not be sent)
        if not any(colour):
            return -math.inf
        corrected = apply_to_frames(dec_px, colour).astype(np.float64) / 255.0 @ _TO_YCC.T
        gain = (_psnr(_frame_mse(y, corrected)) - psnr_before).mean(axis=0)        # (3,) mean dB per component
        price = DB_PER_DOUBLING * math.log2(1.0 + correction_bytes(colour) / coded_bytes)
        return float(gain @ judge) - price if gain[0] >= -LUMA_SLACK_DB else -math.inf

    plain = [(worth(c), c) for c in (_solve(*equations, k) for k in COLOUR_TERMS)]
    net, colour = max(plain, key=lambda nc: nc[0]) if max(n for n, _ in plain) > 0 else plain[-1]
    refit = _refit_clipped(y, x, equations, colour)
    if refit != colour and (refit_net := worth(refit)) > net:
        net, colour = refit_net, refit
    return colour if net > 0 else None
