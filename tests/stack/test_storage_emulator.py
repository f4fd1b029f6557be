"""stack/storage_emulator.py: the metadata file, written compactly, holds what the emulator's own writer wrote."""
import json

from gcp_storage_emulator.storage import Storage

from stack.storage_emulator import write_metadata_compactly


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
