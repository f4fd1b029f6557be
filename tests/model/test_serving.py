"""LiteRT serving (model/serving.py) scores what the SavedModel scores, on the same windows.

The parity tolerance is ``serving.PARITY_TOLERANCE`` (1e-4 absolute on each probability); the
models here are real exports (the session's tiny model, and a trained one with a hop that is not
a whole number of frames).
"""
import dataclasses
import json
import logging
import os
import pickle
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest

from model import serving
from model.features import FeatureConfig
from model.handlers import SavedModelHandler, iter_windows
from model.metadata import load_metadata, save_metadata

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _files(metadata, seed=0):
    """Shorter than a window, exactly one, a 5-s clip, more windows than one LiteRT call, silence, a few samples."""
    w, rate = metadata.window_samples, metadata.sample_rate_hz
    rng = np.random.default_rng(seed)
    long_n = (serving.LITERT_WINDOWS_PER_CALL + 5) * metadata.hop_samples + w // 2
    lengths = (w // 3, w, 5 * rate + 11, long_n)
    files = [(rng.uniform(-1, 1, n) * rng.uniform(0.01, 1)).astype(np.float32) for n in lengths]
    return files + [np.zeros(2 * w, np.float32), rng.uniform(-0.5, 0.5, 5).astype(np.float32)]


def _scores(handler, files):
    return [r.inference for r in handler.run_inference(files, handler.load_model())]


@pytest.mark.parametrize('which', ['tiny', 'trained'])
def test_litert_scores_equal_the_savedmodel_within_tolerance(which, tiny_model_dir, tiny_trained_model):
    model_dir = tiny_model_dir if which == 'tiny' else tiny_trained_model[0]
    metadata = load_metadata(model_dir)
    assert serving.LITERT in metadata.serving, 'the export lists its LiteRT file'
    assert os.path.exists(os.path.join(model_dir, metadata.serving[serving.LITERT]['file']))
    assert metadata.serving[serving.LITERT]['parity_max_abs_diff'] <= serving.PARITY_TOLERANCE
    files = _files(metadata)
    litert = serving.local_handler(model_dir)
    assert litert.runtime == serving.LITERT
    reference = _scores(SavedModelHandler(model_dir), files)
    served = _scores(litert, files)
    worst = 0.0
    for expected, got in zip(reference, served):
        assert got.shape == expected.shape
        worst = max(worst, float(np.abs(got - expected).max()))
    assert worst <= serving.PARITY_TOLERANCE
    # The labels the pipeline would give agree, and the scores are not all alike (the check can fail).
    assert [int(np.argmax(e.mean(0))) for e in reference] == [int(np.argmax(g.mean(0))) for g in served]
    assert np.ptp(np.concatenate(reference)) > 10 * serving.PARITY_TOLERANCE


def test_chunking_across_files_does_not_change_litert_scores(tiny_model_dir):
    metadata = load_metadata(tiny_model_dir)
    files = _files(metadata, seed=1)
    whole = _scores(serving.local_handler(tiny_model_dir), files)
    chunked = _scores(serving.local_handler(tiny_model_dir, max_batch_size=3), files)
    for a, b in zip(whole, chunked):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_numpy_front_end_equals_the_graphs_once_per_file(tiny_model_dir):
    """Per-file log-mel patches equal the TensorFlow front end run on each (zero-padded) window."""
    import tensorflow as tf

    from model.features import log_mel

    metadata = load_metadata(tiny_model_dir)
    config = FeatureConfig(**metadata.features)
    samples = np.random.default_rng(2).uniform(-1, 1, 3 * metadata.sample_rate_hz + 123).astype(np.float32)
    patches = np.concatenate(list(serving.window_patches(samples, metadata, serving.LogMelFrontEnd(config),
                                                         windows_per_block=2)))
    windows = np.stack(list(iter_windows(samples, metadata)))
    expected = log_mel(tf.constant(windows), config).numpy()
    assert patches.shape == expected.shape
    np.testing.assert_allclose(patches, expected, atol=1e-3)


def test_the_runtime_is_chosen_from_the_metadata(tiny_model_dir, tmp_path):
    metadata = load_metadata(tiny_model_dir)
    assert serving.choose_runtime(metadata) == serving.LITERT
    assert serving.choose_runtime(metadata, serving.SAVEDMODEL) == serving.SAVEDMODEL
    assert serving.local_handler(tiny_model_dir, runtime='savedmodel').runtime == serving.SAVEDMODEL
    without = dataclasses.replace(metadata, serving={})
    assert serving.choose_runtime(without) == serving.SAVEDMODEL   # an older export: the SavedModel serves
    with pytest.raises(ValueError, match='no LiteRT file'):
        serving.choose_runtime(without, serving.LITERT)
    with pytest.raises(ValueError, match='unknown inference runtime'):
        serving.choose_runtime(metadata, 'onnx')

    # A model whose metadata no longer lists the file serves through the SavedModel, with the same scores.
    old = tmp_path / 'old-export'
    shutil.copytree(tiny_model_dir, old)
    save_metadata(without, str(old))
    os.remove(old / serving.LITERT_FILE)
    handler = serving.local_handler(str(old))
    files = _files(metadata)[:2]
    assert handler.runtime == serving.SAVEDMODEL
    for a, b in zip(_scores(handler, files), _scores(SavedModelHandler(tiny_model_dir), files)):
        np.testing.assert_array_equal(a, b)


def test_the_runtime_is_chosen_once_and_an_update_it_cannot_serve_is_rejected(tiny_model_dir, tmp_path, caplog):
    handler = serving.local_handler(tiny_model_dir)
    assert isinstance(handler, serving.LiteRTHandler)
    metadata = handler.metadata
    without = tmp_path / 'no-litert'
    shutil.copytree(tiny_model_dir, without)
    save_metadata(dataclasses.replace(metadata, model_version='tiny-no-litert', serving={}), str(without))
    with caplog.at_level(logging.ERROR, logger='model.handlers'):
        handler.update_model_path(str(without / 'metadata.json'))
    assert handler.metadata == metadata
    assert 'has no LiteRT file' in caplog.records[-1].getMessage()
    with pytest.raises(ValueError, match='no LiteRT file'):
        serving.LiteRTHandler(str(without))


def test_a_kept_model_is_loaded_once_per_process_for_every_copy_of_the_handler(tiny_model_dir):
    kept = serving.local_handler(tiny_model_dir, keep_model_loaded=True)
    assert kept.keeps_model_loaded
    model = kept.load_model()
    assert pickle.loads(pickle.dumps(kept)).load_model() is model   # the runner's copy finds the same model
    plain = serving.local_handler(tiny_model_dir)
    assert not plain.keeps_model_loaded and plain.load_model() is not model


def test_one_loaded_model_scores_correctly_from_several_threads(tiny_model_dir):
    handler = serving.local_handler(tiny_model_dir)
    model = handler.load_model()
    metadata = handler.metadata
    batches = [_files(metadata, seed=s)[:3] for s in range(4)]
    expected = [[r.inference for r in handler.run_inference(b, model)] for b in batches]
    got = {}

    def score(i):
        for _ in range(3):
            got[i] = [r.inference for r in handler.run_inference(batches[i], model)]

    threads = [threading.Thread(target=score, args=(i,)) for i in range(len(batches))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, results in enumerate(expected):
        for a, b in zip(results, got[i]):
            np.testing.assert_array_equal(a, b)


_NO_TF_SCRIPT = '''
import json, sys
import numpy as np
import pipeline.main  # everything a worker imports for the pipeline's stages
from model.serving import local_handler
handler = local_handler(sys.argv[1])
result = next(iter(handler.run_inference([np.zeros(20000, np.float32)], handler.load_model())))
print(json.dumps({'runtime': handler.runtime, 'windows': len(result.inference),
                  'loaded': {m: m in sys.modules for m in ('tensorflow', 'keras')}}))
'''


def test_a_litert_worker_never_imports_tensorflow(tiny_model_dir):
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL='2')
    out = subprocess.run([sys.executable, '-c', _NO_TF_SCRIPT, tiny_model_dir], env=env, capture_output=True,
                         text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report == {'runtime': 'litert', 'windows': 2, 'loaded': {'tensorflow': False, 'keras': False}}


def test_the_front_end_gives_the_same_for_a_stack_as_one_by_one_and_across_chunks():
    front_end = serving.LogMelFrontEnd(FeatureConfig())
    signals = np.random.default_rng(3).uniform(-1, 1, (3, 16000)).astype(np.float32)
    one_by_one = np.stack([front_end(s) for s in signals])
    np.testing.assert_allclose(front_end(signals), one_by_one, rtol=1e-6, atol=1e-6)
    long = np.random.default_rng(4).uniform(-1, 1, 160 * (3 * front_end.FRAMES_PER_CHUNK + 7)).astype(np.float32)
    whole = front_end(long)   # several FFT chunks, the last one short
    assert whole.shape == (front_end.frame_count(len(long)), 64)
    last_five = long[(len(whole) - 5) * 160:]
    np.testing.assert_allclose(whole[-5:], front_end(last_five), rtol=1e-6, atol=1e-6)


def test_the_front_end_of_zero_padded_signals_skips_only_frames_of_padding_and_gives_the_same_numbers():
    front_end = serving.LogMelFrontEnd(FeatureConfig())
    length = 16000
    rng = np.random.default_rng(3)
    for lengths in ((100, 7000, 4000), (0, 0), (16000, 5), (161, 160, 159, 400)):
        signals = [rng.standard_normal(n).astype(np.float32) for n in lengths]
        padded = np.zeros((len(signals), length), np.float32)
        for row, samples in enumerate(signals):
            padded[row, :len(samples)] = samples
        np.testing.assert_array_equal(front_end.of_zero_padded(signals, length), front_end(padded))
