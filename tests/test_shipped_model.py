"""The shipped model, vcodec/weights/default.pt (the only test that uses real weights): it loads, its weights hash is
the recorded one (and what ``vcodec models`` reports), its coder tables are valid, the bundled sample clip lands in a
measured quality band, and a small golden .vcb it made decodes to the recorded frames.

After deliberately replacing the shipped model, update SHIPPED_WEIGHTS_HASH and the bands below (measure them with
``python -m vcodec.demo --quality N``), then regenerate the golden stream:
``VCODEC_REGEN_GOLDEN=1 python -m pytest tests/test_shipped_model.py -k golden``.
"""

import io
import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import bitstream
import vcodec
from bitstream.coder import FIT_TOTAL
from vcodec.cli import main as cli_main
from vcodec.errors import ModelNotFoundError, VcodecWarning
from vcodec.io import read_video
from vcodec.metrics import psnr_y_bt709_limited
from vcodec.model.checkpoint import load_checkpoint, weights_hash
from vcodec.models import load_tokenizer, model_path
from vcodec.tokenizer import Tokenizer

SHIPPED_WEIGHTS_HASH = "20798aef5b126b49d5faf5d081b48af2d5b32fc0f3c4fdbed2a57f80a6132034"
# the previous default (model v1), shipped as v1.pt so that its streams still decode
V1_WEIGHTS_HASH = "7954417e35ad9203052f9eda14dafd7595f4ffb259648df3f961b76df255df18"
SAMPLE = Path(vcodec.__file__).parent / "samples" / "bikes_17f.mp4"
GOLDEN = Path(__file__).resolve().parent / "golden"
GOLDEN_VCB, GOLDEN_JSON = GOLDEN / "shipped_default_q2.vcb", GOLDEN / "shipped_default_q2.json"
# earlier defaults, kept so that their streams still decode: name -> weights hash
PREVIOUS_DEFAULTS = {"v1": V1_WEIGHTS_HASH,
                     "v2-step44303": "2dce314445ba8e9c885695b9fbf185c0f5eaa1ffcc5f12a17c29dacbb2882255",
                     "v2-step62871": "34df2870063dafd8d66100b365d2b5fd36cfb78466a5a1230ebc356c043f3fef",
                     "v2-step72760": "06f817c1156fc915f577ce5a1454343b31c10e53fcfb9d18c3cd731cb9038552"}
# earlier defaults no longer shipped: their streams are refused with one line naming the model they need
RETIRED_DEFAULTS = {"v2-step1569": "af77f13331a183f8e817297aa4e186a2846febfced0ded99cf4d69690cfde59a",
                    "v2-step23482": "bbc4c2afe4c3a1971f9c5c39a75d5cdb1a6ce144c836929bec92b9af6f9a43ec"}
REGEN = os.environ.get("VCODEC_REGEN_GOLDEN") == "1"
# Whole sample clip (17 frames, 640x272) through compress/decompress, measured on 2026-11-27 (x86_64, torch 2.14.1;
# model step 80,013 with the default encoder's colour correction: without it 0.00551 / 31.09 and 0.15171 / 40.02):
# quality -> (bpp, PSNR-Y BT.709 limited). A broken model lands far outside (random weights: < 15 dB).
SAMPLE_BANDS = {1: (0.00573, 31.25), 8: (0.15193, 40.07)}

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    return load_tokenizer("default", device="cpu")


@pytest.fixture(scope="module")
def sample() -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VcodecWarning)
        return read_video(SAMPLE)[0]


def test_loads_with_the_recorded_weights_hash(tok):
    ckpt = load_checkpoint(model_path("default"))
    assert tok.weights_hash == SHIPPED_WEIGHTS_HASH
    assert ckpt["weights_hash"] == SHIPPED_WEIGHTS_HASH == weights_hash(ckpt["ema"])
    r = CliRunner().invoke(cli_main, ["models", "--json"])
    assert r.exit_code == 0, r.output
    listed = {m["name"]: m for m in json.loads(r.output)}
    assert listed["default"]["weights_hash"] == SHIPPED_WEIGHTS_HASH
    # every rate point names its token width (v1's store none: its whole tokens), and the text says planes
    assert all(isinstance(rp["bits"], int) for m in listed.values() for rp in m["rate_points"])
    text = CliRunner().invoke(cli_main, ["models"]).output
    assert "  quality 1: 2 bits x 1 plane(s), " in text and "level" not in text


def test_coder_tables_are_valid(tok):
    """Version 3's tables, which new streams use, for each token width a rate point codes, and version 1's (the
    fallback for a width without learned tables). (The model never wrote version 2 streams: it has no such
    tables; the previous default keeps its own for its older streams.)"""
    widths = {bits for bits, _ in tok.config.qualities}
    assert {v: set(by_bits) for v, by_bits in tok.mix_tables.items()} == {3: widths}
    for bits in sorted(widths):
        planes = max(p for b, p in tok.config.qualities if b == bits)
        assert tok.coder_version(bits) == bitstream.CODER_VERSION == 3
        for version in (3,):
            mix = bitstream.check_tables(tok.tables_for(bits, version), bits, planes, version=version)
            assert mix.counts.sum(-1).max() <= FIT_TOTAL
        grid = np.random.default_rng(bits).integers(0, 2**bits, (planes, 2, 3, 5), dtype=np.uint64).astype(np.uint32)
        data = bitstream.encode_tokens(grid, bits, tok.tables_for(bits))
        assert np.array_equal(bitstream.decode_tokens(data, grid.shape, bits, tok.tables_for(bits)), grid)
    tables = bitstream.check_tables(tok.coder_tables, tok.token_bits, tok.max_levels, version=1)
    assert tables is not None and tables.shape == (tok.max_levels, tok.token_bits, bitstream.NUM_CONTEXTS, 2)
    assert tables.sum(-1).max() <= FIT_TOTAL
    grid = np.random.default_rng(0).integers(0, 2**32, (tok.max_levels, 2, 3, 5), dtype=np.uint64).astype(np.uint32)
    data = bitstream.encode_tokens(grid, tok.token_bits, tok.coder_tables, version=1)
    assert np.array_equal(bitstream.decode_tokens(data, grid.shape, tok.token_bits, tok.coder_tables, version=1), grid)
    assert [(rp.bits, rp.levels) for rp in tok.rate_points] == list(tok.config.qualities)
    bpps = [rp.bpp for rp in tok.rate_points]
    assert bpps == sorted(bpps) and bpps[0] <= 0.01


@pytest.mark.slow
@pytest.mark.parametrize("quality", sorted(SAMPLE_BANDS))
def test_sample_clip_lands_in_its_quality_band(tok, sample, quality):
    data = vcodec.compress(sample, quality=quality, tokenizer=tok, frame_rate=25)
    out = vcodec.decompress(data, tokenizer=tok)
    bpp = len(data) * 8 / sample[..., 0].size
    bpp0, psnr0 = SAMPLE_BANDS[quality]
    assert bpp == pytest.approx(bpp0, rel=0.02)
    assert psnr_y_bt709_limited(sample, out) == pytest.approx(psnr0, abs=0.1)


def _golden_source(sample: np.ndarray) -> np.ndarray:
    """33 frames, 96x64, the riders: the clip forwards then backwards, so that the stream holds a keyframe chunk
    (17 frames) and a chunk that continues it (16)."""
    riders = sample[:, 104:168, 256:352]
    return np.ascontiguousarray(np.concatenate([riders, riders[-2::-1]]))


# Decoded pixels may differ by 1 between CPU instruction sets (docs/CLI.md; the golden streams decode to 14 of
# 608,256 values off by 1 with oneDNN's AVX-512 kernels instead of its AVX2 ones): the goldens record each frame's
# 16x16-pixel block sums per channel, which such rounding moves by a few units, and a real change by far more.
MAX_BLOCK_SUM_CHANGE = 4        # in one block (16 x 16 values)
MAX_ROUNDED_FRACTION = 1e-4     # all blocks together: |change| summed, per decoded value


def _block_sums(frames: np.ndarray) -> list:
    """uint8 (T, H, W, 3) frames, H and W multiples of 16 -> nested list (T, H/16, W/16, 3) of int block sums."""
    t, h, w, c = frames.shape
    return frames.reshape(t, h // 16, 16, w // 16, 16, c).sum(axis=(2, 4), dtype=np.int64).tolist()


def _golden_json(facts: dict) -> str:
    """A golden JSON's text: one fact per line, the block sums on one line of their own."""
    text = json.dumps(dict(facts, block_sums="BLOCK_SUMS"), indent=1)
    return text.replace('"BLOCK_SUMS"', json.dumps(facts["block_sums"], separators=(",", ":"))) + "\n"


def _assert_recorded_frames(decoded: np.ndarray, expected: dict) -> None:
    """``decoded`` are the frames a golden JSON records, up to instruction-set rounding."""
    assert list(decoded.shape) == expected["shape"]
    change = np.abs(np.asarray(_block_sums(decoded)) - np.asarray(expected["block_sums"]))
    assert change.max() <= MAX_BLOCK_SUM_CHANGE, change.max()
    assert change.sum() <= MAX_ROUNDED_FRACTION * decoded.size, change.sum()


def test_golden_stream_of_the_shipped_model(tok, sample):
    src = _golden_source(sample)
    # without colour corrections: the bytes are the tokens' (a correction is fitted to decoded floats, whose last bit
    # may differ between instruction sets; test_correction covers the default encoder's corrections)
    data = vcodec.compress(src, quality=2, tokenizer=tok, frame_rate=25, colour=False)
    frames = vcodec.decompress(data, tokenizer=tok)
    facts = {"weights_hash": tok.weights_hash, "psnr_y_bt709_limited": round(psnr_y_bt709_limited(src, frames), 4),
             "shape": list(frames.shape), "block_sums": _block_sums(frames)}
    if REGEN:
        GOLDEN_VCB.write_bytes(data)
        GOLDEN_JSON.write_text(_golden_json(facts))
    assert GOLDEN_VCB.exists(), f"missing golden file {GOLDEN_VCB}; run with VCODEC_REGEN_GOLDEN=1 once"
    expected = json.loads(GOLDEN_JSON.read_text())
    golden = GOLDEN_VCB.read_bytes()
    assert data == golden                                    # the encoder makes the same bytes
    reader = bitstream.VcbReader(io.BytesIO(golden))
    assert [c.continues for c in reader.coded_chunks()] == [False, True] and reader.header.coder_version == 3
    decoded = vcodec.decompress(golden)                      # found by the model name in the header
    _assert_recorded_frames(decoded, expected)
    assert psnr_y_bt709_limited(src, decoded) == pytest.approx(expected["psnr_y_bt709_limited"], abs=1e-3)
    assert expected["weights_hash"] == SHIPPED_WEIGHTS_HASH and set(facts) == set(expected)


def test_streams_from_before_the_third_level_still_decode(sample):
    """Step 62,871 gained its third residual level (quality 9) with the same weights (`export --add-level`): its
    golden stream as written before (header max_levels 4, the coder tables of four planes) decodes to the frames
    recorded then, and that model with three levels still makes the same chunks for it (only the header's
    max_levels differs)."""
    old = (GOLDEN / "shipped_default-2levels_q2.vcb").read_bytes()
    header = bitstream.VcbReader(io.BytesIO(old)).header
    step62871 = load_tokenizer("v2-step62871", device="cpu")
    assert header.max_levels == 4 < step62871.max_levels
    assert header.weights_hash == PREVIOUS_DEFAULTS["v2-step62871"] == step62871.weights_hash
    expected = json.loads((GOLDEN / "shipped_default-2levels_q2.json").read_text())
    _assert_recorded_frames(vcodec.decompress(old), expected)
    new = vcodec.compress(_golden_source(sample), quality=2, tokenizer=step62871, frame_rate=25)
    chunks = [c.data for c in bitstream.VcbReader(io.BytesIO(old)).coded_chunks()]
    assert chunks == [c.data for c in bitstream.VcbReader(io.BytesIO(new)).coded_chunks()]


@pytest.mark.parametrize("version", [1, 2])
def test_older_coder_streams_of_a_previous_default_still_decode(version):
    """The golden stream as the previous default (step 44303) wrote it with coder versions 1 and 2 (before its
    version 2 and 3 tables) decodes to the same frames as its coder-3 golden: the tokens are the same, only their
    coding differs."""
    old = (GOLDEN / f"shipped_v2-step44303-coder{version}_q2.vcb").read_bytes()
    assert bitstream.VcbReader(io.BytesIO(old)).header.coder_version == version
    expected = json.loads((GOLDEN / f"shipped_v2-step44303-coder{version}_q2.json").read_text())
    assert expected == json.loads((GOLDEN / "shipped_v2-step44303_q2.json").read_text())
    _assert_recorded_frames(vcodec.decompress(old), expected)
    if version == 1:
        assert len((GOLDEN / "shipped_v2-step44303_q2.vcb").read_bytes()) < len(old)


@pytest.mark.parametrize("name", sorted(RETIRED_DEFAULTS))
def test_streams_of_retired_defaults_are_refused_by_name(name):
    """An intermediate default that is no longer shipped (its weights are in the git history): its streams are
    refused with one line that names the model and its weights hash."""
    data = (GOLDEN / f"shipped_{name}_q2.vcb").read_bytes()
    with pytest.raises(ModelNotFoundError) as e:
        vcodec.decompress(data)
    msg = str(e.value)
    assert "\n" not in msg and "'default'" in msg and RETIRED_DEFAULTS[name][:12] in msg and "--model PATH" in msg


@pytest.mark.parametrize("name", sorted(PREVIOUS_DEFAULTS))
def test_streams_of_previous_defaults_still_decode(name):
    """A .vcb written by an earlier default model names `default` with that model's weights hash: the hash finds
    the kept weights (vcodec/weights/NAME.pt), and the frames are the ones recorded then."""
    expected = json.loads((GOLDEN / f"shipped_{name}_q2.json").read_text())
    assert expected["weights_hash"] == PREVIOUS_DEFAULTS[name]
    decoded = vcodec.decompress((GOLDEN / f"shipped_{name}_q2.vcb").read_bytes())
    _assert_recorded_frames(decoded, expected)
    assert load_checkpoint(model_path(name))["weights_hash"] == PREVIOUS_DEFAULTS[name]
