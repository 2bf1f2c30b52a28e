"""Format version 3: chunks that choose their token width (rate control) and the coder restart at a rate change."""

import dataclasses
import io
import struct
import zlib

import numpy as np
import pytest

from bitstream import (
    CodedChunk,
    CoderContext,
    CorruptDataError,
    HeaderError,
    StreamHeader,
    TablesMismatchError,
    VcbReader,
    VcbWriter,
    encode_tokens,
    fit_tables,
)
from bitstream.header import CHUNK_HEADER, REC_CHUNK, encode_file_header
from tests.test_bitstream import GOLDEN_HEADER, _check_golden, _golden_tokens, make_header, records

WIDTHS = (4, 7, 10)
# (num_frames, continues, levels, bits, salt): a keyframe chunk, a chunk that continues it at the same rate point
# (coder context carried), one that changes width (coder restarts, tokenizer stream goes on), one that changes
# levels, then a keyframe chunk of another width
RATE_CHUNKS = ((9, False, 2, 10, 1), (8, True, 2, 10, 2), (8, True, 2, 4, 3), (4, True, 3, 4, 4), (5, False, 1, 7, 5))


RATE_GOLDEN = {2: "small_v3.vcb", 3: "small_v3_coder3.vcb"}  # coder version -> golden file (format version 3)


def _rate_tables(version: int = 2):
    return {b: fit_tables([_golden_tokens(3, 3, 3, 4, b, salt=11)], b, version=version) for b in WIDTHS}


def _rate_stream(version: int = 2) -> tuple[bytes, list[np.ndarray], dict]:
    h = StreamHeader(**GOLDEN_HEADER, chunk_bits=WIDTHS, coder_version=version, extra={"note": "golden v3"})
    tables = _rate_tables(version)
    grids = [_golden_tokens(lv, h.latent_frames(n, c), 3, 4, b, salt=s) for n, c, lv, b, s in RATE_CHUNKS]
    buf = io.BytesIO()
    with VcbWriter(buf, h, tables) as w:
        for (n, c, _, b, _), g in zip(RATE_CHUNKS, grids):
            w.write_chunk(g, n, continues=c, bits=b)
    return buf.getvalue(), grids, tables


@pytest.mark.parametrize("version", sorted(RATE_GOLDEN))
def test_golden_rate_stream_bytes(version):
    data, grids, tables = _rate_stream(version)
    _check_golden(RATE_GOLDEN[version], data)
    assert data[4] == 3
    r = VcbReader(io.BytesIO(data), tables)
    assert r.header.format_version == 3 and r.header.chunk_bits == WIDTHS
    chunks = list(r.chunks())
    assert [(c.num_frames, c.continues, c.bits) for c in chunks] == [(n, c, b) for n, c, _, b, _ in RATE_CHUNKS]
    for c, g in zip(chunks, grids):
        np.testing.assert_array_equal(c.tokens, g)
    for i in (3, 0, 4, 2):  # random access decodes from the period's keyframe chunk
        np.testing.assert_array_equal(r.read_chunk(i).tokens, grids[i])


@pytest.mark.parametrize("version", sorted(RATE_GOLDEN))
def test_rate_change_carries_what_the_rate_points_share(version):
    """A continuing chunk at the same rate point codes on from the carried context; one of another rate point
    codes on from the part both share (FORMAT.md 6.5: counts of the common levels at the same width, the previous
    latent frame's common bits), which costs fewer bits than a fresh start and decodes the same."""
    data, grids, tables = _rate_stream(version)
    payloads = [data[off + 20 + CHUNK_HEADER.size: off + 20 + length]
                for off, t, length in records(data) if t == REC_CHUNK]
    carried = CoderContext()
    encode_tokens(grids[0], 10, tables[10], carried, version=version)
    assert payloads[1] == encode_tokens(grids[1], 10, tables[10], carried, version=version)
    assert payloads[1] != encode_tokens(grids[1], 10, tables[10], version=version)
    with pytest.raises(ValueError, match="does not match"):  # without rate changes (before version 3): refused
        encode_tokens(grids[2], 4, tables[4], carried.copy(), version=version)
    carried.rate_changes = True
    for i, bits in ((2, 4), (3, 4)):  # width 10 -> 4, then levels 2 -> 3 at width 4
        assert payloads[i] == encode_tokens(grids[i], bits, tables[bits], carried, version=version)
        assert payloads[i] != encode_tokens(grids[i], bits, tables[bits], version=version)


def test_carried_bits_are_those_both_widths_code():
    """Going down in width keeps the low bits of the previous latent frame exactly; going up marks the bits the
    previous chunk did not code absent: the same bytes as a context built by hand that way."""
    rng = np.random.default_rng(3)
    base = rng.integers(0, 2**10, size=(2, 1, 3, 4), dtype=np.uint32)
    grid = np.where(rng.random((2, 4, 3, 4)) < 0.2, rng.integers(0, 2**10, size=(2, 4, 3, 4)), base).astype(np.uint32)
    tables = _rate_tables()
    for b0, b1 in ((10, 4), (4, 10), (7, 10)):
        ctx = CoderContext()
        ctx.rate_changes = True
        encode_tokens(grid[:, :2] & ((1 << b0) - 1), b0, tables[b0], ctx, version=2)
        last = [p.copy() for p in ctx.prev]
        got = encode_tokens(grid[:, 2:] & ((1 << b1) - 1), b1, tables[b1], ctx, version=2)
        hand = CoderContext()
        hand.counts = np.asarray(tables[b1].counts[:2], np.int64).copy()
        hand.prev = []
        for p in last:
            plane = np.full((12, b1), 2, np.uint8)
            plane[:, :min(b0, b1)] = p[:, :min(b0, b1)]
            hand.prev.append(plane)
        assert got == encode_tokens(grid[:, 2:] & ((1 << b1) - 1), b1, tables[b1], hand, version=2)


def _patch_version(data: bytes, version: int) -> bytes:
    (jlen,) = struct.unpack_from("<I", data, 8)
    head = bytearray(data[:16])
    head[4] = version
    struct.pack_into("<I", head, 12, zlib.crc32(data[16:16 + jlen], zlib.crc32(bytes(head[:12]))))
    return bytes(head) + data[16:]


def test_versions_and_widths_must_agree():
    data, _, tables = _rate_stream()
    with pytest.raises(HeaderError, match="chunk_bits"):
        VcbReader(io.BytesIO(_patch_version(data, 2)))  # a version-2 stream cannot list widths
    plain = make_header()
    with pytest.raises(HeaderError, match="chunk_bits"):
        VcbReader(io.BytesIO(_patch_version(encode_file_header(plain), 3)))  # nor a version-3 one leave them out
    for bad in ((4, 10, 7), (4, 7), (0, 10), (7, 7, 10), ()):
        with pytest.raises(HeaderError, match="chunk_bits"):
            StreamHeader(**GOLDEN_HEADER, chunk_bits=bad).validate()


def test_chunk_width_is_checked():
    data, _, tables = _rate_stream()
    off = next(o for o, t, _ in records(data) if t == REC_CHUNK)
    for bits, ok in ((10, True), (7, True), (5, False), (0, False)):
        rec = bytearray(data[off:])
        struct.pack_into("<H", rec, 20 + 18, bits)
        length = struct.unpack_from("<I", rec, 8)[0]
        struct.pack_into("<I", rec, 12, zlib.crc32(bytes(rec[20:20 + length])))
        struct.pack_into("<I", rec, 16, zlib.crc32(bytes(rec[:16])))
        r = VcbReader(io.BytesIO(data[:off] + bytes(rec)), tables)
        if ok:  # the record is well-formed (its data, coded at width 10, need not decode at width 7)
            assert next(c for c in r.records(decode=False) if isinstance(c, CodedChunk)).bits == bits
        else:
            with pytest.raises(CorruptDataError, match="token width"):
                r.read_chunk(0)


def test_writer_refuses_what_the_header_does_not_list():
    h = StreamHeader(**GOLDEN_HEADER, chunk_bits=WIDTHS, coder_version=2)
    tables = _rate_tables()
    with pytest.raises(TablesMismatchError, match="token widths"):
        VcbWriter(io.BytesIO(), h, {4: tables[4], 10: tables[10]})
    with pytest.raises(TablesMismatchError, match="one set"):
        VcbWriter(io.BytesIO(), dataclasses.replace(h, chunk_bits=None), tables)
    w = VcbWriter(io.BytesIO(), h, tables)
    with pytest.raises(ValueError, match="token width 5"):
        w.write_chunk(_golden_tokens(2, 3, 3, 4, 5, salt=1), 9, bits=5)
    with pytest.raises(TablesMismatchError, match="sha256"):  # the set's hash covers every width's tables
        other = dict(tables)
        other[4] = fit_tables([_golden_tokens(3, 3, 3, 4, 4, salt=12)], 4, version=2)
        list(VcbReader(io.BytesIO(_rate_stream()[0]), other).chunks())


def test_salvage_resumes_at_the_next_keyframe_chunk():
    data, grids, tables = _rate_stream()
    offs = [o for o, t, _ in records(data) if t == REC_CHUNK]
    bad = bytearray(data)
    bad[offs[1] + 20 + CHUNK_HEADER.size + 2] ^= 0xFF  # payload of chunk 1: its CRC fails
    r = VcbReader(io.BytesIO(bytes(bad)), tables)
    got = list(r.chunks(salvage=True))
    assert [c.index for c in got] == [0, 4]
    assert [m.message.split(" (")[0] for m in r.damage] == ["chunk 1", "chunk 2", "chunk 3"]  # 2, 3 need 1's state
    np.testing.assert_array_equal(got[1].tokens, grids[4])
