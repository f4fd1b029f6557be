"""The background class: quiet parts found, clips generated, and accuracy reported with and without it."""
import numpy as np
import pytest

from model.background import background_examples, quiet_runs, typical_class_size
from model.datasets import LabelledAudio
from model.fit import TrainConfig
from model.metadata import BACKGROUND_LABEL
from model.train import accuracy_without_background, with_background

RATE = 8000


def clip_with_gaps() -> np.ndarray:
    """0.2 s of silence, 0.5 s of tone, 0.3 s of silence."""
    t = np.arange(int(0.5 * RATE)) / RATE
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    return np.concatenate([np.zeros(int(0.2 * RATE)), tone, np.zeros(int(0.3 * RATE))]).astype(np.float32)


def test_quiet_runs_are_the_silent_stretches_around_a_sound():
    runs = quiet_runs(clip_with_gaps(), RATE)
    assert [len(r) for r in runs] == [int(0.2 * RATE), int(0.3 * RATE)]
    assert all(not r.any() for r in runs)
    assert quiet_runs(0.5 * np.ones(RATE, np.float32), RATE) == []


def test_background_clips_are_labelled_long_enough_and_leave_out_a_real_label_hum():
    audios = [LabelledAudio(clip_with_gaps(), label, f'{label}/{i}') for i in range(4) for label in ('tone', 'hum')]
    clips = background_examples(audios, ['tone', 'hum'], RATE, 4000, count=12, seed=0)
    assert len(clips) == 12 and {c.label for c in clips} == {BACKGROUND_LABEL}
    assert all(len(c.samples) == RATE for c in clips)   # as long as a typical clip (1 s), at least a window
    names = [c.source.split('/')[-1].split('_')[0] for c in clips]
    assert 'quiet' in names and 'hum' not in names
    assert typical_class_size(audios) == 4


def test_with_background_adds_the_label_and_refuses_data_that_has_it():
    audios = [LabelledAudio(clip_with_gaps(), 'tone', f'tone/{i}') for i in range(3)]
    config = TrainConfig(sample_rate_hz=RATE, window_samples=4000, hop_samples=2000)
    train, test, labels = with_background(audios, audios[:1], ['tone'], config)
    assert labels == ['tone', BACKGROUND_LABEL]
    assert sum(a.label == BACKGROUND_LABEL for a in train) == 6 and sum(a.label == BACKGROUND_LABEL for a in test) == 1
    with pytest.raises(ValueError, match='background'):
        with_background(train, test, labels, config)


def test_accuracy_without_background_counts_the_real_labels_files_only():
    # Rows: true label; a real sound called background counts as wrong.
    report = {'labels': ['a', 'b', BACKGROUND_LABEL], 'confusion_matrix': [[8, 1, 1], [0, 10, 0], [2, 0, 8]]}
    assert accuracy_without_background(report) == {'test_accuracy_real_labels': 18 / 20, 'test_files_real_labels': 20}
