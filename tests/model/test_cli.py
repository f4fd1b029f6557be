"""The training and demo command lines, end to end on tiny generated datasets (seconds each)."""
import json
import os

import numpy as np

from model import demo, train
from model.metadata import load_metadata
from tests.model.tiny import synthetic_audio, write_wav

TINY_ARGS = ['--epochs', '2', '--width', '4', '--sample-rate', '8000', '--window-samples', '4000',
             '--hop-samples', '2000', '--seed', '1', '--augment', 'shift,gain,noise,mask']


def test_train_cli_on_folder_per_class_data(tmp_path, capsys):
    data, out = tmp_path / 'data', tmp_path / 'model'
    assert demo.write_dataset(str(data), files_per_class=4, seed=0, rate=8000) == 20
    metadata = train.main(['--data', str(data), '--out', str(out), '--test-fraction', '0.25',
                           '--model-version', 'cli-1'] + TINY_ARGS)
    assert load_metadata(str(out)) == metadata
    assert metadata.labels == demo.LABELS and metadata.sample_rate_hz == 8000
    assert metadata.training['layout'] == 'folder-per-class'
    assert (metadata.training['train']['files'], metadata.metrics['test_files']) == (15, 5)
    assert metadata.training['config']['augmentation'] == ['shift', 'gain', 'noise', 'mask']
    assert json.loads((out / 'evaluation.json').read_text())['accuracy'] == metadata.metrics['test_accuracy']
    assert 'held-out accuracy' in capsys.readouterr().out


def test_train_cli_on_fsdd_layout_holding_out_a_speaker(tmp_path):
    data, out = tmp_path / 'fsdd', tmp_path / 'model'
    rng = np.random.default_rng(0)
    for digit, label in enumerate(('tone', 'clicks')):
        for speaker in ('ann', 'bo'):
            for index in (0, 7, 8):
                samples = synthetic_audio([label], 1, seed=int(rng.integers(1 << 30)), rate=8000)[0].samples
                write_wav(str(data / f'{digit}_{speaker}_{index}.wav'), samples, 8000)
    metadata = train.main(['--data', str(data), '--out', str(out), '--hold-out-speaker', 'bo'] + TINY_ARGS)
    assert metadata.labels == ('0', '1')
    assert metadata.training['split'] == 'leave-one-speaker-out: bo'
    assert (metadata.training['train']['files'], metadata.metrics['test_files']) == (6, 6)
    assert os.path.basename(str(out)) in metadata.model_version
