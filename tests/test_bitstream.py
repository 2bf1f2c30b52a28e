"""Tests for the bitstream package: format, coder, errors, streaming, golden bytes.

Golden files live in tests/golden/; regenerate them (only on purpose!) with
``VCODEC_REGEN_GOLDEN=1 python -m pytest tests/test_bitstream.py -k golden``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bitstream
from bitstream import (
    BadMagicError,
    BitstreamError,
    ChecksumError,
    CorruptDataError,
    HeaderError,
    ModelMismatchError,
    StreamHeader,
    TablesMismatchError,
    TrackInfo,
    TruncatedError,
    UnknownCoderError,
    UnsupportedVersionError,
    VcbReader,
    VcbWriter,
    decode_tokens,
    encode_tokens,
    fit_tables,
)
from bitstream.bench import synthetic_tokens

REPO = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).resolve().parent / "golden"
REGEN = os.environ.get("VCODEC_REGEN_GOLDEN") == "1"
HASH = hashlib.sha256(b"test weights").hexdigest()


# ----------------------------------------------------------------------------------------------
# helpers


class Pipe(io.RawIOBase):
    """Read side of a pipe: readable, not seekable, no tell()."""

    def __init__(self, data: bytes):
        self._b = io.BytesIO(data)
        self.bytes_read = 0

    def readable(self):
        return True

    def seekable(self):
        return False

    def readinto(self, buf):
        n = self._b.readinto(buf)
        self.bytes_read += n
        return n


class Sink:
    """Write side of a pipe: write() only, not seekable, no tell()/seek()."""

    def __init__(self):
        self.parts = []

    def write(self, b):
        self.parts.append(bytes(b))
        return len(b)

    def flush(self):
        pass

    def seekable(self):
        return False

    def getvalue(self):
        return b"".join(self.parts)


def make_header(**kw) -> StreamHeader:
    base = dict(model_name="test-model", weights_hash=HASH, token_bits=8, levels=2, max_levels=2,
                width=40, height=24, frame_rate=(25, 1), window_frames=9)
    base.update(kw)
    return StreamHeader(**base)


def grid_for(h: StreamHeader, num_frames: int, levels: int | None = None, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (levels or h.levels, h.latent_frames(num_frames), h.latent_height, h.latent_width)
    base = rng.integers(0, 2**h.token_bits, size=(1, 1, *shape[2:]), dtype=np.uint64)
    noise = rng.integers(0, 2**h.token_bits, size=shape, dtype=np.uint64)
    return np.where(rng.random(shape) < 0.3, noise, base).astype(np.uint32)


def write_stream(h, chunks, tables=None, index=True, track=False) -> bytes:
    buf = io.BytesIO()
    with VcbWriter(buf, h, tables, index=index) as w:
        tid = w.add_track(TrackInfo("audio", "aac", (1, 48000), {"sample_rate": 48000, "channels": 2}, b"\x11\x90")) if track else None
        for i, (g, n) in enumerate(chunks):
            w.write_chunk(g, n)
            if tid is not None:
                w.write_packet(tid, b"pkt%d" % i, pts=1024 * i, dts=1024 * i, duration=1024, keyframe=True)
    return buf.getvalue()


def records(data: bytes):
    """(offset, type, payload length) of each record of a valid stream."""
    (jlen,) = struct.unpack_from("<I", data, 8)
    pos, out = 16 + jlen, []
    while pos + 20 <= len(data):
        rtype = data[pos + 4]
        (length,) = struct.unpack_from("<I", data, pos + 8)
        out.append((pos, rtype, length))
        pos += 20 + length
    return out


def with_header_json(data: bytes, mutate) -> bytes:
    """Rewrite the header JSON of a valid stream (and fix its CRC)."""
    (jlen,) = struct.unpack_from("<I", data, 8)
    obj = json.loads(data[16 : 16 + jlen])
    mutate(obj)
    raw = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    head = data[:8] + struct.pack("<I", len(raw))
    return head + struct.pack("<I", zlib.crc32(raw, zlib.crc32(head))) + raw + data[16 + jlen :]


def one_line(e: BaseException) -> str:
    msg = str(e)
    assert msg and "\n" not in msg
    return msg


# ----------------------------------------------------------------------------------------------
# identity of the package


def test_import_is_light_and_ours():
    code = (
        "import sys, json, bitstream; "
        "print(json.dumps({'file': bitstream.__file__, 'marker': getattr(bitstream, '__vcodec_format__', None), "
        "'torch': 'torch' in sys.modules, 'vcodec': any(m == 'vcodec' or m.startswith('vcodec.') for m in sys.modules)}))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    info = json.loads(out.stdout)
    assert Path(info["file"]).resolve().is_relative_to(REPO / "bitstream")
    assert info["marker"] == bitstream.FORMAT_VERSION == 2
    assert not info["torch"] and not info["vcodec"]


def test_marker_in_process():
    assert Path(bitstream.__file__).resolve().parent == REPO / "bitstream"
    assert bitstream.__vcodec_format__ == bitstream.FORMAT_VERSION == 2


# ----------------------------------------------------------------------------------------------
# golden bytes


def _golden_tokens(levels, frames, h, w, bits, salt):
    """Deterministic, numpy-version-independent token grid with spatial/temporal structure."""
    l, t, y, x = np.meshgrid(*(np.arange(n, dtype=np.uint64) for n in (levels, frames, h, w)), indexing="ij")
    smooth = ((y // 2) * 40503 + (x // 3) * 2654435761 + l * 97 + salt) % (1 << 32)
    noise = ((l * 7 + t * 13 + y * 31 + x * 61 + salt) * 2246822519) % (1 << 32)
    change = (noise >> 29) == 0  # about 1 position in 8 changes from frame to frame
    mask = (1 << bits) - 1
    return (np.where(change, noise >> 3, smooth) & mask).astype(np.uint32)


GOLDEN_HEADER = dict(model_name="golden-tiny", weights_hash=hashlib.sha256(b"golden").hexdigest(), token_bits=10,
                     levels=2, max_levels=3, width=30, height=20, frame_rate=(24000, 1001), window_frames=9)


def _golden_tables(version: int = 1):
    return fit_tables([_golden_tokens(3, 3, 3, 4, 10, salt=11)], 10, version=version)


# (num_frames, continues, levels, salt) of the golden stream's chunks: a keyframe chunk of 9 frames (1 + 2 x 4), two
# chunks that continue it (8 frames = 2 latent frames; 5 frames, padded to 8), then a keyframe chunk of 5 frames
GOLDEN_CHUNKS = ((9, False, 2, 1), (8, True, 2, 2), (5, True, 2, 3), (5, False, 3, 4))


GOLDEN_STREAMS = {1: "small_v2.vcb", 2: "small_v2_coder2.vcb", 3: "small_v2_coder3.vcb"}  # coder version -> golden file (format version 2)


def _golden_stream(version: int = 1) -> tuple[bytes, list[np.ndarray], object]:
    h = StreamHeader(**GOLDEN_HEADER, coder_version=version, extra={"note": "golden v2"})
    tables = _golden_tables(version)
    grids = [_golden_tokens(lv, h.latent_frames(n, c), 3, 4, 10, salt=salt) for n, c, lv, salt in GOLDEN_CHUNKS]
    buf = io.BytesIO()
    with VcbWriter(buf, h, tables) as w:
        tid = w.add_track(TrackInfo("audio", "opus", (1, 48000), {"channels": 1, "sample_rate": 48000}, b"OpusHead"))
        for k, ((n, c, _, _), g) in enumerate(zip(GOLDEN_CHUNKS, grids)):
            w.write_chunk(g, n, continues=c)
            if k < 2:
                w.write_packet(tid, bytes([k + 1] * (3 - k)), pts=960 * k, dts=0 if k == 0 else None, duration=960,
                               keyframe=k == 0)
    return buf.getvalue(), grids, tables


def _check_golden(name: str, data: bytes) -> None:
    path = GOLDEN / name
    if REGEN:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    assert path.exists(), f"missing golden file {path}; run with VCODEC_REGEN_GOLDEN=1 once"
    expected = path.read_bytes()
    assert data == expected, f"{name}: bytes differ from the golden file (format or coder changed?)"


@pytest.mark.parametrize("version", sorted(GOLDEN_STREAMS))
def test_golden_stream_bytes(version):
    data, grids, tables = _golden_stream(version)
    _check_golden(GOLDEN_STREAMS[version], data)
    # and the golden file still decodes to the tokens it was made from, by streaming and by random access
    r = VcbReader(io.BytesIO((GOLDEN / GOLDEN_STREAMS[version]).read_bytes()), tables)
    chunks = list(r.chunks())
    assert [(c.num_frames, c.continues) for c in chunks] == [(n, c) for n, c, _, _ in GOLDEN_CHUNKS]
    assert r.total_frames == 27 and r.header.format_version == 2 and r.header.coder_version == version
    for c, g in zip(chunks, grids):
        np.testing.assert_array_equal(c.tokens, g)
    assert [p.data for p in r.packets()] == [b"\x01\x01\x01", b"\x02\x02"]
    assert [e.continues for e in r.index()] == [False, True, True, False]
    assert [r.keyframe_chunk(i) for i in range(4)] == [0, 0, 0, 3]
    for i in (2, 1, 3, 0):
        np.testing.assert_array_equal(r.read_chunk(i).tokens, grids[i])


def test_format_v1_files_still_decode():
    """Format version 1 (no continuing chunks) is read as it always was: its golden file, written by the version-1
    writer, decodes to the tokens it was made from."""
    tables = _golden_tables()
    grids = [_golden_tokens(2, 3, 3, 4, 10, salt=1), _golden_tokens(3, 2, 3, 4, 10, salt=2)]
    r = VcbReader(io.BytesIO((GOLDEN / "small_v1.vcb").read_bytes()), tables)
    chunks = list(r.chunks())
    assert r.header.format_version == 1 and r.header.extra == {"note": "golden v1"}
    assert [c.num_frames for c in chunks] == [9, 5] and r.total_frames == 14 and not any(c.continues for c in chunks)
    for c, g in zip(chunks, grids):
        np.testing.assert_array_equal(c.tokens, g)
    assert [p.data for p in r.packets()] == [b"\x01\x02\x03", b"\x04\x05"]


@pytest.mark.parametrize("version", bitstream.CODER_VERSIONS)
def test_golden_tokens_bytes(version):
    """Each coder version's bytes for one grid, uniform prior and fitted tables."""
    grid = _golden_tokens(2, 4, 5, 7, 13, salt=5)
    tables = fit_tables([_golden_tokens(2, 3, 5, 7, 13, salt=9)], 13, version=version)
    for tab, name in ((None, f"tokens_v{version}.bin"), (tables, f"tokens_v{version}_tables.bin")):
        data = encode_tokens(grid, 13, tab, version=version)
        _check_golden(name, data)
        back = decode_tokens((GOLDEN / name).read_bytes(), grid.shape, 13, tab, version=version)
        np.testing.assert_array_equal(back, grid)


def test_golden_tokens_bytes_coder_v3_whole_pairs():
    """Coder version 3 on 32-bit tokens (blocks of 8 bits, all in pairs: the encoder's fast path)."""
    grid = _golden_tokens(2, 3, 5, 7, 32, salt=6)
    tables = fit_tables([_golden_tokens(2, 3, 5, 7, 32, salt=10)], 32, version=3)
    data = encode_tokens(grid, 32, tables, version=3)
    _check_golden("tokens_v3_b32_tables.bin", data)
    np.testing.assert_array_equal(decode_tokens(data, grid.shape, 32, tables, version=3), grid)


def test_same_bytes_with_other_thread_settings():
    """Coding uses integers only: another process with other thread counts gives the same bytes."""
    code = (
        "import sys; sys.path.insert(0, %r); import tests.test_bitstream as t, hashlib; "
        "print(hashlib.sha256(b''.join(t._golden_stream(v)[0] for v in (1, 2, 3))).hexdigest())" % str(REPO)
    )
    env = {**os.environ, "OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2", "MKL_NUM_THREADS": "2",
           "RAYON_NUM_THREADS": "2", "PYTHONHASHSEED": "123"}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == hashlib.sha256(b"".join(_golden_stream(v)[0] for v in (1, 2, 3))).hexdigest()


def test_probabilities_are_on_an_exact_grid():
    from bitstream.coder import _mix_model, _Model
    from bitstream.coder_mix import NUM_SSE

    grid = synthetic_tokens(chunks=1, levels=2, frames=2, height=6, width=7, token_bits=5)[0]
    m = _Model(2, 5, 6, 7, fit_tables([grid], 5, version=1).astype(np.int64))
    ctx = np.arange(5 * bitstream.NUM_CONTEXTS).reshape(-1, 5)
    mix = _mix_model(2, 5, 6, 7, bitstream.check_tables(fit_tables([grid], 5, version=3), 5, version=3), 3)
    mix.start(1, None, None)
    mix.group(0, np.zeros((42, 5), np.uint8))
    for p in (m.probabilities(1, ctx), mix.probabilities(np.arange(5 * NUM_SSE))):
        q = p * 65536
        assert np.array_equal(q, np.round(q)) and q.min() >= 32 and q.max() <= 65536 - 32


# ----------------------------------------------------------------------------------------------
# round trips (hypothesis)


@st.composite
def token_grids(draw):
    levels = draw(st.integers(1, 4))
    frames = draw(st.integers(1, 4))
    h = draw(st.integers(1, 9))
    w = draw(st.integers(1, 9))
    bits = draw(st.integers(1, 32))
    seed = draw(st.integers(0, 2**32 - 1))
    kind = draw(st.sampled_from(["random", "constant", "correlated", "extreme"]))
    rng = np.random.default_rng(seed)
    shape = (levels, frames, h, w)
    hi = 2**bits
    if kind == "random":
        g = rng.integers(0, hi, size=shape, dtype=np.uint64)
    elif kind == "constant":
        g = np.full(shape, rng.integers(0, hi, dtype=np.uint64))
    elif kind == "extreme":
        g = rng.choice(np.array([0, hi - 1], dtype=np.uint64), size=shape)
    else:
        base = rng.integers(0, hi, size=(1, 1, h, w), dtype=np.uint64)
        g = np.where(rng.random(shape) < 0.2, rng.integers(0, hi, size=shape, dtype=np.uint64), base)
    return g.astype(np.uint32), bits


SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(token_grids(), st.booleans(), st.sampled_from(bitstream.CODER_VERSIONS))
def test_tokens_round_trip(grid_bits, use_tables, version):
    grid, bits = grid_bits
    tables = fit_tables([grid], bits, version=version) if use_tables else None
    data = encode_tokens(grid, bits, tables, version=version)
    assert len(data) % 4 == 0 and len(data) <= bitstream.coder.max_coded_bytes(grid.size, bits)
    out = decode_tokens(data, grid.shape, bits, tables, version=version)
    assert out.dtype == np.uint32 and out.shape == grid.shape
    np.testing.assert_array_equal(out, grid)


@SETTINGS
@given(token_grids(), st.integers(0, 7), st.integers(0, 7), st.integers(1, 3), st.sampled_from(["bytesio", "pipe"]),
       st.booleans(), st.booleans())
def test_container_round_trip(grid_bits, pad_h, pad_w, nchunks, medium, use_tables, use_index):
    grid, bits = grid_bits
    levels, frames, h, w = grid.shape
    window = 1 + 4 * (frames - 1)
    header = make_header(token_bits=bits, levels=levels, max_levels=levels, width=max(1, 8 * w - pad_w),
                         height=max(1, 8 * h - pad_h), window_frames=window)
    assert (header.latent_height, header.latent_width) == (h, w)
    chunks = []
    for i in range(nchunks):  # later chunks: fewer levels, and a shorter window at the end
        n = window if i < nchunks - 1 else max(1, window - 3)
        t_lat = header.latent_frames(n)
        chunks.append((np.ascontiguousarray(grid[: max(1, levels - i), :t_lat]), n))
    tables = fit_tables([grid], bits) if use_tables else None
    sink = Sink() if medium == "pipe" else io.BytesIO()
    with VcbWriter(sink, header, tables, index=use_index) as wr:
        for g, n in chunks:
            wr.write_chunk(g, n)
    data = sink.getvalue()
    src = io.BufferedReader(Pipe(data)) if medium == "pipe" else io.BytesIO(data)
    r = VcbReader(src, tables)
    assert r.header.token_bits == bits and r.header.tables_hash == bitstream.tables_hash(tables)
    got = list(r.chunks())
    assert [c.index for c in got] == list(range(nchunks))
    assert r.total_frames == sum(n for _, n in chunks)
    for c, (g, n) in zip(got, chunks):
        assert c.num_frames == n
        np.testing.assert_array_equal(c.tokens, g)
    if medium == "bytesio":
        np.testing.assert_array_equal(r.read_chunk(nchunks - 1).tokens, chunks[-1][0])


def test_pipe_writer_gives_identical_bytes():
    h = make_header()
    chunks = [(grid_for(h, 9, seed=s), 9) for s in range(3)]
    a = write_stream(h, chunks, track=True)
    sink = Sink()
    with VcbWriter(sink, h) as w:
        tid = w.add_track(TrackInfo("audio", "aac", (1, 48000), {"sample_rate": 48000, "channels": 2}, b"\x11\x90"))
        for i, (g, n) in enumerate(chunks):
            w.write_chunk(g, n)
            w.write_packet(tid, b"pkt%d" % i, pts=1024 * i, dts=1024 * i, duration=1024, keyframe=True)
    assert sink.getvalue() == a


def test_paths(tmp_path):
    h = make_header()
    g = grid_for(h, 9)
    p = tmp_path / "x.vcb"
    with VcbWriter(p, h) as w:
        w.write_chunk(g, 9)
    with VcbReader(str(p)) as r:
        np.testing.assert_array_equal(next(iter(r)).tokens, g)


# ----------------------------------------------------------------------------------------------
# streaming semantics


def test_streaming_unknown_frame_count_and_pipe_single_pass():
    h = make_header()
    chunks = [(grid_for(h, 9, seed=0), 9), (grid_for(h, 9, seed=1), 9), (grid_for(h, 3, seed=2), 3)]
    data = write_stream(h, chunks, track=True)
    r = VcbReader(io.BufferedReader(Pipe(data)))
    assert r.tracks[0].codec == "aac" and r.tracks[0].extradata == b"\x11\x90"
    assert r.total_frames is None  # not known on a pipe before the end
    items = list(r.records())
    kinds = [type(i).__name__ for i in items]
    assert kinds == ["Chunk", "Packet"] * 3
    assert [i.first_frame for i in items if kinds[items.index(i)] == "Chunk"] == [0, 9, 18]
    assert r.total_frames == 21 and r.num_chunks == 3
    pk = items[1]
    assert (pk.track_id, pk.pts, pk.dts, pk.duration, pk.keyframe) == (0, 0, 0, 1024, True)
    with pytest.raises(ValueError):
        list(r.chunks())
    with pytest.raises(ValueError):
        r.read_chunk(0)


def test_pipe_reader_memory_is_one_record():
    """The reader does not read ahead of what it yields (one record at a time)."""
    h = make_header()
    chunks = [(grid_for(h, 9, seed=s), 9) for s in range(4)]
    data = write_stream(h, chunks)
    pipe = Pipe(data)
    r = VcbReader(pipe)
    it = r.chunks()
    next(it)
    assert pipe.bytes_read < records(data)[1][0] + 20 + 1  # at most up to the second record's header
    assert len(list(it)) == 3


def test_seekable_random_access_with_and_without_index():
    h = make_header()
    chunks = [(grid_for(h, 9, seed=s), 9) for s in range(4)] + [(grid_for(h, 1, seed=9), 1)]
    for index in (True, False):
        data = write_stream(h, chunks, index=index)
        r = VcbReader(io.BytesIO(data))
        assert [e.first_frame for e in r.index()] == [0, 9, 18, 27, 36]
        for i in (3, 0, 4):
            np.testing.assert_array_equal(r.read_chunk(i).tokens, chunks[i][0])
        with pytest.raises(IndexError):
            r.read_chunk(5)
        assert r.total_frames == 37
    # random access in the middle of a streaming pass does not disturb the pass
    r = VcbReader(io.BytesIO(data))
    it = r.chunks()
    first = next(it)
    r.read_chunk(3)
    assert r.total_frames == 37
    assert [c.index for c in it] == [1, 2, 3, 4] and first.index == 0


def test_corrupt_index_falls_back_to_scan():
    h = make_header()
    chunks = [(grid_for(h, 9, seed=s), 9) for s in range(3)]
    data = bytearray(write_stream(h, chunks))
    off = [o for o, t, _ in records(bytes(data)) if t == 0x0E][0]
    data[off + 30] ^= 0xFF  # index payload: CRC now fails
    r = VcbReader(io.BytesIO(bytes(data)))
    np.testing.assert_array_equal(r.read_chunk(2).tokens, chunks[2][0])


def test_index_pointing_outside_the_file_is_not_trusted():
    h = make_header()
    chunks = [(grid_for(h, 9, seed=s), 9) for s in range(2)]
    data = bytearray(write_stream(h, chunks))
    off, _, length = [r for r in records(bytes(data)) if r[1] == 0x0E][0]
    struct.pack_into("<Q", data, off + 20 + 8 + 24, 2**63 + 5)  # entry 1's offset (fuzz case seed=1 case=142470)
    payload = bytes(data[off + 20 : off + 20 + length])
    struct.pack_into("<I", data, off + 12, zlib.crc32(payload))
    struct.pack_into("<I", data, off + 16, zlib.crc32(bytes(data[off : off + 16])))
    r = VcbReader(io.BytesIO(bytes(data)))
    np.testing.assert_array_equal(r.read_chunk(1).tokens, chunks[1][0])  # found by scanning instead


def test_num_frames_hint():
    h = make_header(num_frames=12)
    data = write_stream(h, [(grid_for(h, 9), 9), (grid_for(h, 3), 3)])
    assert VcbReader(io.BytesIO(data)).header.num_frames == 12
    with pytest.raises(ValueError, match="promised 12"):
        write_stream(h, [(grid_for(h, 9), 9)])
    with pytest.raises(ValueError):
        write_stream(h, [(grid_for(h, 9), 9), (grid_for(h, 9), 9)])


def test_interrupted_writer_leaves_a_truncated_stream():
    h = make_header()
    buf = io.BytesIO()
    with pytest.raises(RuntimeError):
        with VcbWriter(buf, h) as w:
            w.write_chunk(grid_for(h, 9), 9)
            raise RuntimeError("tokenizer crashed")
    r = VcbReader(io.BytesIO(buf.getvalue()))
    it = r.chunks()
    assert next(it).index == 0  # what was written is readable ...
    with pytest.raises(TruncatedError, match="end-of-stream"):
        next(it)  # ... and the end is reported


def test_skippable_extension_records():
    h = make_header()
    data = write_stream(h, [(grid_for(h, 9), 9)], index=False)
    first = records(data)[0][0]

    def rec(rtype, payload):
        head = struct.pack("<4sBBHII", b"\xd6VCR", rtype, 0, 0, len(payload), zlib.crc32(payload))
        return head + struct.pack("<I", zlib.crc32(head)) + payload

    ok = data[:first] + rec(0x80, b"future stuff") + data[first:]
    assert len(list(VcbReader(io.BytesIO(ok)).chunks())) == 1
    bad = data[:first] + rec(0x42, b"x") + data[first:]
    with pytest.raises(CorruptDataError, match="unknown record type 0x42"):
        list(VcbReader(io.BytesIO(bad)).chunks())


def test_writer_refuses_bad_input():
    h = make_header()
    w = VcbWriter(io.BytesIO(), h)
    with pytest.raises(ValueError):
        w.write_chunk(grid_for(h, 9)[:, :2], 9)  # wrong T_lat
    with pytest.raises(ValueError):
        w.write_chunk(grid_for(h, 9), 10)  # more than window_frames
    with pytest.raises(ValueError):
        w.write_chunk(np.full((1, 3, 3, 5), 256, np.uint32), 9)  # does not fit in 8 bits
    with pytest.raises(ValueError):
        w.write_chunk(grid_for(h, 9).astype(np.float32), 9)
    with pytest.raises(ValueError):
        w.write_packet(5, b"x")
    w.write_chunk(grid_for(h, 9), 9)
    with pytest.raises(ValueError, match="before the first chunk"):
        w.add_track(TrackInfo("audio", "aac"))
    w.close()
    with pytest.raises(HeaderError):
        VcbWriter(io.BytesIO(), make_header(width=0))
    with pytest.raises(HeaderError):
        VcbWriter(io.BytesIO(), make_header(weights_hash="nothex"))


# ----------------------------------------------------------------------------------------------
# errors


@pytest.fixture(scope="module")
def good():
    h = make_header()
    chunks = [(grid_for(h, 9, seed=s), 9) for s in range(3)]
    return write_stream(h, chunks, track=True), chunks


def test_bad_magic(good):
    with pytest.raises(BadMagicError) as e:
        VcbReader(io.BytesIO(b"RIFF" + good[0][4:]))
    assert "magic" in one_line(e.value)
    for prefix in (b"", good[0][:3]):  # a prefix of the magic: the stream was cut short
        with pytest.raises(TruncatedError):
            VcbReader(io.BytesIO(prefix))


def test_unsupported_version(good):
    data = bytearray(good[0])
    data[4] = 6
    with pytest.raises(UnsupportedVersionError) as e:
        VcbReader(io.BytesIO(bytes(data)))
    assert "version 6" in one_line(e.value)


def test_header_checksum(good):
    data = bytearray(good[0])
    data[20] ^= 1
    with pytest.raises(ChecksumError, match="header"):
        VcbReader(io.BytesIO(bytes(data)))


def test_a_damaged_audio_packet_is_named_as_one(good):
    data, _ = good
    off = [o for o, t, _ in records(data) if t == 0x03][1]
    bad = bytearray(data)
    bad[off + 20] ^= 0x10                                   # the packet's payload
    with pytest.raises(ChecksumError, match=f"an audio packet at offset {off} fails CRC32"):
        list(VcbReader(io.BytesIO(bytes(bad))).packets())


def test_chunk_checksum_names_the_chunk(good):
    data, chunks = good
    off = [o for o, t, _ in records(data) if t == 0x02][1]
    bad = bytearray(data)
    bad[off + 60] ^= 0x10
    r = VcbReader(io.BytesIO(bytes(bad)))
    it = r.chunks()
    np.testing.assert_array_equal(next(it).tokens, chunks[0][0])
    with pytest.raises(ChecksumError) as e:
        next(it)
    assert e.value.chunk == 1 and "chunk 1" in one_line(e.value)
    with pytest.raises(ChecksumError, match="chunk 1"):
        VcbReader(io.BytesIO(bytes(bad))).read_chunk(1)


def test_truncation_everywhere(good):
    data = good[0]
    cuts = sorted({1, 8, 15, 16, 40, len(data) - 1, len(data) - 44, len(data) - 45}
                  | {o + d for o, _, _ in records(data) for d in (0, 5, 20, 21)})
    for cut in cuts:
        if cut >= len(data):
            continue
        with pytest.raises(BitstreamError) as e:
            r = VcbReader(io.BytesIO(data[:cut]))
            list(r.records())
        assert isinstance(e.value, (TruncatedError, BadMagicError)), (cut, e.value)
        one_line(e.value)


@pytest.mark.parametrize(
    "mutate, exc, text",
    [
        (lambda o: o["video"].update(num_frames=10**9), HeaderError, "num_frames"),
        (lambda o: o["video"].update(width=10**6, height=10**6), HeaderError, "width"),
        (lambda o: o["tokens"].update(token_bits=33), HeaderError, "token_bits"),
        (lambda o: o["tokens"].update(max_levels=17), HeaderError, "max_levels"),
        (lambda o: o["tokens"].update(window_frames=10**6), HeaderError, "window_frames"),
        (lambda o: o["tokens"].update(max_levels=16, window_frames=1024) or o["video"].update(width=16384, height=16384),
         HeaderError, "geometry"),
        (lambda o: o["video"].update(frame_rate=[30, 0]), HeaderError, "frame_rate"),
        (lambda o: o["video"].update(width=True), HeaderError, "wrong type"),
        (lambda o: o["model"].pop("weights_sha256"), HeaderError, "missing"),
        (lambda o: o["coder"].update(id="cabac-9000"), UnknownCoderError, "cabac-9000"),
        (lambda o: o["coder"].update(version=4), UnsupportedVersionError, "version 4"),
    ],
)
def test_implausible_or_unknown_header_values(good, mutate, exc, text):
    bad = with_header_json(good[0], mutate)
    with pytest.raises(exc) as e:
        VcbReader(io.BytesIO(bad))
    assert text in one_line(e.value)


def test_huge_header_length_refused_before_reading():
    head = b"\x89VCB\x01\x00\x00\x00" + struct.pack("<II", 2**32 - 1, 0)
    pipe = Pipe(head + b"{}" * 1000)
    with pytest.raises(HeaderError, match="header length"):
        VcbReader(pipe)
    assert pipe.bytes_read <= 16 + 8192  # nothing beyond the fixed header (plus buffering)


def test_huge_record_length_refused(good):
    data = bytearray(good[0])
    off = records(bytes(data))[1][0]  # first chunk record
    struct.pack_into("<I", data, off + 8, 2**32 - 1)
    struct.pack_into("<I", data, off + 16, zlib.crc32(bytes(data[off : off + 16])))
    with pytest.raises(CorruptDataError, match="claims"):
        list(VcbReader(io.BytesIO(bytes(data))).chunks())


@pytest.mark.parametrize("version", [2, 3])
def test_learned_coder_tables_are_checked(version):
    h = make_header(token_bits=6, coder_version=version)
    g = grid_for(h, 9)
    tables = fit_tables([g], 6, version=version)
    assert bitstream.tables_version(tables) == version
    data = write_stream(h, [(g, 9)], tables=tables)
    np.testing.assert_array_equal(next(VcbReader(io.BytesIO(data), tables).chunks()).tokens, g)
    with pytest.raises(TablesMismatchError, match="uniform prior"):
        list(VcbReader(io.BytesIO(data)).chunks())
    other = bitstream.MixTables(tables.weights.copy(), tables.counts, version)
    other.weights[0, 0, 0, 0] += 1
    with pytest.raises(TablesMismatchError, match="sha256"):
        list(VcbReader(io.BytesIO(data), other).chunks())
    for wrong in (1, 5 - version):  # another coder version's tables
        with pytest.raises(TablesMismatchError, match=f"version {wrong} tables"):
            VcbReader(io.BytesIO(data), fit_tables([g], 6, version=wrong))
    same_arrays = bitstream.MixTables(tables.weights, tables.counts, 5 - version)
    assert bitstream.tables_hash(same_arrays) != bitstream.tables_hash(tables)
    with pytest.raises(TablesMismatchError, match="6-bit"):
        VcbReader(io.BytesIO(data), fit_tables([g & 31], 5, version=version))  # built for 5-bit tokens
    too_big = bitstream.MixTables(np.full_like(tables.weights, 1 << 15), tables.counts, version)
    with pytest.raises(TablesMismatchError, match="weights"):
        VcbWriter(io.BytesIO(), h, too_big)
    with pytest.raises(TablesMismatchError, match="levels"):
        encode_tokens(np.zeros((3, 1, 2, 2), np.uint32), 6, tables, version=version)  # 2 levels of tables, 3 in grid
    as_dict = tables.as_dict()  # as a checkpoint stores them
    np.testing.assert_array_equal(next(VcbReader(io.BytesIO(data), as_dict).chunks()).tokens, g)


def test_tables_are_checked():
    h = make_header(token_bits=6, coder_version=1)
    g = grid_for(h, 9)
    tables = fit_tables([g], 6, version=1)
    data = write_stream(h, [(g, 9)], tables=tables, track=True)
    np.testing.assert_array_equal(next(VcbReader(io.BytesIO(data), tables).chunks()).tokens, g)
    with pytest.raises(TablesMismatchError, match="uniform prior"):
        list(VcbReader(io.BytesIO(data)).chunks())
    other = tables.copy()
    other[0, 0, 0, 0] += 1
    with pytest.raises(TablesMismatchError, match="sha256"):
        list(VcbReader(io.BytesIO(data), other).chunks())
    with pytest.raises(TablesMismatchError, match="6"):
        VcbReader(io.BytesIO(data), fit_tables([g], 7, version=1))  # built for 7-bit tokens
    with pytest.raises(TablesMismatchError):
        VcbWriter(io.BytesIO(), h, tables[..., :1])  # wrong layout
    with pytest.raises(TablesMismatchError, match="levels"):
        encode_tokens(np.zeros((3, 1, 2, 2), np.uint32), 6, tables, version=1)  # 2 levels of tables, 3 in grid
    with pytest.raises(TablesMismatchError):
        VcbWriter(io.BytesIO(), h, tables.astype(np.float64))
    # tables chosen from the header, on a pipe, in one pass
    seen = []
    r = VcbReader(io.BufferedReader(Pipe(data)), tables=lambda hdr: seen.append(hdr.model_name) or tables)
    np.testing.assert_array_equal(next(r.chunks()).tokens, g)
    assert seen == ["test-model"]
    r = VcbReader(io.BytesIO(data))
    r.set_tables(tables)
    np.testing.assert_array_equal(next(r.chunks()).tokens, g)
    # packets need no tables
    assert [p.data for p in VcbReader(io.BytesIO(data)).packets()] == [b"pkt0"]


def test_model_check():
    h = make_header()
    h.check_model("test-model", HASH)
    with pytest.raises(ModelMismatchError) as e:
        h.check_model("test-model", "0" * 64)
    one_line(e.value)


def test_decode_tokens_rejects_garbage():
    with pytest.raises(CorruptDataError):
        decode_tokens(b"\x00\x01\x02", (1, 1, 1, 1), 8)  # not whole words
    with pytest.raises(CorruptDataError):
        decode_tokens(b"", (10**6, 10**6, 10**6, 10**6), 8)  # refused before allocating
    with pytest.raises(CorruptDataError):
        decode_tokens(b"", (1, 1, 1, 1), 0)
    good = encode_tokens(np.arange(12, dtype=np.uint32).reshape(1, 1, 3, 4), 4)
    with pytest.raises(CorruptDataError, match="trailing"):
        decode_tokens(good + b"\x01\x02\x03\x04" * 2, (1, 1, 3, 4), 4)
    rng = np.random.default_rng(0)
    for _ in range(200):  # random words: decode or CorruptDataError, nothing else
        data = rng.integers(0, 256, 4 * int(rng.integers(0, 8)), dtype=np.uint8).tobytes()
        try:
            decode_tokens(data, (1, 2, 2, 3), int(rng.integers(1, 33)))
        except CorruptDataError as e:
            one_line(e)


# ----------------------------------------------------------------------------------------------
# salvage


def test_salvage_skips_a_bad_chunk(good):
    data, chunks = good
    off = [o for o, t, _ in records(data) if t == 0x02][1]
    bad = bytearray(data)
    bad[off + 70] ^= 0x01
    r = VcbReader(io.BufferedReader(Pipe(bytes(bad))))
    got = list(r.chunks(salvage=True))
    assert [c.index for c in got] == [0, 2] and got[1].first_frame == 18
    np.testing.assert_array_equal(got[1].tokens, chunks[2][0])
    assert len(r.damage) == 1 and r.damage[0].chunk == 1 and r.damage[0].offset == off
    one_line(r.damage[0].error)


def test_salvage_resyncs_after_a_broken_record_header(good):
    data, chunks = good
    offs = [o for o, t, _ in records(data) if t == 0x02]
    bad = bytearray(data)
    bad[offs[1] + 9] ^= 0xFF  # the length field: header CRC fails, length cannot be trusted
    r = VcbReader(io.BytesIO(bytes(bad)))
    got = list(r.chunks(salvage=True))
    assert [c.index for c in got] == [0, 2]
    assert r.damage and r.damage[0].offset == offs[1]
    with pytest.raises(CorruptDataError):
        list(VcbReader(io.BytesIO(bytes(bad))).chunks())


def test_salvage_of_a_truncated_stream(good):
    data, chunks = good
    offs = [o for o, t, _ in records(data) if t == 0x02]
    r = VcbReader(io.BytesIO(data[: offs[2] + 100]))
    got = list(r.chunks(salvage=True))
    assert [c.index for c in got] == [0, 1]
    assert isinstance(r.damage[-1].error, TruncatedError)


# ----------------------------------------------------------------------------------------------
# compression and the benchmark script


@pytest.mark.parametrize("version", bitstream.CODER_VERSIONS)
def test_fitted_tables_compress_correlated_tokens(version):
    toks = synthetic_tokens(chunks=2, levels=2, frames=3, height=12, width=16, token_bits=12, seed=3)
    tables = fit_tables([toks[0]], 12, version=version)
    raw_bits = toks[1].size * 12
    uniform = 8 * len(encode_tokens(toks[1], 12, version=version))
    fitted = 8 * len(encode_tokens(toks[1], 12, tables, version=version))
    assert fitted < uniform < raw_bits
    assert fitted < 0.8 * raw_bits
    if version == 1:
        assert tables.dtype.kind == "i" and tables.shape == (2, 12, bitstream.NUM_CONTEXTS, 2)
        assert tables.min() >= 1
    else:
        assert tables.weights.shape == (2, 2, 12, 4 * 12 + 2) and tables.counts.shape == (2, 2, 12, 72, 2)
        assert tables.counts.min() >= 1 and bitstream.check_tables(tables, 12, 2, version) is not None


@pytest.mark.parametrize("version", bitstream.CODER_VERSIONS)
def test_random_tokens_cost_little_more_than_raw(version):
    g = np.random.default_rng(1).integers(0, 2**16, size=(2, 3, 10, 12), dtype=np.uint32)
    assert 8 * len(encode_tokens(g, 16, version=version)) < 1.03 * g.size * 16


def test_categorical_rows_code_like_bernoulli_on_the_whole_grid():
    """Coder versions 2 and 3 feed constriction Categorical rows (1 - p, p); FORMAT.md 7.4 promises the bytes of
    Bernoulli(p) for every p on the 2^-16 grid, both symbols (a constriction upgrade that changed this would
    change version 2's bytes)."""
    import constriction

    p = np.arange(bitstream.coder.PROB_MIN, bitstream.coder.PROB_ONE - bitstream.coder.PROB_MIN + 1) / 65536
    p = np.concatenate([p, p])
    sym = np.repeat(np.array([0, 1], np.int32), len(p) // 2)
    a, b = constriction.stream.queue.RangeEncoder(), constriction.stream.queue.RangeEncoder()
    a.encode(sym, constriction.stream.model.Bernoulli(perfect=False), p)
    b.encode(sym, constriction.stream.model.Categorical(perfect=False), np.stack([1 - p, p], 1))
    assert np.array_equal(a.get_compressed(), b.get_compressed())


def _mix_model_with_lower_weights(version, bits=10, seed=0):
    from bitstream.coder import _mix_model
    from bitstream.coder_mix import NUM_SSE, MixTables, num_inputs

    rng = np.random.default_rng(seed)
    w = rng.integers(-300, 300, (1, 2, bits, num_inputs(bits))).astype(np.int64)
    c = rng.integers(1, 200, (1, 2, bits, NUM_SSE, 2)).astype(np.int64)
    return _mix_model(1, bits, 4, 5, MixTables(w, c, version), version)


@pytest.mark.parametrize("version", [2, 3])
def test_a_bit_sees_the_lower_bits_of_its_token_that_its_version_allows(version):
    """Version 2: bit k's context depends on bits j < k of its token; version 3: only on the bits of the blocks
    below k's (blocks of ceil(B / 4) bits: 3 here), never on bits of its own block."""
    bits, block = 10, {2: 1, 3: 3}[version]
    model = _mix_model_with_lower_weights(version, bits)
    rng = np.random.default_rng(1)
    plane = rng.integers(0, 2, (20, bits)).astype(np.uint8)
    model.start(0, plane ^ 1, None)
    model.group(0, plane)
    idx = model.groups[0][0]
    base = model.all_contexts(plane[idx])
    for j in range(bits):
        flipped = plane[idx].copy()
        flipped[:, j] ^= 1
        changed = (model.all_contexts(flipped) != base).any(axis=0)
        allowed = np.arange(bits) >= (j // block + 1) * block  # bits of the blocks above j's
        assert not changed[~allowed].any(), (j, changed)
        assert changed[allowed].any() or not allowed.any()


@pytest.mark.parametrize("bits,block", [(32, 8), (16, 4), (8, 2), (6, 2), (32, 1)])
def test_coded_symbols_fast_paths_match_the_block_by_block_reference(bits, block):
    from bitstream.coder_mix import coded_symbols, symbols_by_block

    rng = np.random.default_rng(bits + block)
    p = rng.integers(32, 65505, (7, bits)) / 65536
    b = rng.integers(0, 2, (7, bits)).astype(np.uint8)
    fast, ref = coded_symbols(p, b, block), symbols_by_block(p, b, block)
    assert len(fast) == len(ref)
    for (rows_f, sym_f), (rows_r, sym_r) in zip(fast, ref):
        np.testing.assert_array_equal(rows_f, rows_r)
        np.testing.assert_array_equal(sym_f, sym_r)


def test_float32_and_float64_logits_give_the_same_bytes(monkeypatch):
    """The logistic sums run in float32 when the weights keep every partial sum below 2^24, else in float64;
    both are exact, so forcing float64 gives the same bytes."""
    grid = synthetic_tokens(chunks=1, levels=2, frames=3, height=6, width=7, token_bits=12, seed=4)[0]
    tables = fit_tables([grid], 12, version=3)
    fast = encode_tokens(grid, 12, tables)
    from bitstream import coder_mix

    monkeypatch.setattr(coder_mix, "weight_bound", lambda w: 1 << 30)
    assert coder_mix.MixModel(1, 12, 2, 2, None, None, 4).dtype == np.float64
    assert encode_tokens(grid, 12, tables) == fast


def _format_contexts(weights, version, g, plane, prev, coarse, h, w):
    """FORMAT.md 7.2-7.3 and 7.5 written out in Python integers: the flat context of every bit of group ``g``
    ((n_g, B)), from int weights (2, B, 4B + 2) of one level and (H*W, B) planes (``prev`` may hold 2 = absent)."""
    b = plane.shape[1]
    block = 1 if version == 2 else -(-b // 4)
    step = (3, 1) if block == 1 else (1, 24)  # (bucket, previous bit) multipliers of the context

    def s(v):
        return 0 if v == 2 else 2 * int(v) - 1

    def neighbours(y, x):
        return [(y + dy) * w + x + dx for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)) if 0 <= y + dy < h and 0 <= x + dx < w]

    out = []
    for p in range(h * w):
        y, x = divmod(p, w)
        if (y + x) % 2 != g:
            continue
        row = []
        for k in range(b):
            lower = [s(plane[p, j]) if j < (k // block) * block else 0 for j in range(b)]
            pv = [s(prev[p, j]) if prev is not None else 0 for j in range(b)]
            co = [s(coarse[p, j]) if coarse is not None else 0 for j in range(b)]
            nbcur = [sum(s(plane[q, j]) for q in neighbours(y, x)) if g == 1 else 0 for j in range(b)]
            nbprev = sum(s(prev[q, k]) for q in neighbours(y, x)) if prev is not None else 0
            z = sum(int(wt) * v for wt, v in zip(weights[g, k], lower + pv + co + nbcur + [nbprev, 1]))
            u = min(max(z // 128 + 12, 0), 23)
            prev_bit = 2 if prev is None else int(prev[p, k])
            row.append((g * b + k) * 72 + u * step[0] + prev_bit * step[1])
        out.append(row)
    return np.array(out)


@pytest.mark.parametrize("version,bits,extreme", [(2, 6, False), (3, 4, False), (3, 10, False), (3, 32, True), (2, 32, True)])
def test_contexts_are_the_formats_integers(version, bits, extreme):
    """Every bit's context equals FORMAT.md's definition computed in Python integers, for random weights and
    for weights at the largest magnitude allowed (|w| = 2^15 - 1: logits beyond float32's exact integers, so the
    float64 path), with absent previous bits, with and without a previous frame and a coarser level."""
    from bitstream.coder import _mix_model
    from bitstream.coder_mix import NUM_SSE, MixTables, num_inputs

    rng = np.random.default_rng(bits)
    h, w = 4, 5
    shape = (1, 2, bits, num_inputs(bits))
    weights = (rng.choice([-(1 << 15) + 1, (1 << 15) - 1], shape) if extreme else rng.integers(-900, 900, shape))
    tables = MixTables(weights.astype(np.int64), np.ones((1, 2, bits, NUM_SSE, 2), np.int64), version)
    plane = rng.integers(0, 2, (h * w, bits)).astype(np.uint8)
    prev = rng.integers(0, 2, (h * w, bits)).astype(np.uint8)
    prev[:, bits // 2:][rng.random((h * w, bits - bits // 2)) < 0.3] = 2  # a rate change's absent bits
    for pv, co in ((prev, plane ^ 1), (None, None), (prev, None)):
        model = _mix_model(1, bits, h, w, tables, version)
        model.start(0, pv, co)
        for g in (0, 1):
            model.group(g, plane)
            ctx = model.all_contexts(plane[model.groups[g][0]])
            np.testing.assert_array_equal(ctx, _format_contexts(weights[0], version, g, plane, pv, co, h, w))


def test_bench_script(tmp_path, capsys):
    from bitstream import bench

    p = tmp_path / "toks.npz"
    np.savez(p, tokens=synthetic_tokens(chunks=2, levels=2, frames=2, height=6, width=8, token_bits=10), token_bits=10)
    out = tmp_path / "r.json"
    assert bench.main([str(p), "--repeat", "1", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res[0]["raw_bits_per_token"] == 10
    assert 0 < res[0]["fitted_tables"]["bits_per_token"] < 10
    assert res[0]["uniform_prior"]["encode_tokens_per_s"] > 0
    assert "bits/token" in capsys.readouterr().out


@pytest.mark.parametrize("version", [1, 3])
def test_narrowed_tables_code_a_narrower_width(version):
    """narrow_tables: a wider width's tables made into valid tables for fewer bits per token (what rate control codes
    between a model's widths): same arrays at the full width, the kept bits' weights unchanged, and a round trip."""
    from bitstream.coder import narrow_tables

    toks = synthetic_tokens(chunks=2, levels=2, frames=3, height=12, width=16, token_bits=8)
    wide = fit_tables([toks[0]], 8, version=version)
    same = narrow_tables(wide, 8)
    for a, b in ((same, wide),) if version == 1 else ((same.weights, wide.weights), (same.counts, wide.counts)):
        np.testing.assert_array_equal(a, b)
    narrow = narrow_tables(wide, 6)
    checked = bitstream.check_tables(narrow, 6, 2, version=version)
    if version == 3:
        w, n = np.asarray(wide.weights), np.asarray(checked.weights)
        np.testing.assert_array_equal(n[:, :, :, 6:12], w[:, :, :6, 8:14])    # prev inputs of the kept bits
        np.testing.assert_array_equal(n[:, :, :, -2:], w[:, :, :6, -2:])      # nbprev and the constant
    grid = toks[1] & 63
    data = encode_tokens(grid, 6, narrow, version=version)
    np.testing.assert_array_equal(decode_tokens(data, grid.shape, 6, narrow, version=version), grid)
    assert len(data) < len(encode_tokens(grid, 6, None, version=version))   # better than the uniform prior
