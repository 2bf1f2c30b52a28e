"""Training: a step runs, resume continues the same run exactly, DDP over 2 CPU processes works."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from vcodec.model import TokenizerConfig
from vcodec.train.corpus import ClipSampler, Corpus
from vcodec.train.trainer import TrainConfig, Trainer

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[1]


def _corpus() -> Corpus:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (11, 40, 48, 3), dtype=np.uint8)
    runs = [np.roll(base, s, axis=2) for s in range(3)]
    photos = [rng.integers(0, 256, (60, 70, 3), dtype=np.uint8)]
    return Corpus(runs, photos, {"held": base[:5, :16, :16]})


def _write_corpus(path: Path) -> None:
    c = _corpus()
    arrays = {f"train/x/{i:03d}": r for i, r in enumerate(c.runs)}
    arrays["photo/p"] = c.photos[0]
    arrays["heldout/held"] = c.heldout["held"]
    np.savez(path, **arrays)


def _cfg(**kw) -> TrainConfig:
    base = dict(steps=4, batch=2, frames=5, size=16, eval_every=2, checkpoint_minutes=1e9, warmup=1)
    base.update(kw)
    return TrainConfig(**base)


def test_ping_pong_plays_short_runs_back_and_forth():
    from vcodec.train.corpus import ping_pong

    assert ping_pong(4, 11).tolist() == [0, 1, 2, 3, 2, 1, 0, 1, 2, 3, 2]
    assert ping_pong(1, 3).tolist() == [0, 0, 0] and ping_pong(5, 3).tolist() == [0, 1, 2]


def test_sampler_shapes_and_determinism():
    c = _corpus()
    a = ClipSampler(c, frames=5, size=16, photo_prob=0.5, seed=3).batch(4)
    b = ClipSampler(c, frames=5, size=16, photo_prob=0.5, seed=3).batch(4)
    assert a.shape == (4, 5, 16, 16, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)


@pytest.mark.slow
def test_resume_continues_the_same_run(tmp_path):
    """4 steps in one go == 2 steps, save, load into a fresh trainer, 2 more steps."""
    cfg_model = TokenizerConfig.tiny()
    full = Trainer(cfg_model, _cfg(), _corpus(), tmp_path / "full.pt")
    full.run()
    half = Trainer(cfg_model, _cfg(steps=4, max_minutes=0), _corpus(), tmp_path / "half.pt")
    half.train_step()
    half.train_step()
    half.save()
    resumed = Trainer(cfg_model, _cfg(), _corpus(), tmp_path / "half.pt")
    resumed.load(tmp_path / "half.pt")
    assert resumed.step == 2
    resumed.run()
    for (k, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), k
    for a, b in zip(full.ema.state_dict().values(), resumed.ema.state_dict().values()):
        assert torch.equal(a, b)


@pytest.mark.slow
def test_adversarial_loss_step(tmp_path):
    t = Trainer(TokenizerConfig.tiny(), _cfg(adv_weight=0.1, adv_start=0), _corpus(), tmp_path / "a.pt")
    stats = t.train_step()
    assert "d_loss" in stats and "g_adv" in stats and np.isfinite(stats["loss"])


def test_lpips_refused_without_local_weights(tmp_path, monkeypatch):
    monkeypatch.setattr("vcodec.train.trainer.lpips_status", lambda: "weights not in the torch hub cache")
    with pytest.raises(RuntimeError, match="LPIPS"):
        Trainer(TokenizerConfig.tiny(), _cfg(lpips_weight=0.1), _corpus(), tmp_path / "l.pt")


def test_train_command_from_corpus_file_and_video(tmp_path):
    from click.testing import CliRunner

    from vcodec.train.command import train_command
    corpus = tmp_path / "c.npz"
    _write_corpus(corpus)
    out = tmp_path / "ck.pt"
    args = [str(corpus), "-o", str(out), "--model-config", "tiny", "--steps", "2", "--batch", "1",
            "--frames", "5", "--size", "16", "--eval-every", "1"]
    res = CliRunner().invoke(train_command, args)
    assert res.exit_code == 0, res.output
    ck = torch.load(out, weights_only=False)
    assert ck["step"] == 2 and ck["config"]["name"] == "tiny-test" and len(ck["history"]) == 2
    res = CliRunner().invoke(train_command, args[:-6] + ["--steps", "3", "--resume", "--batch", "1",
                                                          "--frames", "5", "--size", "16"])
    assert res.exit_code == 0, res.output
    assert torch.load(out, weights_only=False)["step"] == 3
    res = CliRunner().invoke(train_command, args[:-6] + ["--steps", "4", "--resume", "--rate-model", "mix"])
    assert res.exit_code == 2 and "a resumed run keeps it" in res.output   # its proxy and optimizer go together
    res = CliRunner().invoke(train_command, [str(corpus), "-o", str(tmp_path / "n.pt"), "--rate-model", "bits"])
    assert res.exit_code == 2 and "'bits' is not one of contexts, mix" in res.output


@pytest.mark.slow
def test_torchrun_two_process_cpu_step(tmp_path):
    corpus = tmp_path / "c.npz"
    _write_corpus(corpus)
    out = tmp_path / "ddp.pt"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "vcodec.train", str(corpus), "-o", str(out), "--model-config", "tiny", "--steps", "2",
           "--batch", "1", "--frames", "5", "--size", "16", "--eval-every", "100"]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stderr[-2000:]
    assert torch.load(out, weights_only=False)["step"] == 2


def test_train_continues_from_a_shipped_model(tmp_path):
    """`--init` starts from an exported (fp16, optimizer-less) model and keeps its step count and history."""
    from click.testing import CliRunner

    from vcodec.model.checkpoint import atomic_save, export_inference
    from vcodec.train.command import train_command
    t = Trainer(TokenizerConfig.tiny(), _cfg(steps=2), _corpus(), tmp_path / "run.pt")
    t.run()
    shipped = export_inference(t.state(), rate_points=[], coder_tables=None,
                               card={"steps": t.step, "train_seconds": 5.0, "history": t.history})
    atomic_save(shipped, tmp_path / "shipped.pt")
    corpus = tmp_path / "c.npz"
    _write_corpus(corpus)
    out = tmp_path / "next.pt"
    res = CliRunner().invoke(train_command, [str(corpus), "-o", str(out), "--resume", "--init", str(tmp_path / "shipped.pt"),
                                             "--model-config", "tiny", "--steps", "3", "--batch", "1", "--frames", "5",
                                             "--size", "16", "--eval-every", "100"])
    assert res.exit_code == 0, res.output
    ck = torch.load(out, weights_only=False)
    assert ck["step"] == 3 and ck["train_seconds"] > 5.0 and len(ck["history"]) == len(t.history)


def _tiny_v2() -> TokenizerConfig:
    """tiny() widened like v2: two token planes per level and nested (bits, planes) rate points."""
    d = TokenizerConfig.tiny().to_dict()
    d.update(name="tiny-v2", latent_channels=16, max_levels=2, quality_points=((2, 1), (8, 1), (8, 2), (8, 4)))
    return TokenizerConfig.from_dict(d)


def test_rate_distortion_step_with_rate_points(tmp_path):
    """The v2 recipe: per-frame PSNR-YUV distortion + coder-context rate, one rate point per sample."""
    t = Trainer(_tiny_v2(), _cfg(distortion="psnr_yuv", rate_weight=3.0, aux_gain=100.0, frames=9),
                _corpus(), tmp_path / "v2.pt")
    before = t.rate_model.logits.detach().clone()
    stats = t.train_step()
    assert np.isfinite(stats["loss"]) and 0 < stats["rate_frac"] <= 1.0 + 1e-6 and stats["bpp"] > 0
    assert not torch.equal(before, t.rate_model.logits)          # the rate proxy learns
    t.save()
    resumed = Trainer(_tiny_v2(), _cfg(distortion="psnr_yuv", rate_weight=3.0, aux_gain=100.0, frames=9),
                      _corpus(), tmp_path / "v2.pt")
    resumed.load(tmp_path / "v2.pt")
    assert torch.equal(resumed.rate_model.logits, t.rate_model.logits)


def test_decoder_only_training_keeps_the_tokens(tmp_path):
    """train_part "decoder": the encoder and quantizer stay as they were (every file's tokens and bits too), the
    decoder learns, and the EMA copy of the frozen parts stays equal to them."""
    t = Trainer(_tiny_v2(), _cfg(distortion="psnr_yuv", train_part="decoder", flicker_weight=1.0,
                                 saturation_prob=0.5, hue_prob=0.5, frames=9), _corpus(), tmp_path / "d.pt")
    frozen = {k: v.clone() for k, v in t.model.state_dict().items() if not k.startswith("decoder.")}
    dec = t.model.decoder.from_latent.conv.weight.detach().clone()
    for _ in range(2):
        assert np.isfinite(t.train_step()["loss"])
    assert all(torch.equal(t.model.state_dict()[k], v) for k, v in frozen.items())
    assert all(torch.equal(t.ema.state_dict()[k], v) for k, v in frozen.items())
    assert not torch.equal(dec, t.model.decoder.from_latent.conv.weight)
    with pytest.raises(ValueError, match="train_part must be one of all, decoder"):
        _cfg(train_part="encoder")
    with pytest.raises(ValueError, match="distortion must be one of"):   # a typo once trained l1mse silently
        _cfg(distortion="psnr-yuv")
    for bad, message in ((dict(frames=6), "frames must be 1 \\+ 4k"), (dict(size=100), "size must be a multiple of 8"),
                         (dict(batch=0), "batch must be at least 1"), (dict(lr=-1.0), "lr must be above 0"),
                         (dict(saturation_prob=2.0), "saturation_prob must be in"),
                         (dict(hue_prob=-0.1), "hue_prob must be in"), (dict(warmup=-1), "warmup")):
        with pytest.raises(ValueError, match=message):
            _cfg(**bad)


def test_flicker_hinge_costs_only_dips_beyond_the_margin():
    from vcodec.train.losses import frame_psnr_yuv_loss

    x = torch.zeros(1, 3, 4, 8, 8)
    noise = torch.randn(1, 3, 4, 8, 8) * 0.01
    plain, _ = frame_psnr_yuv_loss(x + noise, x)
    assert torch.allclose(plain, frame_psnr_yuv_loss(x + noise, x, flicker_weight=5.0, flicker_margin=3.0)[0])
    dipped = noise.clone()
    dipped[:, :, 2] *= 4                                  # frame 2 about 12 dB worse than the others
    base, _ = frame_psnr_yuv_loss(x + dipped, x)
    hinged, _ = frame_psnr_yuv_loss(x + dipped, x, flicker_weight=1.0, flicker_margin=0.5)
    assert hinged.item() > base.item() + 1


def test_chroma_weight_weighs_colour_errors_against_luma_as_6_to_c():
    """chroma_weight 1 is the benchmarks' 6:1:1 weighting; a larger weight makes a pure colour error cost more and
    a pure luma error less (the weights sum to 1), and the trainer refuses a weight of 0."""
    from vcodec.train.losses import frame_psnr_yuv_loss

    x = torch.zeros(1, 3, 2, 8, 8)
    luma = torch.full_like(x, 0.02)                                    # R = G = B: only Y moves
    colour = torch.zeros_like(x)
    colour[:, 2] = 0.02                                                # mostly Cb
    ycbcr = torch.tensor([[0.2126, 0.7152, 0.0722], [-0.1146, -0.3854, 0.5], [0.5, -0.4542, -0.0458]])
    e = (ycbcr @ (colour[0, :, 0, 0, 0] * 0.5)).pow(2)
    expected = 10 * torch.log10((6 * e[0] + e[1] + e[2]) / 8 + 1e-8)
    assert frame_psnr_yuv_loss(x + colour, x)[0].item() == pytest.approx(expected.item(), abs=1e-4)
    assert frame_psnr_yuv_loss(x + colour, x, chroma_weight=3.0)[0] > frame_psnr_yuv_loss(x + colour, x)[0] + 1
    assert frame_psnr_yuv_loss(x + luma, x, chroma_weight=3.0)[0] < frame_psnr_yuv_loss(x + luma, x)[0]
    with pytest.raises(ValueError, match="chroma_weight must be above 0"):
        _cfg(chroma_weight=0.0)


def test_saturation_keeps_grays_and_pushes_colours_away_from_luma():
    from vcodec.train.corpus import saturate

    gray = np.full((2, 4, 4, 3), 117, np.uint8)
    assert np.array_equal(saturate(gray, 2.0), gray)
    c = np.array([[[100, 150, 200]]], np.uint8)
    out = saturate(c, 2.0).astype(int)[0, 0]
    assert out[0] < 100 and out[2] > 200 and saturate(c, 1.0).tolist() == c.tolist()
    assert saturate(np.array([[[0, 0, 255]]], np.uint8), 2.5).tolist() == [[[0, 0, 255]]]   # clipped, no wrap


def test_hue_rotation_keeps_luma_and_grays_and_turns_chroma():
    """rotate_hue: grays and angle 0 unchanged, luma kept where nothing clips, half a turn gives the complementary
    colour (2 x luma - colour in R and B), a full turn gives the colour back (all within rounding)."""
    from vcodec.colour import KB, KG, KR
    from vcodec.train.corpus import rotate_hue

    gray = np.full((2, 4, 4, 3), 117, np.uint8)
    assert np.array_equal(rotate_hue(gray, 1.0), gray)
    c = np.array([[[100, 150, 200]]], np.uint8)
    y = float(c[0, 0] @ np.array([KR, KG, KB]))
    assert np.abs(rotate_hue(c, 0.0).astype(int) - c).max() <= 1
    assert np.abs(rotate_hue(c, 2 * np.pi).astype(int) - c).max() <= 1
    for angle in (0.5, 2.0, np.pi, 4.0):
        out = rotate_hue(c, angle).astype(float)[0, 0]
        assert abs(float(out @ np.array([KR, KG, KB])) - y) <= 1.0
        assert np.abs(out - c[0, 0]).max() > 5
    opposite = rotate_hue(c, np.pi).astype(float)[0, 0]
    assert abs(opposite[0] - (2 * y - 100)) <= 1 and abs(opposite[2] - (2 * y - 200)) <= 1


def test_warm_start_copies_the_overlap_and_silences_new_latent_channels(tmp_path):
    src = Trainer(TokenizerConfig.tiny(), _cfg(), _corpus(), tmp_path / "a.pt")
    dst = Trainer(_tiny_v2(), _cfg(), _corpus(), tmp_path / "b.pt")
    sd = src.model.state_dict()
    with torch.no_grad():
        for v in sd.values():
            if v.is_floating_point():
                v.normal_()
    assert dst.warm_start(sd) == len([k for k in sd if k in dst.model.state_dict()])
    w_new, w_old = dst.model.decoder.from_latent.conv.weight, sd["decoder.from_latent.conv.weight"]
    assert torch.equal(w_new[:, :8], w_old) and torch.all(w_new[:, 8:] == 0)
    assert torch.equal(dst.model.encoder.to_latent.conv.weight[:8], sd["encoder.to_latent.conv.weight"])
    assert torch.equal(dst.model.encoder.stem.conv.weight, sd["encoder.stem.conv.weight"])
    for pe, pm in zip(dst.ema.parameters(), dst.model.parameters()):
        assert torch.equal(pe, pm)


def test_log_without_heldout_data_is_valid_json(tmp_path):
    """No held-out clips: the PSNRs are NaN, which the log must write as null (bare NaN is not JSON)."""
    import json

    c = _corpus()
    Trainer(TokenizerConfig.tiny(), _cfg(steps=2, eval_every=1), Corpus(c.runs, c.photos, {}), tmp_path / "ck.pt").run()
    lines = (tmp_path / "ck.log.jsonl").read_text().splitlines()
    assert len(lines) == 2 and "NaN" not in "".join(lines)

    def refuse(name):
        raise ValueError(f"not JSON: {name}")

    recs = [json.loads(ln, parse_constant=refuse) for ln in lines]
    assert recs[0]["psnr_y"] and all(v is None for r in recs for v in r["psnr_y"].values())


def test_train_help_describes_every_flag():
    """`vcodec train --help`: every option has a description, not just its default."""
    import dataclasses

    from click.testing import CliRunner

    from vcodec.train.command import CONFIG_HELP, train_command
    from vcodec.train.trainer import TrainConfig

    assert set(CONFIG_HELP) == {f.name for f in dataclasses.fields(TrainConfig)}
    ctx = train_command.make_context("train", ["x", "-o", "y"], resilient_parsing=True)
    for p in train_command.params:
        if isinstance(p, __import__("click").Option):
            text = p.get_help_record(ctx)[1]
            assert text and not text.startswith("(default") and not text.startswith("["), p.name
    out = CliRunner().invoke(train_command, ["--help"]).output
    assert "--ema FLOAT" in out and "--no-bf16" in out
