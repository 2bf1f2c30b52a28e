"""Time-budgeted training: fit a whole schedule into a fixed number of minutes on a (lent) GPU.

    python -m vcodec.train.budget CORPUS --init CKPT --out DIR --minutes 8 [--batch 32 --size 128]

Starts from the weights in ``--init`` (a training checkpoint, with or without optimizer state) with a fresh
optimizer, measures the time per step on this machine, then sets the run's length so that warm-up, the
rate-free phase (``--rate-free``: latent channels the rate term had silenced learn to carry information),
the ramp back to the full rate weight (``--rate-ramp``) and the cosine decay all fit into the budget.
Batches are drawn on background threads (pinned memory) while the GPU trains.

Every ``--save-minutes`` and at the end, the training checkpoint is written as five files (``SPLIT_FILES``),
each small enough to come back from a lent machine (< 16 MiB for the v2 model); ``join_state`` puts them back
together into one checkpoint that ``vcodec train --resume`` continues. ``DIR/summary.json`` records the step time, batch, steps and held-out PSNR history.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import queue
import threading
import time
from pathlib import Path

import torch

from ..model.checkpoint import atomic_save, load_checkpoint
from ..model.config import TokenizerConfig
from .corpus import ClipSampler, Corpus
from .revive import revive_silent_channels
from .trainer import RECIPES, TrainConfig, Trainer, evaluate, parse_numbers, training_progress


class Prefetcher:
    """Draws batches on one thread per sampler (each its own random stream), a few ahead, as (B, T, S, S, 3)
    uint8 tensors (pinned for a GPU)."""

    def __init__(self, samplers: list[ClipSampler], batch: int, pin: bool, depth: int = 4):
        self.q: queue.Queue = queue.Queue(maxsize=depth)
        self.stop = threading.Event()

        def work(sampler):
            while not self.stop.is_set():
                t = torch.from_numpy(sampler.batch(batch))
                self.q.put(t.pin_memory() if pin else t)

        self.threads = [threading.Thread(target=work, args=(s,), daemon=True) for s in samplers]
        for t in self.threads:
            t.start()

    def next(self) -> torch.Tensor:
        return self.q.get()

    def close(self) -> None:
        self.stop.set()
        while not self.q.empty():
            self.q.get_nowait()


# save_split's files: each under 16 MiB for the v2 model (2.95 M parameters, 11.3 MiB in fp32)
SPLIT_FILES = ("state.pt", "model.pt", "ema.pt", "adam_avg.pt", "adam_sq.pt")


def save_split(trainer: Trainer, out_dir: Path) -> None:
    """The trainer's checkpoint as five files: state (config, rate model, history, RNG), model, EMA, and the
    optimizer's first and second moments."""
    state = trainer.state()
    model, ema, optimizer = state.pop("model"), state.pop("ema"), state.pop("optimizer")
    optimizer["state"] = {i: dict(s) for i, s in optimizer["state"].items()}   # (shared with the live optimizer)
    second = {i: s.pop("exp_avg_sq") for i, s in optimizer["state"].items()}
    parts = {"state.pt": state, "model.pt": {"config": state["config"], "model": model},
             "ema.pt": {"config": state["config"], "ema": ema},
             "adam_avg.pt": {"config": state["config"], "optimizer": optimizer},
             "adam_sq.pt": {"config": state["config"], "exp_avg_sq": second}}
    for name in SPLIT_FILES:
        atomic_save(parts[name], out_dir / name)


def join_state(out_dir: str | Path, dst: str | Path) -> None:
    """One training checkpoint (``vcodec train --resume`` continues it) from ``save_split``'s files."""
    out_dir = Path(out_dir)
    state = load_checkpoint(out_dir / "state.pt")
    state["model"] = load_checkpoint(out_dir / "model.pt")["model"]
    state["ema"] = load_checkpoint(out_dir / "ema.pt")["ema"]
    optimizer = load_checkpoint(out_dir / "adam_avg.pt")["optimizer"]
    for i, sq in load_checkpoint(out_dir / "adam_sq.pt")["exp_avg_sq"].items():
        optimizer["state"][i]["exp_avg_sq"] = sq
    state["optimizer"] = optimizer
    atomic_save(state, dst)


def _load_weights(trainer: Trainer, ck: dict) -> None:
    ema = {k: v.float() for k, v in (ck.get("ema") or ck["model"]).items()}   # (an init may be stored in fp16)
    trainer.model.load_state_dict({k: v.float() for k, v in (ck.get("model") or ema).items()})
    trainer.ema.load_state_dict(ema)
    same_proxy = (ck.get("train_config") or {}).get("rate_model", "contexts") == trainer.cfg.rate_model
    if ck.get("rate_model") is not None and same_proxy:  # (another proxy starts afresh and learns with the model)
        trainer.rate_model.load_state_dict(ck["rate_model"])
    trainer.step, trainer.train_seconds, trainer.history = training_progress(ck)


def run(args) -> dict:
    t_start = time.time()
    budget = args.minutes * 60
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    ck = load_checkpoint(args.init)
    mcfg = TokenizerConfig.from_dict(ck["config"])
    # a training checkpoint's own settings; a shipped model stores none: the recipe of the v2 network
    stored = dict(ck.get("train_config") or {k: v for k, v in RECIPES["v2"].items() if k not in ("steps", "lr")})
    step0 = training_progress(ck)[0]
    cfg = TrainConfig(**{**stored, "batch": args.batch, "size": args.size,
                         "frames": args.frames or stored.get("frames", 17), "lr": args.lr, "warmup": args.warmup,
                         "eval_every": args.eval_every, "seed": step0 + 1, "restart_step": step0,
                         **({"point_rate_scale": args.point_rate_scale} if args.point_rate_scale else {}),
                         **({"point_weights": args.point_weights} if args.point_weights else {}),
                         **({"rate_model": args.rate_model} if args.rate_model else {}),
                         **{k: getattr(args, k) for k in ("flicker_weight", "saturation_prob", "chroma_weight", "hue_prob")
                            if getattr(args, k) is not None},
                         "steps": step0 + 10**9, "checkpoint_minutes": 10**9, "max_minutes": 0.0})
    corpus = Corpus.load([args.corpus])
    print(f"corpus: {len(corpus.runs)} runs, {len(corpus.photos)} photos, {len(corpus.heldout)} held-out "
          f"({time.time() - t_start:.0f} s)", flush=True)
    trainer = Trainer(mcfg, cfg, corpus, out / "state.pt", device=str(device))
    _load_weights(trainer, ck)
    if args.revive_below > 0:
        clips = [c[:1 + (len(c) - 1) // 4 * 4] for c in corpus.heldout.values()]
        silent = revive_silent_channels(trainer.model, clips, args.revive_below, seed=step0,
                                        decoder_scale=args.revive_decoder_scale)
        trainer.ema.load_state_dict(trainer.model.state_dict())
        print(f"revived {len(silent)} silent latent channels: {silent}", flush=True)
    print(f"start at step {trainer.step} ({trainer.train_seconds / 3600:.2f} h), bf16={trainer.use_bf16}, "
          f"batch {cfg.batch} x {cfg.frames} x {cfg.size}^2", flush=True)
    # a history record at the start: hours before it belong to the machine that made the init checkpoint
    t_eval = time.time()
    psnr = evaluate(trainer.ema, corpus.heldout, device)
    eval_s = time.time() - t_eval
    trainer.history.append({"step": trainer.step, "hours": trainer.train_seconds / 3600,
                            "device": ck.get("device_type", "cpu"), "psnr_y": psnr})
    samplers = [trainer.sampler] + [ClipSampler(corpus, frames=cfg.frames, size=cfg.size, photo_prob=cfg.photo_prob,
                                                saturation_prob=cfg.saturation_prob, hue_prob=cfg.hue_prob,
                                                seed=cfg.seed * 1000 + 100 + i) for i in range(1, args.loaders)]
    feed = Prefetcher(samplers, cfg.batch, pin=device.type == "cuda")

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    t_train, seconds0 = time.time(), trainer.train_seconds
    # probe the step time (the first steps also tune cuDNN), then fit the schedule into what is left
    for i in range(args.probe_steps):
        if i == args.probe_steps // 3:
            sync()
            t_probe = time.time()
        trainer.train_step(feed.next())
        trainer.train_seconds = seconds0 + time.time() - t_train
    sync()
    step_s = (time.time() - t_probe) / (args.probe_steps - args.probe_steps // 3)
    left = budget - (time.time() - t_start) - args.reserve_s
    n_evals_guess = left / step_s / cfg.eval_every
    total = max(1, int((left - n_evals_guess * eval_s) / step_s)) + args.probe_steps
    cfg.steps = step0 + total
    cfg.rate_free_steps = int(args.rate_free * total)
    cfg.rate_ramp_steps = int(args.rate_ramp * total)
    print(f"step {step_s * 1000:.0f} ms, eval {eval_s:.1f} s: {total} steps in this budget "
          f"(rate-free {cfg.rate_free_steps}, ramp {cfg.rate_ramp_steps}); peak memory "
          f"{torch.cuda.max_memory_allocated() / 2**30 if device.type == 'cuda' else 0:.1f} GiB", flush=True)

    log = out / "log.jsonl"
    last_save = time.time()
    while trainer.step < cfg.steps and time.time() - t_start < budget - args.reserve_s / 2:
        stats = trainer.train_step(feed.next())
        trainer.train_seconds = seconds0 + time.time() - t_train
        if trainer.step % cfg.eval_every == 0 or trainer.step >= cfg.steps:
            psnr = trainer.record_heldout(log, {**stats, "rate_weight": trainer.rate_weight_at(trainer.step - 1),
                                                "lr": trainer.lr_at(trainer.step - 1)})
            print(f"step {trainer.step}: bpp {stats['bpp']:.3f} held-out PSNR-Y "
                  + " ".join(f"{v:.2f}" for v in psnr.values()), flush=True)
        if time.time() - last_save > args.save_minutes * 60:
            save_split(trainer, out)
            last_save = time.time()
    feed.close()
    save_split(trainer, out)
    summary = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
               "step_ms": step_s * 1000, "start_step": step0, "end_step": trainer.step, "planned_steps": total,
               "train_config": dataclasses.asdict(cfg), "wall_s": time.time() - t_start,
               "history": trainer.history[-20:]}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"done: steps {step0} -> {trainer.step} in {time.time() - t_start:.0f} s", flush=True)
    return summary


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m vcodec.train.budget", description=__doc__.split("\n\n")[0])
    p.add_argument("corpus", help="corpus .npz (raw or JPEG-packed)")
    p.add_argument("--init", required=True, help="training checkpoint to start from (weights; optimizer is fresh)")
    p.add_argument("--out", required=True, help="directory for the checkpoint files (SPLIT_FILES), log.jsonl, summary.json")
    p.add_argument("--minutes", type=float, required=True, help="wall-clock budget, loading and saving included")
    p.add_argument("--device", default="cuda")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--frames", type=int, default=0, help="frames per training clip, 1 + 4k (0: the init's); "
                   "longer clips than the 17-frame window teach the causal state of a stream across chunks")
    p.add_argument("--lr", type=float, default=8e-4)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--rate-free", type=float, default=0.2, help="share of the steps without the rate term")
    p.add_argument("--rate-ramp", type=float, default=0.2, help="share of the steps ramping the rate term up")
    p.add_argument("--revive-below", type=float, default=0.0, help="first re-draw latent channels whose sign "
                   "entropy on the held-out clips is below this many bits (vcodec.train.revive; 0 = off)")
    p.add_argument("--revive-decoder-scale", type=float, default=0.1, help="revived channels' decoder weights, "
                   "relative to the live channels' scale")
    p.add_argument("--point-rate-scale", type=parse_numbers, default=None, help="comma-separated factor on the rate "
                   "weight per quality point (TrainConfig.point_rate_scale; default: the init's)")
    p.add_argument("--point-weights", type=parse_numbers, default=None, help="comma-separated relative frequency of "
                   "each quality point in training (TrainConfig.point_weights; default: the init's)")
    p.add_argument("--rate-model", choices=["contexts", "mix"], default=None, help="the rate proxy "
                   "(TrainConfig.rate_model; default: the init's); a different one than the init's starts afresh")
    p.add_argument("--flicker-weight", type=float, default=None, help="weight of the hinge on frames more than "
                   "0.5 dB below their clip's mean PSNR (distortion psnr_yuv; default: the init's, else 0)")
    p.add_argument("--saturation-prob", type=float, default=None, help="share of clips made more saturated "
                   "(default: the init's, else 0)")
    p.add_argument("--chroma-weight", type=float, default=None, help="distortion psnr_yuv: weight of Cb and Cr "
                   "against Y's 6 (default: the init's, else 1, the benchmarks' 6:1:1)")
    p.add_argument("--hue-prob", type=float, default=None, help="share of clips whose hues are turned by a random "
                   "angle, luma kept (default: the init's, else 0)")
    p.add_argument("--loaders", type=int, default=4, help="threads drawing batches")
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--save-minutes", type=float, default=1.5)
    p.add_argument("--probe-steps", type=int, default=30)
    p.add_argument("--reserve-s", type=float, default=20.0, help="seconds kept back for the final save")
    run(p.parse_args(argv))


if __name__ == "__main__":
    main()
