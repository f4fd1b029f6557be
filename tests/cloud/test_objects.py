"""cloud/objects.py against the real storage emulator: one-request writes of small objects, local writes alike."""
import io

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from audio.records import AudioInfo, AudioObject, DecodedAudio
from cloud import objects
from transforms.failures import Retrier
from transforms.spectrogram import RenderSpectrogram


@pytest.fixture
def emulated_client(cloud_storage):
    """The process's storage client, pointed at the emulator for the test (it is cached per process)."""
    objects.storage_client.cache_clear()
    try:
        yield objects.storage_client()
    finally:
        objects.storage_client.cache_clear()


class ObjectRequests:
    """Records the object requests a client sends (they still go to the emulator). The client also fetches
    each bucket's metadata once, in the background; that is not a request about the object."""

    def __init__(self, client, monkeypatch):
        self.calls = []
        session = client._http
        send = session.request

        def recorded(method, url, *args, **kwargs):
            self.calls.append((method, url))
            return send(method, url, *args, **kwargs)
        monkeypatch.setattr(session, 'request', recorded)

    def object_requests(self) -> list[tuple[str, str]]:
        found = []
        for method, url in self.calls:
            path, _, query = url.partition('?')
            if '/o/' in path or path.endswith('/o'):
                found.append((method, query.split('&')[0]))
        return found


def test_a_small_object_is_written_in_one_request_and_rewriting_replaces_it(cloud_storage, emulated_client,
                                                                             monkeypatch):
    cloud_storage.bucket('one-request')
    requests = ObjectRequests(emulated_client, monkeypatch)
    objects.write_object('gs://one-request/spec/a b.png', b'\x89PNG first', 'image/png')
    # One request. Beam's FileSystems.create: a resumable session, then the bytes (two).
    assert requests.object_requests() == [('POST', 'uploadType=multipart')]
    objects.write_object('gs://one-request/spec/a b.png', b'\x89PNG second', 'image/png')
    blobs = list(emulated_client.list_blobs('one-request', prefix='spec/'))
    assert [b.name for b in blobs] == ['spec/a b.png']
    assert blobs[0].content_type == 'image/png' and blobs[0].download_as_bytes() == b'\x89PNG second'


def test_a_local_path_is_written_through_beam(tmp_path):
    target = tmp_path / 'deeper' / 'a.png'
    objects.write_object(str(target), b'\x89PNG local', 'image/png')
    assert target.read_bytes() == b'\x89PNG local'


def test_spectrograms_go_to_the_emulator_and_a_missing_bucket_is_retried_never_the_files_fault(cloud_storage,
                                                                                                emulated_client):
    cloud_storage.bucket('spectrograms')
    samples = np.sin(np.linspace(0, 2000, 16000)).astype(np.float32)
    item = DecodedAudio(source=AudioObject(uri='gs://in/a.wav', name='a.wav', generation='7'),
                        info=AudioInfo(16000, 1, 1.0), samples=samples, sample_rate_hz=16000)
    retrier = Retrier(deadline_s=3, initial_s=0.05)   # a budget the first attempt cannot use up under load
    with TestPipeline(runner='FnApiRunner') as p:
        items = p | beam.Create([item])
        written = items | 'Written' >> RenderSpectrogram('gs://spectrograms/spec', 800, retrier)
        missing = items | 'Missing' >> RenderSpectrogram('gs://no-such-bucket/spec', 800, retrier)
        assert_that(written.ok | beam.Map(lambda d: d.spectrogram_uri.startswith('gs://spectrograms/spec/')),
                    equal_to([True]), label='WrittenOk')
        assert_that(missing.failed | beam.Map(lambda f: (f.stage, f.retryable, f.attempts > 1)),
                    equal_to([('spectrogram', True, True)]), label='MissingRetried')
    [blob] = emulated_client.list_blobs('spectrograms', prefix='spec/')
    assert blob.content_type == 'image/png' and blob.download_as_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def _uploaded(client, bucket: str, name: str, data: bytes) -> AudioObject:
    blob = client.bucket(bucket).blob(name)
    blob.upload_from_string(data)
    return AudioObject(uri=f'gs://{bucket}/{name}', name=name, generation=str(blob.generation), size=len(data))


def test_a_small_object_is_read_whole_in_one_request_at_its_generation(cloud_storage, emulated_client, monkeypatch):
    from google.api_core.exceptions import NotFound

    cloud_storage.bucket('reads')
    old = _uploaded(emulated_client, 'reads', 'a.wav', b'RIFF old bytes')
    new = _uploaded(emulated_client, 'reads', 'a.wav', b'RIFF new bytes')   # overwrites: old's generation is gone
    requests = ObjectRequests(emulated_client, monkeypatch)
    with objects.open_object(new) as f:
        assert f.read(4) == b'RIFF' and f.seek(0) == 0 and f.read() == b'RIFF new bytes'
    assert [method for method, _ in requests.object_requests()] == ['GET']
    with pytest.raises(NotFound):
        objects.open_object(old).read()


def test_an_object_over_the_whole_read_size_is_read_in_chunks_with_the_same_bytes(cloud_storage, emulated_client,
                                                                                  monkeypatch):
    from google.api_core.exceptions import NotFound

    cloud_storage.bucket('reads')
    data = bytes(range(256)) * 64
    old = _uploaded(emulated_client, 'reads', 'big.wav', data)
    monkeypatch.setattr(objects, 'WHOLE_OBJECT_BYTES', len(data) - 1)
    with objects.open_object(old) as f:
        assert f.read() == data and not isinstance(f, io.BytesIO)
    _uploaded(emulated_client, 'reads', 'big.wav', data[::-1])
    with pytest.raises(NotFound):
        objects.open_object(old).read()
