"""Inference wrapper around the trained tokenizer: numpy uint8 frames in, uint32 token grids out.

At this boundary video is ``uint8`` (T, H, W, 3) RGB; inside, the network sees float
(1, 3, T, H, W) in [-1, 1]. Any size and any frame count >= 1 is accepted: frames are padded by edge
replication to a multiple of ``config.spatial_factor`` pixels and to ``config.padded_frames(n)`` frames, and
cropped back on decode. Which file a name means, and the cache of loaded models, are :mod:`vcodec.models` (above this module).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .errors import ModelError, QualityError
from .model.autoencoder import VideoTokenizer
from .model.checkpoint import (
    RatePoint,
    build_from_checkpoint,
    default_rate_points,
    load_checkpoint,
    rate_points,
    weights_hash,
)
from .model.config import TokenizerConfig
from .model.pixels import frames_to_model, model_to_frames


class Tokenizer:
    def __init__(self, model: VideoTokenizer, *, name: str, rate_points: tuple[RatePoint, ...] | None = None, coder_tables=None,
                 card: dict | None = None, device: str = "cpu", path: Path | None = None):
        self.model = model.to(device).eval()
        self.config: TokenizerConfig = model.cfg
        self.name = name
        self.path = path
        self.device = torch.device(device)
        state = {k: v.to(torch.float16) for k, v in model.state_dict().items()}
        self.weights_hash = weights_hash(state)
        self.rate_points = rate_points or default_rate_points(self.config)
        self.coder_tables = None if coder_tables is None else np.asarray(coder_tables)
        self.card = card or {}

    # ---- construction ----------------------------------------------------------------------------
    @classmethod
    def from_config(cls, cfg: TokenizerConfig, *, seed: int = 0, device: str = "cpu") -> "Tokenizer":
        """A randomly initialised tokenizer (tests only; never shipped)."""
        torch.manual_seed(seed)
        model = VideoTokenizer(cfg)
        with torch.no_grad():   # random (not zero) last layers so the decoder output depends on tokens
            for p in model.parameters():
                if p.dim() > 1 and p.abs().sum() == 0:
                    p.normal_(0, 0.02)
        model = _round_to_fp16(model)
        return cls(model, name=cfg.name, device=device)

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> "Tokenizer":
        """The tokenizer stored in checkpoint file ``path``, named by its file stem. (Shipped names, the cache
        and devices are :func:`vcodec.models.load_tokenizer`.)"""
        path = Path(path)
        try:
            ckpt = load_checkpoint(path)
            model = build_from_checkpoint(ckpt)
        except Exception as e:  # noqa: BLE001 — any unreadable file is reported the same way
            raise ModelError(f"cannot load model {path}: {e}") from None
        model = _round_to_fp16(model)
        name = path.stem   # the header names the model by file stem (never a full path: bytes stay reproducible)
        return cls(model, name=name, rate_points=rate_points(ckpt, model.cfg),
                   coder_tables=ckpt.get("coder_tables"), card=ckpt.get("card"), device=device, path=path)

    # ---- properties ------------------------------------------------------------------------------
    @property
    def token_bits(self) -> int:
        return self.config.token_bits

    @property
    def max_levels(self) -> int:
        """Token planes of a full-rate latent frame (the container's ``max_levels``)."""
        return self.config.planes

    @property
    def window_frames(self) -> int:
        return self.config.window_frames

    @property
    def parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def quality_point(self, quality: int) -> tuple[int, int]:
        """(bits per token, token planes) that ``quality`` codes."""
        for rp in self.rate_points:
            if rp.quality == quality:
                return (rp.bits or self.token_bits), rp.levels
        qs = ", ".join(str(rp.quality) for rp in self.rate_points)
        raise QualityError(f"quality {quality} is not offered by model {self.name} (choose one of {qs})")

    def tables_for(self, bits: int) -> np.ndarray | None:
        """The coder's initial count tables for a stream of ``bits``-bit tokens (the tables of a token's low
        bits: a stream that codes fewer bits per token uses the first ``bits`` rows of each plane's table)."""
        if self.coder_tables is None:
            return None
        return np.ascontiguousarray(self.coder_tables[:, :bits])

    # ---- coding ----------------------------------------------------------------------------------
    @torch.inference_mode()
    def encode_window(self, frames: np.ndarray, levels: int, bits: int | None = None) -> np.ndarray:
        """frames uint8 (n, H, W, 3) -> tokens uint32 (levels, config.latent_frames(n), *config.latent_size(H, W)):
        the first ``levels`` token planes, each holding the low ``bits`` bits (default all)."""
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
            raise ValueError(f"expected uint8 frames (T, H, W, 3) with T >= 1, got {frames.dtype} {frames.shape}")
        if not 1 <= levels <= self.max_levels:
            raise ValueError(f"levels must be in 1..{self.max_levels}")
        cfg = self.config
        n, H, W, _ = frames.shape
        T = cfg.padded_frames(n)
        lh, lw = cfg.latent_size(H, W)
        ph, pw = lh * cfg.spatial_factor - H, lw * cfg.spatial_factor - W
        x = frames_to_model(torch.from_numpy(np.ascontiguousarray(frames)).to(self.device).unsqueeze(0))  # (1,3,n,H,W)
        if ph or pw:
            x = torch.nn.functional.pad(x, (0, pw, 0, ph, 0, 0), mode="replicate")
        if T > n:
            x = torch.cat([x, x[:, :, -1:].expand(-1, -1, T - n, -1, -1)], dim=2)       # (1, 3, T, lh*f, lw*f)
        idx = self.model.encode_indices(x, levels, bits)                          # (1, L, T', h, w)
        return idx[0].cpu().numpy().astype(np.uint32)

    @torch.inference_mode()
    def decode_window(self, tokens: np.ndarray, num_frames: int, height: int, width: int,
                      bits: int | None = None) -> np.ndarray:
        """tokens uint32 (L, T', h, w) with ``bits`` coded bits each -> frames uint8 (num_frames, height, width, 3)."""
        L, Tl, h, w = tokens.shape
        if not 1 <= L <= self.max_levels:
            raise ValueError(f"token grid has {L} levels; model {self.name} has at most {self.max_levels}")
        idx = torch.from_numpy(tokens.astype(np.int64)).unsqueeze(0).to(self.device)
        video = self.model.decode_indices(idx, bits)                              # (1, 3, T, f*h, f*w)
        out = model_to_frames(video[:, :, :num_frames, :height, :width])[0]       # (num_frames, height, width, 3)
        return out.contiguous().cpu().numpy()


def _round_to_fp16(model: VideoTokenizer) -> VideoTokenizer:
    """Weights are shipped as fp16; run in fp32 with fp16-representable weights so that a model
    loaded from any file behaves identically."""
    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            if t.is_floating_point():
                t.copy_(t.to(torch.float16).to(t.dtype))
    return model
