"""Mutation fuzzing of the VCB reader: every input either decodes or raises BitstreamError.

    python -m tests.fuzz_long --cases 1000000 [--seed 0] [--workers 1]

Cases run in worker processes with an address-space limit (unbounded memory shows up as a
failure, not as a swapping machine) and a per-case alarm (a hang shows up as a failure).
``tests/test_bitstream_fuzz.py`` runs a few thousand cases of the same harness in-process.
A failing case prints its (seed, case) pair; ``--replay SEED:CASE`` re-runs just that one.
"""

from __future__ import annotations

import argparse
import io
import itertools
import struct
import sys
import time
import traceback
import zlib

import numpy as np

import bitstream
from bitstream import BitstreamError, StreamHeader, TrackInfo, VcbReader, VcbWriter

_HASH = "ab" * 32


class _Pipe(io.RawIOBase):
    """A read-only, non-seekable view of bytes (what a reader sees on stdin or a socket)."""

    def __init__(self, data: bytes):
        self._b = io.BytesIO(data)

    def readable(self):
        return True

    def seekable(self):
        return False

    def readinto(self, buf):
        n = self._b.readinto(buf)
        return n


def _grid(rng, levels, frames, h, w, bits):
    base = rng.integers(0, 2**bits, size=(1, 1, h, w), dtype=np.uint64)
    flip = rng.random((levels, frames, h, w)) < 0.2
    noise = rng.integers(0, 2**bits, size=(levels, frames, h, w), dtype=np.uint64)
    return np.where(flip, noise, base).astype(np.uint32)


def make_corpus() -> list[tuple[bytes, object]]:
    """A handful of small valid streams covering every record type, each coded with every coder version
    (deterministic)."""
    rng = np.random.default_rng(20261125)
    out = []
    specs = [
        # (token_bits, max_levels, width, height, window, chunk frame counts, tables?, tracks?, index?)
        (1, 1, 8, 8, 1, [1], False, False, True),
        (6, 2, 24, 17, 9, [9, 5], False, True, True),
        (5, 3, 16, 16, 5, [5, 1, 5], True, False, False),
        (12, 2, 9, 30, 17, [17], True, True, True),
        # two keyframe periods of chunks that continue their keyframe chunk (format version 2)
        (7, 2, 20, 12, 9, [9, (8, True), (8, True), (3, True), 9, (4, True)], True, True, True),
    ]
    for (bits, max_levels, width, height, window, frames, use_tables, use_track, use_index), version in itertools.product(
            specs, bitstream.CODER_VERSIONS):
        header = StreamHeader(
            model_name="fuzz-model", weights_hash=_HASH, token_bits=bits, levels=max_levels,
            max_levels=max_levels, width=width, height=height, frame_rate=(30000, 1001), window_frames=window,
            coder_version=version,
        )
        plan = [f if isinstance(f, tuple) else (f, False) for f in frames]
        grids, levels = [], 0
        for n, continues in plan:  # a continuing chunk keeps the levels of the chunk it continues
            levels = levels if continues else rng.integers(1, max_levels + 1)
            grids.append(_grid(rng, levels, header.latent_frames(n, continues), header.latent_height,
                               header.latent_width, bits))
        tables = bitstream.pad_tables(bitstream.fit_tables(grids, bits, version=version), max_levels) if use_tables else None
        buf = io.BytesIO()
        with VcbWriter(buf, header, tables, index=use_index) as w:
            tid = w.add_track(TrackInfo("audio", "opus", (1, 48000), {"channels": 2}, b"OpusHead")) if use_track else None
            for i, (g, (n, continues)) in enumerate(zip(grids, plan)):
                w.write_chunk(g, n, continues=continues)
                if tid is not None:
                    w.write_packet(tid, bytes(rng.integers(0, 256, 7, dtype=np.uint8)), pts=960 * i, dts=960 * i, duration=960, keyframe=True)
        out.append((buf.getvalue(), tables))
    for version in bitstream.CODER_VERSIONS:  # format version 3: chunks of several widths and rate changes
        out.append(_rate_stream(rng, version))
    return out


def _rate_stream(rng: np.random.Generator, version: int) -> tuple[bytes, dict]:
    """A format-version-3 stream: two keyframe periods whose chunks change levels and token width."""
    widths = (3, 6, 9)
    header = StreamHeader(
        model_name="fuzz-model", weights_hash=_HASH, token_bits=9, levels=3, max_levels=3, width=20, height=12,
        frame_rate=(25, 1), window_frames=9, coder_version=version, chunk_bits=widths,
    )
    plan = [(9, False, 2, 9), (8, True, 2, 3), (8, True, 3, 6), (4, True, 1, 6), (9, False, 3, 3), (8, True, 2, 9)]
    grids = [_grid(rng, lv, header.latent_frames(n, c), header.latent_height, header.latent_width, b)
             for n, c, lv, b in plan]
    tables = {b: bitstream.pad_tables(bitstream.fit_tables([g & ((1 << b) - 1) for g in grids], b, version=version), 3)
              for b in widths}
    grids = [g & np.uint32((1 << b) - 1) for g, (_, _, _, b) in zip(grids, plan)]
    buf = io.BytesIO()
    with VcbWriter(buf, header, tables) as w:
        for g, (n, c, _, b) in zip(grids, plan):
            w.write_chunk(g, n, continues=c, bits=b)
    return buf.getvalue(), tables


# ----------------------------------------------------------------------------------------------
# mutations


def _records(data: bytes) -> list[tuple[int, int]]:
    """(offset, payload length) of the well-formed records of a valid stream."""
    (jlen,) = struct.unpack_from("<I", data, 8)
    pos, out = 16 + jlen, []
    while pos + 20 <= len(data) and len(out) < 1000:
        (length,) = struct.unpack_from("<I", data, pos + 8)
        out.append((pos, length))
        pos += 20 + length
    return out


def _refix(data: bytearray, rec: tuple[int, int] | None) -> None:
    """Recompute the CRCs of one record (or of the file header) so a mutation gets past them."""
    if rec is None:
        (jlen,) = struct.unpack_from("<I", data, 8)
        jlen = max(0, min(jlen, len(data) - 16))
        struct.pack_into("<I", data, 12, zlib.crc32(bytes(data[16 : 16 + jlen]), zlib.crc32(bytes(data[:12]))))
        return
    off, length = rec
    if off + 20 > len(data):
        return
    (length,) = struct.unpack_from("<I", data, off + 8)
    payload = bytes(data[off + 20 : off + 20 + length])
    struct.pack_into("<I", data, off + 12, zlib.crc32(payload))
    struct.pack_into("<I", data, off + 16, zlib.crc32(bytes(data[off : off + 16])))


def mutate(data: bytes, rng: np.random.Generator, corpus: list) -> bytes:
    d = bytearray(data)
    n = len(d)
    if n < 24:  # earlier mutations left almost nothing: add some bytes back
        return bytes(d) + rng.integers(0, 256, int(rng.integers(1, 32)), dtype=np.uint8).tobytes()
    op = int(rng.integers(0, 10))
    if op == 0:  # flip a few bits
        for _ in range(int(rng.integers(1, 9))):
            i = int(rng.integers(0, n))
            d[i] ^= 1 << int(rng.integers(0, 8))
    elif op == 1:  # overwrite a few bytes with interesting values
        for _ in range(int(rng.integers(1, 5))):
            i = int(rng.integers(0, n))
            d[i] = int(rng.choice([0, 1, 0x7F, 0x80, 0xFF, int(rng.integers(0, 256))]))
    elif op == 2:  # truncate
        del d[int(rng.integers(0, n)) :]
    elif op == 3:  # insert random bytes
        i = int(rng.integers(0, n + 1))
        d[i:i] = rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8).tobytes()
    elif op == 4:  # delete a range
        i = int(rng.integers(0, n))
        del d[i : i + int(rng.integers(1, 64))]
    elif op == 5:  # duplicate a range
        i = int(rng.integers(0, n))
        j = min(n, i + int(rng.integers(1, 256)))
        k = int(rng.integers(0, n + 1))
        d[k:k] = d[i:j]
    elif op == 6:  # splice in a piece of another valid stream
        other = corpus[int(rng.integers(0, len(corpus)))][0]
        i, j = sorted(int(x) for x in rng.integers(0, len(other), 2))
        k = int(rng.integers(0, n))
        d[k : k + (j - i)] = other[i:j]
    elif op == 7:  # overwrite a 32/64-bit field with an extreme value
        i = int(rng.integers(0, max(1, n - 8)))
        v = int(rng.choice([0, 1, 2**31 - 1, 2**32 - 1, 2**63 - 1, 10**9, 16385]))
        d[i : i + 8] = struct.pack("<Q", v)[: len(d[i : i + 8])]
    else:  # mutate inside one record (or the header JSON) and fix its CRCs: reaches the parsers
        recs = _records(data)
        pick = int(rng.integers(-1, len(recs)))
        rec = None if pick < 0 else recs[pick]
        lo = 4 if rec is None else rec[0] + 4
        hi = (16 + struct.unpack_from("<I", data, 8)[0]) if rec is None else rec[0] + 20 + rec[1]
        hi = min(hi, n)
        for _ in range(int(rng.integers(1, 4))):
            i = int(rng.integers(lo, max(lo + 1, min(hi, n))))
            if i < len(d):
                d[i] = int(rng.integers(0, 256)) if rng.random() < 0.5 else d[i] ^ (1 << int(rng.integers(0, 8)))
        if rec is not None and rec[0] + 20 + rec[1] <= n and rng.random() < 0.3:  # sometimes cut the payload
            cut = rec[0] + 20 + int(rng.integers(0, rec[1] + 1))
            (length,) = struct.unpack_from("<I", d, rec[0] + 8)
            del d[cut : rec[0] + 20 + length]
            struct.pack_into("<I", d, rec[0] + 8, cut - rec[0] - 20)
        _refix(d, rec)
    return bytes(d)


# ----------------------------------------------------------------------------------------------
# one case


def exercise(data: bytes, tables, mode: int) -> str:
    """Read ``data`` one way; returns "ok" or the BitstreamError class name. Other errors escape."""
    try:
        if mode == 0:  # strict streaming pass, seekable
            r = VcbReader(io.BytesIO(data), tables)
            for _ in r.records():
                pass
        elif mode == 1:  # same through a pipe
            r = VcbReader(io.BufferedReader(_Pipe(data)), tables)
            for _ in r.records():
                pass
        elif mode == 2:  # random access via the index (or a scan)
            r = VcbReader(io.BytesIO(data), tables)
            r.total_frames, r.num_chunks  # noqa: B018
            for i in range(len(r.index())):
                r.read_chunk(i)
        else:  # salvage, through a pipe
            r = VcbReader(io.BufferedReader(_Pipe(data)), tables)
            for _ in r.chunks(salvage=True):
                pass
        return "ok"
    except BitstreamError as e:
        msg = str(e)
        assert msg and "\n" not in msg, f"error message is not one line: {msg!r}"
        return type(e).__name__


def exercise_tokens(data: bytes, rng: np.random.Generator) -> str:
    """Feed arbitrary bytes straight to the token decoder."""
    shape = tuple(int(x) for x in rng.integers(1, 4, 4))
    bits = int(rng.integers(1, 33))
    try:
        bitstream.decode_tokens(data[: len(data) & ~3][:4096], shape, bits)
        return "ok"
    except BitstreamError as e:
        return type(e).__name__


def run_cases(start: int, count: int, seed: int, corpus=None, stop_at: float | None = None) -> dict:
    """Run cases ``start .. start+count-1``; returns outcome counts and the failures."""
    corpus = corpus or make_corpus()
    stats: dict = {"cases": 0, "outcomes": {}, "failures": []}
    for case in range(start, start + count):
        if stop_at is not None and time.monotonic() > stop_at:
            break
        rng = np.random.default_rng([seed, case])
        data, tables = corpus[int(rng.integers(0, len(corpus)))]
        for _ in range(1 if rng.random() < 0.8 else int(rng.integers(2, 5))):
            data = mutate(data, rng, corpus)
        try:
            if case % 16 == 15:
                outcome = exercise_tokens(data, rng)
            else:
                outcome = exercise(data, tables, case % 4)
        except Exception as e:  # noqa: BLE001 -- the point: anything else is a bug
            stats["failures"].append((seed, case, f"{type(e).__name__}: {e}", traceback.format_exc(limit=6)))
            outcome = "FAIL"
        stats["outcomes"][outcome] = stats["outcomes"].get(outcome, 0) + 1
        stats["cases"] += 1
    return stats


# ----------------------------------------------------------------------------------------------
# long run


def _worker(args):
    start, count, seed, mem_limit, case_timeout = args
    import resource
    import signal

    if mem_limit:
        resource.setrlimit(resource.RLIMIT_AS, (mem_limit, mem_limit))

    def on_alarm(*_):
        raise TimeoutError("case took too long (hang?)")

    signal.signal(signal.SIGALRM, on_alarm)
    corpus = make_corpus()
    total: dict = {"cases": 0, "outcomes": {}, "failures": []}
    for s in range(start, start + count, 100):  # the alarm is re-armed every 100 cases
        signal.alarm(case_timeout)
        st = run_cases(s, min(100, start + count - s), seed, corpus)
        signal.alarm(0)
        total["cases"] += st["cases"]
        total["failures"] += st["failures"]
        for k, v in st["outcomes"].items():
            total["outcomes"][k] = total["outcomes"].get(k, 0) + v
    return total


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--batch", type=int, default=5000, help="cases per task handed to a worker")
    ap.add_argument("--mem-limit-mb", type=int, default=2048, help="address-space limit per worker")
    ap.add_argument("--case-timeout", type=int, default=60, help="seconds per 100 cases before calling it a hang")
    ap.add_argument("--time-limit", type=float, default=0, help="stop after this many seconds (0 = run all cases)")
    ap.add_argument("--replay", help="SEED:CASE -- run one case in-process with a full traceback")
    args = ap.parse_args(argv)

    if args.replay:
        seed, case = (int(x) for x in args.replay.split(":"))
        st = run_cases(case, 1, seed)
        print(st["outcomes"])
        for f in st["failures"]:
            print(f[3])
        return 1 if st["failures"] else 0

    import multiprocessing as mp

    tasks = [
        (s, min(args.batch, args.cases - s), args.seed, args.mem_limit_mb << 20, args.case_timeout)
        for s in range(0, args.cases, args.batch)
    ]
    t0 = time.monotonic()
    total: dict = {"cases": 0, "outcomes": {}, "failures": []}
    ctx = mp.get_context("spawn")
    timed_out = False
    with ctx.Pool(args.workers, maxtasksperchild=50) as pool:
        for st in pool.imap_unordered(_worker, tasks):
            if args.time_limit and time.monotonic() - t0 > args.time_limit:
                timed_out = True  # this batch still counts; the ones in flight are dropped
                pool.terminate()
            total["cases"] += st["cases"]
            total["failures"] += st["failures"]
            for k, v in st["outcomes"].items():
                total["outcomes"][k] = total["outcomes"].get(k, 0) + v
            for f in st["failures"][:3]:
                print(f"FAIL seed={f[0]} case={f[1]}: {f[2]}", flush=True)
            el = time.monotonic() - t0
            print(f"{total['cases']}/{args.cases} cases, {el:.0f} s, {total['cases'] / el:.0f} cases/s, "
                  f"{len(total['failures'])} failures", flush=True)
            if timed_out:
                break
    el = time.monotonic() - t0
    print(f"done: {total['cases']} cases in {el:.0f} s, seed {args.seed}, outcomes {dict(sorted(total['outcomes'].items()))}")
    print(f"failures: {len(total['failures'])}")
    for f in total["failures"][:20]:
        print(f"--- seed={f[0]} case={f[1]}: {f[2]}\n{f[3]}")
    if timed_out:
        print(f"stopped by --time-limit {args.time_limit:.0f} s after {total['cases']} cases")
    return 1 if total["failures"] or (total["cases"] != args.cases and not timed_out) else 0


if __name__ == "__main__":
    sys.exit(main())
