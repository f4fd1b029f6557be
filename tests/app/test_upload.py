"""Uploads land in the pipeline's input (a folder, or a bucket in the Cloud Storage emulator), safely."""
from __future__ import annotations

import os

import pytest

from app import upload
from app.upload import check_upload, safe_name, save_upload
from app.units import MB
from tests.app.emulators import storage_emulator

MAX = MB   # the page's 1 MB: 1,000,000 bytes
WAV = b'RIFF' + b'\x00' * 100  # the bytes are not inspected: the pipeline decodes, and reports bad audio itself


@pytest.mark.parametrize('name, expected', [
    ('a.wav', 'a.wav'),
    ('../../etc/cron.d/x.wav', 'x.wav'),
    ('C:\\Users\\me\\take 1.FLAC', 'take_1.flac'),
    ('-rf.mp3', '_rf.mp3'),
    ('.hidden.ogg', 'hidden.ogg'),
    ('.wav', '_.wav'),
    ('what?#1.m4a', 'what_1.m4a'),
    ('ünïcødé.opus', 'ünïcødé.opus'),
    ('🎵🎶.wav', 'musical_note-multiple_musical_notes.wav'),   # symbols only: spelled out, not '_.wav'
    ('😀.mp3', 'grinning_face.mp3'),
    ('*draft* __v2__ take ~~old~~.wav', 'draft___v2___take_old.wav'),
])
def test_safe_name_keeps_a_plain_base_name_and_its_extension(name, expected):
    assert safe_name(name) == expected


def test_long_non_ascii_names_fit_the_file_name_limit(tmp_path):
    # 200 CJK characters are 600 bytes: cut by bytes (not characters), at a character boundary.
    name = '録音' * 100 + '.wav'
    outcome = save_upload(str(tmp_path), name, WAV, MAX)
    assert outcome.ok, outcome.message
    saved = os.path.basename(outcome.saved_as)
    assert len(saved.encode('utf-8')) <= 255 and saved.startswith('録音録音') and saved.endswith('.wav')
    again = save_upload(str(tmp_path), name, WAV, MAX)  # its -1 twin fits too
    assert again.ok and len(os.path.basename(again.saved_as).encode('utf-8')) <= 255


def test_emoji_only_names_do_not_collapse(tmp_path):
    a = save_upload(str(tmp_path), '🎸.wav', WAV, MAX)
    b = save_upload(str(tmp_path), '🥁.wav', WAV, MAX)
    assert {os.path.basename(a.saved_as), os.path.basename(b.saved_as)} == {'guitar.wav', 'drum_with_drumsticks.wav'}


def test_saved_uploads_are_readable_by_other_users(tmp_path):
    outcome = save_upload(str(tmp_path), 'a.wav', WAV, MAX)
    assert os.stat(outcome.saved_as).st_mode & 0o777 == 0o644


def test_a_save_error_names_no_server_path(tmp_path):
    blocker = tmp_path / 'not-a-folder'
    blocker.write_text('a file where the input folder should be')
    outcome = save_upload(str(blocker / 'inbox'), 'a.wav', WAV, MAX)
    assert not outcome.ok and 'could not be saved' in outcome.message
    assert str(tmp_path) not in outcome.message, outcome.message


@pytest.mark.parametrize('name, size, problem', [
    ('song.wav', 10, ''),
    ('SONG.MP3', 10, ''),
    ('notes.txt', 10, 'not an audio file'),
    ('no_extension', 10, 'not an audio file'),
    ('empty.wav', 0, 'the file is empty'),
    ('big.flac', MAX + 1, 'over the 1 MB limit'),
])
def test_check_upload_says_why_a_file_is_refused(name, size, problem):
    found = check_upload(name, size, MAX)
    assert (problem in found) if problem else found == ''


def test_refused_file_is_not_written(tmp_path):
    outcome = save_upload(str(tmp_path), 'report.pdf', b'%PDF', MAX)
    assert not outcome.ok and outcome.message.startswith('report.pdf: not an audio file; allowed extensions: ')
    assert os.listdir(tmp_path) == []


def test_local_upload_never_escapes_or_overwrites(tmp_path):
    inbox = tmp_path / 'input'
    first = save_upload(str(inbox), '../outside.wav', WAV, MAX)
    second = save_upload(str(inbox), 'outside.wav', WAV + b'2', MAX)
    assert first.ok and second.ok
    assert first.saved_as == str(inbox / 'outside.wav') and second.saved_as == str(inbox / 'outside-1.wav')
    assert (inbox / 'outside.wav').read_bytes() == WAV and (inbox / 'outside-1.wav').read_bytes() == WAV + b'2'
    assert sorted(os.listdir(tmp_path)) == ['input']
    assert sorted(os.listdir(inbox)) == ['outside-1.wav', 'outside.wav']  # no temporary file left behind


def test_a_failed_write_is_reported_not_raised(tmp_path):
    blocker = tmp_path / 'not-a-folder'
    blocker.write_text('a file where the input folder should be')
    outcome = save_upload(str(blocker), 'a.wav', WAV, MAX)
    assert not outcome.ok and 'could not be saved' in outcome.problem


@pytest.mark.e2e
def test_upload_to_the_watched_bucket_in_the_storage_emulator(tmp_path, monkeypatch):
    from google.cloud import storage

    with storage_emulator(str(tmp_path / 'gcs.log')) as host:
        monkeypatch.setenv('STORAGE_EMULATOR_HOST', host)
        upload.storage_client.cache_clear()  # the client is cached per process; this one talks to the emulator
        try:
            client = storage.Client.create_anonymous_client()
            client.create_bucket('watched')
            first = save_upload('gs://watched/uploads/', 'take 1.wav', WAV, MAX)
            second = save_upload('gs://watched/uploads', 'take 1.wav', WAV + b'2', MAX)
            assert first.saved_as == 'gs://watched/uploads/take_1.wav'
            assert second.saved_as == 'gs://watched/uploads/take_1-1.wav'  # the first object is not replaced
            blob = client.bucket('watched').get_blob('uploads/take_1.wav')
            assert blob.download_as_bytes() == WAV and blob.content_type == 'audio/wav'
            missing = save_upload('gs://no-such-bucket/in/', 'a.wav', WAV, MAX)
            assert not missing.ok and 'could not be saved' in missing.problem
        finally:
            upload.storage_client.cache_clear()
