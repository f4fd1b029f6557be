"""The image's build-time check (Dockerfile: ``python -m pipeline.worker_check --read gs://...``), run here with
Cloud Storage on the storage emulator (a real process)."""
import pytest

from pipeline import worker_check


def test_the_worker_imports_everything_decodes_and_reads_cloud_storage(cloud_storage, capsys):
    cloud_storage.bucket('build-source').blob('cloudbuild/source/1-abc.tgz').upload_from_string(b'x' * 2000)
    assert worker_check.main(['--read', 'gs://build-source/cloudbuild/source/*']) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith('worker check: imported ') and int(lines[0].split()[3]) > 40
    assert lines[1].startswith('worker check: decoded wav, flac, mp3, m4a; rendered a ')
    assert lines[2] == 'worker check: read 1024 bytes of gs://build-source/cloudbuild/source/1-abc.tgz'


def test_nothing_to_read_fails_the_build(cloud_storage):
    cloud_storage.bucket('build-source')
    with pytest.raises(FileNotFoundError, match='nothing matches'):
        worker_check.read_cloud_storage('gs://build-source/no-such-archive/*')
