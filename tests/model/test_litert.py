"""LiteRT in the worker: a pool of interpreters scores one call's windows at once, with the same scores."""
import math
import threading

import numpy as np
import pytest

from model import serving
from model.litert import LiteRTModel, pool_size, split, usable_cores
from model.litert_waveform import WAVEFORM_WINDOWS_PER_INVOKE
from tests.conftest import birdnet_test_clip


@pytest.mark.parametrize('windows_per_invoke', [1, 3, 4])
@pytest.mark.parametrize('parts', [1, 2, 3, 8])
def test_a_calls_parts_cover_every_window_once_in_order_on_invoke_boundaries(windows_per_invoke, parts):
    for windows in range(0, 40):
        ranges = split(windows, windows_per_invoke, parts)
        assert [i for start, stop in ranges for i in range(start, stop)] == list(range(windows))
        assert len(ranges) <= parts and all(stop > start for start, stop in ranges)
        assert all(start % windows_per_invoke == 0 for start, _ in ranges)
        if ranges:   # nearly equal: no part longer than the first, a fair share of the invokes rounded up
            invokes = math.ceil(windows / windows_per_invoke)
            assert max(stop - start for start, stop in ranges) == ranges[0][1] - ranges[0][0]
            assert ranges[0][1] == math.ceil(invokes / parts) * windows_per_invoke or len(ranges) == 1


def test_the_pool_is_what_the_runner_gives_the_process_and_never_more_than_its_cores():
    cores = usable_cores()
    assert pool_size(0) == cores             # 0: every core this process may run on
    assert pool_size(1) == 1
    assert pool_size(cores + 5) == cores     # more threads than cores would only add interpreters


def _litert_threads():
    return {t for t in threading.enumerate() if t.name.startswith('litert')}


def test_pooled_waveform_scores_are_one_interpreters_bit_for_bit(birdnet_pack):
    """BirdNET's windows split over a pool of 3 (uneven parts, one window per invoke) against one thread."""
    handler = serving.local_handler(birdnet_pack)
    content = open(f'{birdnet_pack}/{handler.metadata.serving["litert_waveform"]["file"]}', 'rb').read()
    clip = birdnet_test_clip(3.0 * 7, seed=4)
    windows = clip.reshape(7, -1)
    one = LiteRTModel(content, windows_per_invoke=WAVEFORM_WINDOWS_PER_INVOKE)(windows)
    before = _litert_threads()
    pooled = LiteRTModel(content, windows_per_invoke=WAVEFORM_WINDOWS_PER_INVOKE, concurrency=3)
    np.testing.assert_array_equal(pooled(windows), one)
    np.testing.assert_array_equal(pooled(windows[2:4]), one[2:4])
    assert len(_litert_threads() - before) <= 3


def test_a_pooled_handler_scores_files_as_the_unpooled_one(tiny_model_dir):
    """The demo CNN (4 windows per invoke): long files and short ones in one batch, from several threads;
    the pool's threads are the only ones that invoke."""
    plain = serving.local_handler(tiny_model_dir)
    pooled = serving.local_handler(tiny_model_dir, scoring_threads=2)
    rng = np.random.default_rng(3)
    rate = plain.metadata.sample_rate_hz
    batches = [[(0.1 * rng.standard_normal(int(rate * seconds))).astype(np.float32) for seconds in lengths]
               for lengths in ([37.3, 0.7, 5.0], [61.0], [1.0, 2.5, 0.3, 44.4])]
    expected = [[r.inference for r in plain.run_inference(b, plain.load_model())] for b in batches]
    model = pooled.load_model()
    assert model.concurrency == pool_size(2)
    got: dict[int, list[np.ndarray]] = {}
    threads = [threading.Thread(target=lambda i=i: got.__setitem__(
        i, [r.inference for r in pooled.run_inference(batches[i], model)])) for i in range(len(batches))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, results in enumerate(expected):
        assert len(got[i]) == len(results)
        for a, b in zip(results, got[i]):
            np.testing.assert_array_equal(a, b)
