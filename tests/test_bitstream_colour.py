"""Format versions 4 and 5: a chunk may carry a colour correction (CHUNK flags bit 1; after the chunk header: its terms
per row, 4 or 10, a reserved u16, then 3 x terms i16); from version 5 a continuing chunk may carry its previous chunk's
as 0 terms (4 bytes)."""

import dataclasses
import io
import struct
import zlib

import numpy as np
import pytest

from bitstream import CodedChunk, CorruptDataError, HeaderError, StreamHeader, VcbReader, VcbWriter
from bitstream.header import CHUNK_HEADER, REC_CHUNK, encode_file_header
from tests.test_bitstream import GOLDEN_HEADER, _check_golden, _golden_tokens, records
from tests.test_bitstream_rate import WIDTHS, _patch_version, _rate_tables

# (num_frames, continues, levels, bits, salt, colour): a keyframe chunk with an affine correction, a continuing one
# without, one with a quadratic correction and the extreme values, then a keyframe chunk of another width without
COLOUR_CHUNKS = (
    (9, False, 2, 10, 1, (41, -7, 3, -12, 0, -900, 55, 2, -1, 30, -1200, 7)),
    (8, True, 2, 10, 2, None),
    (8, True, 3, 4, 3, (-32768, 32767) + tuple(range(-14, 14))),
    (5, False, 1, 7, 5, None),
)


# version 5: the same with repeats: chunk 1 carries chunk 0's correction on, chunk 3 chunk 2's
REPEAT_CHUNKS = (
    COLOUR_CHUNKS[0],
    (8, True, 2, 10, 2, COLOUR_CHUNKS[0][-1]),
    COLOUR_CHUNKS[2],
    (8, True, 3, 4, 4, COLOUR_CHUNKS[2][-1]),
    COLOUR_CHUNKS[3],
)


def _colour_stream(specs=COLOUR_CHUNKS, note="golden v4") -> tuple[bytes, list[np.ndarray], dict]:
    h = StreamHeader(**GOLDEN_HEADER, chunk_bits=WIDTHS, coder_version=3, chunk_colour=True, extra={"note": note})
    tables = _rate_tables(3)
    grids = [_golden_tokens(lv, h.latent_frames(n, c), 3, 4, b, salt=s) for n, c, lv, b, s, _ in specs]
    buf = io.BytesIO()
    with VcbWriter(buf, h, tables) as w:
        for (n, c, _, b, _, colour), g in zip(specs, grids):
            w.write_chunk(g, n, continues=c, bits=b, colour=colour)
    return buf.getvalue(), grids, tables


def test_golden_colour_stream_bytes():
    """Written today as version 5, the stream without repeats is the version-4 golden file but for its version
    byte; that file reads as it always did."""
    data, grids, tables = _colour_stream()
    assert data[4] == 5
    _check_golden("small_v4_coder3.vcb", _patch_version(data, 4))
    data = _patch_version(data, 4)
    r = VcbReader(io.BytesIO(data), tables)
    assert r.header.format_version == 4 and r.header.chunk_colour and r.header.chunk_bits == WIDTHS
    chunks = list(r.chunks())
    assert [c.colour for c in chunks] == [spec[-1] for spec in COLOUR_CHUNKS]
    for c, g in zip(chunks, grids):
        np.testing.assert_array_equal(c.tokens, g)
    for i in (2, 0, 3):  # random access: the same tokens and corrections
        got = r.read_chunk(i)
        np.testing.assert_array_equal(got.tokens, grids[i])
        assert got.colour == COLOUR_CHUNKS[i][-1]


def test_colour_sits_between_the_chunk_header_and_the_coded_tokens():
    data, _, tables = _colour_stream()
    (off, _, length), *_ = [r for r in records(data) if r[1] == REC_CHUNK]
    payload = data[off + 20: off + 20 + length]
    assert payload[17] == 2  # flags: bit 1 (colour), not continuing
    assert struct.unpack_from("<HH12h", payload, CHUNK_HEADER.size) == (4, 0, *COLOUR_CHUNKS[0][-1])
    coded = next(c for c in VcbReader(io.BytesIO(data), tables).records(decode=False) if isinstance(c, CodedChunk))
    assert coded.data == payload[CHUNK_HEADER.size + 28:] and coded.colour_bytes == 28


def _set_flags(data: bytes, flags: int, cut: int = 0) -> bytes:
    """The stream with its first chunk's flags replaced (and its payload cut short by ``cut`` bytes)."""
    off, _, length = next(r for r in records(data) if r[1] == REC_CHUNK)
    rec = bytearray(data[off:off + 20 + length - cut])
    rec[20 + 17] = flags
    struct.pack_into("<I", rec, 8, length - cut)
    struct.pack_into("<I", rec, 12, zlib.crc32(bytes(rec[20:])))
    struct.pack_into("<I", rec, 16, zlib.crc32(bytes(rec[:16])))
    return data[:off] + bytes(rec) + data[off + 20 + length:]


def test_colour_flag_is_refused_before_version_4():
    data, _, tables = _colour_stream()
    v3 = _patch_version(data, 3)
    with pytest.raises(CorruptDataError, match="unknown flags"):
        VcbReader(io.BytesIO(v3), tables).read_chunk(0)
    assert VcbReader(io.BytesIO(_set_flags(v3, 0)), tables).header.chunk_colour is False


def test_short_colour_payload_is_refused():
    data, _, tables = _colour_stream()
    off, _, length = next(r for r in records(data) if r[1] == REC_CHUNK)
    short = _set_flags(data, 2, cut=length - CHUNK_HEADER.size - 5)
    with pytest.raises(CorruptDataError, match="colour correction"):
        VcbReader(io.BytesIO(short), tables).read_chunk(0)


@pytest.mark.parametrize("terms, reserved", [(5, 0), (4, 1)])
def test_unknown_colour_terms_are_refused(terms, reserved):
    data, _, tables = _colour_stream()
    off, _, length = next(r for r in records(data) if r[1] == REC_CHUNK)
    rec = bytearray(data[off:off + 20 + length])
    struct.pack_into("<HH", rec, 20 + CHUNK_HEADER.size, terms, reserved)
    struct.pack_into("<I", rec, 12, zlib.crc32(bytes(rec[20:])))
    struct.pack_into("<I", rec, 16, zlib.crc32(bytes(rec[:16])))
    with pytest.raises(CorruptDataError, match="colour correction of"):
        VcbReader(io.BytesIO(data[:off] + bytes(rec) + data[off + 20 + length:]), tables).read_chunk(0)


def test_header_and_writer_checks():
    with pytest.raises(HeaderError, match="chunk_colour"):
        StreamHeader(**GOLDEN_HEADER, chunk_colour=True).validate()  # version 4 lists its widths
    plain = StreamHeader(**GOLDEN_HEADER, chunk_bits=WIDTHS, coder_version=3)
    with pytest.raises(HeaderError, match="chunk_bits"):   # a version-4 stream must list them too
        VcbReader(io.BytesIO(_patch_version(encode_file_header(dataclasses.replace(plain, chunk_bits=None)), 4)))
    tables = _rate_tables(3)
    grid = _golden_tokens(2, 3, 3, 4, 10, salt=1)
    with VcbWriter(io.BytesIO(), plain, tables) as w, pytest.raises(ValueError, match="chunk_colour"):
        w.write_chunk(grid, 9, bits=10, colour=(0,) * 12)
    h = dataclasses.replace(plain, chunk_colour=True)
    with VcbWriter(io.BytesIO(), h, tables) as w:   # numpy integers are ints; the writer counts corrected chunks
        w.write_chunk(grid, 9, bits=10, colour=np.arange(-6, 6, dtype=np.int16))
        w.write_chunk(grid[:, :2], 5, bits=10)
        assert (w.num_chunks, w.colour_chunks) == (2, 1)
    for bad in ((0,) * 11, (0,) * 13, (0,) * 11 + (2**15,), (0.5,) + (0,) * 11):
        with VcbWriter(io.BytesIO(), h, tables) as w, pytest.raises(ValueError, match="12 or 30 ints"):
            w.write_chunk(grid, 9, bits=10, colour=bad)


def _repeat_payloads(data: bytes) -> list[bytes]:
    return [data[off + 20: off + 20 + length] for off, kind, length in records(data) if kind == REC_CHUNK]


def test_golden_repeat_stream_bytes():
    """Version 5: a continuing chunk whose correction is its previous chunk's writes 0 terms and nothing more (4
    bytes); readers fill the correction in, in a pass, by random access and undecoded; the writer counts its bytes."""
    data, grids, tables = _colour_stream(REPEAT_CHUNKS, "golden v5")
    _check_golden("small_v5_coder3.vcb", data)
    assert data[4] == 5
    payloads = _repeat_payloads(data)
    for i in (1, 3):
        assert payloads[i][17] == 3 and payloads[i][CHUNK_HEADER.size:CHUNK_HEADER.size + 4] == bytes(4)
    r = VcbReader(io.BytesIO(data), tables)
    chunks = list(r.chunks())
    assert [c.colour for c in chunks] == [spec[-1] for spec in REPEAT_CHUNKS]
    for c, g in zip(chunks, grids):
        np.testing.assert_array_equal(c.tokens, g)
    coded = list(r.coded_chunks())
    assert [c.colour_bytes for c in coded] == [28, 4, 64, 4, 0] and [c.colour_repeated for c in coded] == [
        False, True, False, True, False]
    for i in (3, 1):
        assert r.read_chunk(i).colour == REPEAT_CHUNKS[i][-1]
        assert r.read_chunk(i, decode=False).colour == REPEAT_CHUNKS[i][-1]
    h = StreamHeader(**GOLDEN_HEADER, chunk_bits=WIDTHS, coder_version=3, chunk_colour=True)
    with VcbWriter(io.BytesIO(), h, tables) as w:
        for (n, c, _, b, _, colour), g in zip(REPEAT_CHUNKS, grids):
            w.write_chunk(g, n, continues=c, bits=b, colour=colour)
        assert (w.colour_chunks, w.colour_bytes) == (4, 28 + 4 + 64 + 4)


def _with_payload(data: bytes, i: int, payload: bytes) -> bytes:
    """The stream with chunk ``i``'s payload replaced (CRCs mended)."""
    off, _, length = [r for r in records(data) if r[1] == REC_CHUNK][i]
    rec = bytearray(data[off:off + 20]) + payload
    struct.pack_into("<I", rec, 8, len(payload))
    struct.pack_into("<I", rec, 12, zlib.crc32(payload))
    struct.pack_into("<I", rec, 16, zlib.crc32(bytes(rec[:16])))
    return data[:off] + bytes(rec) + data[off + 20 + length:]


def test_repeats_are_refused_where_they_cannot_be():
    """0 terms: before version 5 an unknown correction; in a keyframe chunk, or after a chunk without a correction,
    corrupt."""
    data, _, tables = _colour_stream(REPEAT_CHUNKS, "golden v5")
    with pytest.raises(CorruptDataError, match="colour correction of 0 terms"):
        list(VcbReader(io.BytesIO(_patch_version(data, 4)), tables).chunks())
    key = _repeat_payloads(data)[0]
    key = key[:CHUNK_HEADER.size] + bytes(4) + key[CHUNK_HEADER.size + 28:]
    with pytest.raises(CorruptDataError, match="keyframe chunk cannot repeat"):
        VcbReader(io.BytesIO(_with_payload(data, 0, key)), tables).read_chunk(0)
    bare = bytearray(_repeat_payloads(data)[0])          # chunk 0 without its correction: chunk 1 repeats nothing
    bare[17] = 0
    bare = bytes(bare[:CHUNK_HEADER.size]) + bytes(bare[CHUNK_HEADER.size + 28:])
    with pytest.raises(CorruptDataError, match="which has none"):
        list(VcbReader(io.BytesIO(_with_payload(data, 0, bare)), tables).chunks())
