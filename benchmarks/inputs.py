"""The audio the benchmarks run on: a real folder when there is one, else generated files.

The default is the spoken-digit recordings in ``../shared/datasets/fsdd/recordings``
(2,500 short 8 kHz WAVs) when that folder exists; a fresh clone has no
``../shared``, so a comparable set is generated instead. Long files (hours)
are written block by block so making them never holds the whole signal.
"""
from __future__ import annotations

import os
from typing import Optional

import numpy as np
import soundfile as sf

from audio import encode, synth
from audio.naming import is_audio_name

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_FSDD = os.path.join(ROOT, '..', 'shared', 'datasets', 'fsdd', 'recordings')


def list_audio(folder: str) -> list[str]:
    """Every audio file under ``folder`` (recursively), sorted, as absolute paths."""
    found = []
    for dirpath, _, names in os.walk(folder):
        found.extend(os.path.join(dirpath, n) for n in names if is_audio_name(n, None))
    return sorted(os.path.abspath(p) for p in found)


def spread_subset(files: list[str], count: Optional[int]) -> list[str]:
    """``count`` files spread evenly over the sorted list (every speaker and digit, not the first few)."""
    if not count or count >= len(files):
        return list(files)
    step = len(files) / count
    return [files[int(i * step)] for i in range(count)]


def generate_clips(folder: str, count: int, seed: int = 0, min_s: float = 0.3, max_s: float = 1.0,
                   rate: int = 8000) -> list[str]:
    """``count`` short mono 16-bit WAVs of the demo classes, shaped like the spoken-digit set (8 kHz, ~0.5 s)."""
    rng = np.random.default_rng(seed)
    labels = tuple(synth.DEMO_CLASSES)
    os.makedirs(folder, exist_ok=True)
    paths = []
    for i in range(count):
        label = labels[i % len(labels)]
        samples = synth.make(label, rng, float(rng.uniform(min_s, max_s)), rate)
        paths.append(encode.write(os.path.join(folder, f'{i:05d}_{label}.wav'), samples, rate, 'wav'))
    return paths


def default_input(scratch: str, generated_count: int = 2500) -> tuple[str, str]:
    """(folder, description): the shared recordings when present, else a set generated under ``scratch``."""
    if os.path.isdir(SHARED_FSDD) and list_audio(SHARED_FSDD):
        return os.path.abspath(SHARED_FSDD), 'fsdd recordings (../shared/datasets/fsdd/recordings)'
    folder = os.path.join(scratch, f'generated-{generated_count}')
    if len(list_audio(folder)) != generated_count:
        generate_clips(folder, generated_count)
    return folder, f'{generated_count} generated clips (8 kHz mono WAV, 0.3-1.0 s; no ../shared here)'


def write_long_file(path: str, hours: float, rate: int = 44100, channels: int = 2, fmt: str = 'FLAC',
                    subtype: str = 'PCM_16', seed: int = 0) -> str:
    """An ``hours``-long recording (demo sounds one after another), written a minute at a time."""
    rng = np.random.default_rng(seed)
    labels = tuple(synth.DEMO_CLASSES)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    remaining = int(round(hours * 3600 * rate))
    with sf.SoundFile(path, 'w', samplerate=rate, channels=channels, format=fmt, subtype=subtype) as f:
        minute = 0
        while remaining > 0:
            # A minute of one 5-second sound repeated at one gain: varied enough to look like audio,
            # cheap enough to write hours of it in seconds.
            clip = synth.make(labels[minute % len(labels)], rng, 5.0, rate)
            block = (np.tile(clip, 12) * np.float32(rng.uniform(0.5, 1.0)))[:remaining]
            f.write(np.repeat(block[:, None], channels, axis=1) if channels > 1 else block)
            remaining -= len(block)
            minute += 1
    return path


def pipeline_folder(folder: str, files: list[str], scratch: str) -> str:
    """A folder holding exactly ``files`` for the pipeline's glob: ``folder`` itself, or links to a subset."""
    if len(files) == len(list_audio(folder)):
        return folder
    linked = os.path.join(scratch, 'input-subset')
    os.makedirs(linked, exist_ok=True)
    for path in files:
        target = os.path.join(linked, os.path.relpath(path, folder))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if not os.path.lexists(target):
            os.symlink(path, target)
    return linked


def repeated_folder(folder: str, count: int, scratch: str) -> str:
    """A folder of ``count`` links cycling through ``folder``'s files (``copy-K/`` prefixes keep names apart).

    For the memory benchmark's file counts beyond what the input holds: the pipeline sees distinct files.
    """
    files = list_audio(folder)
    if count <= len(files):
        return pipeline_folder(folder, spread_subset(files, count), scratch)
    linked = os.path.join(scratch, f'repeated-{count}')
    for i in range(count):
        path = files[i % len(files)]
        target = os.path.join(linked, f'copy-{i // len(files)}', os.path.relpath(path, folder))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.symlink(path, target)
    return linked


def require_model(model_dir: str) -> str:
    """The model directory, absolute; exits with how to make it when it is missing."""
    if not os.path.exists(os.path.join(model_dir, 'metadata.json')):
        raise SystemExit(f'no model in {model_dir}: run `make model` first (or pass --model DIR)')
    return os.path.abspath(model_dir)


def resolve_input(given: Optional[str], cache: str, generated_count: int = 2500) -> tuple[str, str]:
    """(folder, description) for a benchmark's --input option: the folder given, or the default set."""
    if given:
        return os.path.abspath(given), given
    return default_input(cache, generated_count)
