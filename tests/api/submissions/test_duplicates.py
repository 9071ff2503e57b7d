"""Pigeonhole banding of 64-bit fingerprints (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.submissions.duplicates import bands, parse_fingerprint, to_signed, to_unsigned
from ocr.ink import hamming

values = st.integers(min_value=0, max_value=(1 << 64) - 1)
ks = st.integers(min_value=0, max_value=7)


@given(values, ks, st.data())
def test_values_within_k_bits_share_a_band(a: int, k: int, data: st.DataObject) -> None:
    flipped = data.draw(st.sets(st.integers(0, 63), max_size=k), label="flipped bits")
    b = a
    for bit in flipped:
        b ^= 1 << bit
    assert (a ^ b).bit_count() <= k
    assert any(x == y for x, y in zip(bands(a, k), bands(b, k), strict=True))


@given(values, ks)
def test_bands_partition_the_64_bits(value: int, k: int) -> None:
    parts = bands(value, k)
    widths = [64 // (k + 1) + (1 if i < 64 % (k + 1) else 0) for i in range(k + 1)]
    assert len(parts) == k + 1 and sum(widths) == 64
    rebuilt = 0
    for part, width in zip(parts, widths, strict=True):
        assert 0 <= part < 1 << width
        rebuilt = (rebuilt << width) | part
    assert rebuilt == value


def test_a_flip_in_every_band_can_defeat_k_plus_one_bands() -> None:
    # The bound is tight: k+1 flips, one per band, leave no band equal.
    k = 4
    a = 0x0123456789ABCDEF
    b = a
    shift = 64
    for i in range(k + 1):
        shift -= 64 // (k + 1) + (1 if i < 64 % (k + 1) else 0)
        b ^= 1 << shift
    assert not any(x == y for x, y in zip(bands(a, k), bands(b, k), strict=True))


@given(values)
def test_bigint_round_trip(value: int) -> None:
    signed = to_signed(value)
    assert -(1 << 63) <= signed < 1 << 63
    assert to_unsigned(signed) == value


def test_parse_fingerprint_agrees_with_the_reader_hamming() -> None:
    a, b = "e920b8773f165530", "e960b87637165530"
    assert (parse_fingerprint(a) ^ parse_fingerprint(b)).bit_count() == hamming(a, b)
    with pytest.raises(ValueError):
        parse_fingerprint("abc")
    with pytest.raises(ValueError):
        bands(1 << 64, 4)
