"""Error correction for the robust payload: a K=7, rate-1/2 convolutional code with soft Viterbi decoding.

The code is the classic (171, 133) octal pair used by many radio systems. Decoding takes soft values
(positive means bit 1), so weak and strong observations are weighed as they deserve.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

CONSTRAINT = 7
_STATES = 1 << (CONSTRAINT - 1)
_POLYS = (0o171, 0o133)


def _parity(x: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    x = x.copy()
    out = np.zeros_like(x)
    while np.any(x):
        out ^= x & 1
        x >>= 1
    return out


# Output bits for every (state, input) pair: register = (input << 6) | state.
_REG = (np.arange(2)[None, :] << (CONSTRAINT - 1)) | np.arange(_STATES)[:, None]
_OUT = np.stack([_parity(_REG & p) for p in _POLYS], axis=-1)  # (states, 2 inputs, 2 outputs)
_NEXT = _REG >> 1  # (states, 2 inputs)


def coded_length(n_bits: int) -> int:
    """Number of coded bits for ``n_bits`` information bits (tail included)."""
    return 2 * (n_bits + CONSTRAINT - 1)


def encode(bits: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """Encode information bits (0/1) with a zero tail; returns ``coded_length(len(bits))`` bits."""
    data = np.concatenate([np.asarray(bits, dtype=np.int64), np.zeros(CONSTRAINT - 1, dtype=np.int64)])
    state = 0
    out = np.empty((data.size, 2), dtype=np.uint8)
    for i, b in enumerate(data):
        out[i] = _OUT[state, b]
        state = int(_NEXT[state, b])
    return out.reshape(-1)


def decode(soft: npt.NDArray[np.floating]) -> npt.NDArray[np.uint8]:
    """Maximum-likelihood decoding of soft values (positive = 1); returns the information bits."""
    values = np.asarray(soft, dtype=np.float64).reshape(-1, 2)
    steps = values.shape[0]
    signs = 2.0 * _OUT - 1.0  # (states, 2, 2)
    metric = np.full(_STATES, -np.inf)
    metric[0] = 0.0
    back_state = np.empty((steps, _STATES), dtype=np.int64)
    back_bit = np.empty((steps, _STATES), dtype=np.int64)
    flat_next = _NEXT.reshape(-1)
    flat_prev = np.repeat(np.arange(_STATES), 2)
    flat_bit = np.tile(np.arange(2), _STATES)
    for t in range(steps):
        branch = (signs @ values[t]).reshape(-1)  # (states*2,)
        cand = np.repeat(metric, 2) + branch
        best = np.full(_STATES, -np.inf)
        np.maximum.at(best, flat_next, cand)
        # Which candidate won for each next state.
        winners = np.flatnonzero(cand == best[flat_next])
        back_state[t, flat_next[winners]] = flat_prev[winners]
        back_bit[t, flat_next[winners]] = flat_bit[winners]
        metric = best
    state = 0  # the tail drives the encoder back to state 0
    bits = np.empty(steps, dtype=np.uint8)
    for t in range(steps - 1, -1, -1):
        bits[t] = back_bit[t, state]
        state = int(back_state[t, state])
    return bits[: steps - (CONSTRAINT - 1)]


def bytes_to_bits(data: bytes) -> npt.NDArray[np.uint8]:
    return np.unpackbits(np.frombuffer(data, dtype=np.uint8))


def bits_to_bytes(bits: npt.NDArray[np.uint8]) -> bytes:
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes()
