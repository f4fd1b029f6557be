import posixpath

import pytest

from audio.naming import is_audio_name, is_under, safe_component, spectrogram_relpath, spectrogram_uri
from audio.records import AudioObject

AWKWARD = ['a b.wav', 'ünïcødé/ñame.flac', 'x#frag.mp3', 'what?.ogg', '-rf.wav', '--help', 'a/b/c/d.wav',
           '../../etc/passwd', '/abs/path.wav', 'a/../../b.wav', './x.wav', '...', 'a\\..\\b.wav', 'con.wav',
           'x' * 400 + '.wav', '音' * 200 + '.wav', '🎵' * 100 + '.wav', 'new\nline.wav', 'tab\t.wav', '']


@pytest.mark.parametrize('name', AWKWARD)
@pytest.mark.parametrize('location', ['/data/out/spectrograms', 'gs://bucket/spectrograms/'])
def test_output_never_escapes_the_location(name, location):
    uri = spectrogram_uri(location, AudioObject(uri=f'gs://in/{name}', name=name, generation='123'))
    base = location.rstrip('/')
    assert uri.startswith(base + '/')
    relative = uri[len(base) + 1:]
    assert not relative.startswith('/')
    assert '..' not in relative.split('/')
    assert posixpath.normpath(relative) == relative
    for part in relative.split('/'):
        assert part and not part.startswith('-') and len(part.encode('utf-8')) < 255
        assert not any(c in part for c in '#?\n\t\\ ')
    assert uri.endswith('.png')


def test_names_are_deterministic_and_keep_folders_readable():
    obj = AudioObject(uri='gs://b/calls/2026/a b.wav', name='calls/2026/a b.wav', generation='42')
    assert spectrogram_relpath(obj) == spectrogram_relpath(obj)
    assert spectrogram_relpath(obj).startswith('calls/2026/a_b.wav.42.')


def test_objects_that_sanitise_alike_get_different_outputs():
    a = AudioObject(uri='gs://b/a b.wav', name='a b.wav', generation='1')
    b = AudioObject(uri='gs://b/a_b.wav', name='a_b.wav', generation='1')
    newer = AudioObject(uri='gs://b/a b.wav', name='a b.wav', generation='2')
    assert len({spectrogram_relpath(a), spectrogram_relpath(b), spectrogram_relpath(newer)}) == 3


def test_safe_component():
    assert safe_component('-x') == '_x'
    assert safe_component('..') == '_'
    assert safe_component('ñame') == 'ñame'


@pytest.mark.parametrize('name,content_type,expected', [
    ('a.wav', None, True), ('A.MP3', None, True), ('x/y.flac', None, True), ('clip.webm', None, True),
    ('notes.txt', None, False), ('image.png', None, False), ('noext', 'audio/ogg', True), ('noext', None, False),
    ('spectrogram.png', 'image/png', False), ('wav', None, False)])
def test_is_audio_name(name, content_type, expected):
    assert is_audio_name(name, content_type) is expected


def test_is_under():
    assert is_under('gs://b/spectrograms/x.png', 'gs://b/spectrograms')
    assert not is_under('gs://b/spectrograms-old/x.png', 'gs://b/spectrograms')
