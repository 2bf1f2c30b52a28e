"""Research-scale runs: the result cache, parallel jobs, shards + merge, raw 10-bit inputs end to end, named test
conditions, per-class BD-rate tables. Tiny synthetic suites only."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from benchmarks import report, runner
from benchmarks.cli import main as bench_main
from vcodec import testing
from vcodec.io import rawyuv


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return str(testing.save_tokenizer(testing.tiny_tokenizer(window_frames=5), tmp_path_factory.mktemp("m") / "t.pt"))


def _run(out, cache, **kw):
    kw.setdefault("codecs", ("x265",))
    kw.setdefault("codec_options", {"x265": {"points": (42, 27)}})
    kw.setdefault("plots", False)
    cfg = runner.BenchConfig(out_dir=str(out), suite="smoke", frames=3, cache_dir=str(cache), **kw)
    return runner.run(cfg, progress=lambda m: None)


@pytest.mark.slow
def test_second_run_computes_nothing_and_a_changed_setting_recomputes(tmp_path):
    cache = tmp_path / "cache"
    first = _run(tmp_path / "a", cache)
    assert (first["run"]["computed"], first["run"]["cached"]) == (4, 0)
    again = _run(tmp_path / "b", cache)
    assert (again["run"]["computed"], again["run"]["cached"]) == (0, 4)
    assert again["codecs"] == first["codecs"]  # the same rows, timings included (they come from the cache)
    # extended: one more rate point -> only its two jobs run
    more = _run(tmp_path / "c", cache, codec_options={"x265": {"points": (42, 27, 32)}})
    assert (more["run"]["computed"], more["run"]["cached"]) == (2, 4)
    # a changed encoder setting is a different key: everything for x265 runs again
    changed = _run(tmp_path / "d", cache, codec_options={"x265": {"points": (42, 27), "preset": "fast"}})
    assert changed["run"]["computed"] == 4
    assert runner.comparable(changed) != runner.comparable(first)
    # --force recomputes what is cached, with the same (deterministic) results
    forced = _run(tmp_path / "e", cache, force=True)
    assert forced["run"]["computed"] == 4 and runner.comparable(forced) == runner.comparable(first)
    # the existing results folder is refused unless resumed (then nothing is recomputed)
    with pytest.raises(FileExistsError, match="--resume"):
        _run(tmp_path / "a", cache)
    assert _run(tmp_path / "a", cache, resume=True)["run"]["computed"] == 0


@pytest.mark.slow
def test_a_results_file_seeds_the_cache_with_rows_of_the_same_build_and_settings(tmp_path):
    """--seed-from: an earlier results.json (e.g. the committed one, whose cache is gone) gives the rows of the jobs
    it ran with the same clip content, codec build and settings and rate point; the rest is computed."""
    first = _run(tmp_path / "a", tmp_path / "cache-a")
    seed = str(tmp_path / "a" / "results.json")
    seeded = _run(tmp_path / "b", tmp_path / "cache-b", seed_from=seed)
    assert (seeded["run"]["computed"], seeded["run"]["cached"]) == (0, 4)
    assert runner.comparable(seeded) == runner.comparable(first)
    # one more rate point: the two points seeded, the new one's two jobs run
    more = _run(tmp_path / "c", tmp_path / "cache-c", seed_from=seed, codec_options={"x265": {"points": (42, 27, 32)}})
    assert (more["run"]["computed"], more["run"]["cached"]) == (2, 4)
    # another encoder setting, or metrics defined otherwise: nothing seeded
    other = _run(tmp_path / "d", tmp_path / "cache-d", seed_from=seed,
                 codec_options={"x265": {"points": (42, 27), "preset": "fast"}})
    assert other["run"]["computed"] == 4
    changed = json.loads((tmp_path / "a" / "results.json").read_text())
    changed["metrics"]["psnr_y"]["definition"] = "something else"
    (tmp_path / "other.json").write_text(json.dumps(changed))
    assert _run(tmp_path / "e", tmp_path / "cache-e", seed_from=str(tmp_path / "other.json"))["run"]["computed"] == 4
    # not a results file, or no file: refused before anything runs
    (tmp_path / "bdrate.json").write_text(json.dumps({"tables": []}))
    with pytest.raises(ValueError, match="not a benchmark results.json"):
        _run(tmp_path / "f", tmp_path / "cache-f", seed_from=str(tmp_path / "bdrate.json"))
    assert not (tmp_path / "f").exists()
    with pytest.raises(SystemExit) as e:
        bench_main(["--suite", "smoke", "--seed-from", str(tmp_path / "missing.json"), "-o", str(tmp_path / "g")])
    assert e.value.code == 2 and not (tmp_path / "g").exists()


@pytest.mark.slow
def test_cache_key_names_clip_settings_and_metrics_and_shards_partition_the_plan(tmp_path):
    base = runner.job_key("c" * 64, "x265", {"version": "x265 4.1", "options": {"qp": 32}}, {"vmaf": "v0.6.1"})
    assert base == runner.job_key("c" * 64, "x265", {"options": {"qp": 32}, "version": "x265 4.1"}, {"vmaf": "v0.6.1"})
    for other in (
        runner.job_key("d" * 64, "x265", {"version": "x265 4.1", "options": {"qp": 32}}, {"vmaf": "v0.6.1"}),
        runner.job_key("c" * 64, "x265", {"version": "x265 4.2", "options": {"qp": 32}}, {"vmaf": "v0.6.1"}),
        runner.job_key("c" * 64, "x265", {"version": "x265 4.1", "options": {"qp": 27}}, {"vmaf": "v0.6.1"}),
        runner.job_key("c" * 64, "x265", {"version": "x265 4.1", "options": {"qp": 32}}, {"vmaf": None}),
    ):
        assert other != base
    assert runner.cache_load(str(tmp_path), base) is None
    runner.cache_store(str(tmp_path), base, {"bpp": np.float64(0.5), "codec": "x265"}, {"why": "test"})
    assert runner.cache_load(str(tmp_path), base) == {"bpp": 0.5, "codec": "x265"}
    assert runner.parse_shard("1/3") == (1, 3) and runner.parse_shard(None) is None
    for bad in ("3/3", "x", "1/0"):
        with pytest.raises(ValueError):
            runner.parse_shard(bad)
    # the settings of every codec at a point name its exact version and options
    from benchmarks.codecs import make_codec

    s32, s27 = (make_codec("x265").settings(q) for q in (32, 27))
    assert s32 != s27 and "x265" in s32["version"] and "qp=32" in s32["options"]["x265-params"]
    assert make_codec("x265", preset="fast").settings(32) != s32


@pytest.mark.slow
def test_two_shards_merged_equal_the_serial_run_and_parallel_jobs_too(tmp_path, tiny_model):
    common = ["--suite", "smoke", "--frames", "3", "--codecs", "x265,vcodec", "--model", tiny_model, "--no-plots"]
    serial_out, par_out = tmp_path / "serial", tmp_path / "par"
    runner_ = CliRunner()
    for args in (
        common + ["--jobs", "1", "-o", str(serial_out)],
        common + ["--jobs", "2", "-o", str(par_out)],
        common + ["--shard", "0/2", "--cache", str(tmp_path / "c0"), "-o", str(tmp_path / "s0")],
        common + ["--shard", "1/2", "--cache", str(tmp_path / "c1"), "-o", str(tmp_path / "s1")],
    ):
        res = runner_.invoke(_bench_cmd(), args)
        assert res.exit_code == 0, res.output
    s0 = json.loads((tmp_path / "s0" / "results.json").read_text())
    assert s0["shard"] == {"index": 0, "count": 2} and 0 < s0["run"]["jobs"] < len(s0["plan"])
    assert not (tmp_path / "s0" / "bdrate.md").exists()  # shards leave the reports to the merge
    with pytest.raises(SystemExit) as e:  # one shard missing: refused
        bench_main(["merge", str(tmp_path / "s0"), "-o", str(tmp_path / "bad")])
    assert e.value.code != 0
    with pytest.raises(SystemExit) as e:
        bench_main(["merge", str(tmp_path / "s1"), str(tmp_path / "s0"), "-o", str(tmp_path / "merged"), "--no-plots"])
    assert e.value.code == 0
    serial = json.loads((serial_out / "results.json").read_text())
    merged = json.loads((tmp_path / "merged" / "results.json").read_text())
    parallel = json.loads((par_out / "results.json").read_text())
    n_rows = sum(len(c["results"]) for c in merged["codecs"])
    assert serial["run"]["computed"] == len(serial["plan"]) == n_rows == 2 * (3 + len(serial["codecs"][1]["results"]) // 2)
    assert runner.comparable(merged) == runner.comparable(serial)  # same rows, same order
    assert runner.comparable(parallel) == runner.comparable(serial)
    assert (tmp_path / "merged" / "bdrate.md").read_text().split("Created")[1].split("\n", 1)[1] == (
        serial_out / "bdrate.md"
    ).read_text().split("Created")[1].split("\n", 1)[1]


def _bench_cmd():
    from benchmarks.cli import bench

    return bench


def test_raw_10_bit_sequence_is_coded_and_measured_at_10_bits(tmp_path):
    from benchmarks.codecs import decode_with_pyav
    from vcodec import metrics

    suite = tmp_path / "suite"
    suite.mkdir()
    t, h, w = 4, 64, 64
    yy, xx = np.mgrid[0:h, 0:w]
    y = np.stack([(64 + 3 * ((xx + 2 * i) % 64) + 5 * yy) for i in range(t)]).astype(np.uint16)  # uses all 10 bits
    u = np.full((t, h // 2, w // 2), 512, np.uint16) + (xx[: h // 2, : w // 2] * 7).astype(np.uint16)
    v = np.full((t, h // 2, w // 2), 480, np.uint16)
    rawyuv.write_planes(suite / "Ramp_64x64_25fps_420_10bit.yuv", y, u, v)
    out = tmp_path / "out"
    cfg = runner.BenchConfig(out_dir=str(out), suite=str(suite), codecs=("x265",), frames=4, keep_streams=True,
                             codec_options={"x265": {"points": (32,)}}, plots=False)  # fmt: skip
    results = runner.run(cfg, progress=lambda m: None)
    assert not results["errors"]
    (row,) = results["codecs"][0]["results"]
    assert row["bit_depth"] == 10 and row["class"] == "64x64" and results["clips"][0]["pix_fmt"] == "yuv420p10le"
    dec, _ = decode_with_pyav(str(out / "streams" / "Ramp_64x64_25fps_420_10bit" / "x265-32.265"), "hevc", 10, t,
                              out_depth=10)  # fmt: skip
    assert dec.y.dtype == np.uint16 and dec.y.max() > 255
    mse = np.mean((dec.y.astype(float) - y) ** 2, axis=(1, 2))
    assert row["psnr_y"] == pytest.approx(np.mean(np.minimum(10 * np.log10(1023**2 / mse), 100)))
    assert row["psnr_y"] == pytest.approx(np.mean(row["per_frame"]["psnr_y"]))
    # the same planes as an 8-bit measurement would give a different number: the depth is really used
    assert row["psnr_y"] != pytest.approx(metrics.psnr_frames(y >> 2, dec.y >> 2).mean(), abs=1e-3)
    csv_text = (out / "frames" / "Ramp_64x64_25fps_420_10bit.csv").read_text().splitlines()
    assert csv_text[0].startswith("codec,point,frame,psnr_y") and len(csv_text) == 1 + t


@pytest.mark.parametrize("codec", ["x264", "x265", "svtav1", "vvenc"])
@pytest.mark.parametrize("preset,intra", [("jvet-ra", [0, 32]), ("jvet-ld", [0])])
def test_condition_presets_give_the_documented_intra_pictures(codec, preset, intra, tmp_path):
    import av

    from benchmarks import conditions
    from benchmarks.codec_base import Clip
    from benchmarks.codecs import CodecUnavailable, make_codec
    from vcodec.colour import rgb_to_yuv420

    kwargs = conditions.get(preset).codec_kwargs(codec)
    c = make_codec(codec, **kwargs, **({"preset": "faster"} if codec == "vvenc" else {}))
    try:
        c.check()
    except CodecUnavailable as e:
        pytest.skip(str(e))
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (80, 80, 3), dtype=np.uint8)
    rgb = np.stack([base[i % 16 : i % 16 + 64, (i // 2) % 16 : (i // 2) % 16 + 64] for i in range(40)])
    clip = Clip("t", np.ascontiguousarray(rgb), rgb_to_yuv420(np.ascontiguousarray(rgb)))
    enc = c.encode(clip, c.rate_points()[0], str(tmp_path / f"s{c.extension}"))
    with av.open(enc.path, format=c.raw_format) as f:
        types = [int(fr.pict_type) for fr in f.decode(video=0)]  # FFmpeg's AVPictureType: 1 = I, 2 = P, 3 = B
    assert len(types) == 40
    assert [i for i, p in enumerate(types) if p == 1] == intra
    if preset == "jvet-ra" and codec != "svtav1":  # (AV1 has no B type: its frames report as P)
        assert 3 in types  # hierarchical / B-pyramid random access
    assert c.rate_points() == ([37, 32, 27, 22] if codec != "svtav1" else list(c.default_points))


def test_per_class_tables_and_chosen_anchor():
    def rows(codec, clip, w, h, shift):
        return [{"codec": codec, "clip": clip, "point": q, "bpp": b, "width": w, "height": h, "psnr_y": m,
                 "psnr_yuv": m, "ms_ssim_db": m / 3, "vmaf": None, "frames": 1}
                for q, b, m in zip((1, 2, 3), (0.1 * shift, 0.2 * shift, 0.4 * shift), (30, 33, 36))]  # fmt: skip

    clips = [("b1", 1920, 1080), ("b2", 1920, 1080), ("d1", 416, 240)]
    factor = {"b1": 0.8, "b2": 0.9, "d1": 1.2}
    results = {
        "suite": "t", "anchors": ["x264"], "skipped": [], "metrics": {},
        "clips": [{"name": n} for n, _, _ in clips],
        "codecs": [
            {"name": "x264", "results": [r for n, w, h in clips for r in rows("x264", n, w, h, 1.0)]},
            {"name": "x265", "results": [r for n, w, h in clips for r in rows("x265", n, w, h, factor[n])]},
        ],
    }  # fmt: skip
    table = report.bd_tables(results)
    assert list(table) == ["x264"]  # the chosen anchor only
    per_clip = table["x264"]["psnr_yuv"]["x265"]
    assert per_clip["b1"]["value"] == pytest.approx(-20) and per_clip["d1"]["value"] == pytest.approx(20)
    by_class = report.bd_class_tables(results, table)["x264"]["psnr_yuv"]["x265"]
    assert by_class["B"]["value"] == pytest.approx(-15) and by_class["B"]["clips"] == "2/2"
    assert by_class["D"]["value"] == pytest.approx(20)
    assert by_class["overall"]["value"] == pytest.approx((-20 - 10 + 20) / 3)
    md = report.bd_markdown(results, table, report.bd_class_tables(results, table))
    assert "| x265 | -15.0% (2/2) | +20.0% (1/1) |" in md and "## vs x264 - PSNR-Y - per class" in md


def test_committed_results_still_load_and_report(tmp_path):
    from pathlib import Path

    committed = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "results.json"
    results = json.loads(committed.read_text())
    table = report.bd_tables(results)
    assert table["x265"]["psnr_yuv"]["vvenc"]["mean"]["status"] == "ok"
    classes = report.clip_classes(results)
    assert classes["bikes"] == "D" and classes["carphone"] == "176x144"
    report.write_csv(results, str(tmp_path / "r.csv"))
    written = report.write_frame_csvs(results, str(tmp_path / "frames"))   # the committed run keeps per-frame data
    assert sorted(Path(p).stem for p in written) == sorted(classes)


@pytest.mark.slow
def test_dask_local_cluster_with_two_workers_equals_the_serial_run(tmp_path):
    pytest.importorskip("distributed", reason="the [dist] extra (dask[distributed]) is not installed")
    serial = _run(tmp_path / "serial", tmp_path / "c1", jobs=1)
    dask = _run(tmp_path / "dask", tmp_path / "c2", dask="local:2")
    assert dask["run"]["computed"] == 4 and dask["run"]["workers"] == 2
    assert runner.comparable(dask) == runner.comparable(serial)
    from benchmarks.compare import compare

    same, text = compare(str(tmp_path / "serial"), str(tmp_path / "dask"))
    assert same and "identical" in text and "ratio" in text
    other = _run(tmp_path / "other", tmp_path / "c3", codec_options={"x265": {"points": (42, 27), "preset": "fast"}})
    same, text = compare(str(tmp_path / "serial"), str(tmp_path / "other"))
    assert not same and "first difference" in text and other["run"]["computed"] == 4


def test_run_clip_still_runs_one_clip_in_process():
    """benchmarks/diagnostics.py runs one clip with changed codec settings through `run_clip`."""
    from benchmarks.clips import SMOKE

    res = runner.run_clip(SMOKE[0], [("x265", {"points": (42,), "intra_period": 1})], 3, False, False, None)
    assert not res["errors"] and len(res["rows"]) == 1 and res["clip"]["name"] == "smoke_pan"
    assert res["rows"][0]["frames"] == 3 and "keyint=1" in res["rows"][0]["command"]
