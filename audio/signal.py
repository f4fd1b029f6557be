"""What a decoded file's samples are, however they are held; every reader takes ``len`` and slices.

- a float32 array (most files);
- ``audio.pcm.PcmSamples``: 16-bit PCM kept as int16, half the memory;
- ``audio.spill.SpilledSamples``: a long file's samples on local disk.

Each slice reads as float32 with the same values whichever way the samples are held.
"""
from __future__ import annotations

from typing import Union

import numpy as np

from audio.pcm import PcmSamples
from audio.spill import SpilledSamples

Signal = Union[np.ndarray, PcmSamples, SpilledSamples]
