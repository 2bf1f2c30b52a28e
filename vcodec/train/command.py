"""`vcodec train DATA... -o CKPT`: train (or keep training) a tokenizer.

Also runnable as `python -m vcodec.train` and under `torchrun --nproc_per_node N -m vcodec.train ...`.
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import click

from ..model.config import TokenizerConfig

# One line for each TrainConfig field, for --help (a test checks that every field has one).
CONFIG_HELP = {
    "steps": "stop after this many optimizer steps (total, across resumes)",
    "max_minutes": "stop after this much wall time in this invocation (0 = no limit)",
    "batch": "clips per step per process",
    "frames": "frames per training clip (1 + 4k)",
    "size": "crop size in pixels (a multiple of 8)",
    "photo_prob": "share of clips made by panning over still photos",
    "lr": "peak learning rate (AdamW)",
    "weight_decay": "AdamW weight decay",
    "warmup": "learning-rate warm-up steps",
    "ema": "decay of the weights' exponential moving average (the EMA weights are evaluated and exported)",
    "ssim_weight": "weight of the SSIM term on every 4th frame (distortion l1mse)",
    "distortion": "l1mse (L1 + 2 MSE + SSIM) or psnr_yuv (mean over frames of -PSNR-YUV 6:1:1)",
    "rate_weight": "dB of PSNR traded for coding all of a rate point's raw bits (0 = no rate term)",
    "restart_step": "step at which the current warm-up + cosine schedule began (a fresh optimizer)",
    "rate_free_steps": "steps after restart_step without the rate term (revives silenced latent channels)",
    "rate_ramp_steps": "then this many steps of a linear ramp up to rate_weight",
    "point_rate_scale": "per quality point, a factor on rate_weight (comma-separated; none: 1 for every point); "
                        "factors below 1 at the top points let them spend more bits",
    "rate_model": "the rate proxy: contexts (coder version 1's context tables) or mix (versions 2-3's logistic model)",
    "point_weights": "per quality point, how often a training clip is coded at it (comma-separated; none: uniform)",
    "aux_gain": "scale of the quantizer's commitment/confidence terms against the distortion",
    "adv_weight": "adversarial loss weight (0 = off)",
    "adv_start": "step at which the adversarial loss starts",
    "lpips_weight": "LPIPS perceptual loss weight; needs local pretrained weights",
    "checkpoint_minutes": "minutes between checkpoints",
    "eval_every": "steps between held-out evaluations (logged to OUTPUT's .log.jsonl)",
    "seed": "random seed (sampling and initialisation)",
    "threads": "torch CPU threads (0 = torch's default)",
    "bf16": "bfloat16 autocast where it is fast (GPUs; CPUs with native bf16); ignored elsewhere",
    "train_part": "all, or decoder: encoder and quantizer frozen (tokens, and so every file's bits, unchanged)",
    "flicker_weight": "weight of a hinge on frames more than flicker_margin dB below their clip's mean PSNR",
    "flicker_margin": "dB a frame may lie below its clip's mean PSNR before flicker_weight applies",
    "saturation_prob": "share of training clips made more saturated (x1 to x2.5 around their luma)",
    "chroma_weight": "distortion psnr_yuv: weight of Cb and Cr against Y's 6 (1 = the benchmarks' 6:1:1)",
    "hue_prob": "share of training clips whose hues are turned by a random angle around the gray axis (luma kept)",
}


def _config_options(func):
    for f in reversed(dataclasses.fields(_train_config_cls())):
        flag = f"--{f.name.replace('_', '-')}"
        if f.type in (bool, "bool"):
            flag = f"{flag}/--no-{f.name.replace('_', '-')}"
        kind = None if f.type in (bool, "bool") else _NUMBERS if isinstance(f.default, tuple) else type(f.default)
        default = "none" if f.default == () else f.default
        func = click.option(flag, f.name, type=kind, default=None,
                            help=f"{CONFIG_HELP.get(f.name, '')} (default {default})".lstrip())(func)
    return func


class _Numbers(click.ParamType):
    name = "N,N,..."

    def convert(self, value, param, ctx):
        from .trainer import parse_numbers
        try:
            return value if isinstance(value, tuple) else parse_numbers(value)
        except ValueError as e:
            self.fail(str(e), param, ctx)


_NUMBERS = _Numbers()


def _train_config_cls():
    from .trainer import TrainConfig
    return TrainConfig


@click.command("train")
@click.argument("data", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False),
              help="checkpoint to write (atomically, every few minutes)")
@click.option("--resume/--no-resume", default=False, help="continue from OUTPUT if it exists (exactly)")
@click.option("--init", "init", type=click.Path(exists=True, dir_okay=False), default=None,
              help="start from the weights of this checkpoint (e.g. the shipped model) with a fresh optimizer")
@click.option("--device", default="cpu", type=click.Choice(["cpu", "cuda"]), show_default=True,
              help="device to train on (under torchrun: one process per GPU)")
@click.option("--model-config", "model_config", default="default",
              type=click.Choice(["default", "v2", "tiny"]), show_default=True,
              help="network for a new run: default = v1 layout, v2 = rate-distortion model, tiny = tests")
@_config_options
def train_command(data, output, resume, init, device, model_config, **overrides):
    """Train the tokenizer on DATA (a pre-decoded corpus .npz, or video files)."""
    import torch

    from ..model.rate import RATE_MODELS
    from .corpus import Corpus
    from .trainer import RECIPES, TrainConfig, Trainer, setup_distributed, training_progress

    out = Path(output)
    stored = None
    if resume and out.exists():
        from ..model.checkpoint import load_checkpoint
        stored = load_checkpoint(out)
    # a new run starts from the recipe of its network (flags win); a resumed run keeps its stored settings
    base = dict(stored.get("train_config") or {}) if stored else dict(RECIPES.get(model_config, {}))
    try:
        cfg = TrainConfig(**{**base, **{k: v for k, v in overrides.items() if v is not None}})
    except ValueError as e:      # a setting outside its range or choices (TrainConfig.__post_init__)
        raise click.UsageError(str(e)) from None
    if stored and cfg.rate_model != base.get("rate_model", "contexts"):
        raise click.UsageError(f"--rate-model: {out} was trained with the {base.get('rate_model', 'contexts')!r} "
                               "rate proxy; a resumed run keeps it (start a new run with --init to change it)")
    if cfg.rate_model not in RATE_MODELS:
        raise click.BadParameter(f"{cfg.rate_model!r} is not one of {', '.join(RATE_MODELS)}",
                                 param_hint="'--rate-model'")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if device == "cuda" and not torch.cuda.is_available():
        raise click.ClickException("--device cuda requested but no CUDA device is available")
    device = setup_distributed(device)
    mcfg = {"default": TokenizerConfig, "v2": TokenizerConfig.v2, "tiny": TokenizerConfig.tiny}[model_config]()
    corpus = Corpus.load(list(data))
    if stored:
        mcfg = TokenizerConfig.from_dict(stored["config"])
    try:
        trainer = Trainer(mcfg, cfg, corpus, out, device=device)
    except ValueError as e:      # per-point settings that do not fit the network (--point-weights ...)
        raise click.UsageError(str(e)) from None
    if stored:
        trainer.load(out)
        click.echo(f"resumed {out} at step {trainer.step} ({trainer.train_seconds / 3600:.2f} h)", err=True)
    elif init:
        from ..model.checkpoint import build_from_checkpoint, load_checkpoint
        ck = load_checkpoint(init)
        src = build_from_checkpoint(ck)
        if src.cfg == mcfg:   # keep training the same network
            trainer.model.load_state_dict(src.state_dict())
            trainer.ema.load_state_dict(src.state_dict())
            trainer.step, trainer.train_seconds, trainer.history = training_progress(ck)
        else:                 # a new network warm-started from another one's weights (a new run: step 0)
            copied = trainer.warm_start(src.state_dict())
            click.echo(f"warm start from {init}: {copied} tensors copied (whole or in part)", err=True)
    trainer.run()


def main(argv=None) -> None:
    train_command.main(args=argv if argv is not None else sys.argv[1:], prog_name="vcodec train")


if __name__ == "__main__":
    main()
