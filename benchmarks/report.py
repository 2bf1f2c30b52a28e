"""Outputs from a results dict: results.json, results.csv, rd_<metric>.png, bdrate.md / bdrate.json.

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
BD_METRICS = {"psnr_yuv": "PSNR-YUV", "ms_ssim_db": "MS-SSIM (dB)", "vmaf": "VMAF"}
BD_ANCHORS = ("x265", "vvenc")
CSV_FIELDS = (
    "codec", "clip", "point", "frames", "width", "height", "fps", "bytes", "payload_bytes", "overhead_bytes",
    "bpp", "bpp_payload", "psnr_y", "psnr_u", "psnr_v", "psnr_yuv", "psnr_rgb", "ms_ssim", "ms_ssim_db",
    "ms_ssim_scales", "vmaf", "lpips", "encode_seconds", "decode_seconds", "encode_fps", "decode_fps",
    "encode_peak_mib", "decode_peak_mib", "encode_child_peak_mib", "memory_method",
)  # fmt: skip


def write_all(results: dict, out_dir: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=1, sort_keys=True, default=_json_default)
        f.write("\n")
    write_reports(results, out_dir)


def write_reports(results: dict, out_dir: str) -> None:
    write_csv(results, os.path.join(out_dir, "results.csv"))
    plot_all(results, out_dir)
    table = bd_tables(results)
    with open(os.path.join(out_dir, "bdrate.json"), "w") as f:
        json.dump(table, f, indent=1, sort_keys=True)
        f.write("\n")
    with open(os.path.join(out_dir, "bdrate.md"), "w") as f:
        f.write(bd_markdown(results, table))


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


def mean_curve(results: dict, codec: str, metric: str) -> tuple[list[float], list[float]]:
    """Mean bpp and mean metric over clips at each rate point that every clip has."""
    clips = [c["name"] for c in results["clips"]]
    by_point: dict = {}
    for r in _rows(results):
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
    written = []
    for metric, label in PLOT_METRICS.items():
        if not any(r.get(metric) is not None for r in _rows(results)):
            continue  # e.g. LPIPS without its weights
        panels = clips + (["mean over clips"] if len(clips) > 1 else [])
        ncol = min(3, len(panels))
        nrow = math.ceil(len(panels) / ncol)
        fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.4 * nrow), squeeze=False)
        for ax, panel in zip(axes.flat, panels):
            for i, codec in enumerate(codecs):
                xs, ys = (
                    mean_curve(results, codec, metric)
                    if panel == "mean over clips"
                    else curve(results, codec, panel, metric)
                )
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
    for anchor in BD_ANCHORS:
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


def bd_markdown(results: dict, table: dict) -> str:
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
        lines.append("No anchor codec (x265 or vvenc) in this run.")
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
