"""Training windows: the same cut as serving without augmentation; augmentations are deterministic."""
import numpy as np
import pytest

from model.augment import Augmentation, change_speed, cut_window
from model.handlers import iter_windows
from model.metadata import ModelMetadata

METADATA = ModelMetadata(model_version='v', labels=('x',), window_samples=1000, hop_samples=400)


def test_parse():
    assert Augmentation.parse('none') == Augmentation()
    assert Augmentation.parse('all').names() == ['shift', 'gain', 'noise', 'speed', 'mask']
    assert Augmentation.parse('noise, mask').names() == ['noise', 'mask']
    with pytest.raises(ValueError, match='reverb'):
        Augmentation.parse('reverb')


@pytest.mark.parametrize('length', [300, 1000, 2345])
def test_unaugmented_windows_equal_serving_windows(length):
    samples = np.random.default_rng(0).uniform(-1, 1, length).astype(np.float32)
    served = list(iter_windows(samples, METADATA))
    rng = np.random.default_rng(0)
    cut = [cut_window(samples, i * METADATA.hop_samples, METADATA.window_samples, METADATA.hop_samples,
                      Augmentation(), rng) for i in range(len(served))]
    np.testing.assert_array_equal(np.stack(cut), np.stack(served))


def test_shift_places_a_short_clip_intact_somewhere_in_the_window():
    clip = np.linspace(0.1, 0.5, 300, dtype=np.float32)
    offsets = set()
    for seed in range(5):
        window = cut_window(clip, 0, 1000, 400, Augmentation(shift=True), np.random.default_rng(seed))
        start = int(np.flatnonzero(window)[0])
        np.testing.assert_array_equal(window[start:start + 300], clip)
        assert not window[:start].any() and not window[start + 300:].any()
        offsets.add(start)
    assert len(offsets) > 1


def test_augmentation_is_deterministic_given_the_generator():
    samples = np.random.default_rng(1).uniform(-0.5, 0.5, 3000).astype(np.float32)
    every = Augmentation.parse('all')
    first = cut_window(samples, 400, 1000, 400, every, np.random.default_rng(7))
    again = cut_window(samples, 400, 1000, 400, every, np.random.default_rng(7))
    other = cut_window(samples, 400, 1000, 400, every, np.random.default_rng(8))
    np.testing.assert_array_equal(first, again)
    assert first.shape == (1000,) and np.abs(first).max() <= 1.0
    assert not np.array_equal(first, other)


def test_change_speed():
    samples = np.sin(np.arange(1000) / 10).astype(np.float32)
    assert len(change_speed(samples, 1.1)) == 909
    assert len(change_speed(samples, 0.9)) == 1111
    np.testing.assert_allclose(change_speed(samples, 1.0), samples, atol=1e-6)
