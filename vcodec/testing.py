"""Helpers for tests and benchmarks: a tiny random-weight tokenizer, in memory or saved as a checkpoint file.

Random weights code and decode like real ones (deterministically, at the right shapes); the pictures are just
not faithful. Use them wherever the shipped model's quality is beside the point.
"""

from __future__ import annotations

import dataclasses
import os

from vcodec.model.checkpoint import atomic_save, export_inference
from vcodec.model.config import TokenizerConfig
from vcodec.tokenizer import Tokenizer


def tiny_tokenizer(seed: int = 0, **overrides) -> Tokenizer:
    """A random-weight tokenizer of :meth:`TokenizerConfig.tiny` (``overrides`` replace config fields)."""
    cfg = TokenizerConfig.tiny()
    if overrides:
        cfg = TokenizerConfig.from_dict({**cfg.to_dict(), **overrides})
    return Tokenizer.from_config(cfg, seed=seed)


def save_tokenizer(tok: Tokenizer, path: str | os.PathLike) -> str:
    """Write ``tok`` as a shipped-format checkpoint (loadable with ``Tokenizer.load(path)``, ``vcodec.models.load_tokenizer(path)`` or ``--model PATH``)."""
    ckpt = {"config": tok.config.to_dict(), "model": tok.model.state_dict()}
    rate_points = [dataclasses.asdict(rp) for rp in tok.rate_points]  # widths included
    atomic_save(export_inference(ckpt, rate_points=rate_points, coder_tables=tok.coder_tables, card={}), path)
    return os.fspath(path)
