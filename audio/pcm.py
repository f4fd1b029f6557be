"""Mono samples held as 16-bit PCM: half the memory of float32, read back as float32 a slice at a time.

A file whose data is 16-bit (or narrower) integer PCM, mono, already at the model's rate, decodes to
exactly ``pcm * 2**-15`` in float32: that is how libsndfile converts such data to float, and the product
of a 16-bit integer and a power of two is exact. So the decoder keeps the integers (2 bytes a sample
instead of 4: a one-hour 48 kHz recording is 330 MiB instead of 659) and every reader gets float32
slices bit-identical to what a float32 decode holds. The stages read a file's samples a window or a
block at a time (``len`` and slices), so the whole float32 signal is never built.
"""
from __future__ import annotations

from typing import Any, Optional, Union

import numpy as np

# The scale libsndfile applies to 16-bit data read as float (1 / 0x8000); 8-bit, mu-law and A-law data
# read as int16 are the same values shifted or expanded to 16 bits, so the same scale holds for them.
PCM16_SCALE = np.float32(2.0 ** -15)
# libsndfile subtypes whose samples are exactly 16-bit integers (or fewer bits) when read as int16.
PCM16_SUBTYPES = frozenset({'PCM_16', 'PCM_S8', 'PCM_U8', 'ULAW', 'ALAW'})


class SlicedSamples:
    """What every holder of a file's samples other than a plain array shares: it is read as float32 in slices
    (``s[a:b]``, defined by the holder, with ``len``), and ``np.asarray(s)`` is the whole signal in float32 (a
    full-size copy, for small files and tests; the pipeline's stages read slices)."""

    __slots__ = ()
    dtype = np.dtype(np.float32)   # what reading gives
    ndim = 1

    def __len__(self) -> int:
        raise NotImplementedError

    def __getitem__(self, key: Union[int, slice]) -> Any:
        raise NotImplementedError

    @property
    def shape(self) -> tuple[int]:
        return (len(self),)

    @property
    def size(self) -> int:
        return len(self)

    def __array__(self, dtype: Optional[np.dtype] = None, copy: Optional[bool] = None) -> np.ndarray:
        if copy is False:
            raise ValueError(f'{type(self).__name__} cannot be read as an array without a copy')
        whole = self[:]
        return whole if dtype is None else whole.astype(dtype, copy=False)

    def __iter__(self):
        raise TypeError(f'{type(self).__name__} is read in slices (s[a:b]), not sample by sample')


class PcmSamples(SlicedSamples):
    """A file's mono samples as int16, read as float32: ``len(s)``, ``s[a:b]`` (a float32 copy of that
    stretch), ``s.nbytes`` (what is held), and ``np.asarray(s)`` (the whole signal in float32: a full-size
    copy, for small files and tests; the pipeline's stages read slices)."""

    __slots__ = ('pcm',)

    def __init__(self, pcm: np.ndarray):
        if pcm.dtype != np.int16 or pcm.ndim != 1:
            raise ValueError(f'PcmSamples holds 1-D int16 samples, not {pcm.ndim}-D {pcm.dtype}')
        self.pcm = pcm

    def __len__(self) -> int:
        return len(self.pcm)

    @property
    def nbytes(self) -> int:
        return self.pcm.nbytes

    def __getitem__(self, key: Union[int, slice]) -> Any:
        return np.multiply(self.pcm[key], PCM16_SCALE, dtype=np.float32)
