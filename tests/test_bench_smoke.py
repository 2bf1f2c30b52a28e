"""The smoke suite end to end (CLI, process pool, every output), and a run where codecs are missing."""

import csv
import json

import pytest
from click.testing import CliRunner

from benchmarks.cli import bench
from vcodec import testing

OUTPUTS = ("results.json", "results.csv", "bdrate.md", "bdrate.json", "rd_psnr_yuv.png", "rd_psnr_y.png",
           "rd_psnr_rgb.png", "rd_ms_ssim_db.png")  # fmt: skip


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    tok = testing.tiny_tokenizer(window_frames=5)  # 9-frame smoke clips -> two .vcb chunks
    return testing.save_tokenizer(tok, tmp_path_factory.mktemp("model") / "tiny.pt")


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, tiny_model):
    out = tmp_path_factory.mktemp("smoke")
    result = CliRunner().invoke(bench, ["--suite", "smoke", "--model", tiny_model, "--workers", "2", "-o", str(out)])
    assert result.exit_code == 0, result.output
    with open(out / "results.json") as f:
        return out, json.load(f)


@pytest.mark.slow
def test_every_output_is_written(smoke_run):
    out, results = smoke_run
    for name in OUTPUTS:
        assert (out / name).stat().st_size > 0, name
    if results["metrics"]["vmaf"]["available"]:
        assert (out / "rd_vmaf.png").exists()


@pytest.mark.slow
def test_results_json_shape(smoke_run):
    _, results = smoke_run
    assert results["format"] == "vcodec-bench/1" and results["suite"] == "smoke"
    assert [c["name"] for c in results["clips"]] == ["smoke_pan", "smoke_texture"]
    names = [c["name"] for c in results["codecs"]]
    skipped = {s["codec"]: s["reason"] for s in results["skipped"]}
    assert set(names) | set(skipped) == {"vcodec", "x264", "x265", "svtav1", "vvenc"}
    assert "vcodec" in names and "x265" in names
    assert not results["errors"]
    for entry in results["codecs"]:
        assert entry["description"]["name"] == entry["name"]
        assert entry["description"]["version"]
        points = entry["description"]["rate_points"]
        assert len(entry["results"]) == 2 * len(points)  # one row per clip and rate point
        for r in entry["results"]:
            assert r["bpp"] == pytest.approx(r["bytes"] * 8 / (r["frames"] * r["width"] * r["height"]))
            assert r["overhead_bytes"] == r["bytes"] - r["payload_bytes"] >= 0
            for key in ("psnr_y", "psnr_yuv", "psnr_rgb", "ms_ssim", "encode_fps", "decode_fps"):
                assert r[key] is not None and r[key] > 0, key
            assert r["encode_peak_mib"] is not None and r["decode_peak_mib"] is not None
    vc = next(c for c in results["codecs"] if c["name"] == "vcodec")
    assert vc["description"]["model"] and vc["description"]["weights_sha256"]
    assert vc["description"]["window_frames"] == 5  # so each 9-frame clip was coded as two chunks
    assert all(r["overhead_bytes"] > 0 for r in vc["results"])  # the .vcb header etc.
    lp = results["metrics"]["lpips"]
    if not lp["available"]:
        assert lp["reason"] and all(r["lpips"] is None for c in results["codecs"] for r in c["results"])


@pytest.mark.slow
def test_csv_and_bd_table(smoke_run):
    out, results = smoke_run
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == sum(len(c["results"]) for c in results["codecs"])
    md = (out / "bdrate.md").read_text()
    assert "## vs x265 - PSNR-YUV" in md and "## vs x265 - VMAF" in md and "## vs x265 - MS-SSIM (dB)" in md
    table = json.loads((out / "bdrate.json").read_text())
    cell = table["x265"]["psnr_yuv"]["x264"]
    assert set(cell) == {"smoke_pan", "smoke_texture", "mean"}
    if "vvenc" in table:
        assert "## vs vvenc - PSNR-YUV" in md


@pytest.mark.slow
def test_refuses_to_overwrite_without_force(smoke_run):
    out, _ = smoke_run
    result = CliRunner().invoke(bench, ["--suite", "smoke", "--codecs", "x264", "-o", str(out)])
    assert result.exit_code != 0 and "--force" in result.output


@pytest.mark.slow
def test_missing_codecs_and_vmaf_are_skipped_with_reasons(tmp_path, monkeypatch):
    from benchmarks import codecs as bc
    from tests.test_bench_codecs import write_fake_ffmpeg

    class Missing(bc.PyAVCodec):
        name = "missing"
        encoder = "libdefinitely-not-built"
        raw_format = "h264"
        default_points = (32,)

        def options(self, qp):
            return {}

    monkeypatch.setitem(bc.CODECS, "missing", Missing)
    monkeypatch.setenv("VCODEC_BENCH_FFMPEG", write_fake_ffmpeg(tmp_path / "ffmpeg"))
    out = tmp_path / "out"
    result = CliRunner().invoke(
        bench, ["--suite", "smoke", "--codecs", "x265,vvenc,missing", "--frames", "3", "--workers", "1", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    skipped = {s["codec"]: s["reason"] for s in results["skipped"]}
    assert "libvvenc not in this FFmpeg build" in skipped["vvenc"]
    assert "libdefinitely-not-built" in skipped["missing"]
    assert [c["name"] for c in results["codecs"]] == ["x265"]
    assert all(r["frames"] == 3 and r["vmaf"] is None for r in results["codecs"][0]["results"])
    assert not results["metrics"]["vmaf"]["available"] and "libvmaf" in results["metrics"]["vmaf"]["reason"]
    assert "Skipped codecs: " in (out / "bdrate.md").read_text()


def test_vcodec_bench_subcommand():
    """`vcodec bench` runs `python -m benchmarks` in a child process (vcodec never imports benchmarks)."""
    import subprocess
    import sys
    from pathlib import Path

    out = subprocess.run([sys.executable, "-m", "vcodec.cli", "bench", "--help"], capture_output=True, text=True,
                         timeout=120, cwd=str(Path(__file__).resolve().parents[1]))
    assert out.returncode == 0, out.stderr
    assert "--suite" in out.stdout and "--codecs" in out.stdout and "RESULTS_DIR" in out.stdout


def test_vcodec_never_imports_benchmarks():
    """Dependencies flow one way: benchmarks -> vcodec."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "vcodec"
    pattern = re.compile(r"^\s*(from|import)\s+benchmarks\b|import_module\(\s*[\"']benchmarks", re.M)
    assert [str(p) for p in root.rglob("*.py") if pattern.search(p.read_text())] == []
