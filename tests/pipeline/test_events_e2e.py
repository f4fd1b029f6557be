"""Events through the real pipeline: known sounds at known times in one long recording come out as events.

A small model with a background class is trained here (about 20 s of CPU) on the demo classes; the recording
is built from fresh clips of those classes with 1-2 s of low noise between them (``audio.synth.sequence``).
"""
import numpy as np
import pytest
from PIL import Image

from audio import encode, synth
from model.augment import Augmentation
from model.datasets import LabelledAudio
from model.fit import TrainConfig
from pipeline.main import run
from results import sqlite_store

pytestmark = pytest.mark.e2e

LABELS = ['chirp', 'clicks', 'tone']
RATE = 8000
# Half-second windows every quarter second: one hop is 0.25 s.
CONFIG = TrainConfig(sample_rate_hz=RATE, window_samples=4000, hop_samples=2000, epochs=8, batch_size=16,
                     learning_rate=5e-3, width=8, seed=0, augmentation=Augmentation(shift=True, gain=True, noise=True))
HOP_SECONDS = CONFIG.hop_samples / RATE
SOUNDS = [('tone', 2.0), ('clicks', 2.5), ('chirp', 1.5), ('tone', 1.0), ('clicks', 2.0), ('chirp', 2.5)]


def clips(count_per_label, seed):
    rng = np.random.default_rng(seed)
    return [LabelledAudio(synth.make(label, rng, rng.uniform(0.5, 2.5), RATE), label, f'{label}/{seed}_{i}')
            for i in range(count_per_label) for label in LABELS]


@pytest.fixture(scope='module')
def events_model(tmp_path_factory):
    from model.train import train_and_export, with_background

    train, test, labels = with_background(clips(16, 1), clips(5, 2), LABELS, CONFIG)
    out = str(tmp_path_factory.mktemp('events-model') / 'model')
    train_and_export(train, test, labels, CONFIG, out, 'events-test-1', {'data': 'synthetic'}, verbose=0)
    return out


@pytest.fixture(scope='module')
def recording(tmp_path_factory):
    """(folder holding one 30 s WAV, the truth): six sounds with low-noise gaps, at times the test knows."""
    rng = np.random.default_rng(5)
    sounds = [(synth.make(label, rng, seconds, RATE), label, label) for label, seconds in SOUNDS]
    samples, truth = synth.sequence(sounds, RATE, 30.0, np.random.default_rng(0))
    assert [t.label for t in truth] == [label for label, _ in SOUNDS]
    folder = tmp_path_factory.mktemp('long')
    encode.write(str(folder / 'field recording.wav'), samples, RATE, 'wav')
    return folder, truth


def run_pipeline(folder, db, model, *extra):
    return run(['--input_pattern', f'{folder}/**', '--output_table', str(db), '--spectrogram_location',
                str(db.parent / (db.stem + '_png')), '--model_uri', model, '--direct_num_workers', '1', *extra])


def test_known_sounds_come_out_as_events_in_order_with_their_labels_and_boundaries_within_a_hop(
        events_model, recording, tmp_path):
    folder, truth = recording
    db = tmp_path / 'results.db'
    assert run_pipeline(folder, db, events_model, '--spectrogram_events') == 0

    (row,) = sqlite_store.read_table(str(db), 'processed')
    events = sorted(sqlite_store.read_table(str(db), 'events'), key=lambda e: e['start_seconds'])
    assert [e['label'] for e in events] == [t.label for t in truth]
    assert row['event_count'] == len(truth)
    for event, sound in zip(events, truth):
        assert abs(event['start_seconds'] - sound.start_seconds) <= HOP_SECONDS, (event, sound)
        assert abs(event['end_seconds'] - sound.end_seconds) <= HOP_SECONDS, (event, sound)
        assert 0.5 <= event['confidence'] <= 1
        assert event['audio_file'] == row['audio_file'] and event['generation'] == row['generation']
        assert event['model_version'] == row['model_version'] == 'events-test-1'
        assert event['processed_at'] == row['processed_at']

    # --spectrogram_events: a band strip under the time axis, the plot itself unchanged in width.
    plain = tmp_path / 'plain.db'
    assert run_pipeline(folder, plain, events_model) == 0
    (plain_row,) = sqlite_store.read_table(str(plain), 'processed')
    with Image.open(row['spectrogram_image']) as marked, Image.open(plain_row['spectrogram_image']) as unmarked:
        assert marked.width == unmarked.width and marked.height > unmarked.height


def test_replay_adds_no_events_twice_reprocess_replaces_them_and_events_false_writes_none(
        events_model, recording, tmp_path):
    folder, truth = recording
    db = tmp_path / 'results.db'
    assert run_pipeline(folder, db, events_model) == 0
    first = sqlite_store.read_table(str(db), 'events')
    assert len(first) == len(truth)
    assert run_pipeline(folder, db, events_model) == 0
    assert sqlite_store.read_table(str(db), 'events') == first, 'a replay skips the file: no new events'
    assert run_pipeline(folder, db, events_model, '--reprocess', '--event_min_confidence', '0.999') == 0
    again = sqlite_store.read_table(str(db), 'events')
    assert again != first and all(e['confidence'] >= 0.999 for e in again), 'the new run\'s events replace the old'
    assert {e['processed_at'] for e in again} != {e['processed_at'] for e in first}
    (row,) = sqlite_store.read_table(str(db), 'processed')
    assert row['event_count'] == len(again)
    assert run_pipeline(folder, db, events_model, '--reprocess', '--events=false') == 0
    (row,) = sqlite_store.read_table(str(db), 'processed')
    assert row['event_count'] is None and sqlite_store.read_table(str(db), 'events') == []


def test_label_thresholds_raise_the_minimum_of_the_labels_they_name_only(events_model, recording, tmp_path):
    folder, truth = recording
    default = tmp_path / 'default.db'
    assert run_pipeline(folder, default, events_model) == 0
    thresholds = tmp_path / 'thresholds.json'
    # The form python -m results.thresholds writes: min_confidence is what the pipeline reads.
    thresholds.write_text('{"precision": 0.95, "min_confidence": {"chirp": 0.999, "clicks": 0.999}, "labels": {}}')
    strict = tmp_path / 'strict.db'
    assert run_pipeline(folder, strict, events_model, '--label_thresholds', str(thresholds)) == 0

    def by_label(db, labels):
        return sorted((e['start_seconds'], e['end_seconds'], e['label'], e['confidence'])
                      for e in sqlite_store.read_table(str(db), 'events') if e['label'] in labels)

    assert by_label(strict, {'tone'}) == by_label(default, {'tone'}) != [], 'tone keeps --event_min_confidence'
    named = by_label(strict, {'chirp', 'clicks'})
    assert named != by_label(default, {'chirp', 'clicks'})
    assert all(confidence >= 0.999 for *_, confidence in named)


def test_a_bad_label_thresholds_file_stops_the_run_before_it_starts(events_model, recording, tmp_path, capsys):
    folder, _ = recording
    bad = tmp_path / 'thresholds.json'
    bad.write_text('{"chirp": 1.5}')
    assert run_pipeline(folder, tmp_path / 'r.db', events_model, '--label_thresholds', str(bad)) == 2
    assert '--label_thresholds' in capsys.readouterr().err
    assert not (tmp_path / 'r.db').exists()
