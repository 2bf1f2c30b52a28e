"""`vcodec train DATA... -o CKPT`: train (or keep training) a tokenizer.

Also runnable as `python -m vcodec.train` and under `torchrun --nproc_per_node N -m vcodec.train ...`.
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import click

from ..model.config import TokenizerConfig


def _config_options(func):
    for f in reversed(dataclasses.fields(_train_config_cls())):
        func = click.option(f"--{f.name.replace('_', '-')}", type=type(f.default), default=None,
                            help=f"(default {f.default})")(func)
    return func


def _train_config_cls():
    from .trainer import TrainConfig
    return TrainConfig


# Training settings that go with a network (``--model-config``) when a run starts; flags given on the command
# line win, and a resumed run keeps the settings stored in its checkpoint (flags still win).
RECIPES = {
    "v2": {"distortion": "psnr_yuv", "rate_weight": 3.0, "aux_gain": 2000.0, "frames": 17, "size": 96,
           "lr": 5e-4, "steps": 20000, "eval_every": 1000},
}


@click.command("train")
@click.argument("data", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False),
              help="checkpoint to write (atomically, every few minutes)")
@click.option("--resume/--no-resume", default=False, help="continue from OUTPUT if it exists (exactly)")
@click.option("--init", "init", type=click.Path(exists=True, dir_okay=False), default=None,
              help="start from the weights of this checkpoint (e.g. the shipped model) with a fresh optimizer")
@click.option("--device", default="cpu", type=click.Choice(["cpu", "cuda"]), show_default=True)
@click.option("--model-config", "model_config", default="default",
              type=click.Choice(["default", "v2", "tiny"]), show_default=True,
              help="network for a new run: default = v1 layout, v2 = rate-distortion model, tiny = tests")
@_config_options
def train_command(data, output, resume, init, device, model_config, **overrides):
    """Train the tokenizer on DATA (a pre-decoded corpus .npz, or video files)."""
    import torch

    from .corpus import Corpus
    from .trainer import TrainConfig, Trainer, setup_distributed

    out = Path(output)
    stored = None
    if resume and out.exists():
        from ..model.checkpoint import load_checkpoint
        stored = load_checkpoint(out)
    base = dict(stored.get("train_config") or {}) if stored else dict(RECIPES.get(model_config, {}))
    cfg = TrainConfig(**{**base, **{k: v for k, v in overrides.items() if v is not None}})
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if device == "cuda" and not torch.cuda.is_available():
        raise click.ClickException("--device cuda requested but no CUDA device is available")
    device = setup_distributed(device)
    mcfg = {"default": TokenizerConfig, "v2": TokenizerConfig.v2, "tiny": TokenizerConfig.tiny}[model_config]()
    corpus = Corpus.load(list(data))
    if stored:
        mcfg = TokenizerConfig.from_dict(stored["config"])
    trainer = Trainer(mcfg, cfg, corpus, out, device=device)
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
            trainer.history = ck.get("card", {}).get("history", []) or ck.get("history", [])
            trainer.step = int(ck.get("card", {}).get("steps", ck.get("step", 0)))
            trainer.train_seconds = float(ck.get("card", {}).get("train_seconds", ck.get("train_seconds", 0.0)))
        else:                 # a new network warm-started from another one's weights (a new run: step 0)
            copied = trainer.warm_start(src.state_dict())
            click.echo(f"warm start from {init}: {copied} tensors copied (whole or in part)", err=True)
    trainer.run()


def main(argv=None) -> None:
    train_command.main(args=argv if argv is not None else sys.argv[1:], prog_name="vcodec train")


if __name__ == "__main__":
    main()
