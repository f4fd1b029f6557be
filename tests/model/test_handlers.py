"""The local SavedModel handler's request/response shaping, on a real exported model."""
import contextlib
import dataclasses
import logging
import shutil

import numpy as np
import pytest
from apache_beam.metrics.execution import MetricsContainer
from apache_beam.metrics.metricbase import MetricName
from apache_beam.runners.worker import statesampler
from apache_beam.utils import counters

from model.handlers import METRICS_NAMESPACE, FileScores, SavedModelHandler, iter_windows
from model.metadata import load_metadata, save_metadata


@pytest.fixture(scope='module')
def files(tiny_trained_model):
    _, metadata, _ = tiny_trained_model
    w = metadata.window_samples
    rng = np.random.default_rng(0)
    # Shorter than a window, exactly one, a few windows, and empty-ish.
    return [rng.uniform(-0.5, 0.5, n).astype(np.float32) for n in (w // 3, w, 3 * w + 17, 5)]


def test_one_result_per_file_with_one_row_per_window(tiny_trained_model, files):
    model_dir, metadata, _ = tiny_trained_model
    handler = SavedModelHandler(model_dir)
    results = list(handler.run_inference(files, handler.load_model()))
    assert len(results) == len(files)
    for samples, result in zip(files, results):
        assert isinstance(result, FileScores) and result.labels == metadata.labels
        assert result.model_id == 'tiny-v1'
        assert result.inference.shape == (metadata.window_count(len(samples)), len(metadata.labels))
        np.testing.assert_allclose(result.inference.sum(axis=1), 1.0, rtol=1e-5)


def test_chunking_does_not_change_scores(tiny_trained_model, files):
    model_dir, metadata, _ = tiny_trained_model
    whole = SavedModelHandler(model_dir)
    chunked = SavedModelHandler(model_dir, max_batch_size=2)   # at most 2 windows per model call
    model = whole.load_model()
    for a, b in zip(whole.run_inference(files, model), chunked.run_inference(files, model)):
        np.testing.assert_allclose(a.inference, b.inference, atol=1e-6)
    # And each row is the model's score of the window serving cut.
    first = whole.score_windows(model, np.stack(list(iter_windows(files[2], metadata))))
    np.testing.assert_allclose(next(iter(whole.run_inference([files[2]], model))).inference, first, atol=1e-6)


def test_batching_counts_windows_and_update_switches_version(tiny_trained_model, files, tmp_path):
    model_dir, metadata, _ = tiny_trained_model
    handler = SavedModelHandler(model_dir, min_batch_size=2, max_batch_size=64)
    kwargs = handler.batch_elements_kwargs()
    assert (kwargs['min_batch_size'], kwargs['max_batch_size']) == (2, 64)
    assert kwargs['element_size_fn'](('key', files[2])) == metadata.window_count(len(files[2]))
    assert handler.get_num_bytes(files) == sum(f.nbytes for f in files)

    new_dir = tmp_path / 'v2'
    shutil.copytree(model_dir, new_dir)
    save_metadata(dataclasses.replace(load_metadata(model_dir), model_version='tiny-v2'), str(new_dir))
    handler.update_model_path(str(new_dir / 'metadata.json'))
    result = next(iter(handler.run_inference(files[:1], handler.load_model())))
    assert result.model_id == 'tiny-v2'


def counter(container: MetricsContainer, name: str) -> int:
    return container.get_counter(MetricName(METRICS_NAMESPACE, name)).get_cumulative()


@contextlib.contextmanager
def in_a_step(container: MetricsContainer):
    """What a runner does around a DoFn's code: Beam's metrics go to ``container`` (as in Beam's own tests)."""
    sampler = statesampler.StateSampler('', counters.CounterFactory())
    statesampler.set_current_tracker(sampler)
    sampler.start()
    try:
        with sampler.scoped_state('RunInference', 'process', metrics_container=container):
            yield
    finally:
        sampler.stop()
        statesampler.set_current_tracker(None)


def test_an_incompatible_update_is_rejected_once_and_counted_and_a_compatible_one_applied(tiny_trained_model, files,
                                                                                          tmp_path, caplog):
    model_dir, metadata, _ = tiny_trained_model
    handler = SavedModelHandler(model_dir)
    reordered, compatible = tmp_path / 'reordered', tmp_path / 'compatible'
    for target, change in ((reordered, dict(model_version='tiny-reordered', labels=metadata.labels[::-1])),
                           (compatible, dict(model_version='tiny-v3'))):
        shutil.copytree(model_dir, target)
        save_metadata(dataclasses.replace(metadata, **change), str(target))
    container = MetricsContainer('RunInference')
    with in_a_step(container), caplog.at_level(logging.ERROR, logger='model.handlers'):
        for _ in range(2):   # RunInference calls it twice per update: one log line, one count
            handler.update_model_path(str(reordered / 'metadata.json'))
        assert handler.metadata == metadata
        (line,) = [r.getMessage() for r in caplog.records]
        assert line.startswith(f'Model update {reordered} rejected, still serving tiny-v1 from {model_dir}: labels ')
        handler.update_model_path(str(tmp_path / 'no-model-here' / 'metadata.json'))
        assert counter(container, 'model_updates_rejected') == 2 and handler.metadata == metadata

        handler.update_model_path(str(compatible / 'metadata.json'))
        assert counter(container, 'model_updates_applied') == 1
    (result,) = handler.run_inference(files[:1], handler.load_model())
    assert (result.model_id, result.labels) == ('tiny-v3', metadata.labels)
