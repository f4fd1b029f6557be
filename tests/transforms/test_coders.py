"""The coders of sample-carrying elements: same round trip as pickling, sizes without encoding."""
import pickle

import apache_beam as beam
import numpy as np

from audio.records import AudioInfo, AudioObject, DecodedAudio, ProcessedAudio
from model.handlers import FileScores
from transforms.coders import DecodedAudioCoder, FileScoresCoder, Samples, SamplesCoder, register_coders


class _Unpicklable(np.ndarray):
    """An array that fails if anything tries to pickle it (as Beam's default size estimate would)."""

    def __reduce__(self):
        raise AssertionError('the size estimate pickled the samples')


def _decoded(samples):
    return DecodedAudio(source=AudioObject(uri='/in/a.wav', name='a.wav', generation='1'),
                        info=AudioInfo(16000, 1, len(samples) / 16000), samples=samples, sample_rate_hz=16000)


def test_round_trip_keeps_the_record_and_its_samples():
    item = _decoded(np.linspace(-1, 1, 1000, dtype=np.float32))
    coder = DecodedAudioCoder()
    back = coder.decode(coder.encode(item))
    assert back.source == item.source and back.info == item.info
    np.testing.assert_array_equal(back.samples, item.samples)


def test_size_estimate_counts_the_samples_without_encoding_them():
    samples = np.zeros(16000 * 60, np.float32).view(_Unpicklable)
    assert DecodedAudioCoder().estimate_size(_decoded(samples)) >= samples.nbytes
    assert SamplesCoder().estimate_size(samples) >= samples.nbytes
    impl = DecodedAudioCoder().get_impl()  # what Beam's byte counters call
    size, observables = impl.get_estimated_size_and_observables(_decoded(samples))
    assert size >= samples.nbytes and not observables
    assert pickle.loads(SamplesCoder().encode(np.arange(3.0))).tolist() == [0.0, 1.0, 2.0]


def test_the_declared_types_select_these_coders():
    register_coders()
    assert isinstance(beam.coders.registry.get_coder(DecodedAudio), DecodedAudioCoder)
    assert isinstance(beam.coders.registry.get_coder(Samples), SamplesCoder)
    assert not isinstance(beam.coders.registry.get_coder(np.ndarray), SamplesCoder)  # not every array in the process
    scored = beam.coders.registry.get_coder(beam.typehints.Tuple[ProcessedAudio, FileScores])  # RunInference's out
    assert isinstance(scored.coders()[1], FileScoresCoder)


def test_file_scores_are_sized_without_encoding_them():
    scores = FileScores(example=None, inference=np.zeros((1200, 6522), np.float32).view(_Unpicklable),
                        model_id='m', labels=('a',) * 6522)
    size, observables = FileScoresCoder().get_impl().get_estimated_size_and_observables(scores)
    assert size >= scores.inference.nbytes and not observables
    back = FileScoresCoder().decode(FileScoresCoder().encode(scores._replace(inference=np.ones((2, 3), np.float32))))
    assert back.labels == scores.labels and back.inference.tolist() == [[1.0] * 3] * 2


def test_samples_are_a_view_of_the_decoded_array():
    decoded = np.arange(4.0, dtype=np.float32)
    samples = Samples.of(decoded)
    assert isinstance(samples, Samples) and np.shares_memory(samples, decoded)
    assert type(np.asarray(samples, dtype=np.float32)) is np.ndarray


def test_pcm_samples_go_into_inference_as_they_are_and_are_sized_without_encoding():
    from audio.pcm import PcmSamples

    class UnpicklablePcm(PcmSamples):
        __slots__ = ()

        def __reduce__(self):
            raise AssertionError('the size estimate pickled the samples')

    pcm = UnpicklablePcm(np.zeros(48000 * 60, np.int16))
    assert Samples.of(pcm) is pcm and isinstance(pcm, Samples)
    assert SamplesCoder().get_impl().get_estimated_size_and_observables(pcm)[0] >= pcm.nbytes
    assert DecodedAudioCoder().estimate_size(_decoded(pcm)) >= pcm.nbytes
    back = pickle.loads(SamplesCoder().encode(PcmSamples(np.arange(3, dtype=np.int16))))
    assert isinstance(back, PcmSamples) and back.pcm.tolist() == [0, 1, 2]


def test_samples_on_local_disk_go_into_inference_as_they_are_and_are_sized_without_reading_them():
    from audio.spill import SpilledSamples

    class UnpicklableSpill(SpilledSamples):
        __slots__ = ()

        def __reduce__(self):
            raise AssertionError('the size estimate read the samples back')

    spilled = UnpicklableSpill(np.float32)
    spilled.append(np.zeros(48000 * 60, np.float32))
    assert Samples.of(spilled) is spilled and isinstance(spilled, Samples)
    assert SamplesCoder().get_impl().get_estimated_size_and_observables(spilled)[0] >= spilled.nbytes
    assert DecodedAudioCoder().estimate_size(_decoded(spilled)) >= spilled.nbytes == 48000 * 60 * 4
    small = SpilledSamples(np.int16)
    small.append(np.arange(3, dtype=np.int16))
    back = pickle.loads(SamplesCoder().encode(small))
    assert isinstance(back, SpilledSamples) and (np.asarray(back) * 2 ** 15).tolist() == [0, 1, 2]
