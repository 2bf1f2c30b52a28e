"""vcodec.train.export on a tiny model and a tiny data folder: it writes the .pt and a card measured with
vcodec.metrics, keeps the shipped model unless the new one is better (measuring both the same way), and
``--card-only`` re-measures a shipped model without touching its file."""

import json

import numpy as np
import pytest
import torch

from vcodec.io import write_video
from vcodec.io.synthetic import pattern_frames
from vcodec.metrics import psnr_y_bt709_limited
from vcodec.model import TokenizerConfig, VideoTokenizer
from vcodec.train import export

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    data = root / "data"
    (data / "raw").mkdir(parents=True)
    frames = pattern_frames(9, 24, 32)
    write_video(data / "raw" / "clip.mkv", frames)       # FFV1: lossless
    manifest = {"sources": [{"name": "clip", "file": "clip.mkv"}], "photos": [],
                "heldout": [{"name": "clip", "start": 4, "frames": 5}]}
    (data / "manifest.json").write_text(json.dumps(manifest))
    np.savez_compressed(data / "corpus.npz", **{"train/clip/000": frames[:9]})
    torch.manual_seed(0)
    model = VideoTokenizer(TokenizerConfig.tiny())
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1 and p.abs().sum() == 0:
                p.normal_(0, 0.02)
    ckpt = root / "ckpt.pt"
    torch.save({"config": model.cfg.to_dict(), "model": model.state_dict(), "ema": None, "step": 7,
                "train_seconds": 36.0, "history": []}, ckpt)
    return root, data, ckpt, frames


def test_export_writes_model_and_card_with_the_one_metric(setup):
    root, data, ckpt, frames = setup
    out = root / "m.pt"
    export.main([str(ckpt), "--data", str(data), "-o", str(out)])
    shipped = torch.load(out, weights_only=False)
    rows = shipped["card"]["rate_points"]
    levels = TokenizerConfig.tiny().max_levels
    assert [r["quality"] for r in rows] == list(range(1, levels + 1)) and shipped["card"]["steps"] == 7
    item = rows[-1]["per_clip"][0]
    assert set(item) >= {"bpp", "psnr_y_bt709_limited", "ms_ssim_rgb"}
    from vcodec.tokenizer import Tokenizer
    tok = Tokenizer.load(out)
    seg = frames[4:9]
    rec = tok.decode_window(tok.encode_window(seg, levels), 5, 24, 32)
    assert item["psnr_y_bt709_limited"] == pytest.approx(psnr_y_bt709_limited(seg, rec))
    card = (root / "MODEL_CARD_m.md").read_text()
    assert "psnr_y_bt709_limited" in card and "PSNR-Y BT.709 (dB)" in card

    # the same model again is not better than itself: the shipped file stays
    before = out.read_bytes()
    with pytest.raises(SystemExit) as e:
        export.main([str(ckpt), "--data", str(data), "-o", str(out)])
    assert e.value.code == 3 and out.read_bytes() == before

    # re-measuring the shipped model's card leaves the .pt byte for byte as it is, and gives the same numbers
    (root / "MODEL_CARD_m.md").unlink()
    export.main([str(out), "--card-only", "--data", str(data), "-o", str(out)])
    assert out.read_bytes() == before
    again = (root / "MODEL_CARD_m.md").read_text()
    assert again.split("## Architecture")[1] == card.split("## Architecture")[1]

    with pytest.raises(SystemExit) as e:                  # a shipped model is not a training checkpoint
        export.main([str(out), "--data", str(data), "-o", str(root / "other.pt")])
    assert e.value.code == 2


def test_a_decoder_fine_tune_keeps_the_coder_tables_of_its_init(setup):
    """--coder-from: a checkpoint whose encoder and quantizer are a shipped model's (a decoder-only fine-tune) takes
    that model's coder tables, so the same video codes to the same token bytes; another encoder is refused."""
    root, data, ckpt, frames = setup
    base = root / "base.pt"
    export.main([str(ckpt), "--data", str(data), "-o", str(base)])
    tuned = torch.load(ckpt, weights_only=False)
    with torch.no_grad():
        for k, v in tuned["model"].items():
            if k.startswith("decoder.") and v.is_floating_point():
                v.add_(0.01)
    torch.save(tuned, root / "tuned.pt")
    out = root / "tuned_m.pt"
    export.main([str(root / "tuned.pt"), "--data", str(data), "-o", str(out), "--coder-from", str(base)])
    a, b = torch.load(base, weights_only=False), torch.load(out, weights_only=False)
    assert a["weights_hash"] != b["weights_hash"]
    assert np.array_equal(a["coder_tables"], b["coder_tables"]) and a["mix_tables_v3"].keys() == b["mix_tables_v3"].keys()
    for bits, t in a["mix_tables_v3"].items():
        assert all(np.array_equal(t[k], b["mix_tables_v3"][bits][k]) for k in t)
    assert [r["bpp"] for r in a["card"]["rate_points"]] == [r["bpp"] for r in b["card"]["rate_points"]]

    other = torch.load(ckpt, weights_only=False)
    with torch.no_grad():
        next(v for k, v in other["model"].items() if k.startswith("encoder.")).add_(0.01)
    torch.save(other, root / "other_enc.pt")
    with pytest.raises(SystemExit) as e:                 # argparse's one usage line, exit status 2
        export.main([str(root / "other_enc.pt"), "--data", str(data), "-o", str(root / "x.pt"),
                     "--coder-from", str(base)])
    assert e.value.code == 2 and not (root / "x.pt").exists()
    with pytest.raises(ValueError, match="encoder or quantizer differs"):
        export.tables_of_same_encoder(other, torch.load(base, weights_only=False), base)


def test_a_level_added_to_a_shipped_model_keeps_its_streams(setup):
    """--add-level: the same weights (and hash) with one more residual level and a quality point above the others;
    a stream the model wrote before decodes with the grown model to the same frames, the old quality points code
    the same token bytes, and the coder tables of the shipped levels stay as they were."""
    import shutil

    import vcodec
    from vcodec.tokenizer import Tokenizer

    root, data, ckpt, frames = setup
    base, grown = root / "lv_base.pt", root / "lv_grown.pt"
    export.main([str(ckpt), "--data", str(data), "-o", str(base)])
    shutil.copy(base, grown)
    export.main([str(grown), "--add-level", "--data", str(data), "-o", str(grown)])
    a, b = torch.load(base, weights_only=False), torch.load(grown, weights_only=False)
    ca, cb = TokenizerConfig.from_dict(a["config"]), TokenizerConfig.from_dict(b["config"])
    assert a["weights_hash"] == b["weights_hash"] and cb.max_levels == ca.max_levels + 1
    top = ca.qualities[-1][1]
    assert cb.qualities == (*ca.qualities, (ca.token_bits, top + 1))
    rows_a, rows_b = a["card"]["rate_points"], b["card"]["rate_points"]
    assert [r["bpp"] for r in rows_b[:-1]] == [r["bpp"] for r in rows_a] and rows_b[-1]["levels"] == top + 1
    assert "--add-level" in b["card"]["notes"][0] and b["default_quality"] == len(rows_a) and "default_quality" not in a
    n = len(a["coder_tables"])
    assert np.array_equal(b["coder_tables"][:n], a["coder_tables"])
    for bits, t in a["mix_tables_v3"].items():
        assert all(np.array_equal(b["mix_tables_v3"][bits][k][:len(t[k])], t[k]) for k in ("weights", "counts"))

    tok_a, tok_b = Tokenizer.load(base), Tokenizer.load(grown)
    clip = frames[:9]
    old = vcodec.compress(clip, quality=len(rows_a), tokenizer=tok_a)
    assert np.array_equal(vcodec.decompress(old, tokenizer=tok_b), vcodec.decompress(old, tokenizer=tok_a))
    new = vcodec.compress(clip, quality=len(rows_a), tokenizer=tok_b)
    import io

    import bitstream
    assert ([c.data for c in bitstream.VcbReader(io.BytesIO(old)).coded_chunks()]
            == [c.data for c in bitstream.VcbReader(io.BytesIO(new)).coded_chunks()])
    assert tok_b.default_quality == len(rows_a) == tok_a.default_quality   # no quality asked: the trained top
    assert vcodec.compress(clip, tokenizer=tok_b) == new
    top = vcodec.compress(clip, quality=len(rows_b), tokenizer=tok_b)
    assert vcodec.decompress(top, tokenizer=tok_b).shape == clip.shape and len(top) > len(new)


def test_export_sets_the_quality_a_stream_gets_when_it_asks_for_none(setup):
    root, data, ckpt, _ = setup
    out = root / "q.pt"
    with pytest.raises(SystemExit) as e:                     # refused before anything is measured or written
        export.main([str(ckpt), "--data", str(data), "-o", str(out), "--default-quality", "99"])
    assert e.value.code == 2 and not out.exists()
    export.main([str(ckpt), "--data", str(data), "-o", str(out), "--default-quality", "1",
                 "--note", "Shipped for a test.", "--note", "A second sentence."])
    from vcodec.tokenizer import Tokenizer
    assert torch.load(out, weights_only=False)["default_quality"] == 1 and Tokenizer.load(out).default_quality == 1
    card = (root / "MODEL_CARD_q.md").read_text()
    assert "gets quality 1." in card and "\nShipped for a test.\n\nA second sentence.\n" in card
    assert torch.load(out, weights_only=False)["card"]["notes"][-2:] == ["Shipped for a test.", "A second sentence."]
    with pytest.raises(SystemExit) as e:                     # a shipped model keeps its own
        export.main([str(out), "--card-only", "--data", str(data), "-o", str(out), "--default-quality", "1"])
    assert e.value.code == 2
