"""Export -> load -> predict: the SavedModel computes what the Keras model does, features included."""
import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from model.architecture import SpecAugment, build_classifier
from model.export import export_model
from model.features import FeatureConfig
from model.metadata import INPUT_NAME, OUTPUT_NAME, SIGNATURE, ModelMetadata, load_metadata


def test_export_load_predict_round_trip(tmp_path):
    keras.utils.set_random_seed(0)
    features = FeatureConfig(sample_rate_hz=8000, fmax_hz=4000)
    classifier = build_classifier(3, 4000, features, width=4, spec_augment=True)
    metadata = ModelMetadata(model_version='round-trip', labels=('a', 'b', 'c'), sample_rate_hz=8000,
                             window_samples=4000, hop_samples=2000, features=features.to_dict())
    export_model(classifier, metadata, str(tmp_path))

    windows = np.random.default_rng(0).uniform(-0.5, 0.5, (5, 4000)).astype(np.float32)
    serve = tf.saved_model.load(str(tmp_path)).signatures[SIGNATURE]
    assert list(serve.structured_input_signature[1]) == [INPUT_NAME]
    served = serve(**{INPUT_NAME: tf.constant(windows)})[OUTPUT_NAME].numpy()
    assert served.shape == (5, 3)
    np.testing.assert_allclose(served.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(served, classifier(windows, training=False).numpy(), atol=1e-6)
    exported = load_metadata(str(tmp_path))
    assert dataclasses.replace(exported, serving={}) == metadata
    # The LiteRT serving file beside it, listed once checked against the model (tests/model/test_serving.py).
    entry = exported.serving['litert']
    assert (tmp_path / entry['file']).exists() and entry['input_shape'] == [23, 64]
    assert entry['parity_max_abs_diff'] <= entry['parity_tolerance']


def test_spec_augment_masks_only_while_training():
    features = tf.ones([4, 50, 20])
    layer = SpecAugment(time_masks=2, max_time_frames=10, freq_masks=2, max_freq_bins=5, seed=1)
    np.testing.assert_array_equal(layer(features, training=False).numpy(), features.numpy())
    masked = layer(features, training=True).numpy()
    assert set(np.unique(masked)) <= {0.0, 1.0}
    assert 0 < (masked == 0).mean() < 0.6


def test_a_window_too_short_for_the_cnn_is_refused_clearly():
    with pytest.raises(ValueError, match='11 frames'):
        build_classifier(3, 2000)
