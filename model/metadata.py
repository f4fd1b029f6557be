"""The model contract: what an exported model directory holds and promises.

An exported model is a directory::

    MODEL_DIR/
      saved_model.pb, variables/   TensorFlow SavedModel
      metadata.json                this module's ModelMetadata
      classifier.tflite            optional: the same network after the front end, for LiteRT
                                   (listed in ``serving``; see model/serving.py)

The SavedModel's ``serving_default`` signature takes ``waveform``: float32
``[batch, window_samples]`` mono samples at ``sample_rate_hz`` in [-1, 1], and
returns ``probabilities``: float32 ``[batch, len(labels)]``, in ``labels``
order. The feature front end (STFT -> log-mel) is inside the graph, so the
same directory serves RunInference and Vertex AI's prebuilt TF container.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

from apache_beam.io.filesystems import FileSystems

METADATA_FILE = 'metadata.json'
SIGNATURE = 'serving_default'
INPUT_NAME = 'waveform'
OUTPUT_NAME = 'probabilities'
# A label of this name means "nothing of interest" (``model.background``): never an event, still a file label.
BACKGROUND_LABEL = 'background'


@dataclass(frozen=True)
class ModelMetadata:
    model_version: str
    labels: tuple[str, ...]
    sample_rate_hz: int = 16000
    window_samples: int = 16000
    hop_samples: int = 8000
    features: dict[str, Any] = field(default_factory=dict)   # front-end parameters (n_fft, n_mels, ...)
    training: dict[str, Any] = field(default_factory=dict)   # data summary, epochs, seed, ...
    metrics: dict[str, Any] = field(default_factory=dict)    # evaluation figures
    # Serving files beside the SavedModel, by runtime: {'litert': {'file': ..., 'input': ..., ...}}. The
    # SavedModel is always there (Vertex AI, model.evaluate); model/serving.py picks the fastest listed.
    serving: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if not self.labels:
            raise ValueError('model metadata lists no labels')
        if self.window_samples <= 0 or self.hop_samples <= 0 or self.sample_rate_hz <= 0:
            raise ValueError('sample_rate_hz, window_samples and hop_samples must be positive')
        object.__setattr__(self, 'labels', tuple(self.labels))

    def window_count(self, num_samples: int) -> int:
        """Windows covering ``num_samples``: a short file is one padded window."""
        if num_samples <= self.window_samples:
            return 1
        return 1 + math.ceil((num_samples - self.window_samples) / self.hop_samples)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> 'ModelMetadata':
        data = json.loads(text)
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


# What a running pipeline has fixed about its model: the decode rate and, per file, the windows it cuts and
# the label each score column names. A model update must keep all of them.
SERVING_CONTRACT = ('labels', 'sample_rate_hz', 'window_samples', 'hop_samples')


def incompatibilities(running: ModelMetadata, new: ModelMetadata) -> list[str]:
    """Why ``new`` cannot replace ``running`` in a running pipeline (empty: it can)."""
    return [f'{name} {getattr(new, name)!r} != running {getattr(running, name)!r}' for name in SERVING_CONTRACT
            if getattr(new, name) != getattr(running, name)]


def join(model_dir: str, name: str) -> str:
    return FileSystems.join(model_dir.rstrip('/'), name)


def load_metadata(model_dir: str) -> ModelMetadata:
    """Reads ``metadata.json`` from a model directory on any Beam FileSystems path (local, gs://, ...)."""
    path = join(model_dir, METADATA_FILE)
    try:
        with FileSystems.open(path) as f:
            return ModelMetadata.from_json(f.read().decode('utf-8'))
    except FileNotFoundError as e:
        raise FileNotFoundError(f'no {METADATA_FILE} in model directory {model_dir!r}: is this an exported '
                                f'model? (`make model` builds the demo model)') from e


def save_metadata(metadata: ModelMetadata, model_dir: str) -> str:
    path = join(model_dir, METADATA_FILE)
    with FileSystems.create(path) as f:
        f.write(metadata.to_json().encode('utf-8'))
    return path


def model_dir_of(path: str) -> str:
    """A model directory from a path a watcher matched (the directory or a file inside it)."""
    path = path.rstrip('/')
    for suffix in ('/' + METADATA_FILE, '/saved_model.pb'):
        if path.endswith(suffix):
            return path[:-len(suffix)]
    return path
