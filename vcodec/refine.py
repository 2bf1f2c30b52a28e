"""Encoder-side latent refinement (``vcodec encode --refine STEPS``): better signs for the same decoder.

The encoder maps a chunk to a latent ``z`` and the quantizer takes each channel's sign level by level, nearest in
the latent; the decoder is no exact inverse of the encoder, so other signs can decode closer to the source, and
some signs cost the entropy coder fewer bits than others. With ``STEPS`` > 0 the encoder takes that many Adam steps
on ``z`` against the pixel MSE of the decoded chunk at the stream's rate point plus the bits the coder's learned
logistic stage gives its signs (:func:`_frame_rate`, weighted by RD_SLOPE: a rate-distortion optimisation of the
signs, as RDOQ is for a classic codec's coefficients), signs straight-through as in training, the network's weights
fixed; one latent frame at a time, the decoder carrying its causal state from the frames before as the real decoder
will (closed loop: the state comes from decoding the refined tokens). It keeps the latent whose signs scored best
(the encoder's own when no step beat it: at 2-bit tokens a step can flip signs too far). Only the encoder changes:
the stream is an ordinary one, any decoder decodes it, the format is unchanged.

Measured (``python -m benchmarks.latent_refinement``, ``benchmarks/results/latent_refinement.md``: four held-out
clips, 33 frames each, as streams; session 20, with the rate term): 5 steps -20.6% BD-rate PSNR-Y and -25.7%
PSNR-YUV against none (-15.8% / -21.0% without the rate term) for 10x the encode time on this project's 2 CPU
cores (bfloat16 passes), 10 steps -26.3% / -33.4% for 19x. Each step is a decoder forward and backward pass.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable

import numpy as np
import torch

from .model.layers import streaming
from .model.lfq import plane_mask
from .model.pixels import frames_to_model, model_to_frames
from .model.rate import MixRateModel, coded_bits
from .models import bf16_is_fast
from .stream import StreamState
from .tokenizer import Tokenizer, check_memory

LEARNING_RATE = 0.02  # Adam's step on the latent, in (-1, 1) units
# the slope of the codec's rate-distortion curve that the refinement trades at, in dB per doubling of the bits: a
# latent frame's objective is D / D0 + RD_SLOPE * ln(10) / (10 ln(2)) * R / R0 (D0, R0: the pixel MSE and the
# coder's bits for the encoder's own latent), which is D + lambda R with lambda = -dD/dR where the curve has that
# slope; 0 = distortion only. Measured (benchmarks.latent_refinement, 5 steps, BD-rate PSNR-Y / PSNR-YUV against no
# refinement, before the rate term saw the chunk before): 0 -> -15.8% / -21.0%, 0.5 -> -19.4 / -24.5, 1 -> -19.8 /
# -24.9, 2 -> -19.4 / -24.3
RD_SLOPE = 1.0
MAX_PIXELS = 1920 * 1088  # frames are refined whole (untiled), one latent frame at a time
# what the decoder's forward and backward pass over one latent frame holds, per pixel of the frame: measured 3.2 GB
# peak for a 1920x1080 encode with --refine in float32 passes (2.9 GB in bfloat16) against 0.76 GB without
# (`/usr/bin/time -v vcodec encode`)
BYTES_PER_PIXEL = 1200
_EDGE = 0.999  # the latent is kept inside (-1, 1), the encoder's tanh range


@contextlib.contextmanager
def _frozen(module: torch.nn.Module):
    """``module``'s parameters without gradients (only the latent is optimised), as they were afterwards."""
    trainable = [p for p in module.parameters() if p.requires_grad]
    for p in trainable:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in trainable:
            p.requires_grad_(True)


def _steps_precision(device: torch.device):
    """The number format of the refinement's passes: bfloat16 where it is native (measured on this project's CPU:
    2.5x as fast, the same tokens to within 0.05 dB), else float32. The decoder state handed on is always computed
    in float32, as the real decoder computes it."""
    return torch.autocast(device.type, dtype=torch.bfloat16) if bf16_is_fast(device) else contextlib.nullcontext()


def _distortion(video: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """What refinement minimises: the pixel MSE of (1, 3, k, H, W) in [-1, 1]."""
    return (video - target).pow(2).mean()


_LAMBDA_PER_DB = math.log(10) / (10 * math.log(2))  # -dD/dR x R/D at a slope of 1 dB per doubling


def _rate_proxy(tok: Tokenizer, bits: int, planes: int):
    """The coder's learned logistic stage for ``bits``-bit tokens (:meth:`MixRateModel.from_tables`), or None where
    the model has no learned coder tables at that width."""
    version = tok.coder_version(bits)
    tables = tok.tables_for(bits, version) if version >= 2 else None
    if tables is None:
        return None
    return MixRateModel.from_tables(np.asarray(tables.weights)[:planes], version).to(tok.device)


def token_bits(tokens: np.ndarray, bits: int, device) -> torch.Tensor:
    """uint32 tokens (P, T, h, w) -> their low ``bits`` bits as float (1, P, bits, T, h, w), the layout of the
    quantizer's ``bits`` (bit k of a token = its channel k's sign)."""
    x = torch.from_numpy(tokens.astype(np.int64)).to(device)
    shifts = torch.arange(bits, device=device).view(1, -1, 1, 1, 1)
    return ((x.unsqueeze(1) >> shifts) & 1).float().unsqueeze(0)


def _frame_rate(proxy, bits: torch.Tensor, prev: torch.Tensor | None) -> torch.Tensor:
    """Bits (under ``proxy``) of the last latent frame of ``bits`` (1, P, K, T, h, w) straight-through, the latent
    frame before it ``prev`` (1, P, K, 1, h, w; None: absent, a keyframe's first)."""
    x = bits if prev is None else torch.cat([prev, bits], dim=3)
    logit = proxy.logits(x, torch.ones(x.shape[:3], device=x.device))
    t = bits.shape[3]
    return coded_bits(logit[:, :, :, -t:], bits, torch.ones(bits.shape[:3], device=bits.device)).sum()


def check_frames(width: int, height: int) -> None:
    """ValueError (one line) for frames too large to refine (the decoder's backward pass runs untiled), ResourceError
    where the machine has not the memory for it; before any work."""
    if width * height > MAX_PIXELS:
        raise ValueError(f"--refine works on frames of up to 1920x1080 pixels; this video is {width}x{height}")
    check_memory(BYTES_PER_PIXEL * width * height, f"refining {width}x{height} frames")


class _Adam:
    """Adam (Kingma & Ba) on one tensor, step for step as ``torch.optim.Adam``'s single-tensor update with its
    defaults (betas 0.9 / 0.999, eps 1e-8): written out, since torch.optim's first use imports torch._dynamo (~1 s
    of every refined encode)."""

    def __init__(self, param: torch.Tensor, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.param, self.lr, self.betas, self.eps, self.t = param, lr, betas, eps, 0
        self.avg, self.avg_sq = torch.zeros_like(param), torch.zeros_like(param)

    @torch.no_grad()
    def step(self) -> None:
        (b1, b2), grad = self.betas, self.param.grad
        self.t += 1
        self.avg.lerp_(grad, 1 - b1)
        self.avg_sq.mul_(b2).addcmul_(grad, grad, value=1 - b2)
        denom = (self.avg_sq.sqrt() / (1 - b2 ** self.t) ** 0.5).add_(self.eps)
        self.param.addcdiv_(self.avg, denom, value=-self.lr / (1 - b1 ** self.t))


@torch.inference_mode(False)
def refine_tokens(tok: Tokenizer, frames: np.ndarray, latent: np.ndarray, bits: int, planes: int, steps: int,
                  state: StreamState, continues: bool, progress: Callable[[int], None] | None = None,
                  lr: float | None = None, decoded: np.ndarray | None = None,
                  before: tuple[np.ndarray, int] | None = None) -> np.ndarray:
    """One chunk's tokens, refined: ``frames`` uint8 (n, H, W, 3); ``latent`` float32 (C, T', h, w) the encoder's
    (``Tokenizer.encode_window(..., latent=)``) -> uint32 (planes, T', h, w) holding ``bits`` bits, as
    ``encode_window`` gives them but from the refined latent. ``state``: the decoder's :class:`StreamState` as the
    real decoder will have it (one untiled piece), advanced past this chunk (reset first when the chunk does not
    ``continue`` the one before). ``progress(k)`` after each
    latent frame (``k`` frames). ``decoded``: a uint8 (n, H, W, 3) array to fill with what that decoder makes of
    the refined tokens (e.g. to fit a colour correction to). ``before``: the chunk before's tokens (planes, T'', h,
    w) and their bits per token, whose last latent frame the rate term's coder sees as this chunk's previous frame
    when the chunk continues it at the same rate point."""
    net, quantizer = tok.model, tok.model.quantizer
    n, height, width, _ = frames.shape
    check_frames(width, height)
    proxy = _rate_proxy(tok, bits, planes) if RD_SLOPE else None
    prev_bits = None
    if proxy is not None and continues and before is not None and before[1] == bits and len(before[0]) == planes:
        prev_bits = token_bits(before[0][:, -1:], bits, tok.device)
    if not continues:
        state.reset()
    history = state.take(1, (height, width))[0] if state.started else None
    _, T, h, w = latent.shape
    mask = plane_mask(bits, planes, quantizer.planes, quantizer.token_bits, 1, device=tok.device)
    out = np.empty((planes, T, h, w), np.uint32)
    decoder = net.decoder
    with streaming(decoder) as stream, _frozen(decoder):
        for l0, l1, f0, f1 in tok._time_pieces(n, stream=True, continues=continues):
            first = l0 == 0 and not continues
            real = min(f1, n) - f0   # frames of the piece that are not padding
            target = frames_to_model(torch.from_numpy(frames[f0:f0 + real]).unsqueeze(0).to(tok.device))
            z = torch.from_numpy(latent[None, :, l0:l1]).to(tok.device).clone().requires_grad_(True)
            adam = _Adam(z, LEARNING_RATE if lr is None else lr)
            best = (float("inf"), z.detach().clone())   # the latent whose signs scored best (the encoder's first)
            scale = None
            for step in range(steps + 1):
                with torch.set_grad_enabled(step < steps), _steps_precision(tok.device):
                    stream.load(history)
                    q = quantizer(z.clamp(-_EDGE, _EDGE), mask)
                    video = decoder(q.quantized, first=first).float()
                    loss = _distortion(video[:, :, :real, :height, :width].clamp(-1, 1), target)
                    if proxy is not None:
                        rate = _frame_rate(proxy, q.bits[:, :planes, :bits].float(), prev_bits)
                        if scale is None:   # D0, R0: the encoder's own latent
                            scale = (max(loss.item(), 1e-12), max(rate.item(), 1.0))
                        loss = loss / scale[0] + RD_SLOPE * _LAMBDA_PER_DB * rate / scale[1]
                if loss.item() < best[0]:   # (a NaN loss never replaces it)
                    best = (loss.item(), z.detach().clone())
                if step < steps:
                    z.grad = None
                    loss.backward()
                    adam.step()
            with torch.no_grad():
                z = best[1].clamp(-_EDGE, _EDGE)
                stream.load(history)
                video = decoder(quantizer(z, mask).quantized, first=first)   # the real decoder's state after it
                history = stream.state()
                if decoded is not None:
                    decoded[f0:f0 + real] = model_to_frames(video[:, :, :real, :height, :width])[0].cpu().numpy()
                out[:, l0:l1] = net.latent_indices(z, planes, bits)[0].cpu().numpy()
                if proxy is not None:
                    prev_bits = token_bits(out[:, l1 - 1:l1], bits, tok.device)
            if progress is not None and real > 0:
                progress(real)
    state.keep([history], (height, width), tok.config.padded_frames(n, continues) == n)
    return out


def encode_refined(tok: Tokenizer, frames: np.ndarray, planes: int, bits: int, stream: StreamState,
                   state: StreamState, steps: int, progress: Callable[[int], None] | None = None,
                   decoded: np.ndarray | None = None, before: tuple[np.ndarray, int] | None = None) -> np.ndarray:
    """``Tokenizer.encode_window(frames, planes, bits, stream=stream)``, its latent refined by ``steps`` steps
    (:func:`refine_tokens`; ``state``: the stream's decoder state; ``decoded``: filled with the decoder's frames;
    ``before``: the chunk before's tokens and bits): uint32 (planes, T', h, w)."""
    continues = stream.started
    latent = latent_buffer(tok, frames, continues)
    tok.encode_window(frames, planes, bits, None, stream, latent=latent)
    return refine_tokens(tok, frames, latent, bits, planes, steps, state, continues, progress, decoded=decoded,
                         before=before)


def latent_buffer(tok: Tokenizer, frames: np.ndarray, continues: bool) -> np.ndarray:
    """An array for ``Tokenizer.encode_window(frames, ..., latent=)`` of a window that ``continues`` a stream or not:
    float32 (C, T', h, w)."""
    cfg = tok.config
    return np.empty((cfg.channels, cfg.latent_frames(len(frames), continues), *cfg.latent_size(*frames.shape[1:3])),
                    np.float32)
