"""Labelled audio datasets on disk: layout parsers, splits, and loading at the model's rate.

Two layouts are understood:

* folder-per-class: ``DIR/<label>/<anything>.<audio ext>``;
* the Free Spoken Digit Dataset: ``DIR/{label}_{speaker}_{index}.wav``, label
  from the file name, with the dataset's own split (index 0-4 test, 5-49 train).

Parsing only looks at names; ``load`` decodes and resamples with the pipeline's own
decoder, so training sees the samples serving will see.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

import numpy as np

AUDIO_EXTENSIONS = ('.wav', '.flac', '.ogg', '.opus', '.aiff', '.aif', '.mp3', '.m4a', '.webm')
FSDD_NAME = re.compile(r'^(?P<label>[^_/]+)_(?P<speaker>[^_/]+)_(?P<index>\d+)\.wav$', re.IGNORECASE)
FSDD_TEST_INDICES = range(0, 5)   # the dataset's documented split: 0-4 test, 5-49 train
FOLDER_PER_CLASS, FSDD = 'folder-per-class', 'fsdd'
TRAIN, TEST = 'train', 'test'


@dataclass(frozen=True)
class Example:
    path: str
    label: str
    speaker: Optional[str] = None   # FSDD only
    split: Optional[str] = None     # the layout's own split, where it has one


@dataclass(frozen=True)
class LabelledAudio:
    """One decoded file: mono float32 samples at the model's rate."""
    samples: np.ndarray
    label: str
    source: str = ''


def is_audio(name: str) -> bool:
    return name.lower().endswith(AUDIO_EXTENSIONS)


def parse_fsdd_name(name: str) -> Optional[tuple[str, str, int]]:
    """``'7_jackson_32.wav'`` -> ``('7', 'jackson', 32)``; None for other names."""
    match = FSDD_NAME.match(name)
    if not match:
        return None
    return match['label'], match['speaker'], int(match['index'])


def detect_layout(data_dir: str) -> str:
    entries = os.listdir(data_dir)
    if any(os.path.isdir(os.path.join(data_dir, e)) for e in entries):
        return FOLDER_PER_CLASS
    audio = [e for e in entries if is_audio(e)]
    if audio and all(parse_fsdd_name(e) for e in audio):
        return FSDD
    raise ValueError(f'{data_dir}: neither folder-per-class (DIR/<label>/*.wav) nor FSDD '
                     f'({{label}}_{{speaker}}_{{index}}.wav) layout')


def fsdd_examples(data_dir: str) -> list[Example]:
    examples = []
    for name in sorted(os.listdir(data_dir)):
        parsed = parse_fsdd_name(name)
        if parsed:
            label, speaker, index = parsed
            split = TEST if index in FSDD_TEST_INDICES else TRAIN
            examples.append(Example(os.path.join(data_dir, name), label, speaker, split))
    return examples


def folder_per_class_examples(data_dir: str) -> list[Example]:
    examples: list[Example] = []
    for label in sorted(os.listdir(data_dir)):
        class_dir = os.path.join(data_dir, label)
        if not os.path.isdir(class_dir) or label.startswith('.'):
            continue
        for root, _, files in sorted(os.walk(class_dir)):
            examples.extend(Example(os.path.join(root, f), label) for f in sorted(files) if is_audio(f))
    return examples


def scan(data_dir: str, layout: Optional[str] = None) -> tuple[str, list[Example]]:
    """The layout (detected unless given) and every example, sorted by path."""
    layout = layout or detect_layout(data_dir)
    examples = fsdd_examples(data_dir) if layout == FSDD else folder_per_class_examples(data_dir)
    if not examples:
        raise ValueError(f'{data_dir}: no audio files found for layout {layout}')
    return layout, examples


def split(examples: Sequence[Example], test_fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    """Train and test lists: the layout's own split where it has one, else a stratified random one.

    The random split holds out ``test_fraction`` of each class (at least one file
    when a class has two or more), the same for the same seed.
    """
    if all(e.split for e in examples):
        return [e for e in examples if e.split == TRAIN], [e for e in examples if e.split == TEST]
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in sorted({e.label for e in examples}):
        members = [e for e in examples if e.label == label]
        order = rng.permutation(len(members))
        held = int(round(test_fraction * len(members)))
        held = min(max(held, 1 if len(members) > 1 and test_fraction > 0 else 0), len(members) - 1)
        test += [members[i] for i in sorted(order[:held])]
        train += [members[i] for i in sorted(order[held:])]
    return train, test


def hold_out_speaker(examples: Sequence[Example], speaker: str) -> tuple[list[Example], list[Example]]:
    """Leave-one-speaker-out: every file of ``speaker`` is test, every other file is train."""
    if speaker not in {e.speaker for e in examples}:
        raise ValueError(f'no files of speaker {speaker!r}')
    return [e for e in examples if e.speaker != speaker], [e for e in examples if e.speaker == speaker]


def load_audio(path: str, rate: int, max_duration_s: float = 3600.0) -> np.ndarray:
    """Mono float32 samples at ``rate``, decoded exactly as the pipeline decodes (``audio.decode``)."""
    from audio.decode import decode

    with open(path, 'rb') as f:
        samples, _ = decode(f, rate, max_duration_s)
    return np.ascontiguousarray(samples, dtype=np.float32)


def load(examples: Iterable[Example], rate: int) -> list[LabelledAudio]:
    return [LabelledAudio(load_audio(e.path, rate), e.label, e.path) for e in examples]
