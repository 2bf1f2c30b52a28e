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

from ..lpips_net import lpips_model, lpips_status
from ..metrics import psnr_y_bt709_limited
from ..model.autoencoder import VideoTokenizer
from ..model.checkpoint import atomic_save, load_checkpoint
from ..model.config import TokenizerConfig
from ..model.lfq import plane_mask
from ..model.pixels import frames_to_model, model_to_frames
from ..model.rate import rate_model
from ..models import bf16_is_fast
from .corpus import ClipSampler, Corpus
from .discriminator import PatchDiscriminator, hinge_d_loss
from .losses import frame_psnr_yuv_loss, reconstruction_loss

DISTORTIONS = ("l1mse", "psnr_yuv")
TRAIN_PARTS = ("all", "decoder")


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
    ssim_weight: float = 0.2      # (distortion "l1mse") SSIM term on every 4th frame
    distortion: str = "l1mse"     # "l1mse" (v1: L1 + 2 MSE + SSIM) or "psnr_yuv" (mean over frames of -PSNR-YUV 6:1:1)
    rate_weight: float = 0.0      # dB of PSNR traded for coding all of a rate point's raw bits (0 = no rate term)
    restart_step: int = 0         # step at which the current schedule began (a fresh optimizer, e.g. on another
                                  # machine): learning-rate warm-up and cosine run from here to `steps`
    rate_free_steps: int = 0      # steps after restart_step without the rate term (lets latent channels that
                                  # the rate term has silenced carry information again) ...
    rate_ramp_steps: int = 0      # ... then this many steps of a linear ramp up to rate_weight
    point_rate_scale: tuple = ()  # per quality point, a factor on rate_weight (empty: 1 for all). A point's bits
                                  # are priced at rate_weight x factor / its raw bits; factors below 1 at the top
                                  # points let them spend bits that the lower points would not (a lower lambda)
    point_weights: tuple = ()     # per quality point, how often a training clip is coded at it (empty: uniform)
    rate_model: str = "contexts"  # the rate proxy (vcodec.model.rate): "contexts" (coder version 1's context tables)
                                  # or "mix" (versions 2-3's logistic model; measured 2-4x closer to the shipped
                                  # coder's bits at the upper rate points, benchmarks/results/rate_proxy.txt)
    aux_gain: float = 1.0         # scale of the quantizer's commitment/confidence terms against the distortion
    adv_weight: float = 0.0       # adversarial loss weight (0 = off)
    adv_start: int = 2000         # step at which the adversarial loss starts
    lpips_weight: float = 0.0     # LPIPS perceptual loss weight; needs local pretrained weights
    checkpoint_minutes: float = 5.0
    eval_every: int = 500
    seed: int = 0
    threads: int = 0              # torch CPU threads (0 = torch default)
    bf16: bool = True             # bfloat16 autocast where it is fast (GPU; CPU with AVX512-BF16/AMX: ~1.5x
                                  # faster steps); ignored on CPUs without native bf16 (emulated: 25-60x slower)
    train_part: str = "all"       # "all", or "decoder": encoder and quantizer frozen, so the tokens (and every
                                  # file's bits) stay those of the init; only the pictures decoded from them change
    flicker_weight: float = 0.0   # weight of a hinge on frames more than flicker_margin dB below their clip's mean
    flicker_margin: float = 0.5   # (per-frame PSNR-YUV of the distortion "psnr_yuv"): against periodic dips
    saturation_prob: float = 0.0  # share of clips whose colours are made more saturated (x1 to x2.5 around their
                                  # luma, clipped): saturated colours are rare in the corpus
    chroma_weight: float = 1.0    # distortion "psnr_yuv": weight of Cb and Cr against Y's 6 (1: the benchmarks'
                                  # 6:1:1 PSNR-YUV; more: fewer colour errors for some luma quality)
    hue_prob: float = 0.0         # share of clips whose hues are turned by a random angle around the gray axis (same
                                  # luma): saturated cyans, blues and magentas are rare in the corpus

    def __post_init__(self):
        """ValueError naming the first setting outside its range (a command line's typo is one usage line)."""
        for name, allowed in (("distortion", DISTORTIONS), ("train_part", TRAIN_PARTS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        checks = {
            "steps": self.steps >= 1, "batch": self.batch >= 1, "eval_every": self.eval_every >= 1,
            "frames": self.frames >= 1 and self.frames % 4 == 1, "size": self.size >= 8 and self.size % 8 == 0,
            "lr": self.lr > 0, "checkpoint_minutes": self.checkpoint_minutes > 0, "ema": 0 <= self.ema < 1,
            "photo_prob": 0 <= self.photo_prob <= 1, "saturation_prob": 0 <= self.saturation_prob <= 1,
            "chroma_weight": self.chroma_weight > 0, "hue_prob": 0 <= self.hue_prob <= 1,
        }
        non_negative = ("max_minutes", "weight_decay", "warmup", "ssim_weight", "rate_weight", "restart_step",
                        "rate_free_steps", "rate_ramp_steps", "aux_gain", "adv_weight", "adv_start", "lpips_weight",
                        "threads", "flicker_weight", "flicker_margin")
        checks.update({name: getattr(self, name) >= 0 for name in non_negative})
        wants = {"frames": "1 + 4k frames", "size": "a multiple of 8 pixels", "ema": "in [0, 1)",
                 "photo_prob": "in [0, 1]", "saturation_prob": "in [0, 1]", "hue_prob": "in [0, 1]", "lr": "above 0",
                 "checkpoint_minutes": "above 0", "chroma_weight": "above 0", "steps": "at least 1", "batch": "at least 1",
                 "eval_every": "at least 1"}
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"{name} must be {wants.get(name, 'at least 0')}, got {getattr(self, name)!r}")


# Training settings that go with a network (``vcodec train --model-config``) when a run starts, and that a budget
# run from a shipped model (which stores no training settings) starts from; flags given on a command line win.
# v2's rate proxy is coder version 3's mixing model made differentiable, the closest to the bits that coder writes
# (benchmarks/results/rate_proxy.txt).
RECIPES = {
    "v2": {"distortion": "psnr_yuv", "rate_weight": 3.0, "aux_gain": 2000.0, "rate_model": "mix", "frames": 17,
           "size": 96, "lr": 5e-4, "steps": 20000, "eval_every": 1000},
}


def training_progress(ck: dict) -> tuple[int, float, list]:
    """(step, training seconds, held-out history) of a training checkpoint, or of a shipped model (from its card)."""
    src = ck if "step" in ck else ck.get("card") or {}
    return (int(src.get("step", src.get("steps", 0))), float(src.get("train_seconds", 0.0)),
            list(src.get("history", [])))


def parse_numbers(text: str) -> tuple[float, ...]:
    """Comma-separated numbers (a per-point setting on a command line, e.g. ``1,1,0.5``) -> a tuple of floats."""
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"expected comma-separated numbers, got {text!r}") from None


def _per_point(values, points: int, name: str) -> list[float]:
    """``values`` (one non-negative number per quality point) as floats; a wrong length or sign is an error."""
    values = [float(v) for v in values]
    if len(values) != points or min(values) < 0 or not sum(values) > 0:
        raise ValueError(f"{name} needs {points} non-negative numbers (one per quality point), got {values}")
    return values


def _is_dist() -> bool:
    return dist.is_available() and dist.is_initialized()


def _rank() -> int:
    return dist.get_rank() if _is_dist() else 0


def to_model_range(batch_uint8: np.ndarray, device) -> torch.Tensor:
    """(B, T, H, W, 3) uint8 -> (B, 3, T, H, W) float in [-1, 1]."""
    return frames_to_model(torch.from_numpy(batch_uint8).to(device))


@torch.no_grad()
def evaluate(model: VideoTokenizer, heldout: dict[str, np.ndarray], device) -> dict:
    """Held-out PSNR-Y (vcodec.metrics.psnr_y_bt709_limited) per quality (1 = lowest rate point; mean over
    held-out segments).

    Each clip is encoded once; every rate point decodes its prefix of the same tokens."""
    model.eval()
    vals: dict[int, list[float]] = {q: [] for q in range(1, len(model.cfg.qualities) + 1)}
    for clip in heldout.values():
        n = 1 + (len(clip) - 1) // 4 * 4
        x = to_model_range(clip[None, :n], device)
        tokens = model.encode_indices(x, model.cfg.planes)                          # (1, P, T', h, w)
        for q, (bits, planes) in enumerate(model.cfg.qualities, start=1):
            rec = model.decode_indices(tokens[:, :planes] & ((1 << bits) - 1), bits)  # (1, 3, n, h, w)
            vals[q].append(psnr_y_bt709_limited(clip[:n], model_to_frames(rec)[0].cpu().numpy()))
    return {q: float(np.mean(v)) if v else float("nan") for q, v in vals.items()}


class Trainer:
    def __init__(self, model_cfg: TokenizerConfig, train_cfg: TrainConfig, corpus: Corpus, out: Path,
                 device: str = "cpu"):
        self.mcfg, self.cfg, self.corpus, self.out = model_cfg, train_cfg, corpus, Path(out)
        self.device = torch.device(device)
        torch.manual_seed(train_cfg.seed)
        self.model = VideoTokenizer(model_cfg, rate_trained=train_cfg.rate_weight > 0).to(self.device)
        # the rate proxy trains beside the model (its own module: shipped weights stay the tokenizer's)
        self.rate_model = rate_model(train_cfg.rate_model, model_cfg.planes, model_cfg.token_bits).to(self.device)
        n = len(model_cfg.qualities)  # the per-point settings, checked once (None: uniform / 1 for all)
        self._point_weights = torch.tensor(_per_point(train_cfg.point_weights, n, "point_weights"),
                                           dtype=torch.float64) if train_cfg.point_weights else None
        self._point_rate_scale = torch.tensor(_per_point(train_cfg.point_rate_scale, n, "point_rate_scale"),
                                              device=self.device) if train_cfg.point_rate_scale else None
        if train_cfg.train_part == "decoder":
            if _is_dist():
                raise ValueError("train_part 'decoder' runs on one process (no DDP)")
            for p in [*self.model.encoder.parameters(), *self.model.quantizer.parameters()]:
                p.requires_grad_(False)
        self.ema = copy.deepcopy(self.model).eval()
        for p in self.ema.parameters():
            p.requires_grad_(False)
        self.net = self.model
        if _is_dist():
            self.net = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.opt = torch.optim.AdamW(
            [{"params": list(self.model.parameters())},
             {"params": list(self.rate_model.parameters()), "weight_decay": 0.0, "lr_scale": 10.0}],
            lr=train_cfg.lr, weight_decay=train_cfg.weight_decay, betas=(0.9, 0.99))
        self.disc = self.disc_opt = None
        if train_cfg.adv_weight > 0:
            self.disc = PatchDiscriminator().to(self.device)
            self.disc_opt = torch.optim.AdamW(self.disc.parameters(), lr=train_cfg.lr * 0.5, betas=(0.5, 0.99))
        self.lpips = None
        if train_cfg.lpips_weight > 0:
            reason = lpips_status()
            if reason is not None:
                raise RuntimeError(f"LPIPS loss requested but unavailable: {reason}")
            self.lpips = lpips_model().to(self.device)
        self.sampler = ClipSampler(corpus, frames=train_cfg.frames, size=train_cfg.size,
                                   photo_prob=train_cfg.photo_prob, seed=train_cfg.seed * 1000 + _rank(),
                                   saturation_prob=train_cfg.saturation_prob, hue_prob=train_cfg.hue_prob)
        self.use_bf16 = train_cfg.bf16 and bf16_is_fast(self.device)
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
            "rate_model": self.rate_model.state_dict(),
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
        if ck.get("rate_model") is not None:
            self.rate_model.load_state_dict(ck["rate_model"])
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

    def warm_start(self, state: dict) -> int:
        """Copy another network's weights where names match: whole tensors when shapes agree, else the
        overlapping leading slice (e.g. a v1 latent of 32 channels into the first 32 of 64). New input
        channels of the decoder's first convolution start at zero, so the warm-started decoder initially
        ignores latent channels it has never seen. Returns how many tensors were copied."""
        own = self.model.state_dict()
        copied = 0
        with torch.no_grad():
            for name, src in state.items():
                dst = own.get(name)
                if dst is None or dst.dim() != src.dim():
                    continue
                if name.startswith("decoder.from_latent") and name.endswith("weight") and dst.shape[1] > src.shape[1]:
                    dst[:, src.shape[1]:].zero_()
                region = tuple(slice(0, min(a, b)) for a, b in zip(dst.shape, src.shape))
                dst[region].copy_(src[region].to(dst.dtype))
                copied += 1
        self.ema.load_state_dict(self.model.state_dict())
        return copied

    # ---- one optimizer step --------------------------------------------------------------------
    def lr_at(self, step: int) -> float:
        """Linear warm-up, then cosine decay to a tenth, over restart_step .. steps."""
        s, total = step - self.cfg.restart_step, self.cfg.steps - self.cfg.restart_step
        warm = min(1.0, (s + 1) / max(1, self.cfg.warmup))
        progress = min(1.0, max(0, s) / max(1, total))
        return self.cfg.lr * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))

    def rate_weight_at(self, step: int) -> float:
        """rate_weight, held at 0 for rate_free_steps after restart_step, then ramped up linearly."""
        s = step - self.cfg.restart_step - self.cfg.rate_free_steps
        if s < 0:
            return 0.0
        return self.cfg.rate_weight * min(1.0, (s + 1) / max(1, self.cfg.rate_ramp_steps))

    def sample_points(self, batch: int) -> torch.Tensor:
        """(batch,) int64 quality-point indices, one per training clip: uniform, or by ``point_weights``."""
        if self._point_weights is None:
            return torch.randint(0, len(self.mcfg.qualities), (batch,), generator=self.level_rng)
        return torch.multinomial(self._point_weights, batch, replacement=True, generator=self.level_rng)

    def point_rate_scale(self, q: torch.Tensor) -> torch.Tensor:
        """(B,) factor on the rate weight of each clip at quality point ``q`` (B,) (``point_rate_scale``)."""
        if self._point_rate_scale is None:
            return torch.ones((), device=self.device)
        return self._point_rate_scale[q.to(self.device)]

    def train_step(self, clips: np.ndarray | torch.Tensor | None = None) -> dict:
        """One optimizer step on ``clips`` (B, T, S, S, 3) uint8 (default: the next batch of the sampler)."""
        self.model.train()
        cfg = self.cfg
        if clips is None:
            clips = self.sampler.batch(cfg.batch)
        x = frames_to_model(torch.as_tensor(clips).to(self.device, non_blocking=True))   # (B, 3, T, S, S)
        B = x.shape[0]
        points = torch.tensor(self.mcfg.qualities)                             # (Q, 2): bits, planes
        q = self.sample_points(B)
        mask = plane_mask(points[q, 0], points[q, 1], self.mcfg.planes, self.mcfg.token_bits, B).to(self.device)
        for g in self.opt.param_groups:
            g["lr"] = self.lr_at(self.step) * g.get("lr_scale", 1.0)
        amp = torch.autocast(self.device.type, dtype=torch.bfloat16) if self.use_bf16 else contextlib.nullcontext()
        with amp:
            out = self.net(x, mask, encoder_grad=cfg.train_part != "decoder")
            rec = out.reconstruction.float()
            if cfg.distortion == "psnr_yuv":
                dist, stats = frame_psnr_yuv_loss(rec, x, flicker_weight=cfg.flicker_weight,
                                                  flicker_margin=cfg.flicker_margin,
                                                  chroma_weight=cfg.chroma_weight)     # (B,) dB
            else:
                loss, stats = reconstruction_loss(rec, x, ssim_weight=cfg.ssim_weight)
                dist = loss.expand(B)
            # without a rate term the proxy still learns (its rate is reported) but must not steer the model
            rate_weight = self.rate_weight_at(self.step)
            bits = out.bits if rate_weight else out.bits.detach()
            coded_bits = self.rate_model(bits, mask)                              # (B,) bits under the coder
            raw_bits = mask.sum(dim=(1, 2)) * out.bits[0, 0, 0].numel()
            rate_frac = coded_bits / raw_bits
            loss = (dist + rate_weight * self.point_rate_scale(q) * rate_frac).mean() + cfg.aux_gain * out.aux_loss
            if rate_weight == 0:
                loss = loss + rate_frac.mean()
            stats["rate_frac"] = rate_frac.mean().item()
            stats["bpp"] = (coded_bits / (x.shape[2] * x.shape[3] * x.shape[4])).mean().item()
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
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0 if cfg.distortion == "l1mse" else 100.0)
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

    def record_heldout(self, log: Path, stats: dict) -> dict:
        """Evaluate the EMA weights on the held-out clips, add the result to ``history`` and append it with
        ``stats`` (the last step's) as one JSON line to ``log``; returns {quality: PSNR-Y}."""
        psnr = evaluate(self.ema, self.corpus.heldout, self.device)
        rec = {"step": self.step, "hours": self.train_seconds / 3600, "device": self.device.type, "psnr_y": psnr}
        self.history.append(rec)
        with open(log, "a") as f:
            # no held-out data gives NaN PSNRs: written as null (bare NaN is not JSON)
            f.write(json.dumps(_nan_to_none({**rec, **stats})) + "\n")
        return psnr

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
                heldout_psnr = self.record_heldout(log, stats)
            bar.update(1)
            bar.set_postfix(loss=f"{stats['loss']:.4f}", mse=f"{stats['mse']:.5f}", bpp=f"{stats['bpp']:.3f}",
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


def _nan_to_none(x):
    """``x`` with every NaN float (nested in dicts and lists) as None, i.e. JSON ``null``."""
    if isinstance(x, float) and x != x:
        return None
    if isinstance(x, dict):
        return {k: _nan_to_none(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_nan_to_none(v) for v in x]
    return x
