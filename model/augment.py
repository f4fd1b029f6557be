"""Waveform augmentation for training, in numpy, deterministic given the generator.

Spectrogram masking (SpecAugment) lives in the model graph instead
(``model.architecture.SpecAugment``) because it acts on the log-mel features.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WAVEFORM_AUGMENTATIONS = ('shift', 'gain', 'noise', 'speed')
ALL_AUGMENTATIONS = WAVEFORM_AUGMENTATIONS + ('mask',)


@dataclass(frozen=True)
class Augmentation:
    shift: bool = False    # move the window's start, a short clip's place in its window, a long clip's onset and end
    gain: bool = False     # -12..+3 dB
    noise: bool = False    # white noise at 10-40 dB SNR, on half the windows (serving pads with exact zeros)
    speed: bool = False    # 0.9-1.1x resampling (tempo and pitch together, like a different voice)
    mask: bool = False     # SpecAugment time and frequency masking (in the graph)
    max_shift_fraction: float = 0.25   # of the hop, for windows cut out of a longer file

    @classmethod
    def parse(cls, text: str) -> 'Augmentation':
        """``'shift,noise'``, ``'all'`` or ``'none'``."""
        names = [n.strip() for n in (text or 'none').split(',') if n.strip()]
        if names in (['all'], ['none']):
            return cls(**{n: names == ['all'] for n in ALL_AUGMENTATIONS})
        unknown = set(names) - set(ALL_AUGMENTATIONS)
        if unknown:
            raise ValueError(f'unknown augmentation(s) {sorted(unknown)}; choose from {", ".join(ALL_AUGMENTATIONS)}, '
                             f'all or none')
        return cls(**{n: True for n in names})

    def names(self) -> list[str]:
        return [n for n in ALL_AUGMENTATIONS if getattr(self, n)]


def change_speed(samples: np.ndarray, factor: float) -> np.ndarray:
    """Plays ``samples`` ``factor`` times faster (linear interpolation; fine for +-10%)."""
    length = max(int(round(len(samples) / factor)), 1)
    positions = np.arange(length) * factor
    return np.interp(positions, np.arange(len(samples)), samples).astype(np.float32)


def add_noise(samples: np.ndarray, rng: np.random.Generator, snr_db: float) -> np.ndarray:
    rms = float(np.sqrt(np.mean(np.square(samples), dtype=np.float64))) if len(samples) else 0.0
    noise_rms = max(rms, 1e-4) / (10 ** (snr_db / 20))
    return samples + rng.normal(0, noise_rms, len(samples)).astype(np.float32)


def cut_window(samples: np.ndarray, start: int, window_samples: int, hop_samples: int,
               augmentation: Augmentation, rng: np.random.Generator) -> np.ndarray:
    """The training window starting at ``start`` of ``samples``, augmented, zero-padded like serving.

    Without augmentation this equals ``model.handlers.iter_windows``'s window at
    ``start``: the file's samples from ``start``, zero-padded at the end.
    """
    if augmentation.speed:
        factor = rng.uniform(0.9, 1.1)
        samples = change_speed(samples, factor)
        start = int(start / factor)
    offset, edge = 0, False
    if augmentation.shift and len(samples) > window_samples:
        # In a long recording a sound starts and ends anywhere in a window (events): half of the first and last
        # windows of a clip put its onset or its end part-way in, the sound filling at least a quarter.
        quarter = window_samples // 4
        if start == 0 and rng.random() < 0.5:
            offset, edge = int(rng.integers(1, window_samples - quarter + 1)), True
        elif start + window_samples >= len(samples) and rng.random() < 0.5:
            start, edge = len(samples) - int(rng.integers(quarter, window_samples + 1)), True
        else:
            jitter = int(augmentation.max_shift_fraction * hop_samples)
            start = int(np.clip(start + rng.integers(-jitter, jitter + 1), 0, len(samples) - window_samples))
    segment = samples[start:start + window_samples - offset]
    if augmentation.shift and not edge and len(segment) < window_samples:
        offset = int(rng.integers(0, window_samples - len(segment) + 1))
    window = np.zeros(window_samples, np.float32)
    window[offset:offset + len(segment)] = segment
    if augmentation.gain:
        window *= 10 ** (rng.uniform(-12, 3) / 20)
    if augmentation.noise and rng.random() < 0.5:
        window = add_noise(window, rng, rng.uniform(10, 40))
    return np.clip(window, -1.0, 1.0)
