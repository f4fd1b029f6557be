"""Which files ``python -m stack upload`` sends, under which object names and content types."""
import pytest

from stack.uploads import content_type_of, files_to_upload


def test_folders_keep_relative_names_in_a_stable_order_under_the_prefix(tmp_path):
    for rel in ('b/2.wav', 'a/1.mp3', 'top.flac', 'a/z/deep.ogg'):
        (tmp_path / 'in' / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / 'in' / rel).write_bytes(b'x')
    (tmp_path / 'single.wav').write_bytes(b'y')
    found = files_to_upload([str(tmp_path / 'in'), str(tmp_path / 'single.wav')], prefix='uploads/')
    assert [name for _, name in found] == ['uploads/top.flac', 'uploads/a/1.mp3', 'uploads/a/z/deep.ogg',
                                           'uploads/b/2.wav', 'uploads/single.wav']
    assert all(local.endswith(name.split('/', 1)[1]) for local, name in found)


def test_a_missing_path_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        files_to_upload([str(tmp_path / 'nope')])


def test_content_types():
    assert content_type_of('a.wav') in ('audio/x-wav', 'audio/wav')
    assert content_type_of('a.mp3') == 'audio/mpeg'
    assert content_type_of('noextension') == 'application/octet-stream'
