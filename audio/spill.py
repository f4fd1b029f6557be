"""A long file's decoded samples kept on local disk, read back as float32 a slice at a time.

An hour at 48 kHz is 659 MiB of float32 (330 MiB as 16-bit PCM, ``audio.pcm``): most of a worker's 1 GiB for
one file, and more than that for a stereo, 24-bit or resampled recording, whose mono float32 samples are not
16-bit values. The stages read a file's samples a window or a block at a time (``len`` and slices), so a
decode whose samples would hold more than ``SPILL_BYTES`` writes them, as they come, to an unlinked temporary
file instead (``tempfile.gettempdir()``: the worker's disk) and each slice is read back from it (``os.pread``:
no shared file position, so the stages' threads read it at once). The values are the same bits as the
in-memory decode's; the file is gone when the samples are (or the process ends). The machine's page cache may
hold the file's pages, which the kernel reclaims as needed: they are not the process's memory.
"""
from __future__ import annotations

import os
import tempfile
from typing import Any, Optional, Union

import numpy as np

from audio.pcm import PCM16_SCALE, SlicedSamples

# A decode whose samples would hold more than this goes to disk: 23 minutes of float32 at 48 kHz, 47 of 16-bit
# PCM. Shorter files (nearly all: recorders write minutes) stay in memory, as fast as before; the cost of the
# disk (writing and reading back ~2.6 MB a minute of 48 kHz float32) is well under 1% of scoring that audio.
SPILL_BYTES = 256 << 20


class SpillError(OSError):
    """The worker's local disk failed (full, unwritable) while holding samples: the worker's trouble, not the
    file's (``transforms.failures.as_input_failure``)."""


class SpilledSamples(SlicedSamples):
    """A file's mono samples in a temporary file, stored as float32 or 16-bit PCM, read as float32: ``len(s)``,
    ``s[a:b]`` (a float32 copy of that stretch), ``s.nbytes`` (the bytes stored on disk) and ``np.asarray(s)``
    (the whole signal in float32, for tests and small files). Written once by ``append``, then only read."""

    __slots__ = ('_file', '_stored', '_size')

    def __init__(self, stored: Union[type, np.dtype], directory: Optional[str] = None):
        self._stored = np.dtype(stored)
        if self._stored not in (np.dtype(np.float32), np.dtype(np.int16)):
            raise ValueError(f'SpilledSamples stores float32 or int16 samples, not {self._stored}')
        try:
            self._file = tempfile.TemporaryFile(buffering=0, dir=directory)   # unlinked: freed when closed
        except OSError as e:
            raise SpillError(f'cannot make a temporary file for the decoded samples: {e}') from e
        self._size = 0

    def append(self, block: np.ndarray) -> None:
        data = np.ascontiguousarray(block, dtype=self._stored).data.cast('B')
        try:
            done = 0
            while done < len(data):   # an unbuffered file: what it writes is at once there to read
                done += self._file.write(data[done:])
        except OSError as e:
            raise SpillError(f'cannot write the decoded samples to local disk: {e}') from e
        self._size += len(block)

    def close(self) -> None:
        """Frees the disk now rather than when the samples are garbage."""
        self._file.close()

    def __len__(self) -> int:
        return self._size

    @property
    def stored_dtype(self) -> np.dtype:
        """How the samples are stored: float32, or int16 (16-bit PCM, ``audio.pcm``)."""
        return self._stored

    @property
    def nbytes(self) -> int:
        return self._size * self._stored.itemsize

    def _stored_slice(self, start: int, stop: int) -> np.ndarray:
        out = np.empty(max(0, stop - start), self._stored)
        view, done, offset = out.data.cast('B'), 0, start * self._stored.itemsize
        try:
            while done < len(view):
                n = os.preadv(self._file.fileno(), [view[done:]], offset + done)
                if n == 0:
                    raise SpillError(f'the temporary file of decoded samples ended {len(view) - done} bytes early')
                done += n
        except SpillError:
            raise
        except (OSError, ValueError) as e:   # ValueError: read after close()
            raise SpillError(f'cannot read the decoded samples back from local disk: {e}') from e
        return out

    def _read(self, start: int, stop: int) -> np.ndarray:
        out = self._stored_slice(start, stop)
        return np.multiply(out, PCM16_SCALE, dtype=np.float32) if out.dtype == np.int16 else out

    def __getitem__(self, key: Union[int, slice]) -> Any:
        if isinstance(key, slice):
            start, stop, step = key.indices(self._size)
            if step != 1:
                raise IndexError('SpilledSamples reads contiguous slices only (step 1)')
            return self._read(start, max(start, stop))
        index = key + self._size if key < 0 else key
        if not 0 <= index < self._size:
            raise IndexError(f'sample {key} of {self._size}')
        return self._read(index, index + 1)[0]

    def __reduce__(self):
        # Pickled (Beam encoding an element between stages that are not fused) as the stored samples; unpickled
        # into a temporary file of its own on the receiving worker.
        return _respill, (self._stored_slice(0, self._size),)


def _respill(stored: np.ndarray) -> SpilledSamples:
    samples = SpilledSamples(stored.dtype)
    samples.append(stored)
    return samples
