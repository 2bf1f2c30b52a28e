"""`python -m benchmarks compare RUN_A RUN_B`: do two runs of one plan agree exactly, and how do their wall times
compare? Exit status 0 when every row agrees (timing and memory fields aside), 1 otherwise.

For the parallel-speed check: the same suite once with `--jobs 1` and once with `--jobs 2`, each with its own cache.
"""

from __future__ import annotations

import json
import os
import sys


def compare(dir_a: str, dir_b: str) -> tuple[bool, str]:
    from benchmarks.runner import comparable

    runs = []
    for d in (dir_a, dir_b):
        with open(os.path.join(d, "results.json")) as f:
            runs.append(json.load(f))
    a, b = runs
    rows_a, rows_b = comparable(a), comparable(b)
    same = rows_a == rows_b
    lines = [f"rows: {len(rows_a)} vs {len(rows_b)}, {'identical' if same else 'DIFFERENT'} (timing fields aside)"]
    if not same:
        for i, (ra, rb) in enumerate(zip(rows_a, rows_b)):
            if ra != rb:
                keys = sorted(k for k in set(ra) | set(rb) if ra.get(k) != rb.get(k))
                lines.append(f"first difference: row {i} ({ra.get('clip')} {ra.get('codec')} {ra.get('point')}): {keys}")
                break
    wa, wb = (r.get("run", {}).get("wall_seconds") for r in runs)
    if wa and wb:
        ja, jb = (r["run"].get("workers") for r in runs)
        lines.append(f"wall: {wa:.1f} s ({ja} workers) vs {wb:.1f} s ({jb} workers): ratio {wb / wa:.2f}")
        computed = [r["run"].get("computed") for r in runs]
        if computed != [r["run"].get("jobs") for r in runs]:
            lines.append(f"note: computed {computed} of {[r['run'].get('jobs') for r in runs]} jobs (cache hits)")
    return same, "\n".join(lines)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m benchmarks compare RUN_A RUN_B", file=sys.stderr)
        return 2
    same, text = compare(*argv)
    print(text)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
