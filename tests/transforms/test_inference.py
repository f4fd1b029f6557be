import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from audio.records import AudioInfo, AudioObject, DecodedAudio
from audio.synth import sine_sweep
from tests.helpers import DEMO_LABELS
from model.handlers import FileScores, SavedModelHandler
from transforms.coders import register_coders
from transforms.inference import ClassifyAudio, _Aggregate, aggregate


def test_aggregate_takes_the_argmax_of_the_mean():
    probabilities = np.array([[0.8, 0.2, 0.0], [0.2, 0.7, 0.1], [0.3, 0.6, 0.1]])
    result = aggregate(probabilities, ('a', 'b', 'c'), 'v1')
    assert result.label == 'b' and result.windows == 3 and result.model_version == 'v1'
    assert result.confidence == pytest.approx(1.5 / 3)
    assert [label for label, _ in result.scores] == ['a', 'b', 'c']
    assert sum(score for _, score in result.scores) == pytest.approx(1.0)


def item(name, seconds):
    samples = sine_sweep(seconds, 16000)
    return DecodedAudio(source=AudioObject(uri=f'/in/{name}', name=name, generation='1'),
                        info=AudioInfo(16000, 1, seconds), samples=samples, sample_rate_hz=16000,
                        spectrogram_uri=f'/out/{name}.png')


def test_classify_runs_the_saved_model_over_every_window(tiny_model_dir):
    handler = SavedModelHandler(tiny_model_dir, max_batch_size=4)
    items = [item('short.wav', 0.3), item('five.wav', 5.0), item('one.wav', 1.0)]
    with TestPipeline(runner='FnApiRunner') as p:
        out = p | beam.Create(items) | ClassifyAudio(handler)
        summary = out.ok | beam.MapTuple(lambda processed, c: (processed.source.name, processed.spectrogram_uri,
                                                               c.windows, c.model_version, c.label in DEMO_LABELS,
                                                               len(c.scores)))
        assert_that(summary, equal_to([
            ('short.wav', '/out/short.wav.png', 1, 'tiny-test-1', True, 5),
            ('five.wav', '/out/five.wav.png', 9, 'tiny-test-1', True, 5),
            ('one.wav', '/out/one.wav.png', 1, 'tiny-test-1', True, 5)]))
        assert_that(out.failed, equal_to([]), label='NoFailures')


def test_a_failing_batch_becomes_one_failure_per_file(tiny_model_dir):
    class Exploding(SavedModelHandler):
        def score_windows(self, model, windows):
            raise RuntimeError('model exploded')

    with TestPipeline(runner='FnApiRunner') as p:
        out = p | beam.Create([item('a.wav', 1.0), item('b.wav', 2.0)]) | ClassifyAudio(Exploding(tiny_model_dir))
        assert_that(out.failed | beam.Map(lambda f: (f.source.name, f.stage, f.error_type, f.message, f.retryable)),
                    equal_to([('a.wav', 'inference', 'RuntimeError', 'model exploded', True),
                              ('b.wav', 'inference', 'RuntimeError', 'model exploded', True)]))
        assert_that(out.ok, equal_to([]), label='NoResults')


def test_scores_are_named_by_the_labels_of_the_model_that_produced_them():
    """Not by labels captured when the graph was built: the handler's result carries its model's labels."""
    processed = object()
    scores = FileScores(example=None, inference=np.array([[0.1, 0.9]]), model_id='other-v2', labels=('yes', 'no'))
    ((_, classification),) = list(_Aggregate().process((processed, scores)))
    assert (classification.label, classification.model_version) == ('no', 'other-v2')
    assert [label for label, _ in classification.scores] == ['yes', 'no']


def test_events_come_from_the_same_windows_and_labels_as_the_file_label():
    """After a model update the events are named by the new model's labels too (they travel with the scores)."""
    from audio.records import AudioInfo, AudioObject, ProcessedAudio
    from model.metadata import ModelMetadata
    from transforms.inference import event_settings

    item = ProcessedAudio(AudioObject('f.wav', 'f.wav', '1'), AudioInfo(16000, 1, 2.5), 'f.png')
    windowing = ModelMetadata(model_version='v1', labels=('a', 'b', 'background'))   # 1 s windows, 0.5 s hop
    probabilities = np.array([[.1, .1, .8], [.9, .05, .05], [.8, .1, .1], [.1, .1, .8]], dtype=np.float32)
    scores = FileScores(example=None, inference=probabilities, model_id='v2', labels=('yes', 'no', 'background'))
    ((_, result),) = list(_Aggregate(windowing, event_settings(0.5)).process((item, scores)))
    (event,) = result.events
    assert (event.label, event.start_seconds, event.end_seconds) == ('yes', 1.0, 1.5)
    assert event.confidence == pytest.approx(0.85)
    ((_, without),) = list(_Aggregate(windowing, None).process((item, scores)))
    assert without.events is None and without.label == result.label


def test_a_multi_label_file_is_its_most_confident_label_and_keeps_only_its_top_scores():
    from transforms.inference import TOP_SCORES, LabelRules

    labels = tuple(f's{i}' for i in range(30))
    probabilities = np.full((3, 30), 0.01, dtype=np.float32)
    probabilities[0, 7] = 0.9      # heard once, loudly
    probabilities[:, 3] = 0.5      # heard throughout, less sure
    probabilities[1, 12:24] = np.linspace(0.2, 0.3, 12)
    result = aggregate(probabilities, labels, 'v1', rules=LabelRules(multi_label=True))
    assert (result.label, result.confidence) == ('s7', pytest.approx(0.9))
    assert len(result.scores) == TOP_SCORES and result.scores[:2] == (('s7', pytest.approx(0.9)),
                                                                      ('s3', pytest.approx(0.5)))
    listed = aggregate(probabilities, labels, 'v1', rules=LabelRules(True, frozenset({'s3', 's29'})))
    assert listed.label == 's3' and [label for label, _ in listed.scores] == ['s3', 's29']


def test_a_file_with_no_window_is_an_inference_error_row():
    from audio.records import ProcessedAudio
    from model.metadata import ModelMetadata

    item = ProcessedAudio(AudioObject('f.wav', 'f.wav', '1'), AudioInfo(48000, 1, 1.2), 'f.png')
    scores = FileScores(example=None, inference=np.zeros((0, 2), np.float32), model_id='v', labels=('a', 'b'))
    (failed,) = list(_Aggregate(ModelMetadata(model_version='v', labels=('a', 'b'))).process((item, scores)))
    assert (failed.value.stage, failed.value.error_type) == ('inference', 'TooShort')


class _UnpicklableScores(np.ndarray):
    """Scores that fail if anything pickles them (as Beam's size estimate of an untyped output would)."""

    def __reduce__(self):
        raise AssertionError('the size estimate pickled the scores')


def test_the_scores_out_of_run_inference_are_sized_without_pickling_them(tiny_model_dir):
    """Beam sizes a sample of every step's outputs; RunInference's carry each file's [windows, labels] scores
    (31 MB for an hour of BirdNET), typed so that their coder reads the size off the array."""
    class Sized(SavedModelHandler):
        def run_inference(self, batch, model, inference_args=None):
            return [r._replace(inference=r.inference.view(_UnpicklableScores))
                    for r in super().run_inference(batch, model, inference_args)]

    register_coders()   # as build_pipeline does
    with TestPipeline(runner='FnApiRunner') as p:
        out = p | beam.Create([item('a.wav', 1.0), item('b.wav', 2.0)]) | ClassifyAudio(Sized(tiny_model_dir))
        assert_that(out.ok | beam.MapTuple(lambda processed, c: (processed.source.name, c.windows)),
                    equal_to([('a.wav', 1), ('b.wav', 3)]))
        assert_that(out.failed, equal_to([]), label='NoFailures')
