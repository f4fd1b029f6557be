"""Spectrograms and audio are read from local files or through the storage client (its emulator here)."""
from __future__ import annotations

import pytest

from app import media
from app.media import MediaUnavailable, audio_mime_type, read_media
from app.units import MB
from tests.app.emulators import storage_emulator

PNG = b'\x89PNG\r\n\x1a\n' + b'\x00' * 64


def test_local_file_and_file_uri(tmp_path):
    path = tmp_path / 'x.png'
    path.write_bytes(PNG)
    assert read_media(str(path), 1000) == PNG
    assert read_media(f'file://{path}', 1000) == PNG


def test_missing_and_oversized_files_are_explained(tmp_path):
    with pytest.raises(MediaUnavailable, match='does not exist'):
        read_media(str(tmp_path / 'gone.png'), 1000)
    (tmp_path / 'big.wav').write_bytes(b'\x00' * (2 * MB))
    with pytest.raises(MediaUnavailable, match=r'is 2\.0 MB, more than the 1 MB'):
        read_media(str(tmp_path / 'big.wav'), MB)
    with pytest.raises(MediaUnavailable, match='no file recorded'):
        read_media('', 1000)


@pytest.mark.parametrize('uri, mime', [('a.wav', 'audio/wav'), ('gs://b/x/y.MP3', 'audio/mpeg'),
                                       ('c.flac', 'audio/flac'), ('d.opus', 'audio/ogg'), ('e.m4a', 'audio/mp4'),
                                       ('f.webm', 'audio/webm')])
def test_audio_mime_types_browsers_play(uri, mime):
    assert audio_mime_type(uri) == mime


@pytest.mark.e2e
def test_gcs_objects_are_read_through_the_storage_client(tmp_path, monkeypatch):
    from google.cloud import storage

    with storage_emulator(str(tmp_path / 'gcs.log')) as host:
        monkeypatch.setenv('STORAGE_EMULATOR_HOST', host)
        media.storage_client.cache_clear()
        try:
            bucket = storage.Client.create_anonymous_client().create_bucket('spectrograms')
            bucket.blob('day/a.wav.png').upload_from_string(PNG, content_type='image/png')
            assert read_media('gs://spectrograms/day/a.wav.png', 1000) == PNG
            with pytest.raises(MediaUnavailable, match='does not exist'):
                read_media('gs://spectrograms/day/deleted.png', 1000)
            with pytest.raises(MediaUnavailable, match='is 72 B, more than the 10 B'):
                read_media('gs://spectrograms/day/a.wav.png', 10)
        finally:
            media.storage_client.cache_clear()


def test_browser_formats_are_sent_as_they_are_and_aiff_as_a_wav_copy(tmp_path):
    import io

    import numpy as np
    import soundfile

    from audio import encode, synth

    samples = synth.make('tone', np.random.default_rng(0), 0.5, 16000)
    wav = encode.encode(samples, 16000, 'wav')
    assert media.playable_audio('gs://b/a.wav', wav) == (wav, 'audio/wav', '')
    aiff = encode.encode(samples, 16000, 'aiff')
    data, mime, note = media.playable_audio('/in/take.aiff', aiff)
    assert mime == 'audio/wav' and data[:4] == b'RIFF' and 'AIFF' in note
    copy, rate = soundfile.read(io.BytesIO(data))
    assert rate == 16000 and len(copy) == len(samples)
    with pytest.raises(MediaUnavailable, match='cannot be decoded'):
        media.playable_audio('/in/x.aiff', b'FORM' + b'\x00' * 40)

