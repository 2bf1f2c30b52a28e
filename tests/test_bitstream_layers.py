"""The container's layers: reading needs no coder tables until tokens are decoded; token coding is its own step."""

import io

import numpy as np

import bitstream
from bitstream import VcbReader, encode_tokens, fit_tables
from tests.test_bitstream import grid_for, make_header, write_stream


def test_reading_needs_no_tables_until_tokens_are_decoded():
    h = make_header(token_bits=6)
    chunks = [(grid_for(h, 9, seed=s), 9) for s in range(3)]
    tables = fit_tables([g for g, _ in chunks], 6)
    data = write_stream(h, chunks, tables=tables, track=True)
    asked = []
    r = VcbReader(io.BytesIO(data), tables=lambda hdr: asked.append(hdr) or tables)
    coded = list(r.coded_chunks())
    assert not asked and [c.index for c in coded] == [0, 1, 2]
    # the coded bytes are exactly what the coder makes, and decode with the stream's tables
    assert [len(c.data) for c in coded] == [len(encode_tokens(g, 6, tables)) for g, _ in chunks]
    t = bitstream.CoderTables(tables, r.header)
    np.testing.assert_array_equal(bitstream.decode_chunk(r.header, coded[1], t).tokens, chunks[1][0])
    r = VcbReader(io.BytesIO(data), tables=lambda hdr: asked.append(hdr) or tables)
    assert r.read_chunk(2, decode=False).index == 2 and not asked
    np.testing.assert_array_equal(r.read_chunk(2).tokens, chunks[2][0])
    assert len(asked) == 1
