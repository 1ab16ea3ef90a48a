"""Named random streams, and a vectorised derivation of their daily seeds.

Every subsystem draws from its own stream, re-derived each day from (seed, stream name, day):
``PCG64(SeedSequence(seed, spawn_key=(hash(name), day + 1)))``. Building one such generator costs
about 60 microseconds (SeedSequence hashes its entropy word by word), and a run with every mechanism
asks for some 18 streams a day. So the seed words of a stream are derived here for a block of
days at once, with numpy's SeedSequence algorithm written over arrays (uint32 arithmetic, as in
numpy/random/bit_generator.pyx), and each day PCG64 seeds itself from the stream's precomputed
words (about 7 microseconds). The draws are the same, bit for bit, as those of the generator built
from the SeedSequence itself (a test compares them for several seeds, names and days).
"""

from __future__ import annotations

import hashlib

import numpy as np
from numpy.random.bit_generator import ISeedSequence

# SeedSequence constants (numpy/random/bit_generator.pyx)
_INIT_A, _MULT_A = 0x43B0D7E5, 0x931E8875
_INIT_B, _MULT_B = 0x8B51F9DD, 0x58F38DED
_MIX_L, _MIX_R = 0xCA01F9DD, 0x4973F715
_POOL = 4
_M32 = 0xFFFFFFFF
_BLOCK = 400  # days of seed words derived at once (a year in one block)


def _words(value: int) -> list[int]:
    """An integer as little-endian uint32 words (at least one), as SeedSequence coerces it."""
    if 0 <= value <= _M32:  # the usual case (a day, a small seed): one word
        return [value]
    words = [value & _M32]
    value >>= 32
    while value:
        words.append(value & _M32)
        value >>= 32
    return words


def _mixed_pool(entropy: np.ndarray) -> np.ndarray:
    """SeedSequence.mix_entropy over rows of ``entropy`` (uint32, shape (rows, words))."""
    hash_const = _INIT_A

    def hashmix(value: np.ndarray) -> np.ndarray:
        nonlocal hash_const
        value = value ^ np.uint32(hash_const)
        hash_const = (hash_const * _MULT_A) & _M32
        value = value * np.uint32(hash_const)
        return value ^ (value >> np.uint32(16))

    def mix(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        result = np.uint32(_MIX_L) * x - np.uint32(_MIX_R) * y
        return result ^ (result >> np.uint32(16))

    rows, words = entropy.shape
    zero = np.zeros(rows, dtype=np.uint32)
    pool = [hashmix(entropy[:, i] if i < words else zero) for i in range(_POOL)]
    for i_src in range(_POOL):
        for i_dst in range(_POOL):
            if i_src != i_dst:
                pool[i_dst] = mix(pool[i_dst], hashmix(pool[i_src]))
    for i_src in range(_POOL, words):
        for i_dst in range(_POOL):
            pool[i_dst] = mix(pool[i_dst], hashmix(entropy[:, i_src]))
    return np.stack(pool, axis=1)


def _seed_words(pool: np.ndarray) -> np.ndarray:
    """SeedSequence.generate_state(4, np.uint64) of each pool row: shape (rows, 4), uint64."""
    hash_const = _INIT_B
    out = np.empty((pool.shape[0], 8), dtype=np.uint32)
    for i in range(8):
        value = pool[:, i % _POOL] ^ np.uint32(hash_const)
        hash_const = (hash_const * _MULT_B) & _M32
        value = value * np.uint32(hash_const)
        out[:, i] = value ^ (value >> np.uint32(16))
    return out.astype("<u4").view("<u8").astype(np.uint64)


class _Derived(ISeedSequence):
    """The seed words a SeedSequence would generate, already computed (PCG64 seeds itself from them
    in C, as it does from a SeedSequence)."""

    __slots__ = ("words",)

    def __init__(self, words: np.ndarray):
        self.words = words

    def generate_state(self, n_words, dtype=np.uint32):
        return self.words


def daily_seed_words(seed: int, key: int, slots: range) -> np.ndarray:
    """``SeedSequence(seed, spawn_key=(key, slot)).generate_state(4, np.uint64)`` for each slot."""
    run = _words(int(seed))
    run += [0] * max(0, _POOL - len(run))  # a spawn key pads the run entropy to the pool size
    fixed = run + _words(int(key))
    slot_words = [_words(s) for s in slots]
    width = max(len(w) for w in slot_words)
    if any(len(w) != width for w in slot_words):  # slots of different word lengths: one at a time
        return np.concatenate([daily_seed_words(seed, key, range(slot, slot + 1)) for slot in slots])
    entropy = np.empty((len(slot_words), len(fixed) + width), dtype=np.uint32)
    entropy[:, : len(fixed)] = fixed
    entropy[:, len(fixed):] = slot_words
    return _seed_words(_mixed_pool(entropy))


class Streams:
    """Named, independent random streams derived from one seed, and the streams that build the model
    (:meth:`setup`) from the world seed (by default the same seed), so that a world can be held
    fixed while the daily behaviour varies with the seed."""

    def __init__(self, seed: int, world_seed: int | None = None):
        self.seed = int(seed)
        self.world_seed = self.seed if world_seed is None else int(world_seed)
        self.day = 0
        self._today: dict[str, np.random.Generator] = {}
        self._daily: dict[str, tuple[int, np.ndarray]] = {}  # name -> (first slot, seed words per slot)

    @staticmethod
    def _key(name: str) -> int:
        return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")

    def _make(self, name: str, slot: int) -> np.random.Generator:
        return np.random.Generator(np.random.PCG64(np.random.SeedSequence(self.seed, spawn_key=(self._key(name), slot))))

    def setup(self, name: str) -> np.random.Generator:
        """A stream for building the model (graph, people, catalogue, market): slot 0 of ``name``
        under the world seed."""
        return np.random.Generator(np.random.PCG64(np.random.SeedSequence(self.world_seed, spawn_key=(self._key(name), 0))))

    def today(self, name: str) -> np.random.Generator:
        """Today's stream ``name``: the same draws for the same (seed, name, day) in any scenario.

        The same generator as ``PCG64(SeedSequence(seed, spawn_key=(key(name), day + 1)))``, seeded
        from words derived a block of days at a time."""
        rng = self._today.get(name)
        if rng is None:
            rng = self._today[name] = self._next(name, self.day + 1)
        return rng

    def _next(self, name: str, slot: int) -> np.random.Generator:
        entry = self._daily.get(name)
        if entry is None or not entry[0] <= slot < entry[0] + entry[1].shape[0]:
            entry = self._daily[name] = (slot, daily_seed_words(self.seed, self._key(name), range(slot, slot + _BLOCK)))
        return np.random.Generator(np.random.PCG64(_Derived(entry[1][slot - entry[0]])))

    def new_day(self, day: int) -> None:
        self.day = day
        self._today.clear()


def choice_cdf(p: np.ndarray) -> np.ndarray:
    """The cumulative table :func:`draw_choice` samples from, computed as ``Generator.choice`` does."""
    cdf = np.cumsum(np.asarray(p, dtype=np.float64))
    cdf /= cdf[-1]
    return cdf


def draw_choice(rng: np.random.Generator, cdf: np.ndarray, size: int) -> np.ndarray:
    """``rng.choice(cdf.size, size=size, p=p)`` for ``cdf = choice_cdf(p)``: the same draws, bit for
    bit, and the same generator state afterwards, without ``choice``'s per-call checks of ``p`` (about
    100 microseconds a call; the engine and recommendations draw categories several times a day)."""
    return cdf.searchsorted(rng.random(size), side="right")
