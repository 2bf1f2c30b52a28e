"""Format version 2: chunks that continue the previous one (no keyframe) and the coder context they inherit."""

import io
import struct
import zlib

import numpy as np
import pytest

from bitstream import (
    BitstreamError,
    CoderContext,
    CorruptDataError,
    VcbReader,
    VcbWriter,
    decode_tokens,
    encode_tokens,
    fit_tables,
)
from tests.test_bitstream import make_header, records


def _grid(h, n, continues, seed, levels=2):
    rng = np.random.default_rng(seed)
    shape = (levels, h.latent_frames(n, continues), h.latent_height, h.latent_width)
    base = rng.integers(0, 2**h.token_bits, size=(1, 1, *shape[2:]), dtype=np.uint64)
    noise = rng.integers(0, 2**h.token_bits, size=shape, dtype=np.uint64)
    return np.where(rng.random(shape) < 0.2, noise, base).astype(np.uint32)


# two keyframe periods: 9 + 8 + 8 + 3 frames, then 9 + 8
PLAN = ((9, False), (8, True), (8, True), (3, True), (9, False), (8, True))


def _stream(h, plan=PLAN, tables=None):
    grids = [_grid(h, n, c, seed=i) for i, (n, c) in enumerate(plan)]
    buf = io.BytesIO()
    with VcbWriter(buf, h, tables) as w:
        for g, (n, c) in zip(grids, plan):
            w.write_chunk(g, n, continues=c)
    return buf.getvalue(), grids


@pytest.mark.parametrize("seed", range(4))
def test_context_round_trip_and_pays_off(seed):
    """A grid cut into pieces coded with one carried context decodes piece by piece to the same tokens, both sides
    end in the same state, and the carried context costs fewer bits than restarting at every piece."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 2**7, size=(2, 1, 5, 6), dtype=np.uint32)
    grid = np.where(rng.random((2, 12, 5, 6)) < 0.15, rng.integers(0, 2**7, size=(2, 12, 5, 6)), base).astype(np.uint32)
    pieces = [grid[:, :3], grid[:, 3:7], grid[:, 7:]]
    tables = fit_tables([grid[:, :4]], 7) if seed % 2 else None
    enc, dec = CoderContext(), CoderContext()
    coded = [encode_tokens(p, 7, tables, enc) for p in pieces]
    for p, data in zip(pieces, coded):
        np.testing.assert_array_equal(decode_tokens(data, p.shape, 7, tables, dec), p)
    np.testing.assert_array_equal(enc.counts, dec.counts)
    assert all((a == b).all() for a, b in zip(enc.prev, dec.prev))
    fresh = sum(len(encode_tokens(p, 7, tables)) for p in pieces)
    assert sum(map(len, coded)) < fresh


def test_context_must_fit_the_grid():
    ctx = CoderContext()
    encode_tokens(np.zeros((2, 2, 3, 4), np.uint32), 6, None, ctx)
    with pytest.raises(ValueError, match="does not match"):
        encode_tokens(np.zeros((3, 1, 3, 4), np.uint32), 6, None, ctx)
    with pytest.raises(CorruptDataError, match="does not match"):
        decode_tokens(b"\0" * 8, (2, 1, 4, 4), 6, None, ctx)


def test_stream_with_continuing_chunks_round_trips():
    h = make_header()
    tables = fit_tables([_grid(h, 9, False, seed=99)], h.token_bits)
    data, grids = _stream(h, tables=tables)
    r = VcbReader(io.BytesIO(data), tables)
    chunks = list(r.chunks())
    assert [(c.num_frames, c.continues) for c in chunks] == list(PLAN)
    for c, g in zip(chunks, grids):
        np.testing.assert_array_equal(c.tokens, g)
    assert [r.keyframe_chunk(i) for i in range(len(PLAN))] == [0, 0, 0, 0, 4, 4]
    np.testing.assert_array_equal(r.read_chunk(3).tokens, grids[3])
    assert [c.index for c in r.read_chunks(2, 6)] == [0, 1, 2, 3, 4, 5]  # from chunk 2's keyframe chunk on


def test_writer_refuses_impossible_continuations():
    h = make_header()
    cases = [
        ([(9, True)], "first chunk"),                      # nothing to continue
        ([(6, False), (8, True)], "cannot continue"),      # 6 = 1 + 4 + 1 frames: ends inside a latent frame
        ([(9, False), (3, True), (8, True)], "cannot continue"),
    ]
    for plan, msg in cases:
        with pytest.raises(ValueError, match=msg):
            _stream(h, plan)
    with pytest.raises(ValueError, match="levels"):
        with VcbWriter(io.BytesIO(), h) as w:
            w.write_chunk(_grid(h, 9, False, 0), 9)
            w.write_chunk(_grid(h, 8, True, 1, levels=1), 8, continues=True)
    # a chunk coded elsewhere leaves the writer without the context a continuing write_chunk would need
    with pytest.raises(ValueError, match="coder context"):
        with VcbWriter(io.BytesIO(), h) as w:
            w.write_chunk(_grid(h, 9, False, 0), 9)
            w.write_coded_chunk(encode_tokens(_grid(h, 9, False, 1), h.token_bits), 9, 2)
            w.write_chunk(_grid(h, 8, True, 2), 8, continues=True)


def _chunk_offsets(data):
    return [off for off, t, _ in records(data) if t == 0x02]


def test_salvage_skips_to_the_next_keyframe():
    """A damaged chunk takes the chunks that continue it along (they cannot be decoded), reported one by one;
    decoding resumes at the next keyframe chunk."""
    h = make_header()
    data, grids = _stream(h)
    bad = bytearray(data)
    bad[_chunk_offsets(data)[1] + 60] ^= 0x40            # chunk 1's payload: CRC fails
    r = VcbReader(io.BytesIO(bytes(bad)))
    got = list(r.chunks(salvage=True))
    assert [c.index for c in got] == [0, 4, 5]
    for c in got:
        np.testing.assert_array_equal(c.tokens, grids[c.index])
    assert [d.chunk for d in r.damage] == [1, None, None]
    assert all("lost" in d.message for d in r.damage[1:])
    with pytest.raises(BitstreamError):
        list(VcbReader(io.BytesIO(bytes(bad))).chunks())


def _set_chunk_flags(data: bytes, offset: int, flags: int) -> bytes:
    """The stream with the CHUNK record at ``offset`` given other flags, its CRCs made right again."""
    out = bytearray(data)
    (length,) = struct.unpack_from("<I", out, offset + 8)
    out[offset + 20 + 17] = flags
    struct.pack_into("<I", out, offset + 12, zlib.crc32(bytes(out[offset + 20:offset + 20 + length])))
    struct.pack_into("<I", out, offset + 16, zlib.crc32(bytes(out[offset:offset + 16])))
    return bytes(out)


def test_continue_flag_is_refused_where_impossible():
    h = make_header()
    data, _ = _stream(h, ((9, False), (8, True)))
    first, second = _chunk_offsets(data)
    for bad, msg in [(_set_chunk_flags(data, first, 1), "first chunk"),     # chunk 0 cannot continue
                     (_set_chunk_flags(data, second, 3), "unknown flags"),
                     (_set_chunk_flags(data, second, 0), "latent grid")]:   # a key chunk of 8 frames has 3 latent frames
        with pytest.raises(CorruptDataError, match=msg):
            list(VcbReader(io.BytesIO(bad)).chunks())
    # a version-1 stream cannot hold continuing chunks
    old = bytearray(data)
    old[4] = 1
    (jlen,) = struct.unpack_from("<I", old, 8)
    struct.pack_into("<I", old, 12, zlib.crc32(bytes(old[:12]) + bytes(old[16:16 + jlen])))
    with pytest.raises(CorruptDataError, match="version 1"):
        list(VcbReader(io.BytesIO(bytes(old))).chunks())
