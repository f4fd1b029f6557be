"""Evaluation figures, the report files and the evaluate CLI."""
import json

import numpy as np
import pytest

from model import evaluate
from tests.model.tiny import TINY_CONFIG, synthetic_audio, write_wav


def test_confusion_matrix_and_report():
    matrix = evaluate.confusion_matrix(np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 1, 0]), 3)
    assert matrix.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    report = evaluate.classification_report(matrix, ['a', 'b', 'c'])
    assert report['accuracy'] == pytest.approx(0.6)
    assert report['per_class']['a'] == {'precision': 0.5, 'recall': 0.5, 'f1': 0.5, 'support': 2}
    assert report['per_class']['b']['precision'] == pytest.approx(2 / 3)
    assert report['per_class']['c'] == {'precision': 0.0, 'recall': 0.0, 'f1': 0.0, 'support': 1}


def test_evaluate_cli_writes_report_and_png(tiny_trained_model, tmp_path):
    model_dir, metadata, _ = tiny_trained_model
    data = tmp_path / 'data'
    for audio in synthetic_audio(metadata.labels, 2, seed=9, rate=22050):   # resampled to the model's rate
        write_wav(str(data / (audio.source + '.wav')), audio.samples, 22050)
    report_path = tmp_path / 'out' / 'report.json'
    evaluate.main(['--model', model_dir, '--data', str(data), '--report', str(report_path)])
    report = json.loads(report_path.read_text())
    assert 0 <= report['accuracy'] <= 1 and report['files'] == 6
    assert report['labels'] == list(metadata.labels) and np.array(report['confusion_matrix']).sum() == 6
    assert report['model_version'] == 'tiny-v1'
    png = tmp_path / 'out' / report['confusion_matrix_png']
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_evaluate_refuses_labels_the_model_does_not_know(tiny_trained_model):
    model_dir, _, _ = tiny_trained_model
    audio = synthetic_audio(['chirp'], 1, seed=0, rate=TINY_CONFIG.sample_rate_hz)
    with pytest.raises(ValueError, match='chirp'):
        evaluate.evaluate_audio(model_dir, audio)
