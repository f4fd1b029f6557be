"""Reviewed detections exported as clips (results/clips.py) in the folder-per-class layout model.train reads, and
a model trained from them."""
from __future__ import annotations

import os

import numpy as np
import soundfile

from audio import encode, synth
from results import reviews
from results.clips import export_clips
from results.store import open_store

RATE = 8000
SECONDS = 1.0
GAP = 0.5


def recording(folder, name: str, label: str, count: int, seed: int) -> tuple[str, list[tuple[float, float]]]:
    """A WAV of ``count`` one-second sounds of ``label`` with half-second gaps; (path, their spans)."""
    rng = np.random.default_rng(seed)
    parts, spans, t = [], [], 0.0
    for _ in range(count):
        parts += [np.zeros(int(GAP * RATE), np.float32), synth.make(label, rng, SECONDS, RATE)]
        spans.append((t + GAP, t + GAP + SECONDS))
        t += GAP + SECONDS
    path = encode.write(str(folder / name), np.concatenate(parts), RATE, 'wav')
    return path, spans


def review_all(store, path: str, spans, label: str, verdict: str) -> None:
    generation = str(os.stat(path).st_mtime_ns)
    for start, end in spans:
        detection = {'audio_file': path, 'generation': generation, 'start_seconds': start, 'end_seconds': end,
                     'label': label, 'confidence': 0.8, 'model_version': 'v1'}
        reviews.record(store, reviews.review_row(detection, verdict, 'test'))


def test_reviewed_clips_are_folders_per_class_and_train_a_model(tmp_path):
    from model.train import main as train

    db = str(tmp_path / 'results.db')
    store = open_store(db)
    for label, seed in (('tone', 1), ('chirp', 2)):
        path, spans = recording(tmp_path, f'{label} field.wav', label, 6, seed)
        review_all(store, path, spans, label, reviews.CORRECT)
    # Clicks the model called tone: wrong, so background.
    path, spans = recording(tmp_path, 'night.wav', 'clicks', 6, 3)
    review_all(store, path, spans, 'tone', reviews.WRONG)
    # A file replaced since it was reviewed gives no clip.
    path, spans = recording(tmp_path, 'replaced.wav', 'tone', 1, 4)
    review_all(store, path, spans, 'tone', reviews.CORRECT)
    os.utime(path, ns=(1, 1))

    out = tmp_path / 'reviewed'
    summary = export_clips(store, str(out))
    assert summary.written == {'tone': 6, 'chirp': 6, 'background': 6}
    assert len(summary.missing) == 1 and 'replaced.wav' in summary.missing[0]
    assert sorted(os.listdir(out)) == ['background', 'chirp', 'tone']
    clip = sorted((out / 'tone').iterdir())[0]
    assert clip.name == 'tone_field_0.50-1.50s.wav'
    info = soundfile.info(str(clip))
    assert info.samplerate == RATE and abs(info.duration - SECONDS) < 1e-3
    assert sorted(os.listdir(out / 'background'))[0].startswith('tone_night_')

    metadata = train(['--data', str(out), '--out', str(tmp_path / 'model'), '--epochs', '1', '--width', '4',
                      '--sample-rate', str(RATE), '--window-samples', '4000', '--hop-samples', '2000',
                      '--test-fraction', '0.34', '--model-version', 'from-reviews'])
    assert metadata.labels == ('background', 'chirp', 'tone')
    assert metadata.training['train']['files'] + metadata.training['test']['files'] == 18


def test_a_wrong_folder_of_the_users_choice_and_context_from_the_command_line(tmp_path, capsys):
    from results.export import main

    db = str(tmp_path / 'results.db')
    path, spans = recording(tmp_path, 'a.wav', 'hum', 2, 5)
    review_all(open_store(db), path, spans, 'tone', reviews.WRONG)
    assert main(['--results', db, '--out', str(tmp_path / 'out'), '--format', 'clips', '--wrong_folder', 'not tone',
                 '--context', '0.25']) == 0
    assert '2 reviewed clips written' in capsys.readouterr().out
    clips = sorted((tmp_path / 'out' / 'not_tone').iterdir())
    assert len(clips) == 2 and abs(soundfile.info(str(clips[0])).duration - (SECONDS + 0.5)) < 1e-3
