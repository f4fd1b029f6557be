"""The local SavedModel handler's request/response shaping, on a real exported model."""
import dataclasses
import shutil

import numpy as np
import pytest
from apache_beam.ml.inference.base import PredictionResult

from model.handlers import SavedModelHandler, iter_windows
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
        assert isinstance(result, PredictionResult)
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
