"""Outputs from a results dict: results.json, results.csv, per-frame CSVs (frames/<clip>.csv), rd_<metric>.png,
bdrate.md / bdrate.json (per sequence) and bdrate_classes.json (per class).

Regenerate everything but the JSON from an existing run with `python -m benchmarks.report RESULTS_DIR`.
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys

from benchmarks.bdrate import bd_rate

PLOT_METRICS = {
    "psnr_yuv": "PSNR-YUV 6:1:1 (dB)",
    "psnr_y": "PSNR-Y (dB)",
    "psnr_rgb": "RGB PSNR (dB)",
    "ms_ssim_db": "MS-SSIM (dB)",
    "vmaf": "VMAF",
    "lpips": "LPIPS (lower is better)",
}
BD_METRICS = {"psnr_y": "PSNR-Y", "psnr_yuv": "PSNR-YUV", "ms_ssim_db": "MS-SSIM (dB)", "vmaf": "VMAF"}
BD_ANCHORS = ("x265", "vvenc")
CSV_FIELDS = (
    "codec", "clip", "point", "frames", "width", "height", "fps", "bytes", "payload_bytes", "overhead_bytes",
    "bpp", "bpp_payload", "psnr_y", "psnr_u", "psnr_v", "psnr_yuv", "psnr_rgb", "ms_ssim", "ms_ssim_db",
    "ms_ssim_scales", "vmaf", "lpips", "encode_seconds", "decode_seconds", "encode_fps", "decode_fps",
    "encode_peak_mib", "decode_peak_mib", "encode_child_peak_mib", "memory_method",
    "class", "bit_depth", "kbps", "encode_ms_per_frame", "decode_ms_per_frame", "command",
)  # fmt: skip
FRAME_FIELDS = ("psnr_y", "psnr_u", "psnr_v", "psnr_yuv", "psnr_rgb", "ms_ssim", "vmaf")


def write_all(results: dict, out_dir: str, plots: bool = True) -> None:
    write_json(results, out_dir)
    write_reports(results, out_dir, plots)


def write_json(results: dict, out_dir: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    tmp = os.path.join(out_dir, ".results.json.part")
    with open(tmp, "w") as f:
        json.dump(results, f, indent=1, sort_keys=True, default=_json_default)
        f.write("\n")
    os.replace(tmp, os.path.join(out_dir, "results.json"))


def write_reports(results: dict, out_dir: str, plots: bool = True) -> None:
    write_csv(results, os.path.join(out_dir, "results.csv"))
    write_frame_csvs(results, os.path.join(out_dir, "frames"))
    if plots:  # (seconds per run: matplotlib)
        plot_all(results, out_dir)
    table = bd_tables(results)
    with open(os.path.join(out_dir, "bdrate.json"), "w") as f:
        json.dump(table, f, indent=1, sort_keys=True)
        f.write("\n")
    by_class = bd_class_tables(results, table)
    with open(os.path.join(out_dir, "bdrate_classes.json"), "w") as f:
        json.dump(by_class, f, indent=1, sort_keys=True)
        f.write("\n")
    with open(os.path.join(out_dir, "bdrate.md"), "w") as f:
        f.write(bd_markdown(results, table, by_class))


def _json_default(o):
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"not JSON-able: {type(o)}")


def _rows(results: dict) -> list[dict]:
    return [r for c in results["codecs"] for r in c["results"]]


def write_csv(results: dict, path: str) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
        w.writeheader()
        for r in _rows(results):
            w.writerow({k: _fmt(r.get(k)) for k in CSV_FIELDS})


def write_frame_csvs(results: dict, folder: str) -> list[str]:
    """One CSV per sequence: a line per (codec, rate point, frame) with the per-frame metrics (rows that have them)."""
    by_clip: dict[str, list[dict]] = {}
    for r in _rows(results):
        if r.get("per_frame"):
            by_clip.setdefault(r["clip"], []).append(r)
    written = []
    for clip, rows in by_clip.items():
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, f"{clip}.csv")
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(("codec", "point", "frame") + FRAME_FIELDS)
            for r in rows:
                pf = r["per_frame"]
                for i in range(r["frames"]):
                    values = [pf[k][i] if k in pf and i < len(pf[k]) else None for k in FRAME_FIELDS]
                    w.writerow([r["codec"], r["point"], i] + [_fmt(v) for v in values])
        written.append(path)
    return written


def _fmt(v):
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.6g}"
    return "" if v is None else v


def curve(results: dict, codec: str, clip: str, metric: str) -> tuple[list[float], list[float]]:
    pts = [
        (r["bpp"], r[metric])
        for r in _rows(results)
        if r["codec"] == codec and r["clip"] == clip and r.get(metric) is not None
    ]
    pts = [p for p in pts if math.isfinite(p[1])]
    pts.sort()
    return [p[0] for p in pts], [p[1] for p in pts]


def clip_classes(results: dict) -> dict[str, str]:
    """{clip: class}: the class recorded with the clip, else the JVET class of its size (older results)."""
    from benchmarks.clips import size_class

    sizes = {r["clip"]: (r["width"], r["height"]) for r in _rows(results)}
    out = {}
    for c in results["clips"]:
        name = c["name"]
        out[name] = c.get("class") or (size_class(*sizes[name]) if name in sizes else "")
    return out


def mean_curve(results: dict, codec: str, metric: str, clips: list[str] | None = None) -> tuple[list, list]:
    """Mean bpp and mean metric over `clips` (default: all) at each rate point that every one of them has."""
    clips = clips if clips is not None else [c["name"] for c in results["clips"]]
    by_point: dict = {}
    for r in _rows(results):
        if r["clip"] not in clips:
            continue
        if r["codec"] == codec and r.get(metric) is not None and math.isfinite(r[metric]):
            by_point.setdefault(json.dumps(r["point"]), []).append(r)
    pts = []
    for rows in by_point.values():
        if len({r["clip"] for r in rows}) == len(clips):
            pts.append((sum(r["bpp"] for r in rows) / len(rows), sum(r[metric] for r in rows) / len(rows)))
    pts.sort()
    return [p[0] for p in pts], [p[1] for p in pts]


def plot_all(results: dict, out_dir: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    codecs = [c["name"] for c in results["codecs"]]
    clips = [c["name"] for c in results["clips"]]
    classes = clip_classes(results)
    members: dict[str, list[str]] = {}
    for clip in clips:
        members.setdefault(f"class {classes[clip]} (mean)", []).append(clip)
    class_panels = [p for p, m in members.items() if len(m) > 1] if len(members) > 1 else []
    written = []
    for metric, label in PLOT_METRICS.items():
        if not any(r.get(metric) is not None for r in _rows(results)):
            continue  # e.g. LPIPS without its weights
        panels = clips + class_panels + (["mean over clips"] if len(clips) > 1 else [])
        ncol = min(3, len(panels))
        nrow = math.ceil(len(panels) / ncol)
        fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.4 * nrow), squeeze=False)
        for ax, panel in zip(axes.flat, panels):
            for i, codec in enumerate(codecs):
                if panel == "mean over clips":
                    xs, ys = mean_curve(results, codec, metric)
                elif panel in members:
                    xs, ys = mean_curve(results, codec, metric, members[panel])
                else:
                    xs, ys = curve(results, codec, panel, metric)
                if xs:
                    ax.plot(xs, ys, marker="o", ms=3, lw=1.2, color=f"C{i}", label=codec)
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_title(panel, fontsize=10)
            ax.set_xlabel("bits per pixel")
            ax.set_ylabel(label)
            ax.grid(True, which="both", alpha=0.3)
        for ax in list(axes.flat)[len(panels) :]:
            ax.axis("off")
        handles, labels = axes.flat[0].get_legend_handles_labels()
        height = 3.4 * nrow
        fig.suptitle(
            f"{label} vs rate - suite {os.path.basename(str(results['suite']))}", y=1 - 0.08 / height, fontsize=11
        )
        fig.legend(
            handles,
            labels,
            loc="upper center",
            bbox_to_anchor=(0.5, 1 - 0.38 / height),
            ncol=len(codecs),
            frameon=False,
        )
        fig.tight_layout(rect=(0, 0, 1, 1 - 0.75 / height))
        path = os.path.join(out_dir, f"rd_{metric}.png")
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)
    return written


def bd_tables(results: dict) -> dict:
    """{anchor: {metric: {test_codec: {clip: {"value", "status", "overlap"}, "mean": {...}}}}}"""
    codecs = [c["name"] for c in results["codecs"]]
    clips = [c["name"] for c in results["clips"]]
    out: dict = {}
    for anchor in results.get("anchors") or BD_ANCHORS:
        if anchor not in codecs:
            continue
        out[anchor] = {}
        for metric in BD_METRICS:
            out[anchor][metric] = {}
            for test in codecs:
                if test == anchor:
                    continue
                cells = {}
                for clip in clips:
                    ra, ma = curve(results, anchor, clip, metric)
                    rt, mt = curve(results, test, clip, metric)
                    res = bd_rate(ra, ma, rt, mt)
                    cells[clip] = {"value": res.value, "status": res.status, "overlap": res.overlap}
                ok = [c["value"] for c in cells.values() if c["status"] == "ok"]
                cells["mean"] = {
                    "value": sum(ok) / len(ok) if ok else None,
                    "status": "ok" if ok else "no overlap",
                    "clips": f"{len(ok)}/{len(clips)}",
                }
                out[anchor][metric][test] = cells
    return out


def bd_class_tables(results: dict, table: dict) -> dict:
    """{anchor: {metric: {test_codec: {class: {"value", "status", "clips"}, "overall": {...}}}}}: per class, the mean of
    the per-sequence BD-rates of its sequences (the JVET CTC way of reporting classes); "overall" = all sequences."""
    classes = clip_classes(results)
    out: dict = {}
    for anchor, by_metric in table.items():
        out[anchor] = {}
        for metric, by_codec in by_metric.items():
            out[anchor][metric] = {}
            for test, cells in by_codec.items():
                row = {}
                for klass in dict.fromkeys(classes.values()):
                    members = [c for c, k in classes.items() if k == klass]
                    ok = [cells[c]["value"] for c in members if c in cells and cells[c]["status"] == "ok"]
                    row[klass] = {"value": sum(ok) / len(ok) if ok else None, "status": "ok" if ok else "no overlap",
                                  "clips": f"{len(ok)}/{len(members)}"}  # fmt: skip
                row["overall"] = dict(cells["mean"])
                out[anchor][metric][test] = row
    return out


def bd_markdown(results: dict, table: dict, by_class: dict | None = None) -> str:
    clips = [c["name"] for c in results["clips"]]
    lines = [
        f"# BD-rate - suite `{os.path.basename(str(results['suite']))}`",
        "",
        "Bjøntegaard delta rate of each codec against the anchor (negative = fewer bits for the same quality),",
        "PCHIP interpolation of log-rate over quality, `bjontegaard` package. 'mean' averages the clips where the",
        "curves overlap (count in brackets); 'no overlap' means the quality ranges do not overlap, so no number",
        "exists.",
        f"Rate = file bytes x 8 / pixels. Created {results.get('created', '')}.",
        "",
    ]
    if not table:
        anchors = " or ".join(results.get("anchors") or BD_ANCHORS)
        lines.append(f"No anchor codec ({anchors}) in this run.")
    if by_class:
        lines.append("# Per class (mean of the sequences' BD-rates)")
        lines.append("")
    for anchor, by_metric in (by_class or {}).items():
        for metric, by_codec in by_metric.items():
            heads = [k for k in next(iter(by_codec.values()), {}) if k != "overall"]
            lines.append(f"## vs {anchor} - {BD_METRICS[metric]} - per class")
            lines.append("")
            lines.append("| codec | " + " | ".join(f"class {h}" for h in heads) + " | overall |")
            lines.append("|---" * (len(heads) + 2) + "|")
            for test, row in by_codec.items():
                cells = [f"{row[h]['value']:+.1f}% ({row[h]['clips']})" if row[h]["status"] == "ok" else "no overlap"
                         for h in heads + ["overall"]]  # fmt: skip
                lines.append(f"| {test} | " + " | ".join(cells) + " |")
            lines.append("")
    if table:
        lines.append("# Per sequence")
        lines.append("")
    for anchor, by_metric in table.items():
        for metric, by_codec in by_metric.items():
            lines.append(f"## vs {anchor} - {BD_METRICS[metric]}")
            lines.append("")
            lines.append("| codec | " + " | ".join(clips) + " | mean |")
            lines.append("|---" * (len(clips) + 2) + "|")
            for test, cells in by_codec.items():
                row = [_cell(cells[c]) for c in clips]
                mean = cells["mean"]
                row.append(f"{mean['value']:+.1f}% ({mean['clips']})" if mean["status"] == "ok" else "no overlap")
                lines.append(f"| {test} | " + " | ".join(row) + " |")
            lines.append("")
    if results.get("skipped"):
        lines.append("Skipped codecs: " + "; ".join(f"{s['codec']} ({s['reason']})" for s in results["skipped"]))
        lines.append("")
    unavailable = [
        f"{k} ({v['reason']})" for k, v in results.get("metrics", {}).items() if not v.get("available", True)
    ]
    if unavailable:
        lines.append("Metrics unavailable: " + "; ".join(unavailable))
        lines.append("")
    return "\n".join(lines)


def _cell(c: dict) -> str:
    if c["status"] != "ok":
        return c["status"]
    return f"{c['value']:+.1f}%"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m benchmarks.report RESULTS_DIR", file=sys.stderr)
        return 2
    with open(os.path.join(argv[0], "results.json")) as f:
        results = json.load(f)
    write_reports(results, argv[0])
    print(f"wrote results.csv, rd_*.png, bdrate.md, bdrate.json in {argv[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
