"""The original per-file design, re-created faithfully to compare the pipeline against it.

What it did for every file, one file at a time:

1. download the object to a temporary file;
2. ``librosa.load`` it at librosa's default 22,050 Hz (mono);
3. an STFT (librosa's defaults) and ``amplitude_to_db(ref=np.max)``;
4. a 14x5-inch pyplot figure (``specshow``, frequency and time axes, a colour bar, the file name as title)
   saved to a PNG, then uploaded;
5. one prediction: a separate call to the model with a batch of one (here the same SavedModel the pipeline
   uses, on the first model window of the clip resampled to the model's 16 kHz, called in-process: kinder to
   the original than the HTTP round trip it made);
6. one row written on its own (one SQLite INSERT and commit per row, standing in for one BigQuery insert call
   per row).

"Download" and "upload" are local file copies here, as the pipeline's reads and writes are local too.
"""
from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import time

import numpy as np

from audio.records import AudioInfo, AudioObject, Classification, ProcessedAudio
from benchmarks.steps import StepTimes
from model.metadata import ModelMetadata
from results import schema, sqlite_store

ORIGINAL_RATE = 22050     # librosa.load's default
FIGURE_INCHES = (14, 5)


class OriginalDesign:
    """One worker of the original design: holds the model and the table connection it would keep warm."""

    def __init__(self, model_dir: str, metadata: ModelMetadata, image_dir: str, table_path: str):
        import matplotlib

        matplotlib.use('Agg')  # no display; the original saved figures to files
        from model.handlers import SavedModelHandler

        self._handler = SavedModelHandler(model_dir, metadata=metadata, max_batch_size=1)
        self._model = self._handler.load_model()
        self._metadata = metadata
        self._image_dir = image_dir
        os.makedirs(image_dir, exist_ok=True)
        with sqlite_store.connect(table_path):
            pass  # creates the tables once, as the original's table existed beforehand
        self._table = sqlite3.connect(table_path, timeout=60)
        self.steps = StepTimes()

    def close(self) -> None:
        self._table.close()

    def process(self, path: str) -> float:
        """Processes one file the original way; returns its duration in seconds."""
        import librosa
        import librosa.display
        import matplotlib.pyplot as plt

        name = os.path.basename(path)
        step = self.steps.step
        with tempfile.TemporaryDirectory() as scratch:
            local = os.path.join(scratch, name)
            with step('download'):
                shutil.copyfile(path, local)
            with step('librosa.load 22050 Hz'):
                y, sr = librosa.load(local)
            with step('stft + amplitude_to_db'):
                db = librosa.amplitude_to_db(np.abs(librosa.stft(y)), ref=np.max)
            with step('pyplot figure + savefig'):
                fig, ax = plt.subplots(figsize=FIGURE_INCHES)
                image = librosa.display.specshow(db, sr=sr, x_axis='time', y_axis='hz', ax=ax)
                fig.colorbar(image, ax=ax, format='%+2.0f dB')
                ax.set_title(name)
                png = os.path.join(scratch, name + '.png')
                fig.savefig(png)
                plt.close(fig)
            with step('upload'):
                shutil.copyfile(png, os.path.join(self._image_dir, name + '.png'))
        with step('resample + predict (batch of 1)'):
            probabilities = self._predict_one(librosa.resample(y, orig_sr=sr,
                                                               target_sr=self._metadata.sample_rate_hz))
        with step('insert one row + commit'):
            self._insert_one(path, len(y) / sr, probabilities)
        return len(y) / sr

    def finish(self) -> None:
        """Nothing is buffered: every row was written as its file finished."""

    def _predict_one(self, samples: np.ndarray) -> np.ndarray:
        """5. One model call with a batch of one window."""
        window = np.zeros((1, self._metadata.window_samples), dtype=np.float32)
        first = samples[:self._metadata.window_samples]
        window[0, :len(first)] = first
        return self._handler.score_windows(self._model, window)[0]

    def _insert_one(self, path: str, seconds: float, probabilities: np.ndarray) -> None:
        labels = self._metadata.labels
        best = int(np.argmax(probabilities))
        item = ProcessedAudio(AudioObject(uri=path, name=os.path.basename(path), generation=str(time.time_ns())),
                              AudioInfo(ORIGINAL_RATE, 1, seconds), '')
        result = Classification(labels[best], float(probabilities[best]),
                                tuple((label, float(p)) for label, p in zip(labels, probabilities)),
                                self._metadata.model_version, 1)
        sqlite_store.write_processed(self._table, [schema.processed_row(item, result, time.time())])
        self._table.commit()
