"""Compile a code-point normalisation table into a sentencepiece "precompiled charsmap".

The blob is what `tokenizers.normalizers.Precompiled` and sentencepiece read:

    u32 LE   size of the trie in bytes
    trie     darts-clone double array of little-endian u32 units
    strings  the replacements, UTF-8, each NUL-terminated; a key's leaf value is its replacement's offset

Unit bits as the readers decode them:

    has_leaf = bit 8
    value    = u & 0x7FFFFFFF              (value units have bit 31 set, so they never match a byte)
    label    = u & 0x800000FF
    offset   = (u >> 10) << ((u & 0x200) >> 6)

A byte c read at node position p moves to child position `p ^ offset(A[p]) ^ c`, which is accepted only when
that unit's label is c. The child slots of a node therefore sit at `base ^ label` with `base = p ^ offset`.
"""
from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence

import numpy as np

BLOCK_UNITS = 256  # `base ^ byte` stays inside one 256-unit block; the Rust reader does not bounds-check
MAX_OFFSET = 1 << 21  # larger offsets need darts-clone's extended encoding, which this builder never emits
VALUE_BIT = 1 << 31
HAS_LEAF_BIT = 1 << 8
NEVER_MATCHES = VALUE_BIT  # filler for free units: its label has bit 31 set, so no byte (NUL included) matches
SEARCH_WINDOW = 2048


class _Trie:
    """A byte trie as flat lists: node 0 is the root."""

    def __init__(self) -> None:
        self.children: list[dict[int, int]] = [{}]
        self.value: list[int | None] = [None]

    def insert(self, key: bytes, value: int) -> None:
        node = 0
        for byte in key:
            child = self.children[node].get(byte)
            if child is None:
                child = len(self.children)
                self.children.append({})
                self.value.append(None)
                self.children[node][byte] = child
            node = child
        self.value[node] = value


class _DoubleArray:
    """Free-slot bookkeeping and first-fit base search, vectorised with numpy."""

    def __init__(self) -> None:
        self.units = np.zeros(BLOCK_UNITS * 4, dtype=np.uint32)
        self.used = np.zeros(BLOCK_UNITS * 4, dtype=bool)
        # Two parents sharing a base would each accept the other's children with the same label.
        self.base_taken = np.zeros(BLOCK_UNITS * 4, dtype=bool)
        self.used[0] = True  # the root unit
        self.base_taken[0] = True  # base 0 would let a NUL byte land on the root unit, whose label is 0
        self.first_free = 1

    def _grow(self, size: int) -> None:
        if size <= len(self.units):
            return
        size = max(size, 2 * len(self.units))
        size = -(-size // BLOCK_UNITS) * BLOCK_UNITS
        for name in ("units", "used", "base_taken"):
            old = getattr(self, name)
            new = np.zeros(size, dtype=old.dtype)
            new[: len(old)] = old
            setattr(self, name, new)

    def find_base(self, slots: np.ndarray) -> int:
        """The smallest base such that every `base ^ slot` is free and non-zero, and no one else uses it."""
        start = (self.first_free // BLOCK_UNITS) * BLOCK_UNITS
        while True:
            self._grow(start + SEARCH_WINDOW + BLOCK_UNITS)
            candidates = np.arange(start, start + SEARCH_WINDOW, dtype=np.int64)
            fits = ~self.base_taken[candidates]
            for slot in slots:
                positions = candidates ^ slot
                fits &= ~self.used[positions] & (positions != 0)
            hits = np.flatnonzero(fits)
            if hits.size:
                return int(candidates[hits[0]])
            start += SEARCH_WINDOW

    def claim(self, base: int, slots: np.ndarray) -> None:
        self.base_taken[base] = True
        self.used[base ^ slots] = True
        while self.first_free < len(self.used) and self.used[self.first_free]:
            self.first_free += 1

    def to_bytes(self) -> bytes:
        last_used = int(np.flatnonzero(self.used)[-1])
        size = (last_used // BLOCK_UNITS + 1) * BLOCK_UNITS
        units = np.where(self.used[:size], self.units[:size], np.uint32(NEVER_MATCHES))
        return units.astype("<u4").tobytes()


def _replacement_strings(mapping: Mapping[int, Sequence[int]]) -> tuple[bytes, dict[int, int]]:
    """Concatenated NUL-terminated replacements (identical ones shared) and each key's offset into them."""
    strings = bytearray()
    offset_of: dict[bytes, int] = {}
    key_offsets: dict[int, int] = {}
    for codepoint, replacement in sorted(mapping.items()):
        encoded = "".join(chr(c) for c in replacement).encode("utf-8")
        if b"\0" in encoded:
            raise ValueError(f"replacement for U+{codepoint:04X} contains NUL")
        if encoded not in offset_of:
            offset_of[encoded] = len(strings)
            strings += encoded + b"\0"
        key_offsets[codepoint] = offset_of[encoded]
    return bytes(strings), key_offsets


def compile_charsmap(mapping: Mapping[int, Sequence[int]]) -> bytes:
    """Compile {code point: replacement code points} into a precompiled charsmap blob.

    An empty replacement deletes the code point. Deterministic: the same table gives the same bytes.
    """
    strings, key_offsets = _replacement_strings(mapping)
    trie = _Trie()
    for codepoint, offset in key_offsets.items():
        if codepoint == 0:
            raise ValueError("U+0000 cannot be a charsmap key")
        trie.insert(chr(codepoint).encode("utf-8"), offset)

    array = _DoubleArray()
    pending = [(0, 0, 0)]  # (node, unit position, label)
    while pending:
        node, position, label = pending.pop()
        labels = sorted(trie.children[node])
        value = trie.value[node]
        has_leaf = value is not None
        slots = np.array(([0] if has_leaf else []) + labels, dtype=np.int64)
        base = array.find_base(slots)
        array.claim(base, slots)
        offset = base ^ position
        if offset >= MAX_OFFSET:
            raise ValueError("charsmap too large for the compact darts-clone offset encoding")
        array.units[position] = (offset << 10) | label | (HAS_LEAF_BIT if has_leaf else 0)
        if value is not None:
            array.units[base] = VALUE_BIT | value
        for child_label in reversed(labels):
            pending.append((trie.children[node][child_label], base ^ child_label, child_label))

    trie_bytes = array.to_bytes()
    return struct.pack("<I", len(trie_bytes)) + trie_bytes + strings
