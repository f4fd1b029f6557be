"""Export a trained classifier as a model directory (SavedModel + metadata.json)."""
from __future__ import annotations

import os
import tempfile

import keras
import tensorflow as tf
from apache_beam.io.filesystems import FileSystems

from model.metadata import INPUT_NAME, OUTPUT_NAME, SIGNATURE, ModelMetadata, save_metadata


class _Serving(tf.Module):

    def __init__(self, classifier: keras.Model, window_samples: int):
        super().__init__()
        self.classifier = classifier
        self.serve = tf.function(
            self._serve, input_signature=[tf.TensorSpec([None, window_samples], tf.float32, name=INPUT_NAME)])

    def _serve(self, waveform):
        return {OUTPUT_NAME: self.classifier(waveform, training=False)}


def export_model(classifier: keras.Model, metadata: ModelMetadata, model_dir: str) -> str:
    """Writes the SavedModel and its metadata to a local or gs:// directory; returns it."""
    serving = _Serving(classifier, metadata.window_samples)
    if model_dir.startswith('gs://'):
        with tempfile.TemporaryDirectory() as tmp:
            tf.saved_model.save(serving, tmp, signatures={SIGNATURE: serving.serve})
            _copy_tree(tmp, model_dir)
    else:
        os.makedirs(model_dir, exist_ok=True)
        tf.saved_model.save(serving, model_dir, signatures={SIGNATURE: serving.serve})
    save_metadata(metadata, model_dir)
    return model_dir


def _copy_tree(local_dir: str, remote_dir: str) -> None:
    for root, _, files in os.walk(local_dir):
        for name in files:
            src = os.path.join(root, name)
            dst = FileSystems.join(remote_dir, os.path.relpath(src, local_dir))
            with open(src, 'rb') as f_in, FileSystems.create(dst) as f_out:
                f_out.write(f_in.read())
