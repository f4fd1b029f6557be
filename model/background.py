"""The ``background`` class: "nothing of interest here" as a real answer of the model.

Without it, every window of a long recording is forced into one of the real
labels, silence included, and event detection (``audio.events``) would report
the gaps between sounds as sounds. ``python -m model.train ... --background-class``
(and the demo model) add a class named ``background`` trained from:

* generated windows of silence (exact zeros and a faint dither), low white or
  pink noise, and mains hum (50/60 Hz) unless hum is itself one of the labels;
* the quiet parts of the training audio: runs of 20 ms frames at least 35 dB
  below the file's loudest frame, joined into windows (the room tone between
  and around the sounds of real recordings).

The pipeline treats a label named ``background`` (``BACKGROUND_LABEL``) as no
event; it remains a possible file label.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from model.datasets import LabelledAudio
from model.metadata import BACKGROUND_LABEL

FRAME_SECONDS = 0.02
QUIET_BELOW_PEAK_DB = 35.0
MIN_QUIET_FRAMES = 3          # 60 ms: shorter quiet stretches are gaps inside a sound (plosives, click trains)
GENERATED_KINDS = ('silence', 'white', 'pink', 'hum')


def _pink(rng: np.random.Generator, n: int) -> np.ndarray:
    spectrum = np.fft.rfft(rng.normal(0, 1, n))
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1))
    x = np.fft.irfft(spectrum, n)
    return x / (np.std(x) + 1e-12)


def generated_clip(kind: str, rng: np.random.Generator, samples: int, rate: int) -> np.ndarray:
    """One clip of a generated background kind, float32."""
    level = 10 ** (rng.uniform(-70, -35) / 20)   # RMS, dBFS: audible room tone at most
    if kind == 'silence':
        x = rng.normal(0, 1e-5, samples) if rng.random() < 0.5 else np.zeros(samples)
    elif kind == 'white':
        x = level * rng.normal(0, 1, samples)
    elif kind == 'pink':
        x = level * _pink(rng, samples)
    elif kind == 'hum':
        t = np.arange(samples) / rate
        mains = 50.0 if rng.random() < 0.5 else 60.0
        x = sum(((level * 1.4 / k) * np.sin(2 * np.pi * k * mains * t + rng.uniform(0, 6.3)) for k in (1, 2, 3)),
                np.zeros_like(t))
        x = x + level * 0.1 * rng.normal(0, 1, samples)
    else:
        raise ValueError(f'unknown background kind {kind!r}')
    return np.asarray(x, dtype=np.float32)


def quiet_runs(samples: np.ndarray, rate: int) -> list[np.ndarray]:
    """Stretches of ``samples`` at least ``QUIET_BELOW_PEAK_DB`` below the loudest 20 ms frame (views)."""
    frame = max(int(FRAME_SECONDS * rate), 1)
    frames = len(samples) // frame
    if frames < MIN_QUIET_FRAMES:
        return []
    rms = np.sqrt(np.mean(np.square(samples[:frames * frame].reshape(frames, frame), dtype=np.float64), axis=1))
    if rms.max() <= 0:
        return []
    quiet = rms <= rms.max() * 10 ** (-QUIET_BELOW_PEAK_DB / 20)
    runs, start = [], None
    for i, q in enumerate(np.append(quiet, False)):
        if q and start is None:
            start = i
        elif not q and start is not None:
            if i - start >= MIN_QUIET_FRAMES:
                runs.append(samples[start * frame:i * frame])
            start = None
    return runs


def quiet_clips(audios: Sequence[LabelledAudio], rate: int, window_samples: int, count: int,
                rng: np.random.Generator) -> list[np.ndarray]:
    """Up to ``count`` clips of ``window_samples`` joined from random quiet stretches of ``audios``."""
    pool = [run for audio in audios for run in quiet_runs(audio.samples, rate)]
    if not pool:
        return []
    clips = []
    for _ in range(count):
        parts, filled = [], 0
        while filled < window_samples:
            run = pool[int(rng.integers(len(pool)))]
            parts.append(run[:window_samples - filled])
            filled += len(parts[-1])
        clips.append(np.concatenate(parts).astype(np.float32))
    return clips


def background_examples(audios: Sequence[LabelledAudio], labels: Sequence[str], rate: int, window_samples: int,
                        count: int, seed: int, source: str = 'background') -> list[LabelledAudio]:
    """``count`` ``background`` clips: a quarter from quiet parts of ``audios``, the rest generated.

    Each clip is as long as a typical clip of ``audios`` (at least one window), so that background gets about
    as many training windows as a real label.

    The model standardises each window's features, so it cannot tell quiet noise from loud noise by level: steady
    noise has to be learnt as background from its texture, hence most clips are generated noise and silence.
    Hum is left out of the generated kinds when a real label is called ``hum`` (the demo classes).
    """
    rng = np.random.default_rng([seed, 7919])
    kinds = [k for k in GENERATED_KINDS if not (k == 'hum' and 'hum' in labels)]
    length = max(window_samples, int(np.median([len(a.samples) for a in audios])) if audios else 0)
    from_quiet = quiet_clips(audios, rate, length, count // 4, rng)
    clips = [(f'{source}/quiet_{i:04d}', c) for i, c in enumerate(from_quiet)]
    for i in range(count - len(clips)):
        kind = kinds[i % len(kinds)]
        clips.append((f'{source}/{kind}_{i:04d}', generated_clip(kind, rng, length, rate)))
    return [LabelledAudio(samples, BACKGROUND_LABEL, name) for name, samples in clips]


def typical_class_size(audios: Sequence[LabelledAudio]) -> int:
    """The median number of files per label (``model.train`` adds twice as many background clips)."""
    counts: dict[str, int] = {}
    for audio in audios:
        counts[audio.label] = counts.get(audio.label, 0) + 1
    return int(np.median(list(counts.values()))) if counts else 0
