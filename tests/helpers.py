"""Helpers the tests share for making their own audio (fixtures live in conftest.py)."""
from __future__ import annotations

import io
import os

import numpy as np

from audio import encode, synth
from audio.decode import decode
from audio.records import AudioInfo

DEMO_LABELS = tuple(synth.DEMO_CLASSES)


def write_clip(folder, name: str, kind: str = 'wav', seconds: float = 1.5, rate: int = 16000, channels: int = 1,
               label: str = 'chirp', seed: int = 0) -> str:
    """Writes one synthetic clip; returns its path."""
    samples = synth.make(label, np.random.default_rng(seed), seconds, rate)
    if channels > 1:
        samples = np.stack([samples] * channels, axis=1)
    path = os.path.join(str(folder), name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return encode.write(path, samples, rate, kind)


def decode_bytes(data: bytes, target_rate: int, max_duration_s: float) -> tuple[np.ndarray, AudioInfo]:
    """``audio.decode.decode`` from bytes in memory."""
    return decode(io.BytesIO(data), target_rate, max_duration_s, size=len(data))


def write_bytes(folder, name: str, data: bytes) -> str:
    path = os.path.join(str(folder), name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(data)
    return path
