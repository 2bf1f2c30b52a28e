"""Training on a lent machine: the JPEG-packed corpus, the restartable schedule, the split checkpoint files,
the time-budgeted run and the revival of silent latent channels."""
import json

import numpy as np
import pytest
import torch

from tests.test_train import _cfg, _corpus, _tiny_v2, _write_corpus
from vcodec.metrics import psnr_frames
from vcodec.model.checkpoint import load_checkpoint
from vcodec.train import budget
from vcodec.train.corpus import Corpus
from vcodec.train.packed import pack_array, pack_corpus, unpack_array
from vcodec.train.revive import revive_silent_channels, sign_entropy
from vcodec.train.trainer import Trainer

torch.set_num_threads(1)


def _smooth_clip(t=3, h=32, w=40) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    frames = [np.stack([(x * 6 + k * 3) % 256, (y * 7) % 256, (x + y + 40 * k) % 256], -1) for k in range(t)]
    return np.asarray(frames, dtype=np.uint8)


def test_packed_array_round_trip_keeps_shape_and_quality():
    clip = _smooth_clip()
    blob, index = pack_array(clip)
    back = unpack_array(blob, index)
    assert back.shape == clip.shape and back.dtype == np.uint8
    assert min(psnr_frames(clip, back)) > 30
    photo = clip[0]
    blob, index = pack_array(photo)
    assert index[0] == 0 and unpack_array(blob, index).shape == photo.shape


def test_packed_corpus_loads_like_the_raw_one(tmp_path):
    _write_corpus(tmp_path / "raw.npz")
    sizes = pack_corpus(tmp_path / "raw.npz", tmp_path / "packed.npz")
    assert sizes["raw_bytes"] > 0 and sizes["packed_bytes"] > 0
    raw, packed = Corpus.load([tmp_path / "raw.npz"]), Corpus.load([tmp_path / "packed.npz"])
    assert [r.shape for r in raw.runs] == [r.shape for r in packed.runs]
    assert [p.shape for p in raw.photos] == [p.shape for p in packed.photos]
    assert raw.heldout.keys() == packed.heldout.keys()


def test_schedule_restarts_at_restart_step(tmp_path):
    t = Trainer(_tiny_v2(), _cfg(steps=1100, restart_step=100, warmup=10, lr=1e-3, rate_weight=2.0,
                                 rate_free_steps=50, rate_ramp_steps=100), _corpus(), tmp_path / "s.pt")
    assert t.lr_at(100) == pytest.approx(1e-4)                 # warm-up starts again at restart_step
    assert t.lr_at(109) == pytest.approx(1e-3, rel=1e-3)
    assert t.lr_at(1100) == pytest.approx(1e-4)                # cosine down to a tenth at `steps`
    assert t.rate_weight_at(149) == 0.0 and t.rate_weight_at(150) == pytest.approx(0.02)
    assert t.rate_weight_at(249) == pytest.approx(2.0) and t.rate_weight_at(5000) == 2.0


def test_split_files_join_into_a_resumable_checkpoint(tmp_path):
    t = Trainer(_tiny_v2(), _cfg(distortion="psnr_yuv", rate_weight=3.0, frames=9), _corpus(), tmp_path / "a.pt")
    t.train_step()
    budget.save_split(t, tmp_path)
    assert sorted(p.name for p in tmp_path.glob("*.pt")) == sorted(budget.SPLIT_FILES)
    t.train_step()                                              # the live optimizer still has its moments
    budget.join_state(tmp_path, tmp_path / "joined.pt")
    resumed = Trainer(_tiny_v2(), _cfg(distortion="psnr_yuv", rate_weight=3.0, frames=9), _corpus(), tmp_path / "b.pt")
    resumed.load(tmp_path / "joined.pt")
    assert resumed.step == 1
    assert set(resumed.opt.state_dict()["state"][0]) == {"step", "exp_avg", "exp_avg_sq"}
    resumed.train_step()


def test_budgeted_run_fits_the_schedule_and_writes_every_file(tmp_path):
    _write_corpus(tmp_path / "c.npz")
    t = Trainer(_tiny_v2(), _cfg(distortion="psnr_yuv", rate_weight=3.0, frames=9), _corpus(), tmp_path / "init.pt")
    t.save()
    out = tmp_path / "out"
    budget.main([str(tmp_path / "c.npz"), "--init", str(tmp_path / "init.pt"), "--out", str(out), "--minutes", "0.15",
                 "--device", "cpu", "--batch", "1", "--size", "16", "--probe-steps", "3", "--reserve-s", "1",
                 "--eval-every", "1000", "--loaders", "2", "--revive-below", "0.05", "--frames", "13"])
    summary = json.loads((out / "summary.json").read_text())
    cfg = summary["train_config"]
    assert cfg["restart_step"] == 0 and summary["end_step"] > 3 and cfg["frames"] == 13  # longer than the init's 9
    assert cfg["steps"] == summary["planned_steps"] and cfg["rate_free_steps"] == int(0.2 * summary["planned_steps"])
    state = load_checkpoint(out / "state.pt")
    assert state["step"] == summary["end_step"] and "optimizer" not in state and "model" not in state


def test_revive_redraws_only_silent_channels():
    t = Trainer(_tiny_v2(), _cfg(), _corpus(), "unused.pt")
    model = t.model
    clips = [_smooth_clip(t=5, h=32, w=32)]
    with torch.no_grad():                                       # silence channel 3: constant positive output
        model.encoder.to_latent.conv.weight[3] = 0
        model.encoder.to_latent.conv.bias[3] = 1.0
    assert sign_entropy(model, clips)[3] == pytest.approx(0, abs=1e-4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    silent = revive_silent_channels(model, clips, min_bits=0.01)
    assert 3 in silent
    after = model.state_dict()
    enc, dec = "encoder.to_latent.conv.weight", "decoder.from_latent.conv.weight"
    assert not torch.equal(after[enc][3], before[enc][3]) and after[enc][3].std() > 0
    live = [c for c in range(after[enc].shape[0]) if c not in silent]
    assert torch.equal(after[enc][live], before[enc][live]) and torch.equal(after[dec][:, live], before[dec][:, live])
    assert all(torch.equal(after[k], before[k]) for k in before if k not in (enc, dec, "encoder.to_latent.conv.bias"))


def test_point_weights_draw_only_the_weighted_points_and_uniform_stays_as_before(tmp_path):
    weighted = Trainer(_tiny_v2(), _cfg(point_weights=(0, 0, 1, 3)), _corpus(), tmp_path / "w.pt")
    q = weighted.sample_points(4000)
    assert set(q.tolist()) == {2, 3} and 0.7 < (q == 3).float().mean() < 0.8
    uniform = Trainer(_tiny_v2(), _cfg(), _corpus(), tmp_path / "u.pt")
    same_seed = torch.Generator().manual_seed(uniform.level_rng.initial_seed())
    assert torch.equal(uniform.sample_points(16), torch.randint(0, 4, (16,), generator=same_seed))
    with pytest.raises(ValueError, match="point_weights needs 4"):
        Trainer(_tiny_v2(), _cfg(point_weights=(1, 1)), _corpus(), tmp_path / "bad.pt").sample_points(2)


def test_point_rate_scale_prices_each_clip_at_its_point(tmp_path):
    t = Trainer(_tiny_v2(), _cfg(point_rate_scale=(1, 1, 0.5, 0.25)), _corpus(), tmp_path / "s.pt")
    assert t.point_rate_scale(torch.tensor([0, 3, 2])).tolist() == [1.0, 0.25, 0.5]
    assert Trainer(_tiny_v2(), _cfg(), _corpus(), tmp_path / "d.pt").point_rate_scale(torch.tensor([0, 3])) == 1.0
    with pytest.raises(ValueError, match="point_rate_scale needs 4"):
        Trainer(_tiny_v2(), _cfg(point_rate_scale=(1, -1, 1, 1)), _corpus(), tmp_path / "n.pt").point_rate_scale(
            torch.tensor([0]))


def test_budgeted_run_takes_per_point_settings(tmp_path):
    _write_corpus(tmp_path / "c.npz")
    Trainer(_tiny_v2(), _cfg(distortion="psnr_yuv", rate_weight=3.0, frames=9), _corpus(), tmp_path / "i.pt").save()
    out = tmp_path / "out"
    budget.main([str(tmp_path / "c.npz"), "--init", str(tmp_path / "i.pt"), "--out", str(out), "--minutes", "0.1",
                 "--device", "cpu", "--batch", "1", "--size", "16", "--probe-steps", "3", "--reserve-s", "1",
                 "--eval-every", "1000", "--loaders", "1", "--point-rate-scale", "1,1,0.5,0.25",
                 "--point-weights", "1,1,2,2"])
    cfg = json.loads((out / "summary.json").read_text())["train_config"]
    assert cfg["point_rate_scale"] == [1, 1, 0.5, 0.25] and cfg["point_weights"] == [1, 1, 2, 2]


def test_mix_rate_proxy_trains_resumes_and_replaces_another_proxy(tmp_path):
    from vcodec.model.rate import MixRateModel

    cfg = dict(distortion="psnr_yuv", rate_weight=3.0, frames=9)
    t = Trainer(_tiny_v2(), _cfg(rate_model="mix", **cfg), _corpus(), tmp_path / "m.pt")
    assert isinstance(t.rate_model, MixRateModel)
    before = t.rate_model.bias.detach().clone()
    t.train_step()
    assert not torch.equal(before, t.rate_model.bias)          # the proxy learns beside the model
    t.save()
    resumed = Trainer(_tiny_v2(), _cfg(rate_model="mix", **cfg), _corpus(), tmp_path / "m.pt")
    resumed.load(tmp_path / "m.pt")
    assert torch.equal(resumed.rate_model.bias, t.rate_model.bias)
    # a budget run from a checkpoint with the other proxy starts the new one afresh
    _write_corpus(tmp_path / "c.npz")
    Trainer(_tiny_v2(), _cfg(**cfg), _corpus(), tmp_path / "i.pt").save()
    out = tmp_path / "out"
    budget.main([str(tmp_path / "c.npz"), "--init", str(tmp_path / "i.pt"), "--out", str(out), "--minutes", "0.1",
                 "--device", "cpu", "--batch", "1", "--size", "16", "--probe-steps", "3", "--reserve-s", "1",
                 "--eval-every", "1000", "--loaders", "1", "--rate-model", "mix"])
    assert json.loads((out / "summary.json").read_text())["train_config"]["rate_model"] == "mix"
    with pytest.raises(ValueError, match="rate model must be one of"):
        Trainer(_tiny_v2(), _cfg(rate_model="bits"), _corpus(), tmp_path / "x.pt")


def test_budgeted_run_from_a_shipped_model_takes_the_recipe_and_its_card(tmp_path):
    """A shipped model stores no training settings: the run starts from the v2 recipe (flags win) and continues
    the card's step count and history."""
    from vcodec.model.checkpoint import atomic_save, export_inference
    from vcodec.train.trainer import RECIPES

    _write_corpus(tmp_path / "c.npz")
    t = Trainer(_tiny_v2(), _cfg(frames=9), _corpus(), tmp_path / "unused.pt")
    card = {"steps": 40, "train_seconds": 7.0, "history": [{"step": 40, "psnr_y": {1: 20.0}}]}
    ckpt = {"config": t.mcfg.to_dict(), "model": t.model.state_dict()}
    atomic_save(export_inference(ckpt, rate_points=[], coder_tables=None, card=card), tmp_path / "shipped.pt")
    out = tmp_path / "out"
    budget.main([str(tmp_path / "c.npz"), "--init", str(tmp_path / "shipped.pt"), "--out", str(out), "--minutes",
                 "0.1", "--device", "cpu", "--batch", "1", "--size", "16", "--probe-steps", "3", "--reserve-s", "1",
                 "--eval-every", "1000", "--loaders", "1", "--frames", "9", "--flicker-weight", "0.7",
                 "--saturation-prob", "0.2", "--chroma-weight", "2", "--hue-prob", "0.3"])
    summary = json.loads((out / "summary.json").read_text())
    cfg = summary["train_config"]
    recipe_keys = ("distortion", "rate_weight", "aux_gain", "rate_model")
    assert {k: cfg[k] for k in recipe_keys} == {k: RECIPES["v2"][k] for k in recipe_keys}
    assert cfg["rate_model"] == "mix"           # the proxy closest to the coder's bits
    assert cfg["flicker_weight"] == 0.7 and cfg["saturation_prob"] == 0.2 and cfg["restart_step"] == 40
    assert cfg["chroma_weight"] == 2.0 and cfg["hue_prob"] == 0.3
    assert summary["start_step"] == 40 and summary["end_step"] > 40
    assert summary["history"][0]["step"] == 40
