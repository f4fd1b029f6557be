import io

import apache_beam as beam
import numpy as np
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from audio.records import AudioObject
from tests.helpers import run_dofn, unwrapped, write_bytes, write_clip
from transforms.decode import DecodeAudio
from transforms.failures import Retrier


def test_decode_stage_splits_good_and_bad_files(tmp_path):
    good = write_clip(tmp_path, 'a.flac', 'flac', seconds=2.0, rate=44100, channels=2)
    empty = write_bytes(tmp_path, 'e.wav', b'')
    text = write_bytes(tmp_path, 'n.wav', b'hello' * 100)
    missing = str(tmp_path / 'gone.wav')
    objects = [AudioObject(uri=p, name=p.rsplit('/', 1)[-1], generation='1') for p in (good, empty, text, missing)]
    with TestPipeline(runner='FnApiRunner') as p:
        out = p | beam.Create(objects) | DecodeAudio(16000, max_duration_seconds=60)
        assert_that(out.ok | beam.Map(lambda d: (d.source.uri, len(d.samples), d.info.channels,
                                                  d.info.sample_rate_hz)),
                    equal_to([(good, 32000, 2, 44100)]))
        assert_that(out.failed | 'F' >> beam.Map(lambda f: (f.source.uri, f.stage, f.error_type)),
                    equal_to([(empty, 'decode', 'EmptyFile'), (text, 'decode', 'NotAudio'),
                              (missing, 'read', 'ObjectGone')]), label='Failures')


def test_too_long_becomes_a_failure(tmp_path):
    path = write_clip(tmp_path, 'long.wav', seconds=6.0)
    with TestPipeline(runner='FnApiRunner') as p:
        out = p | beam.Create([AudioObject(uri=path, name='long.wav')]) | DecodeAudio(16000, max_duration_seconds=5)
        assert_that(out.failed | beam.Map(lambda f: f.error_type), equal_to(['TooLong']))
        assert_that(out.ok, equal_to([]), label='NothingDecoded')


class _FlakyStream(io.BytesIO):
    """A file whose bytes stop arriving after ``good_reads`` reads: Cloud Storage going away mid-file."""

    def __init__(self, data: bytes, good_reads: int):
        super().__init__(data)
        self._left = good_reads

    def read(self, *args):
        if self._left <= 0:
            raise ConnectionError('Connection aborted: storage went away')
        self._left -= 1
        return super().read(*args)

    def readinto(self, buffer):
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


def _decode_once(monkeypatch, obj, streams, retrier):
    """Runs the stage's DoFn on one object, its attempts reading ``streams`` in turn."""
    import transforms.decode as stage
    monkeypatch.setattr(stage, 'open_object', lambda _: streams.pop(0))
    fn = stage._Decode(16000, 60.0, retrier)
    return unwrapped(run_dofn(fn, [obj]))


def test_a_read_that_fails_mid_file_is_retried_not_reported_as_a_damaged_file(tmp_path, monkeypatch):
    data = open(write_clip(tmp_path, 'a.flac', 'flac', seconds=2.0), 'rb').read()
    obj = AudioObject(uri='gs://b/a.flac', name='a.flac', generation='3', size=len(data))
    out = _decode_once(monkeypatch, obj, [_FlakyStream(data, 1), _FlakyStream(data, 10 ** 6)],
                       Retrier(deadline_s=5, initial_s=0.01))
    assert [type(o).__name__ for o in out] == ['DecodedAudio'] and len(out[0].samples) == 32000


def test_a_read_failing_past_the_budget_is_a_retryable_read_error_row(tmp_path, monkeypatch):
    data = open(write_clip(tmp_path, 'a.flac', 'flac', seconds=2.0), 'rb').read()
    obj = AudioObject(uri='gs://b/a.flac', name='a.flac', generation='3', size=len(data))
    streams = [_FlakyStream(data, 1) for _ in range(1000)]
    # A budget that the first attempt cannot use up on a loaded machine (0.2 s once did, at load 9), so the stage
    # does retry before it gives up; the waits start at 10 ms, so it gives up after ~3 s.
    (tagged,) = _decode_once(monkeypatch, obj, streams, Retrier(deadline_s=3, initial_s=0.01))
    failure = tagged.value
    assert (failure.stage, failure.error_type, failure.retryable) == ('read', 'ConnectionError', True)
    assert failure.attempts > 1


def test_a_bad_file_is_one_permanent_row_on_the_first_try_even_with_a_long_budget(tmp_path, monkeypatch):
    data = b'\x00\x01garbage' * 100
    obj = AudioObject(uri='gs://b/fake.ogg', name='fake.ogg', generation='3', size=len(data))
    (tagged,) = _decode_once(monkeypatch, obj, [io.BytesIO(data)], Retrier(deadline_s=600))
    failure = tagged.value
    # One attempt: a second one would have needed a second stream (there is none) after a wait.
    assert (failure.stage, failure.error_type, failure.retryable, failure.attempts) == ('decode', 'NotAudio', False, 1)


def test_files_read_from_the_storage_emulator_at_once_come_out_each_once_and_are_counted(cloud_storage, tmp_path):
    """More small gs:// files than the stage reads at once (transforms/overlap.py), good and bad mixed, the
    overwritten one gone: each file comes out exactly once, as audio or one failure, and Beam counts each."""
    from apache_beam.metrics.metric import MetricsFilter

    from cloud import objects as cloud_objects
    from transforms import METRICS_NAMESPACE
    from transforms.overlap import OVERLAP_FILES

    cloud_objects.storage_client.cache_clear()
    try:
        bucket = cloud_storage.bucket('decode-at-once')
        expected_ok, expected_failed, objects = [], [], []
        for i in range(3 * OVERLAP_FILES):
            name = f'in/clip {i:02d}.wav'
            data = (b'not audio at all ' * 40 if i % 4 == 1 else
                    open(write_clip(tmp_path, f'{i}.wav', seconds=0.5 + 0.1 * i), 'rb').read())
            blob = bucket.blob(name)
            blob.upload_from_string(data)
            obj = AudioObject(uri=f'gs://decode-at-once/{name}', name=name, generation=str(blob.generation),
                              size=len(data))
            if i % 4 == 3:   # overwritten after its notification: its generation is gone
                bucket.blob(name).upload_from_string(data + b'\0')
                expected_failed.append((obj.uri, 'read', 'ObjectGone'))
            elif i % 4 == 1:
                expected_failed.append((obj.uri, 'decode', 'NotAudio'))
            else:
                expected_ok.append((obj.uri, int(16000 * (0.5 + 0.1 * i))))
            objects.append(obj)
        p = TestPipeline(runner='FnApiRunner')
        out = p | beam.Create(objects) | DecodeAudio(16000, max_duration_seconds=60, retrier=Retrier(deadline_s=5))
        assert_that(out.ok | beam.Map(lambda d: (d.source.uri, len(d.samples))), equal_to(expected_ok))
        assert_that(out.failed | 'F' >> beam.Map(lambda f: (f.source.uri, f.stage, f.error_type)),
                    equal_to(expected_failed), label='Failures')
        result = p.run()
        result.wait_until_finish()
        counters = {c.key.metric.name: c.committed
                    for c in result.metrics().query(MetricsFilter().with_namespace(METRICS_NAMESPACE))['counters']}
        assert counters['files_decoded'] == len(expected_ok)
        assert counters['failed_decode'] == counters['failed_read'] == len(expected_failed) // 2
    finally:
        cloud_objects.storage_client.cache_clear()


def test_a_mono_16bit_file_at_the_model_rate_is_held_as_pcm(tmp_path, monkeypatch):
    """The stage keeps 16-bit PCM as int16 (audio/pcm.py): half the memory, the same float32 samples."""
    from audio.decode import decode
    from audio.pcm import PcmSamples

    data = open(write_clip(tmp_path, 'a.wav', 'wav', seconds=2.0), 'rb').read()
    obj = AudioObject(uri='gs://b/a.wav', name='a.wav', generation='3', size=len(data))
    (decoded,) = _decode_once(monkeypatch, obj, [io.BytesIO(data)], Retrier(deadline_s=5))
    floats, _ = decode(io.BytesIO(data), 16000, 60.0)
    assert isinstance(decoded.samples, PcmSamples) and decoded.samples.nbytes * 2 == floats.nbytes
    assert (np.asarray(decoded.samples).view(np.int32) == floats.view(np.int32)).all()


def _long_file(tmp_path, name: str, subtype: str = 'PCM_24', seconds: float = 3.0) -> bytes:
    import soundfile as sf

    samples = (np.random.default_rng(5).standard_normal(int(16000 * seconds)) * 0.2).clip(-1, 1)
    path = str(tmp_path / name)
    sf.write(path, samples.astype(np.float32), 16000, subtype=subtype)
    return open(path, 'rb').read()


def test_a_long_file_is_spilled_to_disk_and_decodes_to_the_same_samples(tmp_path, monkeypatch):
    """Past SPILL_BYTES the stage's samples are on local disk (audio/spill.py): the same float32 values, read
    from gs:// with a read failing mid-file retried as for any file."""
    import transforms.decode as stage
    from audio.decode import decode
    from audio.spill import SpilledSamples

    monkeypatch.setattr(stage, 'SPILL_BYTES', 8 << 10)
    data = _long_file(tmp_path, 'long.flac')
    obj = AudioObject(uri='gs://b/long.flac', name='long.flac', generation='3', size=len(data))
    (decoded,) = _decode_once(monkeypatch, obj, [_FlakyStream(data, 3), _FlakyStream(data, 10 ** 6)],
                              Retrier(deadline_s=5, initial_s=0.01))
    floats, _ = decode(io.BytesIO(data), 16000, 60.0)
    assert isinstance(decoded.samples, SpilledSamples) and len(decoded.samples) == len(floats) == 48000
    assert (np.asarray(decoded.samples).view(np.int32) == floats.view(np.int32)).all()


def test_a_truncated_long_file_is_one_error_row(tmp_path, monkeypatch):
    import transforms.decode as stage

    monkeypatch.setattr(stage, 'SPILL_BYTES', 8 << 10)
    whole = _long_file(tmp_path, 'whole.wav', seconds=4.0)
    cut = write_bytes(tmp_path, 'cut.wav', whole[:len(whole) // 2])
    good = write_bytes(tmp_path, 'good.wav', whole)
    objects = [AudioObject(uri=p, name=p.rsplit('/', 1)[-1], generation='1') for p in (cut, good)]
    with TestPipeline(runner='FnApiRunner') as p:
        out = p | beam.Create(objects) | DecodeAudio(16000, max_duration_seconds=60)
        assert_that(out.ok | beam.Map(lambda d: (d.source.uri, type(d.samples).__name__, len(d.samples))),
                    equal_to([(good, 'SpilledSamples', 64000)]))
        assert_that(out.failed | 'F' >> beam.Map(lambda f: (f.source.uri, f.stage, f.error_type, f.retryable)),
                    equal_to([(cut, 'decode', 'Truncated', False)]), label='Failures')


def test_a_local_disk_that_fails_while_spilling_is_retried_not_the_files_fault(tmp_path, monkeypatch):
    import transforms.decode as stage
    from audio.spill import SpillError, SpilledSamples

    monkeypatch.setattr(stage, 'SPILL_BYTES', 8 << 10)
    writes = []

    def append_once_full(samples, block):
        writes.append(len(block))
        if len(writes) == 1:
            raise SpillError('cannot write the decoded samples to local disk: No space left on device')
        return real_append(samples, block)

    real_append = SpilledSamples.append
    monkeypatch.setattr(SpilledSamples, 'append', append_once_full)
    data = _long_file(tmp_path, 'long.wav')
    obj = AudioObject(uri='gs://b/long.wav', name='long.wav', generation='3', size=len(data))
    (decoded,) = _decode_once(monkeypatch, obj, [io.BytesIO(data), io.BytesIO(data)],
                              Retrier(deadline_s=5, initial_s=0.01))
    assert len(decoded.samples) == 48000 and len(writes) > 1
