"""How faithful the training rate proxies are to the range coder: bits each proxy predicts vs bits the coder spends.

    python -m benchmarks.rate_proxy [--model default] [--data data] [--runs 8 --steps 1500 --lr 0.01] [--json out.json]

Both proxies of :mod:`vcodec.model.rate` (``contexts``: coder version 1's context tables; ``mix``: versions 2-3's
logistic model) are fitted, as training fits them (the rate of the tokens' bits at random rate points, Adam), on
the token grids of training runs of the corpus (``vcodec.train.export.corpus_grids``), then evaluated on the
held-out segments (``data/manifest.json``, native size, each a keyframe window) at every rate point of the model,
beside the bytes ``bitstream.encode_tokens`` writes for the same tokens with the model's tables of coder version
1 and of its newest version.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

import bitstream
from vcodec.model.lfq import plane_mask
from vcodec.model.rate import rate_model
from vcodec.models import load_tokenizer
from vcodec.tokenizer import token_prefix
from vcodec.train.export import corpus_grids, heldout_segments


def grid_bits(tokens: np.ndarray, token_bits: int) -> torch.Tensor:
    """uint32 token planes (P, T, H, W) -> bits (1, P, K, T, H, W) float {0, 1}, bit k of each token in row k."""
    k = np.arange(token_bits, dtype=np.uint32).reshape(1, -1, 1, 1, 1)
    return torch.from_numpy(((tokens[:, None] >> k) & 1).astype(np.float32)).unsqueeze(0)


def fit(kind: str, grids: list[torch.Tensor], points: list[tuple[int, int]], planes: int, token_bits: int,
        steps: int, lr: float = 0.01, seed: int = 0) -> torch.nn.Module:
    """A ``kind`` proxy fitted to ``grids`` (each (1, P, K, T, H, W)) at random rate points: mean bits per coded
    bit minimised by Adam."""
    torch.manual_seed(seed)
    model = rate_model(kind, planes, token_bits)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        g = grids[rng.integers(len(grids))]
        bits, n_planes = points[rng.integers(len(points))]
        mask = plane_mask(bits, n_planes, planes, token_bits, 1)
        loss = model(g, mask).sum() / (mask.sum() * g[0, 0, 0].numel())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--data", type=Path, default=Path("data"))
    ap.add_argument("--runs", type=int, default=8, help="training runs whose tokens fit the proxies")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--json", dest="json_out", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    tok = load_tokenizer(args.model, "cpu")
    K, P = tok.token_bits, tok.max_levels
    points = [tok.quality_point(rp.quality) for rp in tok.rate_points]
    train = [grid_bits(g, K) for g in corpus_grids(tok, args.data / "corpus.npz", args.runs)]
    proxies = {kind: fit(kind, train, points, P, K, args.steps, args.lr) for kind in ("contexts", "mix")}
    newest = max(tok.mix_tables) if tok.mix_tables else 1
    rows = []
    segments = [tok.encode_window(frames, P) for _, frames in heldout_segments(args.data)]
    segment_bits = [grid_bits(tokens, K) for tokens in segments]
    for q, (bits, planes) in enumerate(points, start=1):
        row = {"quality": q, "bits": bits, "planes": planes, "coder_v1": 0.0, f"coder_v{newest}": 0.0,
               "proxy_contexts": 0.0, "proxy_mix": 0.0, "raw": 0.0}
        mask = plane_mask(bits, planes, P, K, 1)
        for tokens, g in zip(segments, segment_bits):
            t = token_prefix(tokens, bits, planes)
            for v in (1, newest):
                row[f"coder_v{v}"] += 8 * len(bitstream.encode_tokens(t, bits, tok.tables_for(bits, v), version=v))
            with torch.no_grad():
                for kind, proxy in proxies.items():
                    row[f"proxy_{kind}"] += float(proxy(g, mask))
            row["raw"] += t.size * bits
        rows.append(row)
        print(f"quality {q} ({bits} x {planes}): raw {row['raw']:.0f} bits, coder v1 {row['coder_v1']:.0f}, "
              f"v{newest} {row[f'coder_v{newest}']:.0f}; proxy contexts {row['proxy_contexts']:.0f} "
              f"({row['proxy_contexts'] / row['coder_v1'] - 1:+.1%} vs v1, "
              f"{row['proxy_contexts'] / row[f'coder_v{newest}'] - 1:+.1%} vs v{newest}), mix {row['proxy_mix']:.0f} "
              f"({row['proxy_mix'] / row[f'coder_v{newest}'] - 1:+.1%} vs v{newest})", flush=True)
    if args.json_out:
        args.json_out.write_text(json.dumps({"model": tok.name, "weights_hash": tok.weights_hash,
                                             "runs": args.runs, "steps": args.steps, "newest_coder": newest,
                                             "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
