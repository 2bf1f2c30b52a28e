"""Header-value fuzzing: streams whose CRCs are all valid but whose *values* lie, decoded by the real decoder.

    python -m tests.fuzz_values --cases 20000 [--seed 0] [--time-limit 600]

:mod:`tests.fuzz_long` flips bytes and mostly meets a CRC; here every case is re-serialised with correct CRCs
(and, unless the lie is about them, correct index offsets), so each lie reaches the code that uses the value:
header geometry, frame rates, ``extra.source`` (sample aspect ratio, gray), TRACK ``params``, chunk and index
fields, extension records. A case passes when it decodes or raises a :class:`vcodec.VcodecError` (the CLI's
one-line errors); any other exception is a failure. Each case runs through the bitstream reader, through
``vcodec.decompress`` and through ``vcodec.decode_video`` into ``.y4m``, ``.mkv`` and ``.mp4``, with a tiny
random-weight tokenizer (:func:`vcodec.testing.tiny_tokenizer`): the real network, not a fake.

Cases run in one process under a per-case alarm (a hang is a failure); the peak resident memory of the process
is reported (``ru_maxrss``: no case can have used more). ``tests/test_hostile.py`` runs a few hundred cases.
A failing case prints its (seed, case) pair; ``--replay SEED:CASE`` re-runs it with a full traceback.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import io
import json
import os
import resource
import signal
import struct
import sys
import tempfile
import time
import traceback
import warnings

import numpy as np

from bitstream import BitstreamError, VcbReader, VcbWriter
from bitstream.header import FILE_HEADER, MAGIC, REC_CHUNK, REC_END, REC_INDEX, RECORD_HEADER, crc
from bitstream.records import record
from vcodec.coding import writer_tables

HOSTILE = [0, 1, -1, 2, 3, 7, 8, 9, 16, 17, 31, 32, 33, 64, 255, 1023, 1024, 1025, 16383, 16384, 16385,
           2**31 - 1, 2**31, 2**32, 2**63, 10**7, 10**12, 10**400, 1.5, 1e300, -0.0, "8", "48k", "", "x" * 300,
           None, True, False, [], {}, [1, 2], {"a": 1}]
SAR = ["1/1", "4/3", "1000000000000/1", "1/1000000000000", "1e400", "1/1e400", "-5/3", "0/1", "1/0", "abc",
       "2147483647/1", "1024/1", "1025/1", "1/1024", "nan", "inf", " 3/2 ", "1" * 5000, 12, None, ["4", "3"]]
HEADER_FIELDS = [("tokens", k) for k in ("token_bits", "max_levels", "levels", "temporal_factor", "spatial_factor",
                                         "window_frames", "chunk_bits")] + \
                [("video", k) for k in ("width", "height", "num_frames", "frame_rate", "pad")] + \
                [("model", "name"), ("model", "weights_sha256"), ("coder", "tables_sha256"), ("coder", "version")]
TRACK_PARAMS = ["sample_rate", "channels", "layout", "language", "ffmpeg_nut_template"]


# ----------------------------------------------------------------------------------------------
# streams as (header JSON object, [record type, payload]) and back, with correct CRCs


def split(data: bytes) -> tuple[dict, list[list]]:
    (jlen,) = struct.unpack_from("<I", data, 8)
    hdr = json.loads(data[16 : 16 + jlen])
    pos, recs = 16 + jlen, []
    while pos + RECORD_HEADER.size <= len(data):
        _, rtype, _, _, length, _, _ = RECORD_HEADER.unpack_from(data, pos)
        recs.append([rtype, bytearray(data[pos + 20 : pos + 20 + length])])
        pos += 20 + length
    return hdr, recs


def join(hdr: dict, recs: list[list], fix_offsets: bool = True) -> bytes:
    """The stream's bytes, format version 3 when the header lists ``tokens.chunk_bits`` and 2 otherwise (as a
    writer would); ``fix_offsets`` rewrites INDEX entry offsets and END's index offset to where the records now lie
    (so that a lie elsewhere is not caught by them)."""
    raw = json.dumps(hdr, sort_keys=True, separators=(",", ":")).encode()
    tokens = hdr.get("tokens")
    version = 3 if isinstance(tokens, dict) and "chunk_bits" in tokens else 2
    head = FILE_HEADER.pack(MAGIC, version, 0, 0, len(raw), 0)[:12]
    out = head + struct.pack("<I", crc(head, raw)) + raw
    offsets, pos = [], len(out)
    for _, payload in recs:
        offsets.append(pos)
        pos += RECORD_HEADER.size + len(payload)
    if fix_offsets:
        chunk_offs = [o for o, (t, _) in zip(offsets, recs) if t == REC_CHUNK]
        index_off = 0
        for o, (t, p) in zip(offsets, recs):
            if t == REC_INDEX and len(p) >= 8:
                index_off = o
                for i in range(min(struct.unpack_from("<I", p, 0)[0], len(chunk_offs), (len(p) - 8) // 24)):
                    struct.pack_into("<Q", p, 8 + 24 * i, chunk_offs[i])
            if t == REC_END and len(p) == 24:
                struct.pack_into("<Q", p, 16, index_off)
    return out + b"".join(record(t, bytes(p)) for t, p in recs)


# ----------------------------------------------------------------------------------------------
# the tokenizer, valid base streams and the forged-geometry corpus


def tiny():
    from vcodec.testing import tiny_tokenizer

    return tiny_tokenizer(window_frames=9)


def base_streams(tok, workdir: str) -> list[bytes]:
    """Valid streams of ``tok``: one with an AAC track and an index, one of two chunks (the second continuing the
    first), one of three chunks made by rate control (format version 3), all three without colour corrections, and
    the default encoder's of 25 frames (format version 5: a period's map carried on in 4 bytes)."""
    import vcodec
    from vcodec.io.synthetic import write_clip

    out = []
    for i, (w, h, n, audio, bitrate, colour) in enumerate([(24, 16, 5, "aac", None, False), (20, 12, 12, None, None, False),
                                                          (20, 12, 25, None, 9000, False), (20, 12, 25, None, None, None)]):
        src = os.path.join(workdir, f"base{i}.mkv")
        write_clip(src, width=w, height=h, num_frames=n, codec="ffv1", pix_fmt="yuv420p", audio=audio)
        buf = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            vcodec.encode_video(src, buf, tokenizer=tok, bitrate=bitrate, colour=colour)
        out.append(buf.getvalue())
    return out


def forged(tok, base: bytes, **changes) -> bytes:
    """A stream whose header has ``changes`` and whose chunks fit that lying header exactly (random tokens,
    one chunk per ``window_frames`` frames, ``num_frames`` frames in all: 1 by default), so that the reader
    finds nothing wrong and only the decoder's own checks stand between the lie and the network."""
    h0 = VcbReader(io.BytesIO(base)).header
    frames = changes.pop("frames", 1)
    promise = changes.pop("promise", None)  # a frame count the header promises (the writer would refuse it)
    h = dataclasses.replace(h0, **changes)
    rng = np.random.default_rng(len(repr(changes)))
    buf = io.BytesIO()
    with VcbWriter(buf, h, tables=writer_tables(tok, h)) as w:
        left = frames
        while left:
            n = min(left, h.window_frames)
            shape = (h.levels, h.latent_frames(n), h.latent_height, h.latent_width)
            w.write_chunk(rng.integers(0, 2**h.token_bits, shape, dtype=np.uint64).astype(np.uint32), n)
            left -= n
    if promise is None:
        return buf.getvalue()
    hdr, recs = split(buf.getvalue())
    hdr["video"]["num_frames"] = promise
    return join(hdr, recs)


def forged_corpus(tok, base: bytes) -> list[tuple[str, bytes, str | None]]:
    """(name, stream, expected outcome): the error class name a decoder must raise, or None to decode."""
    c = tok.config
    return [
        ("window 1024 frames", forged(tok, base, window_frames=1024, frames=1024), "StreamModelMismatchError"),
        ("window longer than the model's", forged(tok, base, window_frames=13, frames=13), "StreamModelMismatchError"),
        ("window shorter than the model's", forged(tok, base, window_frames=5, frames=7), None),
        ("more token bits than the model", forged(tok, base, token_bits=c.token_bits + 1), "StreamModelMismatchError"),
        ("fewer token bits", forged(tok, base, token_bits=c.token_bits - 3), None),
        ("more max_levels than the model", forged(tok, base, max_levels=tok.max_levels + 1, levels=1),
         "StreamModelMismatchError"),
        ("fewer max_levels (the model before it gained a level)", forged(tok, base, max_levels=tok.max_levels - 1,
                                                                          levels=1), None),
        ("other temporal factor", forged(tok, base, temporal_factor=2), "StreamModelMismatchError"),
        ("other spatial factor", forged(tok, base, spatial_factor=4), "StreamModelMismatchError"),
        ("wide and short", forged(tok, base, width=2048, height=8), None),
        ("header frame count lies", forged(tok, base, num_frames=None, promise=100, frames=3), "StreamCorruptDataError"),
        ("fastest frame rate", forged(tok, base, frame_rate=(10**6, 1)), None),
        ("slowest frame rate", forged(tok, base, frame_rate=(1, 10**6)), None),
    ]


# ----------------------------------------------------------------------------------------------
# lies


def _pick(rng, seq):
    return seq[int(rng.integers(0, len(seq)))]


def lie(data: bytes, rng: np.random.Generator, template: str | None) -> tuple[bytes, str]:
    """One to three lies in ``data``, CRCs kept valid; returns the stream and a description."""
    hdr, recs = split(data)
    fix, what = True, []
    for _ in range(int(rng.integers(1, 4))):
        op = int(rng.integers(0, 9))
        if op <= 1:  # a header field
            sec, key = _pick(rng, HEADER_FIELDS)
            v = _pick(rng, HOSTILE) if rng.random() < 0.8 else [_pick(rng, HOSTILE), _pick(rng, HOSTILE)]
            hdr.setdefault(sec, {})[key] = v
            what.append(f"{sec}.{key}={str(v)[:20]}")
        elif op == 2:  # what the encoder said about its source
            src = hdr.setdefault("extra", {}).setdefault("source", {})
            key = _pick(rng, ["sample_aspect_ratio", "sample_aspect_ratio", "gray", "frame_rate", "width"])
            v = _pick(rng, SAR) if key == "sample_aspect_ratio" else _pick(rng, HOSTILE)
            if isinstance(src, dict):
                src[key] = v
            if rng.random() < 0.1:
                hdr["extra"]["source"] = _pick(rng, HOSTILE)
            if rng.random() < 0.2:
                hdr["extra"]["quality"] = _pick(rng, HOSTILE)
            what.append(f"source.{key}={str(v)[:20]}")
        elif op in (3, 4):  # a track's declaration
            tracks = [r for r in recs if r[0] == 0x01]
            if not tracks:
                continue
            p = _pick(rng, tracks)[1]
            jlen = struct.unpack_from("<I", p, 4)[0]
            obj = json.loads(p[8 : 8 + jlen])
            key = _pick(rng, TRACK_PARAMS + ["codec", "kind", "time_base"])
            if key == "ffmpeg_nut_template":
                raw = base64.b64decode(template or "")
                v = _pick(rng, [base64.b64encode(raw[: int(rng.integers(0, len(raw) + 1))]).decode(),
                                base64.b64encode(rng.integers(0, 256, 200, dtype=np.uint8).tobytes()).decode(),
                                "not base64!", 5])
            elif key == "codec":
                v = _pick(rng, ["aac", "opus", "flac", "pcm_s16le", "nonesuch", "h264", "x" * 256])
            else:
                v = _pick(rng, HOSTILE)
            (obj["params"] if key in TRACK_PARAMS else obj)[key] = v
            raw = json.dumps(obj).encode()
            p[:] = p[:4] + struct.pack("<I", len(raw)) + raw + p[8 + jlen :]
            what.append(f"track.{key}={str(v)[:20]}")
        elif op == 5:  # a chunk header field
            chunks = [r for r in recs if r[0] == REC_CHUNK]
            field = int(rng.integers(0, 8))
            off, fmt = [(0, "<I"), (4, "<I"), (8, "<Q"), (16, "<B"), (20, "<I"), (24, "<I"), (17, "<B"),
                        (18, "<H")][field]  # ..., flags, bits (version 3; reserved before)
            v = int(_pick(rng, [0, 1, 2, 3, 5, 9, 17, 255, 2**31, 2**32 - 1, 10**7]))
            v &= (1 << (8 * struct.calcsize(fmt))) - 1
            struct.pack_into(fmt, _pick(rng, chunks)[1], off, v)
            what.append(f"chunk field {off}={v}")
        elif op == 6:  # index and end records
            fix = rng.random() < 0.5
            for t, p in recs:
                if t == REC_INDEX and len(p) >= 32 and rng.random() < 0.7:
                    struct.pack_into("<Q", p, 8 + 8 * int(rng.integers(0, 3)), int(_pick(rng, [0, 1, 16, 2**40, 2**64 - 1])))
                if t == REC_END and len(p) == 24 and rng.random() < 0.5:
                    struct.pack_into("<Q", p, 8 * int(rng.integers(0, 3)), int(_pick(rng, [0, 1, 2, 100, 2**40, 2**64 - 1])))
            what.append(f"index/end (offsets fixed: {fix})")
        elif op == 7:  # an extension (or undefined) record somewhere before END
            rtype = int(rng.integers(0x80, 0x100)) if rng.random() < 0.8 else int(rng.integers(0x04, 0x0E))
            payload = bytearray(rng.integers(0, 256, int(rng.integers(0, 300)), dtype=np.uint8).tobytes())
            recs.insert(int(rng.integers(0, len(recs))), [rtype, payload])
            what.append(f"record type {rtype:#x}")
        else:  # a packet field
            packets = [r for r in recs if r[0] == 0x03]
            if not packets:
                continue
            off = _pick(rng, [0, 2, 4, 12, 20])
            fmt = {0: "<H", 2: "<B", 4: "<q", 12: "<q", 20: "<q"}[off]
            v = _pick(rng, [0, 1, 7, 255, -1, 2**62, -(2**63)])
            lim = 8 * struct.calcsize(fmt)
            v = v & ((1 << lim) - 1) if fmt in ("<H", "<B") else v
            struct.pack_into(fmt, _pick(rng, packets)[1], off, v)
            what.append(f"packet field {off}={v}")
    return join(hdr, recs, fix_offsets=fix), "; ".join(what)


# ----------------------------------------------------------------------------------------------
# one case


def exercise(data: bytes, tok, mode: int, workdir: str) -> str:
    """Decode ``data`` one way; returns "ok" or the error class name. Errors vcodec does not raise on purpose
    escape (the caller counts them as failures)."""
    import vcodec

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if mode == 0:  # the container alone, every record, tokens decoded with the model's tables
                r = VcbReader(io.BytesIO(data), tables=lambda h: tok.tables_for(h.token_bits, h.coder_version))
                for _ in r.records():
                    pass
            elif mode == 1:
                vcodec.decompress(data, tokenizer=tok)
            else:
                ext = ("y4m", "mkv", "mp4", "mkv")[mode - 2]
                vcodec.decode_video(io.BytesIO(data), os.path.join(workdir, f"out.{ext}"), overwrite=True,
                                    tokenizer=tok, salvage=mode == 5)
        return "ok"
    except (vcodec.VcodecError, BitstreamError) as e:
        if mode != 0 and not isinstance(e, vcodec.VcodecError):
            raise
        msg = str(e)
        assert msg and "\n" not in msg, f"error message is not one line: {msg!r}"
        return type(e).__name__


class Fuzzer:
    def __init__(self, workdir: str):
        self.tok = tiny()
        self.workdir = workdir
        self.bases = base_streams(self.tok, workdir)
        self.forged = [d for _, d, _ in forged_corpus(self.tok, self.bases[1])]
        tracks = [r for r in split(self.bases[0])[1] if r[0] == 0x01]
        p = tracks[0][1]
        self.template = json.loads(p[8 : 8 + struct.unpack_from("<I", p, 4)[0]])["params"]["ffmpeg_nut_template"]

    def case(self, seed: int, case: int) -> tuple[bytes, str]:
        rng = np.random.default_rng([seed, case])
        pool = self.bases if rng.random() < 0.8 else self.forged
        return lie(_pick(rng, pool), rng, self.template)

    def run(self, start: int, count: int, seed: int, stop_at: float | None = None, case_timeout: int = 0) -> dict:
        stats: dict = {"cases": 0, "outcomes": {}, "failures": []}

        def on_alarm(*_):
            raise TimeoutError(f"case took longer than {case_timeout} s (hang?)")

        if case_timeout:
            signal.signal(signal.SIGALRM, on_alarm)
        for case in range(start, start + count):
            if stop_at is not None and time.monotonic() > stop_at:
                break
            what = ""
            try:
                signal.alarm(case_timeout)
                data, what = self.case(seed, case)
                outcome = exercise(data, self.tok, case % 6, self.workdir)
            except Exception as e:  # noqa: BLE001 -- the point: anything else is a bug
                stats["failures"].append((seed, case, f"{type(e).__name__}: {e} [{what}]", traceback.format_exc(limit=8)))
                outcome = "FAIL"
            finally:
                signal.alarm(0)
            stats["outcomes"][outcome] = stats["outcomes"].get(outcome, 0) + 1
            stats["cases"] += 1
        stats["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return stats


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--case-timeout", type=int, default=60, help="seconds one case may take before it is a hang")
    ap.add_argument("--time-limit", type=float, default=0, help="stop after this many seconds (0 = run all cases)")
    ap.add_argument("--replay", help="SEED:CASE -- run one case with a full traceback")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as wd:
        fz = Fuzzer(wd)
        if args.replay:
            seed, case = (int(x) for x in args.replay.split(":"))
            st = fz.run(case, 1, seed)
            print(st["outcomes"])
            for f in st["failures"]:
                print(f[2], f[3], sep="\n")
            return 1 if st["failures"] else 0
        t0 = time.monotonic()
        stop = t0 + args.time_limit if args.time_limit else None
        total: dict = {"cases": 0, "outcomes": {}, "failures": []}
        for s in range(0, args.cases, 500):
            st = fz.run(s, min(500, args.cases - s), args.seed, stop, args.case_timeout)
            total["cases"] += st["cases"]
            total["failures"] += st["failures"]
            for k, v in st["outcomes"].items():
                total["outcomes"][k] = total["outcomes"].get(k, 0) + v
            el = time.monotonic() - t0
            print(f"{total['cases']}/{args.cases} cases, {el:.0f} s, {len(total['failures'])} failures, "
                  f"peak RSS {st['peak_rss_mb']:.0f} MB", flush=True)
            if st["cases"] < min(500, args.cases - s):
                break
    el = time.monotonic() - t0
    print(f"done: {total['cases']} cases in {el:.0f} s, seed {args.seed}, outcomes {dict(sorted(total['outcomes'].items()))}")
    print(f"failures: {len(total['failures'])}, peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    for f in total["failures"][:20]:
        print(f"--- seed={f[0]} case={f[1]}: {f[2]}\n{f[3]}")
    return 1 if total["failures"] or (total["cases"] != args.cases and not args.time_limit) else 0


if __name__ == "__main__":
    sys.exit(main())
