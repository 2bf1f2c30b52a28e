"""Checkpoint files: the config is stored next to the weights, so a file alone rebuilds its model."""
from __future__ import annotations

import hashlib
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .autoencoder import VideoTokenizer
from .config import TokenizerConfig


@dataclass(frozen=True)
class RatePoint:
    """One quality setting of a shipped model (``rate_points`` in the checkpoint)."""

    quality: int            # the --quality value
    levels: int             # token planes coded (v1 models: residual LFQ levels kept)
    bpp: float | None       # measured bits per pixel on held-out clips (after entropy coding), if known
    bits: int | None = None  # bits coded per token (None: all of the model's token_bits)


def default_rate_points(cfg: TokenizerConfig) -> tuple[RatePoint, ...]:
    """The config's quality points, bpp not measured: for checkpoints that do not list their rate points."""
    return tuple(RatePoint(quality=q, levels=planes, bpp=None, bits=bits)
                 for q, (bits, planes) in enumerate(cfg.qualities, start=1))


def rate_points(ckpt: dict, cfg: TokenizerConfig) -> tuple[RatePoint, ...]:
    """The checkpoint's rate points, or :func:`default_rate_points`."""
    if ckpt.get("rate_points"):
        return tuple(RatePoint(**rp) for rp in ckpt["rate_points"])
    return default_rate_points(cfg)


def resolve_default_quality(stored: int | None, points: tuple[RatePoint, ...]) -> int:
    """The quality a stream gets when none is asked for: the ``default_quality`` a checkpoint stores (a shipped
    model that gained a level after training keeps its highest trained point), else the highest of ``points``."""
    return int(stored) if stored is not None else max(rp.quality for rp in points)


def weights_hash(state_dict: dict) -> str:
    """sha256 over parameter names, dtypes, shapes and bytes, in sorted-name order (never dict order)."""
    h = hashlib.sha256()
    for name in sorted(state_dict):
        t = state_dict[name].detach().cpu().contiguous()
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def atomic_save(obj: dict, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    buf = io.BytesIO()
    torch.save(obj, buf)
    with open(tmp, "wb") as f:
        f.write(buf.getvalue())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


MODEL_FORMAT = "vcodec-model-1"  # the shipped form (export_inference)
TRAIN_FORMAT = "vcodec-train-1"  # a training run's state (vcodec.train.trainer)
KNOWN_FORMATS = (MODEL_FORMAT, TRAIN_FORMAT)


def load_checkpoint(path: str | Path) -> dict:
    """A checkpoint's dict. One whose ``format`` this vcodec does not know is refused (ValueError); a dict
    without the key (a bare ``{"config", "model"}`` save) is read as before."""
    ckpt = torch.load(str(path), map_location="cpu", weights_only=False)
    if not isinstance(ckpt, dict) or "config" not in ckpt:
        raise ValueError(f"{path} is not a vcodec checkpoint (no config)")
    fmt = ckpt.get("format")
    if fmt is not None and fmt not in KNOWN_FORMATS:
        raise ValueError(f"{path}: unknown checkpoint format {str(fmt)[:64]!r} (this vcodec reads {', '.join(KNOWN_FORMATS)})")
    return ckpt


def build_from_checkpoint(ckpt: dict, *, use_ema: bool = True) -> VideoTokenizer:
    cfg = TokenizerConfig.from_dict(ckpt["config"])
    model = VideoTokenizer(cfg)
    state = ckpt.get("ema") if use_ema and ckpt.get("ema") is not None else ckpt["model"]
    model.load_state_dict({k: v.float() for k, v in state.items()})
    return model.eval()


def mix_tables_key(version: int) -> str:
    """The checkpoint key of the learned coder's tables of ``version``: "mix_tables" for version 2 (as models
    shipped before version 3 store them), "mix_tables_v3" and so on after it."""
    return "mix_tables" if version == 2 else f"mix_tables_v{version}"


def stored_mix_tables(ckpt: dict) -> dict:
    """``{version: {bits: tables dict}}`` of every learned-coder table set a checkpoint holds."""
    found = {}
    for key, tables in ckpt.items():
        m = re.fullmatch(r"mix_tables(?:_v(\d+))?", key)  # the keys mix_tables_key() makes
        if m and tables:
            found[int(m.group(1) or 2)] = tables
    return found


def export_inference(ckpt: dict, *, rate_points: list[dict], coder_tables: np.ndarray | None,
                     card: dict, mix_tables: dict | None = None) -> dict:
    """The shipped form: EMA weights in fp16, config, rate points, integer coder tables (``coder_tables``: coder
    version 1's; ``mix_tables``: the learned coder's, ``{version: {bits: MixTables}}``, stored per version under
    :func:`mix_tables_key`), card facts."""
    state = ckpt.get("ema") or ckpt["model"]
    half = {k: v.detach().to(torch.float16).cpu() for k, v in state.items()}
    tables = {mix_tables_key(v): {int(b): t.as_dict() for b, t in by_bits.items()}
              for v, by_bits in (mix_tables or {}).items()}
    return {"format": MODEL_FORMAT, "config": ckpt["config"], "ema": half, "model": half,
            "weights_hash": weights_hash(half), "rate_points": rate_points,
            "coder_tables": None if coder_tables is None else np.asarray(coder_tables), **tables,
            "card": card, **({"default_quality": ckpt["default_quality"]} if ckpt.get("default_quality") else {})}
