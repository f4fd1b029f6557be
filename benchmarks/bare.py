"""The same work as the pipeline in a plain loop, no Beam: the practical limit on this machine.

Per file: read and decode (``audio.decode``), render and write the spectrogram
PNG (``audio.spectrogram``, ``audio.naming``); the files' windows go to the
model in batches of up to ``max_batch_size`` windows (``model.handlers``, as
RunInference batches them) and the rows are written in batches of 500
(``results.sqlite_store``, as the SQLite sink does). Whatever the pipeline
adds beyond this (matching, shuffling, bundles, the runner) is Beam's cost.
"""
from __future__ import annotations

import os
import time

import numpy as np

from audio.decode import DecodeError, decode
from audio.naming import spectrogram_uri
from audio.records import AudioObject, FailedAudio, ProcessedAudio
from audio.spectrogram import SpectrogramStyle, render_png
from benchmarks.steps import StepTimes
from model.metadata import ModelMetadata
from results import schema, sqlite_store
from transforms.inference import aggregate
from cloud.objects import local_generation
from transforms.sinks import FLUSH_ROWS

MAX_DURATION_S = 7200.0


class BareLoop:

    def __init__(self, model_dir: str, metadata: ModelMetadata, image_dir: str, table_path: str,
                 max_batch_size: int = 256, root: str = '', runtime: str = 'auto'):
        from model.serving import local_handler  # the pipeline's handler, with the same choice of runtime

        self._handler = local_handler(model_dir, metadata=metadata, max_batch_size=max_batch_size, runtime=runtime)
        self._model = self._handler.load_model()
        self._metadata = metadata
        self._max_windows = max_batch_size
        self._image_dir = image_dir
        self._table_path = table_path
        self._root = root
        self._style = SpectrogramStyle()
        self._batch: list[tuple[ProcessedAudio, np.ndarray]] = []
        self._batch_windows = 0
        self._rows: list[dict] = []
        self._error_rows: list[dict] = []
        self.steps = StepTimes()

    def process(self, path: str) -> float:
        """Decodes and renders one file and queues it for inference; returns its duration in seconds."""
        step = self.steps.step
        obj = AudioObject(uri=path, name=os.path.relpath(path, self._root) if self._root else path,
                          generation=local_generation(path), size=os.path.getsize(path))
        try:
            with step('read + decode'), open(path, 'rb') as f:
                samples, info = decode(f, self._metadata.sample_rate_hz, MAX_DURATION_S, size=obj.size)
        except DecodeError as e:
            self._error_rows.append(schema.error_row(FailedAudio(obj, 'decode', e.error_type, str(e)), time.time()))
            return 0.0
        with step('spectrogram PNG'):
            uri = spectrogram_uri(self._image_dir, obj)
            png = render_png(samples, self._metadata.sample_rate_hz, obj.name, self._style)
        with step('write PNG'):
            os.makedirs(os.path.dirname(uri), exist_ok=True)
            with open(uri, 'wb') as f:
                f.write(png)
        windows = self._metadata.window_count(len(samples))
        if self._batch and self._batch_windows + windows > self._max_windows:
            self._infer()
        self._batch.append((ProcessedAudio(obj, info, uri), samples))
        self._batch_windows += windows
        return info.duration_seconds

    def finish(self) -> None:
        """Runs the last partial batch and writes the remaining rows."""
        if self._batch:
            self._infer()
        self._write_rows()

    def _infer(self) -> None:
        with self.steps.step('inference (batched)'):
            results = self._handler.run_inference([samples for _, samples in self._batch], self._model)
        with self.steps.step('rows'):
            now = time.time()
            labels, version = self._metadata.labels, self._metadata.model_version
            for (item, _), result in zip(self._batch, results):
                self._rows.append(schema.processed_row(item, aggregate(result.inference, labels, version), now))
        self._batch, self._batch_windows = [], 0
        if len(self._rows) >= FLUSH_ROWS:
            self._write_rows()

    def _write_rows(self) -> None:
        with self.steps.step('write rows (batched)'):
            if self._rows or self._error_rows:
                with sqlite_store.connect(self._table_path) as conn:
                    sqlite_store.write_processed(conn, self._rows)
                    sqlite_store.write_errors(conn, self._error_rows)
            self._rows, self._error_rows = [], []
