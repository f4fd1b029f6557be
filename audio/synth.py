"""Synthetic sounds made with numpy: the demo classes, and test signals.

Used by the demo dataset (``model.demo``), the demo input of ``make run``, the
tests (which make their own audio) and the benchmarks. Every generator is
deterministic given its ``rng``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

Generator = Callable[[np.random.Generator, float, int], np.ndarray]


def _time(duration_s: float, rate: int) -> np.ndarray:
    return np.arange(int(round(duration_s * rate)), dtype=np.float64) / rate


def tone(rng: np.random.Generator, duration_s: float, rate: int) -> np.ndarray:
    """A steady harmonic tone (200-1200 Hz fundamental, a few overtones)."""
    t = _time(duration_s, rate)
    f0 = rng.uniform(200, 1200)
    overtones = ((0.6 / k) * np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 2 * np.pi)) for k in (1, 2, 3))
    x = sum(overtones, np.zeros_like(t))
    return _fade(x, rate)


def chirp(rng: np.random.Generator, duration_s: float, rate: int) -> np.ndarray:
    """A sweep between a low and a high frequency (up or down, exponential)."""
    t = _time(duration_s, rate)
    lo, hi = rng.uniform(150, 500), rng.uniform(2500, min(7000, rate / 2 - 500))
    f_start, f_end = (lo, hi) if rng.random() < 0.5 else (hi, lo)
    length = max(t[-1], 1e-3) if len(t) else 1e-3
    k = (f_end / f_start) ** (1 / length)
    phase = 2 * np.pi * f_start * (k ** t - 1) / np.log(k)
    return _fade(0.6 * np.sin(phase), rate)


def noise_burst(rng: np.random.Generator, duration_s: float, rate: int) -> np.ndarray:
    """Bursts of band-limited noise separated by near-silence."""
    n = int(round(duration_s * rate))
    x = rng.normal(0, 1, n)
    # Crude colouring: a short moving average makes the noise pinker, varied per example.
    width = int(rng.integers(1, 6))
    x = np.convolve(x, np.ones(width) / width, mode='same')
    envelope = np.zeros(n)
    pos = 0
    while pos < n:
        on = int(rng.uniform(0.08, 0.35) * rate)
        off = int(rng.uniform(0.05, 0.25) * rate)
        envelope[pos:pos + on] = 1.0
        pos += on + off
    return 0.4 * x / (np.max(np.abs(x)) + 1e-9) * envelope


def clicks(rng: np.random.Generator, duration_s: float, rate: int) -> np.ndarray:
    """A train of sharp decaying clicks at a steady rate (4-20 per second)."""
    n = int(round(duration_s * rate))
    x = np.zeros(n)
    period = int(rate / rng.uniform(4, 20))
    decay = np.exp(-np.arange(int(0.004 * rate)) / (0.0008 * rate))
    click = decay * rng.choice([-1.0, 1.0], size=len(decay))
    for start in range(int(rng.integers(0, period)), n - len(click), period):
        x[start:start + len(click)] += 0.9 * click
    return x


def hum(rng: np.random.Generator, duration_s: float, rate: int) -> np.ndarray:
    """Near silence with mains hum (50 or 60 Hz and harmonics) and a little hiss."""
    t = _time(duration_s, rate)
    mains = 50.0 if rng.random() < 0.5 else 60.0
    x = sum((0.05 / k) * np.sin(2 * np.pi * k * mains * t) for k in (1, 2, 3))
    return x + rng.normal(0, 0.002, len(t))


DEMO_CLASSES: dict[str, Generator] = {
    'tone': tone,
    'chirp': chirp,
    'noise_burst': noise_burst,
    'clicks': clicks,
    'hum': hum,
}


def sine_sweep(duration_s: float, rate: int, f_start: float = 100.0, f_end: float = 4000.0) -> np.ndarray:
    """A linear sweep, for tests that need a known, non-random signal."""
    t = _time(duration_s, rate)
    phase = 2 * np.pi * (f_start * t + (f_end - f_start) * t ** 2 / (2 * max(duration_s, 1e-9)))
    return (0.5 * np.sin(phase)).astype(np.float32)


@dataclass(frozen=True)
class Placed:
    """Where a sound of a built sequence is: its audible part, in seconds from the start."""
    start_seconds: float
    end_seconds: float
    label: str
    source: str = ''


def audible_extent(samples: np.ndarray, rate: int, within_db: float = 35.0, frame_s: float = 0.02
                   ) -> tuple[int, int]:
    """[first, last) sample of the part of a clip within ``within_db`` of its loudest 20 ms frame."""
    frame = max(int(frame_s * rate), 1)
    frames = max(-(-len(samples) // frame), 1)
    padded = np.pad(np.asarray(samples, np.float64), (0, frames * frame - len(samples)))
    rms = np.sqrt(np.mean(np.square(padded.reshape(frames, frame)), axis=1))
    loud = np.flatnonzero(rms >= rms.max() * 10 ** (-within_db / 20))
    return int(loud[0] * frame), int(min((loud[-1] + 1) * frame, len(samples)))


def sequence(clips: Sequence[tuple[np.ndarray, str, str]], rate: int, seconds: float, rng: np.random.Generator,
             gap_seconds: tuple[float, float] = (1.0, 2.0), noise_dbfs: float = -60.0
             ) -> tuple[np.ndarray, list[Placed]]:
    """A long recording: ``clips`` (samples, label, name) one after another, 1-2 s of low white noise between.

    Stops at the first clip that no longer fits in ``seconds``. Returns the float32 samples and where each
    clip's audible part (``audible_extent``) lies: the truth to score events against.
    """
    total = int(round(seconds * rate))
    out = 10 ** (noise_dbfs / 20) * rng.normal(0, 1, total)
    truth, pos = [], int(rng.uniform(*gap_seconds) * rate)
    for samples, label, name in clips:
        if pos + len(samples) > total:
            break
        out[pos:pos + len(samples)] += samples
        first, last = audible_extent(samples, rate)
        truth.append(Placed((pos + first) / rate, (pos + last) / rate, label, name))
        pos += len(samples) + int(rng.uniform(*gap_seconds) * rate)
    return np.clip(out, -1, 1).astype(np.float32), truth


def make(label: str, rng: np.random.Generator, duration_s: float, rate: int) -> np.ndarray:
    """One example of a demo class, float32, peak below 1 (with a random gain)."""
    x = DEMO_CLASSES[label](rng, duration_s, rate)
    gain = rng.uniform(0.3, 1.0)
    return np.clip(gain * x, -0.99, 0.99).astype(np.float32)


def _fade(x: np.ndarray, rate: int, fade_s: float = 0.01) -> np.ndarray:
    n = min(int(fade_s * rate), len(x) // 2)
    if n:
        ramp = np.linspace(0, 1, n)
        x[:n] *= ramp
        x[-n:] *= ramp[::-1]
    return x
