"""Export a training checkpoint as the shipped model, measuring its model card on held-out footage.

    python -m vcodec.train.export runs/default/ckpt.pt --data data -o vcodec/weights/default.pt
    python -m vcodec.train.export vcodec/weights/default.pt --data data --card-only   # re-measure the shipped card
    python -m vcodec.train.export vcodec/weights/default.pt --data data --refit-coder   # new coder tables, same weights
    python -m vcodec.train.export vcodec/weights/default.pt --data data --add-level     # one more level, same weights

1. Builds the EMA weights (fp16 storage) and fits the entropy coder's integer tables (coder version 1's
   context counts; version 2's logistic weights and counts per token width) on tokens of training clips.
2. Measures every rate point on the held-out segments listed in ``data/manifest.json`` at their native
   resolution (whole held-out clips and the never-trained tails of the training clips): bpp of the
   range-coded token payload, PSNR-Y and MS-SSIM as :mod:`vcodec.metrics` defines them (the RD benchmarks'
   definitions): ``psnr_y_bt709_limited`` (per-frame mean) and ``ms_ssim_rgb``.
3. Replaces the existing shipped model only when held-out PSNR-Y improves at equal rate (its PSNR-Y
   interpolated at the old rate points, averaged), unless ``--force``. The shipped model is measured again on the
   same segments with the same metric for this comparison (never compared with numbers stored by older code).
4. Writes the .pt, its card and training curve next to it (:func:`card_paths`).

``--card-only`` measures a checkpoint or an already shipped model (with its stored coder tables, steps and history)
and writes only the card next to ``-o``: the shipped weights stay byte for byte as they are. ``--refit-coder`` fits
the coder tables of an already shipped model anew (its weights, and so its weights hash, unchanged) and writes the
.pt and its card. ``--add-level`` gives a shipped model one more residual level and a quality point above the
others (:func:`with_added_level`): same weights and hash, the shipped coder tables kept for the shipped levels.
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

from ..metrics import ms_ssim_rgb, psnr_y_bt709_limited
from ..model.checkpoint import (
    atomic_save,
    build_from_checkpoint,
    export_inference,
    load_checkpoint,
    rate_points,
    stored_mix_tables,
)
from ..model.config import TokenizerConfig
from ..tokenizer import Tokenizer, _round_to_fp16, token_prefix


def heldout_segments(data: Path, manifest_path: Path | None = None) -> list[tuple[str, np.ndarray]]:
    """The held-out segments a manifest lists (default ``data/manifest.json``), decoded from ``data/raw``."""
    from ..data.decode import decode_frames
    manifest = json.loads((manifest_path or data / "manifest.json").read_text())
    files = {s["name"]: s["file"] for s in manifest["sources"]}
    out = []
    for h in manifest["heldout"]:
        frames, _ = decode_frames(data / "raw" / files[h["name"]])
        out.append((h["name"], frames[h["start"]:h["start"] + h["frames"]]))
    return out


def corpus_grids(tok: Tokenizer, corpus: Path, max_runs: int = 24) -> list[np.ndarray]:
    """Token grids (every plane, every bit) of ``max_runs`` training runs spread over the corpus."""
    grids = []
    with np.load(corpus) as z:
        keys = [k for k in sorted(z.files) if k.startswith("train/")]
        step = max(1, len(keys) // max_runs)
        for k in keys[::step][:max_runs]:
            grids.append(tok.encode_window(z[k], tok.max_levels))
    return grids


def fit_coder_tables(tok: Tokenizer, grids: list[np.ndarray]) -> tuple[np.ndarray, dict]:
    """Coder tables learned from ``grids``: version 1's count tables (all bits), and the current learned coder
    version's :class:`bitstream.MixTables` for each token width the rate points use, over as many planes as they
    code: ``(v1, {CODER_VERSION: {bits: MixTables}})``."""
    v1 = bitstream.fit_tables(grids, tok.token_bits, version=1)
    widths: dict[int, int] = {}
    for rp in tok.rate_points:
        bits, planes = tok.quality_point(rp.quality)
        widths[bits] = max(widths.get(bits, 0), planes)
    mix = {}
    version = bitstream.CODER_VERSION
    for bits, planes in sorted(widths.items()):
        mix[bits] = bitstream.fit_tables([token_prefix(g, bits, planes) for g in grids], bits, version=version)
        print(f"coder v{version} tables fitted for {bits}-bit tokens, {planes} plane(s)", flush=True)
    return v1, {version: mix}


V1_CONFIG_NAME = "vcodec-default"   # model v1, whose training curve mixes the old and the unified PSNR-Y
PSNR_KEY, MS_SSIM_KEY = "psnr_y_bt709_limited", "ms_ssim_rgb"   # card keys name the metric's formula


def measure(tok: Tokenizer, segments) -> list[dict]:
    """Per rate point (quality): mean bpp (coded token payload), PSNR-Y (BT.709 limited, per-frame mean) and RGB
    MS-SSIM, each the mean of the per-segment values. Each segment is encoded once; every rate point codes its
    (bits, planes) prefix of those tokens, as ``vcodec encode --quality`` does."""
    points = [(rp.quality, *tok.quality_point(rp.quality)) for rp in tok.rate_points]
    per_point: dict[int, list[dict]] = {q: [] for q, _, _ in points}
    for name, frames in segments:
        n, H, W, _ = frames.shape
        tokens = tok.encode_window(frames, tok.max_levels)
        for q, bits, planes in points:
            t = token_prefix(tokens, bits, planes)
            version = tok.coder_version(bits)
            nbytes = len(bitstream.encode_tokens(t, bits, tok.tables_for(bits, version), version=version))
            rec = tok.decode_window(t, n, H, W, bits)
            per_point[q].append({"clip": name, "bpp": nbytes * 8 / (n * H * W),
                                 PSNR_KEY: psnr_y_bt709_limited(frames, rec), MS_SSIM_KEY: ms_ssim_rgb(frames, rec)[0],
                                 "raw_bpp": t.size * bits / (n * H * W)})
    rows = []
    for q, bits, planes in points:
        items = per_point[q]
        rows.append({"quality": q, "levels": planes, "bits": bits,
                     "bpp": float(np.mean([i["bpp"] for i in items])),
                     "raw_bpp": float(np.mean([i["raw_bpp"] for i in items])),
                     PSNR_KEY: float(np.mean([i[PSNR_KEY] for i in items])),
                     MS_SSIM_KEY: float(np.mean([i[MS_SSIM_KEY] for i in items])),
                     "per_clip": items})
    return rows


def improvement_at_equal_rate(new: list[dict], old: list[dict]) -> float | None:
    """Mean PSNR-Y gain of ``new`` interpolated (in log-rate) at ``old``'s rate points in range. Both lists must come
    from :func:`measure` on the same segments."""
    xs = np.log([r["bpp"] for r in new])
    ys = np.array([r[PSNR_KEY] for r in new])
    order = np.argsort(xs)
    gains = [float(np.interp(np.log(r["bpp"]), xs[order], ys[order])) - r[PSNR_KEY]
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
        ax.legend()
    ax.set_xlabel("cumulative training hours")
    ax.set_ylabel("held-out PSNR-Y (dB), 192x192 crops")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def card_paths(output: Path) -> tuple[Path, Path]:
    """Where the card and the training curve of the shipped model ``output`` go: ``MODEL_CARD.md`` and
    ``training_curve.png`` for ``default``, ``MODEL_CARD_<name>.md`` and ``training_curve_<name>.png`` otherwise."""
    suffix = "" if output.stem == "default" else f"_{output.stem}"
    return output.with_name(f"MODEL_CARD{suffix}.md"), output.with_name(f"training_curve{suffix}.png")


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
        "with depth-to-space upsampling. Residual lookup-free quantization of "
        f"{card['config'].get('latent_channels') or card['config']['token_bits']} latent channels with "
        f"{card['config']['max_levels']} residual levels, coded as token planes of {card['config']['token_bits']} "
        "bits (a plane = one level of 32 channels); a quality setting codes a prefix of them, `bits x planes` "
        "below (bits beyond the prefix decode as 0; trained with one random rate point per clip).", "",
        *(line for note in card.get("notes", []) for line in (note, "")),
        "```json", json.dumps(card["config"], indent=1), "```", "",
        "## Training",
        f"- data: `make data` corpus ({card['data']})",
        f"- steps: {card['steps']}; cumulative training time: {card['hours']['cpu']:.2f} CPU-hours (2 cores), "
        f"{card['hours']['cuda']:.2f} GPU-hours",
        f"- command: `{card['train_command']}`", "",
        "## Held-out rate points",
        "Held-out footage: whole clips never trained on (megamind, carphone) and the last 17 frames of every "
        "other clip (never trained on), 17 frames each at native resolution. bpp = range-coded token payload "
        f"(entropy coder {card.get('coder', 'vcb-ctxbin v1')}; no container overhead) x 8 / (frames x width x height). Metrics as `vcodec/metrics.py` defines them, the "
        "same as in the RD benchmarks: PSNR-Y = `psnr_y_bt709_limited` (8-bit BT.709 limited-range Y, per-frame "
        "PSNR, mean over frames), MS-SSIM = `ms_ssim_rgb` (R, G, B averaged, mean over frames); each the mean over "
        "clips.", "",
        "| quality | bits x planes | bpp (coded) | bpp (raw tokens) | PSNR-Y BT.709 (dB) | MS-SSIM RGB |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rp:
        bits = r.get("bits") or card["config"]["token_bits"]
        lines.append(f"| {r['quality']} | {bits} x {r['levels']} | {r['bpp']:.4f} | {r['raw_bpp']:.4f} | "
                     f"{r[PSNR_KEY]:.2f} | {r[MS_SSIM_KEY]:.4f} |")
    lines += ["", "Per clip (highest quality):", "", "| clip | bpp | PSNR-Y BT.709 | MS-SSIM RGB |",
              "|---|---:|---:|---:|"]
    for c in rp[-1]["per_clip"]:
        lines.append(f"| {c['clip']} | {c['bpp']:.4f} | {c[PSNR_KEY]:.2f} | {c[MS_SSIM_KEY]:.4f} |")
    lines += ["", "## Held-out PSNR-Y during training", "",
              f"![training curve]({card.get('curve', 'training_curve.png')})", "",
              "(192x192 centre crops of the held-out segments, EMA weights, measured by the training loop."
              + (" Points recorded before the metric unification of 2026-11-25 (model v1's, up to step 7600) used the "
                 "old PSNR-Y: BT.601 full range, PSNR of the whole segment's MSE, about 1.4 dB below "
                 "`psnr_y_bt709_limited` on the same frames." if card["config"].get("name") == V1_CONFIG_NAME else "")
              + ")", ""]
    path.write_text("\n".join(lines))


def tables_of_same_encoder(ckpt: dict, shipped: dict, where) -> tuple[np.ndarray, dict]:
    """The coder tables of ``shipped`` (a shipped model) for ``ckpt``, whose encoder and quantizer must be the shipped
    model's, weight for weight once stored in fp16 (they make the same tokens; only the decoder differs), else
    ValueError: ``(version 1 tables, {version: {bits: MixTables}})``."""
    state, theirs = ckpt.get("ema") or ckpt["model"], shipped["ema"]
    frozen = [k for k in state if not k.startswith("decoder.")]
    if ckpt["config"] != shipped["config"] or any(
            k not in theirs or not torch.equal(state[k].to(torch.float16), theirs[k]) for k in frozen):
        raise ValueError(f"{where}: its encoder or quantizer differs from this checkpoint's; refit the tables")
    mix = {v: {int(b): bitstream.MixTables.of(t) for b, t in by_bits.items()}
           for v, by_bits in stored_mix_tables(shipped).items()}
    return np.asarray(shipped["coder_tables"]), mix


def with_added_level(ckpt: dict) -> dict:
    """A shipped model with one more residual level -- the quantizer's next step, ``2^-(L+1)``, on which no learned
    parameter depends, so the weights and their hash stay -- and one more quality point, coding the first plane of
    that level with every bit. Quality points below it code exactly what they did. Its decoder was not trained on
    the new level: measure it before shipping. The model's default quality stays the highest trained one."""
    cfg = TokenizerConfig.from_dict(ckpt["config"])
    top = max(planes for _, planes in cfg.qualities)
    grown = TokenizerConfig.from_dict({**cfg.to_dict(), "max_levels": cfg.max_levels + 1,
                                       "quality_points": (*cfg.qualities, (cfg.token_bits, top + 1))})
    points = list(ckpt.get("rate_points") or [])
    if points:
        points.append({"quality": len(points) + 1, "levels": top + 1, "bpp": None, "bits": cfg.token_bits})
    # a stream that asks for no quality keeps getting the highest point the model was trained for
    default = ckpt.get("default_quality") or len(cfg.qualities)
    return {**ckpt, "config": grown.to_dict(), "rate_points": points, "default_quality": default}


def added_level_note(rows: list[dict]) -> str:
    """The card's word on a quality point that :func:`with_added_level` added (the last of ``rows``)."""
    new, below = rows[-1], rows[-2]
    return (f"Quality {new['quality']} ({new['bits']} x {new['levels']}) codes the first plane of a residual level "
            f"added after training (`export --add-level`, same weights): the decoder never saw that level in "
            f"training. On the held-out segments it adds {new[PSNR_KEY] - below[PSNR_KEY]:+.2f} dB PSNR-Y and "
            f"{new[MS_SSIM_KEY] - below[MS_SSIM_KEY]:+.4f} MS-SSIM to quality {below['quality']} for "
            f"{new['bpp'] / below['bpp']:.2f}x its bits. A stream that asks for no quality gets quality "
            f"{below['quality']}, the highest trained point.")


def keep_shipped_levels(shipped, fitted):
    """``fitted`` coder tables (either version's) with the levels that ``shipped`` covers replaced by shipped's
    own, so that every stream already written still names the same tables (``vcodec.coding.writer_tables``)."""
    if shipped is None:
        return fitted
    if isinstance(fitted, bitstream.MixTables):
        shipped = bitstream.MixTables.of(shipped)
        n = len(shipped.weights)
        return bitstream.MixTables(np.concatenate([shipped.weights, fitted.weights[n:]]),
                                   np.concatenate([shipped.counts, fitted.counts[n:]]), fitted.version)
    shipped = np.asarray(shipped)
    return np.concatenate([shipped, np.asarray(fitted)[len(shipped):]]).astype(np.int32)


def _shipped_tokenizer(ckpt: dict, name: str) -> Tokenizer:
    return Tokenizer(_round_to_fp16(build_from_checkpoint(ckpt)), name=name, rate_points=rate_points(ckpt, TokenizerConfig.from_dict(ckpt["config"])),
                     coder_tables=ckpt.get("coder_tables"), mix_tables=stored_mix_tables(ckpt))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="export a training checkpoint as the shipped model")
    ap.add_argument("checkpoint", type=Path, help="a training checkpoint, or a shipped model .pt with --card-only")
    ap.add_argument("--data", type=Path, default=Path("data"))
    ap.add_argument("-o", "--output", type=Path, default=Path(__file__).resolve().parents[1] / "weights" / "default.pt")
    ap.add_argument("--force", action="store_true", help="replace the shipped model even if not better")
    ap.add_argument("--card-only", action="store_true",
                    help="only measure and write the card next to -o; never write the .pt (a shipped model "
                         "keeps its coder tables, steps and history)")
    ap.add_argument("--refit-coder", action="store_true",
                    help="refit the entropy coder's tables of a shipped model (weights unchanged), re-measure its "
                         "card and write both")
    ap.add_argument("--manifest", type=Path, default=None,
                    help="held-out segments from this manifest (default DATA/manifest.json); the shipped model's "
                         "own is vcodec/weights/<name>_manifest.json")
    ap.add_argument("--coder-from", type=Path, default=None,
                    help="take the coder tables of this shipped model instead of refitting them: for a checkpoint "
                         "whose encoder and quantizer are that model's (a decoder-only fine-tune), so every stream "
                         "keeps its bytes")
    ap.add_argument("--add-level", action="store_true",
                    help="give a shipped model one more residual level and a quality point that codes its first "
                         "plane (same weights, untrained decoder for it: see the card); the coder tables keep the "
                         "shipped levels and learn the new ones; writes the model and its card")
    ap.add_argument("--default-quality", type=int, default=None,
                    help="exporting a training checkpoint: the quality a stream gets when it asks for none "
                         "(default: the highest point)")
    ap.add_argument("--train-command", default="make train")
    ap.add_argument("--note", action="append", default=[],
                    help="a sentence for the card's notes (repeatable): e.g. why a model is shipped with --force")
    args = ap.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))

    ckpt = load_checkpoint(args.checkpoint)
    shipped_input = ckpt.get("format") == "vcodec-model-1"      # written by export_inference
    prev = (ckpt.get("card") or {}) if shipped_input else {}
    if shipped_input and not (args.card_only or args.refit_coder or args.add_level):
        ap.error(f"{args.checkpoint} is already a shipped model: use --card-only to re-measure its card")
    if args.add_level and not shipped_input:
        ap.error("--add-level extends a shipped model (export the checkpoint first)")
    shipped_ckpt = ckpt
    if args.add_level:
        ckpt = with_added_level(ckpt)
    model = _round_to_fp16(build_from_checkpoint(ckpt))
    cfg = TokenizerConfig.from_dict(ckpt["config"])
    if args.default_quality is not None:
        if shipped_input:      # (a shipped model keeps its own: --card-only never writes it, --add-level sets it)
            ap.error("--default-quality is for exporting a training checkpoint")
        if not 1 <= args.default_quality <= len(cfg.qualities):
            ap.error(f"--default-quality must be one of the model's qualities 1-{len(cfg.qualities)}")
        ckpt = {**ckpt, "default_quality": args.default_quality}
    t0 = time.time()
    if shipped_input and not (args.refit_coder or args.add_level):
        tok = _shipped_tokenizer(ckpt, args.output.stem)                 # measure exactly what is shipped
    elif args.coder_from is not None:
        tok = Tokenizer(model, name=args.output.stem)
        try:
            tok.coder_tables, tok.mix_tables = tables_of_same_encoder(ckpt, load_checkpoint(args.coder_from),
                                                                      args.coder_from)
        except ValueError as e:
            ap.error(str(e))
    else:
        tok = Tokenizer(model, name=args.output.stem, rate_points=rate_points(ckpt, cfg) if shipped_input else None)
        tok.coder_tables, tok.mix_tables = fit_coder_tables(tok, corpus_grids(tok, args.data / "corpus.npz"))
        if shipped_input:  # streams already written name the tables of the older coder versions: keep them
            stored = stored_mix_tables(shipped_ckpt)
            if args.add_level:  # and, for the current version, those of the shipped levels
                tok.coder_tables = keep_shipped_levels(shipped_ckpt.get("coder_tables"), tok.coder_tables)
                tok.mix_tables = {v: {b: keep_shipped_levels(stored.get(v, {}).get(b), t) for b, t in by_bits.items()}
                                  for v, by_bits in tok.mix_tables.items()}
            elif ckpt.get("coder_tables") is not None:
                tok.coder_tables = np.asarray(ckpt["coder_tables"])
            older = {v: {int(b): bitstream.MixTables.of(t) for b, t in by_bits.items()}
                     for v, by_bits in stored.items() if v != bitstream.CODER_VERSION}
            tok.mix_tables = {**older, **tok.mix_tables}
    segments = heldout_segments(args.data, args.manifest)
    rows = measure(tok, segments)
    for r in rows:
        print(f"quality {r['quality']}: {r['bpp']:.4f} bpp (raw {r['raw_bpp']:.4f})  "
              f"PSNR-Y BT.709 {r[PSNR_KEY]:.2f} dB  MS-SSIM RGB {r[MS_SSIM_KEY]:.4f}", flush=True)
    if args.output.exists() and not (args.force or args.card_only or args.refit_coder or args.add_level):
        # measure the shipped model again, on the same segments with the same metric (stored numbers may come from
        # an older metric definition)
        old_ckpt = load_checkpoint(args.output)
        old = measure(_shipped_tokenizer(old_ckpt, args.output.stem), segments)
        gain = improvement_at_equal_rate(rows, old)
        print(f"held-out PSNR-Y change at equal rate vs shipped model: {gain if gain is None else f'{gain:+.3f} dB'}")
        if gain is None or gain <= 0:
            print("not better than the shipped model: keeping it", file=sys.stderr)
            sys.exit(3)
    history = ckpt.get("history") or prev.get("history", [])
    total_seconds = ckpt.get("train_seconds", prev.get("train_seconds", 0.0))
    if prev.get("data"):
        data = prev["data"]
    else:
        manifest = json.loads((args.manifest or args.data / "manifest.json").read_text())
        packages = sorted({e["package"] for e in manifest["sources"] + manifest["photos"] if e.get("package")})
        data = (f"{len(manifest['sources'])} clips + {len(manifest['photos'])} photos from "
                + (", ".join(p.split(":", 1)[-1] for p in packages) or "the manifest's sources"))
    card = {
        "name": args.output.stem, "config": cfg.to_dict(), "parameters": tok.parameters,
        "encoder_parameters": sum(p.numel() for p in model.encoder.parameters()),
        "decoder_parameters": sum(p.numel() for p in model.decoder.parameters()),
        "steps": int(ckpt.get("step", prev.get("steps", 0))), "train_seconds": total_seconds,
        "hours": prev.get("hours") or hours_by_device(history, total_seconds), "history": history,
        "data": data, "rate_points": rows, "date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, "
        f"{torch.get_num_threads()} threads", "command": "python -m vcodec.train.export " + " ".join(argv or sys.argv[1:]),
        "train_command": prev.get("train_command", args.train_command), "measure_seconds": time.time() - t0,
        "coder": f"{bitstream.CODER_ID} v" + "/".join(sorted({str(tok.coder_version(r["bits"])) for r in rows})),
        "notes": prev.get("notes", []) + ([added_level_note(rows)] if args.add_level else [])
        + ([f"A stream that asks for no quality gets quality {args.default_quality}."]
           if args.default_quality is not None else []) + [n for n in args.note if n not in prev.get("notes", [])],
    }
    card_md, curve_png = card_paths(args.output)
    card["curve"] = curve_png.name
    if args.card_only:
        write_card(card_md, card)
        print(f"wrote {card_md} ({args.output} unchanged)")
        return
    shipped = export_inference(ckpt, rate_points=[{"quality": r["quality"], "levels": r["levels"], "bpp": r["bpp"],
                                                   "bits": r["bits"]} for r in rows], coder_tables=tok.coder_tables,
                               mix_tables=tok.mix_tables, card=card)
    atomic_save(shipped, args.output)
    write_card(card_md, card)
    plot_curve(history, curve_png)
    print(f"wrote {args.output} ({args.output.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
