"""MatchFiles' helpers that run before the pipeline (the local backlog the runner is chosen for)."""
import os

from transforms.sources import local_backlog


def test_the_local_backlog_counts_matching_files_and_their_bytes_not_folders(tmp_path):
    (tmp_path / 'a.wav').write_bytes(b'x' * 10)
    (tmp_path / 'sub').mkdir()
    (tmp_path / 'sub' / 'b.flac').write_bytes(b'y' * 32)
    (tmp_path / 'sub' / 'empty.wav').write_bytes(b'')
    assert local_backlog(os.path.join(tmp_path, '**')) == (3, 42)
    assert local_backlog(os.path.join(tmp_path, '*.wav')) == (1, 10)
    assert local_backlog(os.path.join(tmp_path, 'nothing*')) == (0, 0)
