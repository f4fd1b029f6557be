"""stack/storage_emulator.py: the metadata, kept as a compact snapshot plus a journal of one-object changes,
reads back as what the emulator's own writer wrote."""
import json

import pytest
from gcp_storage_emulator.storage import Storage

from stack import storage_emulator
from stack.storage_emulator import JOURNAL, META, journal_metadata, write_metadata_compactly


@pytest.fixture
def journaled_storage():
    """``Storage`` with the journal installed on a subclass (the emulator's own class is left as it is)."""
    class Journaled(Storage):
        pass

    journal_metadata(Journaled)
    return Journaled


def _metadata(storage) -> dict:
    return {section: getattr(storage, section) for section in storage_emulator.SECTIONS}


def _theirs(tmp_path, storage) -> dict:
    """What the emulator's own writer writes for ``storage``'s metadata, read back by its own reader."""
    plain = Storage(data_dir=str(tmp_path / 'plain'))
    for section, value in _metadata(storage).items():
        setattr(plain, section, json.loads(json.dumps(value)))
    plain._write_config_to_file()
    return _metadata(Storage(data_dir=str(tmp_path / 'plain')))


def test_compact_metadata_has_the_same_content_and_is_read_back(tmp_path):
    storage = Storage(data_dir=str(tmp_path))
    storage.create_bucket('b', {'name': 'b', 'id': 'b'})
    storage.create_file('b', 'dir/a b.wav', b'RIFF', {'name': 'dir/a b.wav', 'bucket': 'b', 'generation': '7'})
    storage._write_config_to_file()   # the emulator's own writer (indented)
    theirs = json.loads(storage._store.read_bytes('.meta'))
    write_metadata_compactly(storage)
    ours = storage._store.read_bytes('.meta')
    assert json.loads(ours) == theirs and b'\n' not in ours
    restarted = Storage(data_dir=str(tmp_path))   # what a restart on the same data directory reads
    assert restarted.get_file_obj('b', 'dir/a b.wav')['generation'] == '7'
    assert restarted.get_file('b', 'dir/a b.wav') == b'RIFF'


def _obj(name: str, generation: int) -> dict:
    return {'name': name, 'bucket': 'b', 'generation': str(generation)}


def test_one_object_writes_append_a_line_and_a_restart_reads_the_same_metadata(tmp_path, journaled_storage):
    storage = journaled_storage(data_dir=str(tmp_path))
    storage.create_bucket('b', {'name': 'b', 'id': 'b'})    # not one object's change: a snapshot
    snapshot = storage._store.read_bytes(META)
    storage.create_file('b', 'a.wav', b'A', _obj('a.wav', 1))
    storage.create_file('b', 'a.wav', b'AA', _obj('a.wav', 2))                  # overwritten
    storage.create_file('b', 'dir/c #1.wav', b'C', _obj('dir/c #1.wav', 3))
    upload = storage.create_resumable_upload('b', 'r.wav', _obj('r.wav', 4))
    assert storage.add_to_resumable_upload(upload, b'RR', total_size=2) == b'RR'
    storage.create_file('b', 'r.wav', b'RR', _obj('r.wav', 4), upload)          # the session ends
    storage.patch_object('b', 'dir/c #1.wav', {**_obj('dir/c #1.wav', 3), 'metadata': {'k': 'v'}})
    storage.create_file('b', 'gone.wav', b'G', _obj('gone.wav', 5))
    storage.delete_file('b', 'gone.wav')

    assert storage._store.read_bytes(META) == snapshot           # no whole rewrite per object
    lines = storage._store._disk_path(JOURNAL).read_text().splitlines()
    assert len(lines) == 10
    restarted = journaled_storage(data_dir=str(tmp_path))
    assert _metadata(restarted) == _theirs(tmp_path, storage)
    assert restarted.get_file_obj('b', 'a.wav')['generation'] == '2' and restarted.get_file('b', 'a.wav') == b'AA'
    assert restarted.get_file_obj('b', 'dir/c #1.wav')['metadata'] == {'k': 'v'}
    assert 'gone.wav' not in restarted.objects['b'] and restarted.resumable == {}


def test_a_journal_longer_than_the_objects_is_folded_into_a_snapshot(tmp_path, journaled_storage, monkeypatch):
    monkeypatch.setattr(storage_emulator, 'MIN_JOURNAL_LINES', 4)
    storage = journaled_storage(data_dir=str(tmp_path))
    storage.create_bucket('b', {'name': 'b', 'id': 'b'})
    journal = storage._store._disk_path(JOURNAL)
    sizes = []
    for i in range(12):
        storage.create_file('b', 'same.wav', b'x', _obj('same.wav', i))    # one object, rewritten
        sizes.append(len(journal.read_text().splitlines()) if journal.exists() else 0)
    assert max(sizes) <= 4 and 0 in sizes[4:]                 # folded whenever it outgrew max(4, objects)
    assert _metadata(journaled_storage(data_dir=str(tmp_path))) == _theirs(tmp_path, storage)


def test_a_line_cut_short_by_a_crash_is_dropped_and_replaying_a_line_twice_changes_nothing(tmp_path,
                                                                                            journaled_storage):
    storage = journaled_storage(data_dir=str(tmp_path))
    storage.create_bucket('b', {'name': 'b', 'id': 'b'})
    storage.create_file('b', 'a.wav', b'A', _obj('a.wav', 1))
    storage.create_file('b', 'b.wav', b'B', _obj('b.wav', 2))
    journal = storage._store._disk_path(JOURNAL)
    lines = journal.read_text().splitlines()
    # a.wav's line twice (a snapshot written, the journal not yet removed), and a write cut short.
    journal.write_text('\n'.join([lines[0], *lines, lines[1][:len(lines[1]) // 2]]))
    restarted = journaled_storage(data_dir=str(tmp_path))
    assert _metadata(restarted) == _theirs(tmp_path, storage)


def test_in_memory_storage_keeps_no_journal(journaled_storage):
    storage = journaled_storage(use_memory_fs=True, data_dir='/nowhere')
    storage.create_bucket('b', {'name': 'b', 'id': 'b'})
    storage.create_file('b', 'a.wav', b'A', _obj('a.wav', 1))
    assert json.loads(storage._store.read_bytes(META))['objects']['b']['a.wav']['generation'] == '1'
