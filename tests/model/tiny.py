"""Small generated datasets and the tiny training setup the model tests share (no files read)."""
from __future__ import annotations

import os

import numpy as np

from audio import encode, synth
from model.augment import Augmentation
from model.datasets import LabelledAudio
from model.fit import TrainConfig

TINY_LABELS = ('clicks', 'hum', 'tone')
# 8 kHz, half-second windows, 8 filters: a few seconds of CPU per epoch.
TINY_CONFIG = TrainConfig(sample_rate_hz=8000, window_samples=4000, hop_samples=2000, epochs=4, batch_size=16,
                          learning_rate=1e-2, width=8, seed=3, augmentation=Augmentation(shift=True, gain=True))


def synthetic_audio(labels, files_per_class: int, seed: int, rate: int) -> list[LabelledAudio]:
    rng = np.random.default_rng(seed)
    return [LabelledAudio(synth.make(label, rng, rng.uniform(0.3, 1.2), rate), label, f'{label}/{seed}_{i}')
            for i in range(files_per_class) for label in labels]


def write_wav(path: str, samples: np.ndarray, rate: int) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return encode.write(path, samples, rate, 'wav')
