"""Dataset layout parsers, splits and loading, on files the tests write themselves."""
import numpy as np
import pytest

from model import datasets
from tests.model.tiny import write_wav

SILENCE = np.zeros(800, np.float32)


def test_parse_fsdd_name():
    assert datasets.parse_fsdd_name('7_jackson_32.wav') == ('7', 'jackson', 32)
    assert datasets.parse_fsdd_name('0_george_0.WAV') == ('0', 'george', 0)
    for name in ('7_jackson.wav', 'jackson_7_x.wav', '7_jackson_32.flac', 'readme.md'):
        assert datasets.parse_fsdd_name(name) is None


def test_fsdd_layout_uses_its_own_split(tmp_path):
    for name in ('3_alice_0.wav', '3_alice_4.wav', '3_alice_5.wav', '4_bob_49.wav', '4_bob_2.wav'):
        write_wav(str(tmp_path / name), SILENCE, 8000)
    (tmp_path / 'README.md').write_text('not audio')
    layout, examples = datasets.scan(str(tmp_path))
    assert layout == datasets.FSDD
    assert [(e.label, e.speaker, e.split) for e in examples] == [
        ('3', 'alice', 'test'), ('3', 'alice', 'test'), ('3', 'alice', 'train'), ('4', 'bob', 'test'),
        ('4', 'bob', 'train')]
    train, test = datasets.split(examples, test_fraction=0.5, seed=0)   # the fraction does not apply
    assert [e.path.rsplit('/', 1)[1] for e in train] == ['3_alice_5.wav', '4_bob_49.wav']
    assert len(test) == 3
    train, test = datasets.hold_out_speaker(examples, 'bob')
    assert {e.speaker for e in train} == {'alice'} and {e.speaker for e in test} == {'bob'}
    with pytest.raises(ValueError, match='carol'):
        datasets.hold_out_speaker(examples, 'carol')


def test_folder_per_class_layout_and_stratified_split(tmp_path):
    for label, count in (('dog', 10), ('cat', 5)):
        for i in range(count):
            write_wav(str(tmp_path / label / ('deep' if i % 2 else '') / f'{i}.wav'), SILENCE, 8000)
    (tmp_path / 'dog' / 'notes.txt').write_text('ignored')
    layout, examples = datasets.scan(str(tmp_path))
    assert layout == datasets.FOLDER_PER_CLASS
    assert len(examples) == 15 and {e.label for e in examples} == {'dog', 'cat'}
    train, test = datasets.split(examples, test_fraction=0.2, seed=1)
    assert sorted(e.label for e in test) == ['cat', 'dog', 'dog']
    assert not {e.path for e in train} & {e.path for e in test}
    assert len(train) + len(test) == 15
    assert datasets.split(examples, 0.2, seed=1) == (train, test)
    assert datasets.split(examples, 0.2, seed=2) != (train, test)


def test_unknown_layout_is_refused(tmp_path):
    write_wav(str(tmp_path / 'random name.wav'), SILENCE, 8000)
    with pytest.raises(ValueError, match='neither'):
        datasets.scan(str(tmp_path))


def test_load_audio_downmixes_and_resamples(tmp_path):
    t = np.arange(8000) / 8000
    left = 0.5 * np.sin(2 * np.pi * 440 * t)
    path = write_wav(str(tmp_path / 'stereo.wav'), np.stack([left, left], axis=1), 8000)
    samples = datasets.load_audio(path, 16000)
    assert samples.dtype == np.float32 and samples.shape == (16000,)
    # The same tone, still at 440 Hz: the spectrum's peak is in the right bin after resampling.
    spectrum = np.abs(np.fft.rfft(samples))
    assert abs(np.argmax(spectrum) * 16000 / len(samples) - 440) <= 1
