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


def test_a_metadata_file_without_the_published_model_keys_loads_as_before():
    old = {'model_version': 'v1', 'labels': ['a', 'b'], 'sample_rate_hz': 16000, 'window_samples': 16000,
           'hop_samples': 8000, 'features': {}, 'training': {}, 'metrics': {}, 'serving': {}}
    metadata = ModelMetadata.from_json(json.dumps(old))
    assert (metadata.runtime, metadata.activation, metadata.multi_label) == ('savedmodel', {'kind': 'probabilities'},
                                                                               False)
    assert (metadata.min_window_samples, metadata.merge_consecutive, metadata.label_fields) == (0, 0, ())
    assert metadata.display_name('a') == 'a' and metadata.label_names('a') == {}


def test_birdnet_windowing_drops_a_tail_shorter_than_the_shortest_window():
    # birdnetlib: a chunk every 3 s while at least 1.5 s remain (zero-padded); nothing for a shorter file.
    metadata = ModelMetadata(model_version='v', labels=('x',), sample_rate_hz=10, window_samples=30,
                             hop_samples=30, min_window_samples=15)
    assert [metadata.window_count(n) for n in (0, 14, 15, 30, 44, 45, 105)] == [0, 0, 1, 1, 1, 2, 4]
    overlapping = metadata.with_hop(10)   # 1-s hop: windows start at 0, 1, ... while 1.5 s remain
    assert overlapping.window_count(100) == 9
    with pytest.raises(ValueError):
        ModelMetadata(model_version='v', labels=('x',), window_samples=30, hop_samples=30, min_window_samples=31)


def test_labels_read_as_names_and_an_update_may_not_change_the_runtime_or_windowing():
    metadata = ModelMetadata(model_version='v', labels=('Turdus merula_Eurasian Blackbird', 'Engine_Engine'),
                             label_fields=('scientific_name', 'common_name'), multi_label=True)
    assert metadata.label_names(metadata.labels[0]) == {'scientific_name': 'Turdus merula',
                                                        'common_name': 'Eurasian Blackbird'}
    assert metadata.display_name(metadata.labels[0]) == 'Eurasian Blackbird'
    assert ModelMetadata.from_json(metadata.to_json()) == metadata
    assert incompatibilities(metadata, dataclasses.replace(metadata, multi_label=False))
    assert incompatibilities(metadata, dataclasses.replace(metadata, min_window_samples=100))


def test_a_species_list_names_labels_whole_or_by_either_name(tmp_path):
    from model.metadata import species_list_labels

    labels = ('Turdus merula_Eurasian Blackbird', 'Parus major_Great Tit', 'Engine_Engine')
    metadata = ModelMetadata(model_version='v', labels=labels, label_fields=('scientific_name', 'common_name'))
    path = tmp_path / 'species.txt'
    path.write_text('# comment\nTurdus merula_Eurasian Blackbird\n\nGreat Tit\n')
    assert species_list_labels(metadata, str(path)) == {labels[0], labels[1]}
    path.write_text('Parus major\nTurdus merla\n')
    with pytest.raises(ValueError, match="'Turdus merla'"):
        species_list_labels(metadata, str(path))


def test_metadata_pickles_with_its_labels_packed_and_comes_back_equal():
    import pickle

    labels = tuple(f'Species {i}_Common name {i}' for i in range(3000))
    metadata = ModelMetadata(model_version='m', labels=labels, window_samples=144000, hop_samples=144000,
                             sample_rate_hz=48000, min_window_samples=72000, training={'epochs': 3})
    packed = pickle.dumps(metadata)
    assert pickle.loads(packed) == metadata
    assert len(packed) < len(pickle.dumps(labels)) / 4
    odd = ModelMetadata(model_version='m', labels=('two\nlines', 'b'))   # a separator in a label: kept as a tuple
    assert pickle.loads(pickle.dumps(odd)) == odd


def test_windowing_only_metadata_counts_windows_as_the_whole():
    metadata = ModelMetadata(model_version='m', labels=tuple('abcdef'), window_samples=300, hop_samples=100,
                             min_window_samples=150, metrics={'accuracy': 1.0})
    windowing = metadata.windowing_only()
    assert len(windowing.labels) == 1 and not windowing.metrics
    for n in (0, 149, 150, 300, 301, 1000, 12345):
        assert windowing.window_count(n) == metadata.window_count(n)
    assert (windowing.sample_rate_hz, windowing.window_samples, windowing.hop_samples) == (
        metadata.sample_rate_hz, metadata.window_samples, metadata.hop_samples)
