"""Diagnostics of a vcodec model: where its bits and its errors go (model v2 issue, part 1).

    python -m benchmarks.diagnostics --model default -o benchmarks/results/diagnostics.json [--x265-intra]

Measures, on the held-out segments of ``data/manifest.json`` (``make data``; 17 frames each, native size):

1. PSNR-Y by frame position in the 17-frame window (mean over segments), the mean |dPSNR-Y| between consecutive
   frames, and how far the worst position lies below its window's mean — at the lowest and highest quality; the
   same as streamed (the default keyframe period), by position in the chunks, on the held-out clips of
   :mod:`benchmarks.keyint`;
2. coded bpp and PSNR-Y per quality setting, and the dB each step adds per extra bit;
3. how often token bits change between consecutive latent frames where the picture does not change (8x8 blocks
   whose luma moves by at most 2 levels over both 4-frame groups), per token plane;
4. the mean signed error per RGB channel (decoded - source, in 8-bit levels) on a 75% colour-bar clip at the
   highest quality: the model's own (one window, as 1-3), and through the codec with each encoder setting that
   changes colours (``--colour-correct``, ``--refine``);
5. with ``--x265-intra``: x265 with every frame intra (keyint 1) against the committed standard-suite x265 rows
   (intra period 16), as BD-rate in PSNR-YUV: how much of x265's lead is inter prediction.

Writes JSON; ``--markdown`` also writes the human-readable table file.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import time

import numpy as np

import bitstream
from vcodec.metrics import psnr_y_bt709_limited
from vcodec.models import load_tokenizer
from vcodec.scenecut import scene_cuts
from vcodec.tokenizer import Tokenizer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# 75% colour bars (ITU-R BT.801 order): white, yellow, cyan, green, magenta, red, blue, black
BARS_75 = np.array([[191, 191, 191], [191, 191, 0], [0, 191, 191], [0, 191, 0],
                    [191, 0, 191], [191, 0, 0], [0, 0, 191], [0, 0, 0]], dtype=np.uint8)


def colour_bars(frames: int = 17, height: int = 360, width: int = 640) -> np.ndarray:
    """(frames, height, width, 3) uint8 static 75% colour bars."""
    cols = BARS_75[np.minimum(np.arange(width) * len(BARS_75) // width, len(BARS_75) - 1)]
    return np.broadcast_to(cols[None, None], (frames, height, width, 3)).copy()


def code_at(tok: Tokenizer, frames: np.ndarray, quality: int) -> tuple[np.ndarray, np.ndarray, int]:
    """One window at a quality setting -> (decoded frames, token grid, coded payload bytes)."""
    bits, planes = tok.quality_point(quality)
    tokens = tok.encode_window(frames, planes, bits)
    nbytes = len(bitstream.encode_tokens(tokens, bits, tok.tables_for(bits), version=tok.coder_version(bits)))
    rec = tok.decode_window(tokens, len(frames), frames.shape[1], frames.shape[2], bits)
    return rec, tokens, nbytes


def frame_positions(tok: Tokenizer, segments, quality: int) -> dict:
    per_pos, cuts = [], {}
    for name, frames in segments:
        rec, _, _ = code_at(tok, frames, quality)
        per_pos.append([psnr_y_bt709_limited(frames[i:i + 1], rec[i:i + 1]) for i in range(len(frames))])
        found = scene_cuts(frames)
        if found:
            cuts[name] = found
    arr = np.array(per_pos)                                        # (segments, 17)
    mean_pos = arr.mean(axis=0)
    # the same without the frames at scene cuts: each position's mean over the segments with no cut there
    kept = np.ones(arr.shape, bool)
    for s, (name, _) in enumerate(segments):
        kept[s, cuts.get(name, [])] = False
    clean = (arr * kept).sum(axis=0) / kept.sum(axis=0)
    return {"quality": quality, "psnr_y_by_position": [round(float(v), 2) for v in mean_pos],
            "mean_abs_delta_db": float(np.abs(np.diff(arr, axis=1)).mean()),
            "worst_position": int(np.argmin(mean_pos)),
            "worst_below_window_mean_db": float(mean_pos.mean() - mean_pos.min()),
            "scene_cuts": cuts,
            "psnr_y_by_position_without_cuts": [round(float(v), 2) for v in clean],
            "worst_position_without_cuts": int(np.argmin(clean)),
            "worst_below_window_mean_db_without_cuts": float(clean.mean() - clean.min())}


def stream_positions(tok: Tokenizer, quality: int) -> dict:
    """Flicker as the codec is used: the held-out clips of :mod:`benchmarks.keyint` (97-129 frames) coded as one
    stream each (``vcodec.compress``, the default keyframe period), PSNR-Y by position in the continuing chunks
    (``window - 1`` frames each, as the stream's index lays them out; a chunk's latent groups start at 0, 4, 8, 12),
    frames at scene cuts left out of the positions and the changes across them out of the mean |dPSNR-Y| (as in
    :func:`frame_positions`)."""
    import vcodec
    from benchmarks.keyint import CLIPS, load

    period = tok.window_frames - 1
    sums, counts, deltas = np.zeros(period), np.zeros(period), []
    for spec in CLIPS:
        frames = load(spec)
        data = vcodec.compress(frames, quality=quality, tokenizer=tok)
        out = vcodec.decompress(data, tokenizer=tok)
        p = np.array([psnr_y_bt709_limited(frames[i:i + 1], out[i:i + 1]) for i in range(len(frames))])
        cuts = set(scene_cuts(frames))
        deltas.append([abs(p[i] - p[i - 1]) for i in range(1, len(p)) if i not in cuts])  # not across a cut
        with bitstream.VcbReader(io.BytesIO(data)) as reader:
            continuing = [e for e in reader.index() if e.continues]  # the chunks as the encoder laid them out
        for e in continuing:
            for k in range(e.num_frames):
                if e.first_frame + k not in cuts:
                    sums[k] += p[e.first_frame + k]
                    counts[k] += 1
    mean_pos = sums / counts
    return {"quality": quality, "clips": [c.name for c in CLIPS], "psnr_y_by_position": [round(float(v), 2) for v in mean_pos],
            "mean_abs_delta_db": float(np.mean(np.concatenate(deltas))), "worst_position": int(np.argmin(mean_pos)),
            "worst_below_mean_db": float(mean_pos.mean() - mean_pos.min())}


def rate_points(tok: Tokenizer, segments) -> list[dict]:
    rows = []
    for q in range(1, len(tok.rate_points) + 1):
        bpp, psnr = [], []
        for _, frames in segments:
            rec, _, nbytes = code_at(tok, frames, q)
            n, h, w, _ = frames.shape
            bpp.append(nbytes * 8 / (n * h * w))
            psnr.append(psnr_y_bt709_limited(frames, rec))
        bits, planes = tok.quality_point(q)
        rows.append({"quality": q, "bits": bits, "planes": planes, "bpp": float(np.mean(bpp)),
                     "psnr_y": float(np.mean(psnr))})
    for lo, hi in zip(rows, rows[1:]):
        hi["db_per_doubling"] = (hi["psnr_y"] - lo["psnr_y"]) / max(1e-9, np.log2(hi["bpp"] / lo["bpp"]))
    return rows


def static_bit_flips(tok: Tokenizer, segments, quality: int, threshold: int = 2) -> dict:
    """Share of token bits that differ from the previous latent frame at static 8x8 positions, per plane."""
    tf, f = tok.config.temporal_factor, tok.config.spatial_factor
    flips, counts = None, 0
    for _, frames in segments:
        _, tokens, _ = code_at(tok, frames, quality)
        bits, planes = tok.quality_point(quality)
        luma = frames.astype(np.int16) @ np.array([54, 183, 19], dtype=np.int16) // 256     # (n, H, W)
        n, H, W = luma.shape
        h, w = H // f, W // f
        blocks = luma[:, :h * f, :w * f].reshape(n, h, f, w, f)
        for t in range(2, tokens.shape[1]):                 # latent t covers frames tf*t-tf+1 .. tf*t
            lo, hi = tf * (t - 2) + 1, min(n, tf * t + 1)
            seg = blocks[lo:hi]
            static = (seg.max(axis=(0, 2, 4)) - seg.min(axis=(0, 2, 4))) <= threshold      # (h, w)
            if not static.any():
                continue
            diff = (tokens[:, t, :h, :w] ^ tokens[:, t - 1, :h, :w])[:, static]          # (P, N)
            ones = np.unpackbits(np.ascontiguousarray(diff, dtype="<u4").view(np.uint8).reshape(diff.shape + (4,)), axis=-1,
                                 bitorder="little")[..., :bits].sum(axis=(1, 2))
            flips = ones if flips is None else flips + ones
            counts += int(static.sum())
    if not counts:
        return {"quality": quality, "static_positions": 0}
    bits, planes = tok.quality_point(quality)
    return {"quality": quality, "static_positions": counts,
            "bit_change_rate_by_plane": [float(v) / (counts * bits) for v in flips]}


def bar_errors(decoded: np.ndarray, bars: np.ndarray) -> dict:
    """Decoded colour bars against the source (both uint8 (n, H, W, 3)), in 8-bit levels: the mean and mean absolute
    error per RGB channel, and each bar's mean error per channel away from its edges (8 pixels, less on narrow bars)."""
    err = decoded.astype(np.float64) - bars
    w = bars.shape[2]
    margin = min(8, w // len(BARS_75) // 4)
    per_bar = []
    for i in range(len(BARS_75)):
        x0, x1 = i * w // len(BARS_75) + margin, (i + 1) * w // len(BARS_75) - margin
        per_bar.append([round(float(v), 2) for v in err[:, :, x0:x1].mean(axis=(0, 1, 2))])
    return {"mean_error_rgb": [round(float(v), 2) for v in err.mean(axis=(0, 1, 2))],
            "mean_abs_error_rgb": [round(float(v), 2) for v in np.abs(err).mean(axis=(0, 1, 2))],
            "per_bar_error_rgb": per_bar}


def colour_error(tok: Tokenizer) -> dict:
    """Colour-bar errors at the highest quality (per bar), and the mean errors and the worst bar at every quality."""
    bars = colour_bars()
    by_quality = {rp.quality: bar_errors(code_at(tok, bars, rp.quality)[0], bars) for rp in tok.rate_points}
    q = len(tok.rate_points)
    return {"quality": q, **by_quality[q], "bars": BARS_75.tolist(),
            "by_quality": {k: {key: v[key] for key in ("mean_error_rgb", "mean_abs_error_rgb")}
                           | {"worst_bar": _worst_bar(v["per_bar_error_rgb"])} for k, v in by_quality.items()}}


# (the bars are one keyframe chunk: the default encoder's keyframe-chunk correction is --colour-correct's there)
ENCODER_SETTINGS = (("--no-colour-correct", {"colour": False}), ("default", {}), ("--colour-correct", {"colour": True}),
                    ("--refine 5", {"refine": 5}), ("--refine 10", {"refine": 10}))


def colour_through_codec(tok: Tokenizer, bars: np.ndarray | None = None) -> dict:
    """The colour bars (default :func:`colour_bars`) coded by ``vcodec.compress`` at the highest quality with each
    of ENCODER_SETTINGS: coded bytes, PSNR-YUV (6:1:1), the mean and mean absolute error per RGB channel, and the
    worst bar (away from the edges)."""
    import vcodec
    from vcodec.colour import rgb_to_yuv420
    from vcodec.metrics import psnr_yuv_611
    bars = colour_bars() if bars is None else bars
    quality = len(tok.rate_points)
    out = {"quality": quality, "settings": {}}
    for label, kwargs in ENCODER_SETTINGS:
        data = vcodec.compress(bars, quality=quality, tokenizer=tok, **kwargs)
        decoded = vcodec.decompress(data, tokenizer=tok)
        errors = bar_errors(decoded, bars)
        out["settings"][label] = {
            "bytes": len(data),
            "psnr_yuv": round(psnr_yuv_611(rgb_to_yuv420(bars), rgb_to_yuv420(decoded))["psnr_yuv"], 2),
            "mean_error_rgb": errors["mean_error_rgb"], "mean_abs_error_rgb": errors["mean_abs_error_rgb"],
            "worst_bar": _worst_bar(errors["per_bar_error_rgb"])}
    return out


def _worst_bar(per_bar: list[list[float]]) -> dict:
    """The bar and channel whose mean error is largest in size: ``{"bar", "channel", "error"}`` (signed)."""
    _, bar, channel = max((abs(e), i, c) for i, errors in enumerate(per_bar) for c, e in enumerate(errors))
    return {"bar": bar, "channel": channel, "error": per_bar[bar][channel]}


def x265_intra(results_path: str) -> dict:
    """x265 keyint 1 vs the committed x265 rows (intra period 16): BD-rate in PSNR-YUV per clip."""
    from benchmarks.bdrate import bd_rate
    from benchmarks.clips import STANDARD
    from benchmarks.runner import run_clip
    with open(results_path) as fh:
        committed = [r for c in json.load(fh)["codecs"] for r in c["results"] if r["codec"] == "x265"]
    out = {}
    for spec in STANDARD:
        res = run_clip(spec, [("x265", {"intra_period": 1})], None, False, False, None)
        intra = res["rows"]
        normal = [r for r in committed if r["clip"] == spec.name]
        bd = bd_rate([r["bpp"] for r in normal], [r["psnr_yuv"] for r in normal],
                     [r["bpp"] for r in intra], [r["psnr_yuv"] for r in intra])
        out[spec.name] = {"bd_rate_intra_vs_normal": bd.value, "status": bd.status,
                          "intra": [(r["bpp"], r["psnr_yuv"]) for r in intra],
                          "normal": [(r["bpp"], r["psnr_yuv"]) for r in normal]}
    vals = [v["bd_rate_intra_vs_normal"] for v in out.values() if v["bd_rate_intra_vs_normal"] is not None]
    out["mean"] = float(np.mean(vals)) if vals else None
    return out


def markdown(reports: list[dict]) -> str:
    """The human-readable diagnostics of one or more models (one report each, as :func:`main` writes them)."""
    out = ["# vcodec diagnostics", "",
           "Where the bits and the errors go. Held-out segments of `data/manifest.json` (17 frames each, native size); "
           "PSNR-Y = `vcodec.metrics.psnr_y_bt709_limited` (per-frame mean). Each segment is coded as one 17-frame "
           "window on its own (a keyframe chunk); in a stream, the windows after the first of a keyframe period "
           "continue its causal state and have no lone first frame, so the frame-0 row below applies once per "
           "period (`--keyint`, default 129 frames): see `keyint.md` for streams. Made by:", ""]
    out += [f"    {r['command']}   # weights {r['weights_hash'][:12]}" for r in reports]
    for r in reports:
        out += ["", f"## Model `{r['model']}` ({r['weights_hash'][:12]})", "",
                "### 1. PSNR-Y by frame position in the 17-frame window", "",
                "| quality | " + " | ".join(str(i) for i in range(17)) + " | mean abs dPSNR (dB) | worst position |",
                "|---:|" + "---:|" * 17 + "---:|---|"]
        for fp in r["frame_positions"]:
            out.append(f"| {fp['quality']} | " + " | ".join(f"{v:.1f}" for v in fp["psnr_y_by_position"]) +
                       f" | {fp['mean_abs_delta_db']:.2f} | {fp['worst_position']} "
                       f"({fp['worst_below_window_mean_db']:.1f} dB below the mean) |")
        if r.get("stream_positions"):
            sp = r["stream_positions"]
            period = len(sp[0]["psnr_y_by_position"])
            out += ["", f"As streamed (the default keyframe period; `--keyint 17` codes every window on its own as "
                    f"above): the held-out clips of `keyint.md` ({', '.join(sp[0]['clips'])}), PSNR-Y by position in "
                    f"the continuing chunks of up to {period} frames (latent groups start at 0, 4, 8, 12; frames at "
                    "scene cuts left out, and the changes across them; since session 17 the chunks as the stream's "
                    "index lays them out, a new keyframe period starting at a cut):", "",
                    "| quality | " + " | ".join(str(i) for i in range(period)) + " | mean abs dPSNR (dB) | worst position |",
                    "|---:|" + "---:|" * period + "---:|---|"]
            for fp in sp:
                out.append(f"| {fp['quality']} | " + " | ".join(f"{v:.1f}" for v in fp["psnr_y_by_position"]) +
                           f" | {fp['mean_abs_delta_db']:.2f} | {fp['worst_position']} "
                           f"({fp['worst_below_mean_db']:.2f} dB below the mean) |")
        cut_rows = [fp for fp in r["frame_positions"] if fp.get("scene_cuts")]
        if cut_rows:
            cuts = ", ".join(f"{k} frame {', '.join(map(str, v))}" for k, v in cut_rows[0]["scene_cuts"].items())
            out += ["", f"Scene cuts in the segments ({cuts}, as `vcodec.scenecut` finds them) lower their "
                    "position's mean whatever the codec; the same table without those frames:", "",
                    "| quality | " + " | ".join(str(i) for i in range(17)) + " | worst position |",
                    "|---:|" + "---:|" * 17 + "---|"]
            for fp in cut_rows:
                out.append(f"| {fp['quality']} | " + " | ".join(f"{v:.1f}" for v in fp["psnr_y_by_position_without_cuts"])
                           + f" | {fp['worst_position_without_cuts']} "
                           f"({fp['worst_below_window_mean_db_without_cuts']:.1f} dB below the mean) |")
        out += ["", "### 2. Rate points: bits vs dB", "",
                "| quality | bits x planes | bpp (coded) | PSNR-Y (dB) | dB per doubling of the rate |",
                "|---:|---:|---:|---:|---:|"]
        for rp in r["rate_points"]:
            dpd = f"{rp['db_per_doubling']:.2f}" if "db_per_doubling" in rp else ""
            out.append(f"| {rp['quality']} | {rp['bits']} x {rp['planes']} | {rp['bpp']:.4f} | {rp['psnr_y']:.2f} | "
                       f"{dpd} |")
        out += ["", "### 3. Token bits that change where the picture does not", "",
                "Static = 8x8 blocks whose luma moves by at most 2 levels over both 4-frame groups.", "",
                "| quality | static positions | share of bits that change, per token plane |", "|---:|---:|---|"]
        for sf in r["static_bit_flips"]:
            rates = ", ".join(f"{v:.3f}" for v in sf.get("bit_change_rate_by_plane", []))
            out.append(f"| {sf['quality']} | {sf['static_positions']} | {rates} |")
        c = r["colour"]
        out += ["", f"### 4. Colour: 75% colour bars, quality {c['quality']}", "",
                f"Mean signed error (decoded - source, 8-bit levels) R, G, B: {c['mean_error_rgb']}; "
                f"mean absolute error: {c['mean_abs_error_rgb']}.", "",
                "| bar (source RGB) | error R, G, B |", "|---|---|"]
        out += [f"| {b} | {e} |" for b, e in zip(c["bars"], c["per_bar_error_rgb"])]
        if c.get("by_quality"):
            out += ["", "By quality (the bar and channel furthest off, and by how much):", "",
                    "| quality | mean error R, G, B | mean absolute error R, G, B | worst bar |", "|---:|---|---|---|"]
            for q, v in c["by_quality"].items():
                wb = v["worst_bar"]
                out.append(f"| {q} | {v['mean_error_rgb']} | {v['mean_abs_error_rgb']} | {c['bars'][wb['bar']]} in "
                           f"{'RGB'[wb['channel']]}: {wb['error']:+.1f} levels |")
        if r.get("colour_codec"):
            cc = r["colour_codec"]
            out += ["", f"Through the codec (`vcodec.compress`, quality {cc['quality']}), by encoder setting:", "",
                    "| setting | bytes | PSNR-YUV (dB) | mean error R, G, B | mean absolute error R, G, B | worst bar |",
                    "|---|---:|---:|---|---|---|"]
            for label, v in cc["settings"].items():
                wb = v["worst_bar"]
                out.append(f"| {label} | {v['bytes']} | {v['psnr_yuv']:.2f} | {v['mean_error_rgb']} | "
                           f"{v['mean_abs_error_rgb']} | {c['bars'][wb['bar']]} in {'RGB'[wb['channel']]}: "
                           f"{wb['error']:+.1f} levels |")
        if "x265_intra" in r:
            xi = r["x265_intra"]
            out += ["", "### 5. How much of x265's lead is inter prediction", "",
                    "x265 with every frame intra (keyint 1) against the committed standard-suite x265 rows (intra "
                    "period 16, same QPs), BD-rate in PSNR-YUV (positive = all-intra needs more bits).", "",
                    "| clip | BD-rate all-intra vs IP16 |", "|---|---:|"]
            out += [f"| {k} | {v['bd_rate_intra_vs_normal']:+.1f}% |" if v["bd_rate_intra_vs_normal"] is not None
                    else f"| {k} | {v['status']} |" for k, v in xi.items() if k != "mean"]
            if xi.get("mean") is not None:
                out.append(f"| mean | {xi['mean']:+.1f}% |")
    return "\n".join(out) + "\n"


SECTIONS = ("frame_positions", "stream_positions", "rate_points", "static_bit_flips", "colour", "colour_codec",
            "x265_intra")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--data", default=os.path.join(REPO, "data"))
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--x265-intra", action="store_true")
    ap.add_argument("--results", default=os.path.join(REPO, "benchmarks", "results", "results.json"))
    ap.add_argument("--sections", nargs="+", default=None, choices=SECTIONS,
                    help="measure only these, and put them into the report already at OUTPUT (same weights)")
    ap.add_argument("--markdown", nargs="*", default=None, metavar="JSON",
                    help="write diagnostics.md (to OUTPUT) from these report JSON files instead of measuring")
    args = ap.parse_args(argv)
    if args.markdown is not None:
        reports = []
        for path in args.markdown:
            with open(path) as fh:
                reports.append(json.load(fh))
        with open(args.output, "w") as fh:
            fh.write(markdown(reports))
        return
    from pathlib import Path

    from vcodec.train.export import heldout_segments
    tok = load_tokenizer(args.model)
    segments = heldout_segments(Path(args.data))
    t0 = time.time()
    top = len(tok.rate_points)
    command = "python -m benchmarks.diagnostics " + " ".join(argv if argv is not None else os.sys.argv[1:])
    report = {"model": tok.name, "weights_hash": tok.weights_hash, "segments": [n for n, _ in segments],
              "command": command}
    if args.sections:
        with open(args.output) as fh:
            report = json.load(fh)
        if report["weights_hash"] != tok.weights_hash:
            raise SystemExit(f"{args.output} describes other weights ({report['weights_hash'][:12]}); measure all")
        report["command"] += f"; then {command}"
    sections = [
        ("frame_positions", lambda: [frame_positions(tok, segments, 1), frame_positions(tok, segments, top)]),
        ("stream_positions", lambda: [stream_positions(tok, 1), stream_positions(tok, top)]),
        ("rate_points", lambda: rate_points(tok, segments)),
        ("static_bit_flips", lambda: [static_bit_flips(tok, segments, 1), static_bit_flips(tok, segments, top)]),
        ("colour", lambda: colour_error(tok)),
        ("colour_codec", lambda: colour_through_codec(tok)),
    ]
    if args.x265_intra:
        sections.append(("x265_intra", lambda: x265_intra(args.results)))
    for key, run in sections:      # the report is written after each section: a long run keeps what it measured
        if args.sections and key not in args.sections:
            continue
        report[key] = run()
        report["seconds"] = time.time() - t0
        with open(args.output, "w") as fh:
            json.dump(report, fh, indent=1)
    print(json.dumps({k: v for k, v in report.items() if k != "segments"}, indent=1)[:6000])


if __name__ == "__main__":
    main()
