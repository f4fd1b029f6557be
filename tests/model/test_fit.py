"""Training on generated audio: serving-identical windows, better than chance in seconds, reproducible."""
import json
import os
import subprocess
import sys

import numpy as np

from model.evaluate import evaluate_audio
from model.handlers import iter_windows
from model.fit import WindowBatches
from tests.model.tiny import TINY_CONFIG, TINY_LABELS, synthetic_audio

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_batches_hold_every_serving_window_once():
    audios = synthetic_audio(TINY_LABELS, 3, seed=5, rate=TINY_CONFIG.sample_rate_hz)
    windowing = TINY_CONFIG.windowing(TINY_LABELS)
    batches = WindowBatches(audios, TINY_LABELS, TINY_CONFIG, shuffle=False)
    windows = np.concatenate([batches[i][0] for i in range(len(batches))])
    labels = np.concatenate([batches[i][1] for i in range(len(batches))])
    expected = [w for a in audios for w in iter_windows(a.samples, windowing)]
    assert batches.num_windows == sum(windowing.window_count(len(a.samples)) for a in audios)
    np.testing.assert_array_equal(windows, np.stack(expected))
    assert [TINY_LABELS[i] for i in labels] == [a.label for a in audios
                                                for _ in range(windowing.window_count(len(a.samples)))]


def test_tiny_model_beats_chance_on_held_out_files(tiny_trained_model):
    model_dir, metadata, test = tiny_trained_model
    chance = 1 / len(TINY_LABELS)
    report = evaluate_audio(model_dir, test)
    assert report['files'] == len(test) == 18
    assert report['accuracy'] >= chance + 0.3, report['confusion_matrix']
    # What the metadata and the saved report claim is what the exported model scores.
    assert metadata.metrics['test_accuracy'] == report['accuracy']
    with open(os.path.join(model_dir, 'evaluation.json')) as f:
        assert json.load(f)['accuracy'] == report['accuracy']
    assert os.path.getsize(os.path.join(model_dir, 'evaluation_confusion.png')) > 1000
    assert metadata.training['train']['files'] == 36 and metadata.training['config']['seed'] == TINY_CONFIG.seed


TRAIN_ONCE = """
import dataclasses, sys
import numpy as np
from model.fit import train_classifier
from tests.model.tiny import TINY_CONFIG, TINY_LABELS, synthetic_audio
config = dataclasses.replace(TINY_CONFIG, epochs=1, width=4)
audios = synthetic_audio(TINY_LABELS, 3, seed=6, rate=config.sample_rate_hz)
np.savez(sys.argv[1], *train_classifier(audios, TINY_LABELS, config, verbose=0).get_weights())
"""


def test_training_is_deterministic_with_a_seed(tmp_path):
    # Two training runs as `model.train` makes them: each in a process of its own (here at the same time), so
    # nothing a test left running in this process (a server thread, a pipeline's threads) is part of the claim.
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL='2')
    runs = [subprocess.Popen([sys.executable, '-c', TRAIN_ONCE, str(tmp_path / f'{k}.npz')], env=env, cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for k in range(2)]
    for run in runs:
        _, stderr = run.communicate(timeout=300)
        assert run.returncode == 0, stderr[-3000:]
    first, second = (np.load(tmp_path / f'{k}.npz') for k in range(2))
    assert len(first.files) == len(second.files) > 0
    assert all(np.array_equal(first[name], second[name]) for name in first.files)
