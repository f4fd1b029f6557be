"""The windowing, chunking and batching that every model handler shares (no model needed)."""
import numpy as np
import pytest

from model.handlers import WindowedClassifierHandler, iter_windows
from model.metadata import ModelMetadata

META = ModelMetadata(model_version='m1', labels=('a', 'b'), sample_rate_hz=10, window_samples=4, hop_samples=2)


@pytest.mark.parametrize('n,expected', [(1, 1), (4, 1), (5, 2), (6, 2), (7, 3), (100, 49)])
def test_window_count_covers_every_sample(n, expected):
    windows = list(iter_windows(np.arange(n, dtype=np.float32), META))
    assert len(windows) == expected == META.window_count(n)
    assert all(len(w) == 4 for w in windows)
    covered = set()
    for i in range(len(windows)):
        covered.update(range(i * 2, min(i * 2 + 4, n)))
    assert covered == set(range(n))


def test_last_window_is_zero_padded():
    *_, last = iter_windows(np.arange(1, 6, dtype=np.float32), META)
    np.testing.assert_array_equal(last, [3, 4, 5, 0])


class SumHandler(WindowedClassifierHandler):
    """Scores a window by its sum: makes the chunking observable without a model."""

    def __init__(self, **kwargs):
        super().__init__('unused', metadata=META, **kwargs)
        self.calls = []

    def load_model(self):
        return None

    def score_windows(self, model, windows):
        self.calls.append(len(windows))
        s = windows.sum(axis=1)
        return np.stack([s, -s], axis=1).astype(np.float32)


def test_run_inference_chunks_windows_and_splits_results_per_file():
    handler = SumHandler(max_batch_size=3)
    batch = [np.ones(4, np.float32), np.ones(8, np.float32) * 2, np.ones(1, np.float32)]
    results = handler.run_inference(batch, model=None)
    assert [r.inference.shape for r in results] == [(1, 2), (3, 2), (1, 2)]
    assert handler.calls == [3, 2]  # 5 windows in calls of at most 3
    np.testing.assert_array_equal(results[1].inference[:, 0], [8, 8, 8])
    assert {r.model_id for r in results} == {'m1'}


def test_batches_are_weighted_by_windows_and_sized_by_bytes():
    handler = SumHandler(min_batch_size=2, max_batch_size=64, max_batch_duration_secs=3)
    kwargs = handler.batch_elements_kwargs()
    assert kwargs['min_batch_size'] == 2 and kwargs['max_batch_size'] == 64 and kwargs['max_batch_duration_secs'] == 3
    assert kwargs['element_size_fn'](('key', np.zeros(9, np.float32))) == 4
    assert handler.get_num_bytes([np.zeros(10, np.float32)]) == 40


def test_pcm_samples_give_the_windows_and_scores_of_their_floats():
    """16-bit PCM (audio/pcm.py) is read a window at a time: the same float32 windows, bit for bit."""
    from audio.pcm import PcmSamples

    pcm = PcmSamples(np.random.default_rng(0).integers(-32768, 32768, 11, dtype=np.int16))
    floats = np.asarray(pcm)
    for window, expected in zip(iter_windows(pcm, META), iter_windows(floats, META), strict=True):
        assert window.dtype == np.float32 and np.array_equal(window.view(np.int32), expected.view(np.int32))
    handler = SumHandler(max_batch_size=3)
    (from_pcm,), (from_floats,) = handler.run_inference([pcm], None), handler.run_inference([floats], None)
    np.testing.assert_array_equal(from_pcm.inference, from_floats.inference)
    assert handler.get_num_bytes([pcm]) == 22   # what is held, not a float32 copy
