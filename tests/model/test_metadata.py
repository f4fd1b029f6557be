"""The model contract's metadata file: round trip and windowing arithmetic."""
import dataclasses
import json

import pytest

from model.metadata import (METADATA_FILE, ModelMetadata, incompatibilities, load_metadata, model_dir_of,
                            save_metadata)


def test_metadata_round_trip(tmp_path):
    metadata = ModelMetadata(model_version='v7', labels=('a', 'b'), sample_rate_hz=8000, window_samples=4000,
                             hop_samples=1000, features={'n_mels': 40}, training={'files': 3},
                             metrics={'test_accuracy': 0.9})
    path = save_metadata(metadata, str(tmp_path))
    assert path.endswith(METADATA_FILE)
    assert load_metadata(str(tmp_path)) == metadata
    assert json.loads((tmp_path / METADATA_FILE).read_text())['labels'] == ['a', 'b']


def test_unknown_fields_are_ignored_and_missing_file_is_explained(tmp_path):
    data = json.loads(ModelMetadata(model_version='v', labels=('x',)).to_json())
    assert ModelMetadata.from_json(json.dumps({**data, 'added_later': 1})).labels == ('x',)
    with pytest.raises(FileNotFoundError, match='make model'):
        load_metadata(str(tmp_path))


def test_window_count_and_model_dir_of():
    metadata = ModelMetadata(model_version='v', labels=('x',), window_samples=100, hop_samples=50)
    assert [metadata.window_count(n) for n in (0, 1, 100, 101, 150, 151)] == [1, 1, 1, 2, 2, 3]
    assert model_dir_of('gs://b/models/v2/metadata.json') == 'gs://b/models/v2'
    assert model_dir_of('/m/v3/saved_model.pb') == '/m/v3'
    with pytest.raises(ValueError):
        ModelMetadata(model_version='v', labels=())


def test_an_update_must_keep_labels_their_order_the_rate_the_window_and_the_hop():
    running = ModelMetadata(model_version='v1', labels=('a', 'b', 'c'), sample_rate_hz=16000, window_samples=16000,
                            hop_samples=8000, features={'n_mels': 40}, metrics={'test_accuracy': 0.9})
    # Another version, front end or training figures: compatible (the front end is inside the SavedModel).
    assert incompatibilities(running, dataclasses.replace(running, model_version='v2', features={'n_mels': 64},
                                                          metrics={'test_accuracy': 0.95})) == []
    for change, field in [(dict(labels=('a', 'c', 'b')), 'labels'), (dict(labels=('a', 'b', 'c', 'd')), 'labels'),
                          (dict(labels=('a', 'b', 'x')), 'labels'), (dict(sample_rate_hz=22050), 'sample_rate_hz'),
                          (dict(window_samples=8000), 'window_samples'), (dict(hop_samples=4000), 'hop_samples')]:
        problems = incompatibilities(running, dataclasses.replace(running, model_version='v2', **change))
        assert len(problems) == 1 and problems[0].startswith(field), (change, problems)
