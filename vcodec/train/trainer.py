"""The training loop: AdamW, EMA weights, level dropout, periodic checkpoints with exact resume,
held-out PSNR in the progress bar, optional DDP (torchrun; gloo on CPU, NCCL on GPU).

Runs with torch and numpy alone when fed a pre-decoded corpus file.
"""
from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from ..model.autoencoder import VideoTokenizer
from ..model.checkpoint import atomic_save, load_checkpoint
from ..model.config import TokenizerConfig
from ..model.pixels import frames_to_model, model_to_frames
from .corpus import ClipSampler, Corpus
from .discriminator import PatchDiscriminator, hinge_d_loss
from ..metrics import psnr_y_bt709_limited
from .losses import lpips_weights_available, reconstruction_loss


@dataclass
class TrainConfig:
    steps: int = 100_000          # stop after this many optimizer steps (total, across resumes)
    max_minutes: float = 0.0      # stop after this much wall time in this invocation (0 = no limit)
    batch: int = 4                # clips per step per process
    frames: int = 9               # frames per training clip (1 + 4k)
    size: int = 128               # crop size in pixels (multiple of 8)
    photo_prob: float = 0.3       # share of clips made by panning over still photos
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup: int = 200
    ema: float = 0.999
    ssim_weight: float = 0.2
    adv_weight: float = 0.0       # adversarial loss weight (0 = off)
    adv_start: int = 2000         # step at which the adversarial loss starts
    lpips_weight: float = 0.0     # LPIPS perceptual loss weight; needs local pretrained weights
    checkpoint_minutes: float = 5.0
    eval_every: int = 500
    seed: int = 0
    threads: int = 0              # torch CPU threads (0 = torch default)
    bf16: bool = True             # bfloat16 autocast (CPU with AVX512-BF16/AMX: ~1.5x faster steps; GPU)


def _is_dist() -> bool:
    return dist.is_available() and dist.is_initialized()


def _rank() -> int:
    return dist.get_rank() if _is_dist() else 0


def to_model_range(batch_uint8: np.ndarray, device) -> torch.Tensor:
    """(B, T, H, W, 3) uint8 -> (B, 3, T, H, W) float in [-1, 1]."""
    return frames_to_model(torch.from_numpy(batch_uint8).to(device))


@torch.no_grad()
def evaluate(model: VideoTokenizer, heldout: dict[str, np.ndarray], device) -> dict:
    """Held-out PSNR-Y (vcodec.metrics.psnr_y_bt709_limited) per rate level (mean over held-out segments)."""
    model.eval()
    out = {}
    for levels in range(1, model.cfg.max_levels + 1):
        vals = []
        for clip in heldout.values():
            n = 1 + (len(clip) - 1) // 4 * 4
            x = to_model_range(clip[None, :n], device)
            rec = model.decode_indices(model.encode_indices(x, levels))             # (1, 3, n, h, w)
            vals.append(psnr_y_bt709_limited(clip[:n], model_to_frames(rec)[0].cpu().numpy()))
        out[levels] = float(np.mean(vals)) if vals else float("nan")
    return out


class Trainer:
    def __init__(self, model_cfg: TokenizerConfig, train_cfg: TrainConfig, corpus: Corpus, out: Path,
                 device: str = "cpu"):
        self.mcfg, self.cfg, self.corpus, self.out = model_cfg, train_cfg, corpus, Path(out)
        self.device = torch.device(device)
        torch.manual_seed(train_cfg.seed)
        self.model = VideoTokenizer(model_cfg).to(self.device)
        self.ema = copy.deepcopy(self.model).eval()
        for p in self.ema.parameters():
            p.requires_grad_(False)
        self.net = self.model
        if _is_dist():
            self.net = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=train_cfg.lr, weight_decay=train_cfg.weight_decay,
                                     betas=(0.9, 0.99))
        self.disc = self.disc_opt = None
        if train_cfg.adv_weight > 0:
            self.disc = PatchDiscriminator().to(self.device)
            self.disc_opt = torch.optim.AdamW(self.disc.parameters(), lr=train_cfg.lr * 0.5, betas=(0.5, 0.99))
        self.lpips = None
        if train_cfg.lpips_weight > 0:
            if not lpips_weights_available():
                raise RuntimeError("LPIPS loss requested but its pretrained AlexNet weights are not in the torch "
                                   "hub cache; LPIPS is unavailable offline")
            import lpips
            self.lpips = lpips.LPIPS(net="alex", verbose=False).to(self.device).eval()
        self.sampler = ClipSampler(corpus, frames=train_cfg.frames, size=train_cfg.size,
                                   photo_prob=train_cfg.photo_prob, seed=train_cfg.seed * 1000 + _rank())
        self.step = 0
        self.train_seconds = 0.0
        self.history: list[dict] = []   # {step, hours, psnr_y: {levels: dB}}
        self.level_rng = torch.Generator().manual_seed(train_cfg.seed * 7 + 1 + _rank())

    # ---- checkpointing -------------------------------------------------------------------------
    def state(self) -> dict:
        return {
            "format": "vcodec-train-1",
            "config": self.mcfg.to_dict(), "train_config": asdict(self.cfg),
            "model": self.model.state_dict(), "ema": self.ema.state_dict(),
            "optimizer": self.opt.state_dict(),
            "disc": self.disc.state_dict() if self.disc else None,
            "disc_optimizer": self.disc_opt.state_dict() if self.disc_opt else None,
            "step": self.step, "train_seconds": self.train_seconds, "history": self.history,
            "device_type": self.device.type,
            "rng": {"torch": torch.get_rng_state(), "numpy_sampler": self.sampler.state(),
                    "levels": self.level_rng.get_state(), "python": random.getstate()},
        }

    def save(self, path: Path | None = None) -> None:
        if _rank() == 0:
            atomic_save(self.state(), path or self.out)

    def load(self, path: Path) -> None:
        ck = load_checkpoint(path)
        if TokenizerConfig.from_dict(ck["config"]) != self.mcfg:
            raise ValueError(f"{path}: checkpoint was made with a different TokenizerConfig")
        self.model.load_state_dict(ck["model"])
        self.ema.load_state_dict(ck["ema"])
        if ck.get("optimizer"):
            self.opt.load_state_dict(ck["optimizer"])
        if self.disc and ck.get("disc"):
            self.disc.load_state_dict(ck["disc"])
            self.disc_opt.load_state_dict(ck["disc_optimizer"])
        self.step = ck.get("step", 0)
        self.train_seconds = ck.get("train_seconds", 0.0)
        self.history = ck.get("history", [])
        rng = ck.get("rng")
        if rng:
            torch.set_rng_state(rng["torch"])
            if _rank() == 0 or not _is_dist():
                self.sampler.set_state(rng["numpy_sampler"])
            self.level_rng.set_state(rng["levels"])
            random.setstate(rng["python"])

    # ---- one optimizer step --------------------------------------------------------------------
    def lr_at(self, step: int) -> float:
        warm = min(1.0, (step + 1) / max(1, self.cfg.warmup))
        progress = min(1.0, step / max(1, self.cfg.steps))
        return self.cfg.lr * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))

    def train_step(self) -> dict:
        self.model.train()
        cfg = self.cfg
        x = to_model_range(self.sampler.batch(cfg.batch), self.device)        # (B, 3, T, S, S)
        levels = torch.randint(1, self.mcfg.max_levels + 1, (x.shape[0],), generator=self.level_rng).to(self.device)
        for g in self.opt.param_groups:
            g["lr"] = self.lr_at(self.step)
        amp = torch.autocast(self.device.type, dtype=torch.bfloat16) if cfg.bf16 else contextlib.nullcontext()
        with amp:
            out = self.net(x, levels)
            rec = out.reconstruction.float()
            loss, stats = reconstruction_loss(rec, x, ssim_weight=cfg.ssim_weight)
            loss = loss + out.aux_loss
            if self.lpips is not None:
                frames = lambda v: v.transpose(1, 2).flatten(0, 1)  # noqa: E731  (B*T, 3, H, W)
                lp = self.lpips(frames(rec), frames(x)).mean()
                loss = loss + cfg.lpips_weight * lp
                stats["lpips"] = lp.item()
            use_adv = self.disc is not None and self.step >= cfg.adv_start
            if use_adv:
                g_adv = -self.disc(rec).mean()
                loss = loss + cfg.adv_weight * g_adv
                stats["g_adv"] = g_adv.item()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        if use_adv:
            d_loss = hinge_d_loss(self.disc(x), self.disc(rec.detach()))
            self.disc_opt.zero_grad(set_to_none=True)
            d_loss.backward()
            self.disc_opt.step()
            stats["d_loss"] = d_loss.item()
        with torch.no_grad():
            d = min(self.cfg.ema, (1 + self.step) / (10 + self.step))
            for pe, pm in zip(self.ema.parameters(), self.model.parameters()):
                pe.lerp_(pm.detach(), 1 - d)
        self.step += 1
        stats["loss"] = loss.item()
        stats.update({f"H{i}": v for i, v in enumerate(out.stats.get("codebook_entropy_bits", []))})
        return stats

    # ---- the loop ------------------------------------------------------------------------------
    def run(self) -> None:
        cfg = self.cfg
        start = time.time()
        last_ckpt = time.time()
        seconds_at_start = self.train_seconds
        bar = tqdm(total=cfg.steps, initial=self.step, disable=_rank() != 0, dynamic_ncols=True,
                   desc="train", mininterval=5)
        heldout_psnr = self.history[-1]["psnr_y"] if self.history else {}
        log = self.out.with_suffix(".log.jsonl") if _rank() == 0 else None
        self.out.parent.mkdir(parents=True, exist_ok=True)
        while self.step < cfg.steps:
            stats = self.train_step()
            self.train_seconds = seconds_at_start + time.time() - start
            if self.step % cfg.eval_every == 0 and _rank() == 0:
                heldout_psnr = evaluate(self.ema, self.corpus.heldout, self.device)
                rec = {"step": self.step, "hours": self.train_seconds / 3600, "device": self.device.type,
                       "psnr_y": heldout_psnr}
                self.history.append(rec)
                with open(log, "a") as f:
                    f.write(json.dumps({**rec, **stats}) + "\n")
            bar.update(1)
            bar.set_postfix(loss=f"{stats['loss']:.4f}", mse=f"{stats['mse']:.4f}",
                            heldout_psnr=" ".join(f"{v:.1f}" for v in heldout_psnr.values()), refresh=False)
            stop = cfg.max_minutes and (time.time() - start) > cfg.max_minutes * 60
            if time.time() - last_ckpt > cfg.checkpoint_minutes * 60 or stop or self.step >= cfg.steps:
                self.save()
                last_ckpt = time.time()
            if stop:
                break
        bar.close()


def setup_distributed(device: str) -> str:
    """Initialise torch.distributed when launched by torchrun; returns the per-rank device string."""
    if "RANK" not in os.environ or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return device
    backend = "nccl" if device.startswith("cuda") else "gloo"
    dist.init_process_group(backend)
    if device.startswith("cuda"):
        local = int(os.environ.get("LOCAL_RANK", 0))
        torch.cuda.set_device(local)
        return f"cuda:{local}"
    return device
