"""Export a trained classifier as a model directory (SavedModel + classifier.tflite + metadata.json)."""
from __future__ import annotations

import dataclasses
import logging
import os
import tempfile

import keras
import numpy as np
import tensorflow as tf
from apache_beam.io.filesystems import FileSystems

from model import serving
from model.features import FeatureConfig
from model.metadata import INPUT_NAME, OUTPUT_NAME, SIGNATURE, ModelMetadata, join, save_metadata


class _Serving(tf.Module):

    def __init__(self, classifier: keras.Model, window_samples: int):
        super().__init__()
        self.classifier = classifier
        self.serve = tf.function(
            self._serve, input_signature=[tf.TensorSpec([None, window_samples], tf.float32, name=INPUT_NAME)])

    def _serve(self, waveform):
        return {OUTPUT_NAME: self.classifier(waveform, training=False)}


def export_model(classifier: keras.Model, metadata: ModelMetadata, model_dir: str) -> str:
    """Writes the SavedModel, the LiteRT serving file and the metadata to a local or gs:// directory; returns it.

    The metadata's ``serving`` section lists the LiteRT file only if it scored the check windows like the
    Keras model (within ``serving.PARITY_TOLERANCE``); otherwise the SavedModel serves and a warning says why.
    """
    serving_module = _Serving(classifier, metadata.window_samples)
    if model_dir.startswith('gs://'):
        with tempfile.TemporaryDirectory() as tmp:
            tf.saved_model.save(serving_module, tmp, signatures={SIGNATURE: serving_module.serve})
            _copy_tree(tmp, model_dir)
    else:
        os.makedirs(model_dir, exist_ok=True)
        tf.saved_model.save(serving_module, model_dir, signatures={SIGNATURE: serving_module.serve})
    entries = dict(metadata.serving)
    entries.pop(serving.LITERT, None)
    litert = export_litert(classifier, metadata, model_dir)
    if litert:
        entries[serving.LITERT] = litert
    save_metadata(dataclasses.replace(metadata, serving=entries), model_dir)
    return model_dir


def litert_model(classifier: keras.Model, features: FeatureConfig, window_samples: int) -> bytes:
    """The network after its ``log_mel`` layer as a LiteRT flatbuffer: log-mel patch -> probabilities.

    The weights are frozen into constants first: converting the Keras 3 model directly leaves its
    variables as resources that the interpreter reads as uninitialised (NaN scores).
    """
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    frames = 1 + (window_samples - features.frame_length) // features.frame_step
    after_front_end = keras.Model(classifier.get_layer('log_mel').output, classifier.output)
    serve = tf.function(lambda patches: {OUTPUT_NAME: after_front_end(patches, training=False)},
                        input_signature=[tf.TensorSpec([None, frames, features.n_mels], tf.float32,
                                                       name=serving.LITERT_INPUT)])
    frozen = convert_variables_to_constants_v2(serve.get_concrete_function())
    logging.getLogger('absl').setLevel(logging.ERROR)  # its note that this conversion path is the older one
    return tf.lite.TFLiteConverter.from_concrete_functions([frozen]).convert()


def export_litert(classifier: keras.Model, metadata: ModelMetadata, model_dir: str,
                  check_windows: int = 16) -> dict | None:
    """Writes ``classifier.tflite`` beside the SavedModel; its metadata entry, or None if it cannot serve."""
    features = FeatureConfig(**metadata.features)
    try:
        content = litert_model(classifier, features, metadata.window_samples)
    except (ValueError, KeyError) as e:  # a classifier without a `log_mel` layer, an op LiteRT lacks
        logging.warning('no LiteRT serving file for %s: %s', metadata.model_version, e)
        return None
    rng = np.random.default_rng(0)
    windows = (rng.uniform(-1, 1, (check_windows, metadata.window_samples))
               * rng.uniform(0, 1, (check_windows, 1))).astype(np.float32)
    windows[0] = 0.0  # silence: every mel band at the log floor
    expected = classifier(windows, training=False).numpy()
    try:
        served = serving.litert_probabilities(content, windows, metadata, features)
    except ImportError as e:
        logging.warning('LiteRT file not checked, so not listed (%s)', e)
        return None
    difference = float(np.abs(served - expected).max())
    if not difference <= serving.PARITY_TOLERANCE:
        logging.warning('LiteRT scores differ from the model by %.3g (> %.0e): not listed for serving',
                        difference, serving.PARITY_TOLERANCE)
        return None
    with FileSystems.create(join(model_dir, serving.LITERT_FILE)) as f:
        f.write(content)
    frames = 1 + (metadata.window_samples - features.frame_length) // features.frame_step
    return serving.metadata_entry(difference, frames, features.n_mels)


def _copy_tree(local_dir: str, remote_dir: str) -> None:
    for root, _, files in os.walk(local_dir):
        for name in files:
            src = os.path.join(root, name)
            dst = FileSystems.join(remote_dir, os.path.relpath(src, local_dir))
            with open(src, 'rb') as f_in, FileSystems.create(dst) as f_out:
                f_out.write(f_in.read())
