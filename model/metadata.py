"""The model contract: what a model directory holds and promises.

A model directory holds ``metadata.json`` (this module's ``ModelMetadata``) and the model in one of two
runtimes (``ModelMetadata.runtime``):

``savedmodel`` (the models this repository trains)::

    MODEL_DIR/
      saved_model.pb, variables/   TensorFlow SavedModel
      metadata.json
      classifier.tflite            optional: the same network after the front end, for LiteRT
                                   (listed in ``serving``; see model/serving.py)

  The SavedModel's ``serving_default`` signature takes ``waveform``: float32 ``[batch, window_samples]``
  mono samples at ``sample_rate_hz`` in [-1, 1], and returns ``probabilities``: float32
  ``[batch, len(labels)]``, in ``labels`` order. The feature front end (STFT -> log-mel) is inside the
  graph, so the same directory serves RunInference and Vertex AI's prebuilt TF container.

``litert_waveform`` (a published model pack, e.g. BirdNET: ``model.packs``)::

    MODEL_DIR/
      metadata.json
      <serving.litert_waveform.file>   a whole-model TFLite file: float32 ``[batch, window_samples]``
                                       waveform windows in, ``[batch, len(labels)]`` scores out

  Its scores become probabilities through ``activation`` (``model.activation``): e.g. BirdNET's
  logits through its sigmoid.

Either way the metadata says how a file is cut into windows (``window_samples``, ``hop_samples``,
``min_window_samples``), whether a window can hold several labels at once (``multi_label``: each label's
score is independent, as a sigmoid's), how labels read as names (``label_fields``), and how consecutive
detections merge into events by default (``merge_consecutive``). A ``metadata.json`` written before a
field existed loads with that field's default, which is what such models always did.
"""
from __future__ import annotations

import dataclasses
import json
import math
import zlib
from dataclasses import dataclass, field, fields
from typing import Any, Union

from apache_beam.io.filesystems import FileSystems

METADATA_FILE = 'metadata.json'
SIGNATURE = 'serving_default'
INPUT_NAME = 'waveform'
OUTPUT_NAME = 'probabilities'
# A label of this name means "nothing of interest" (``model.background``): never an event, still a file label.
BACKGROUND_LABEL = 'background'
SAVEDMODEL_RUNTIME = 'savedmodel'
LITERT_WAVEFORM_RUNTIME = 'litert_waveform'
MODEL_RUNTIMES = (SAVEDMODEL_RUNTIME, LITERT_WAVEFORM_RUNTIME)
# ``activation``: what turns the model's outputs into probabilities (model/activation.py applies it).
PROBABILITIES = {'kind': 'probabilities'}   # the model's outputs already are (softmax inside the SavedModel)


LABELS_PACKING_SEPARATOR = '\n'
WINDOWING_ONLY_LABEL = '(windowing only)'


def _metadata_of(labels: Union[bytes, tuple[str, ...]], state: dict[str, Any]) -> 'ModelMetadata':
    """A pickled ``ModelMetadata`` (``ModelMetadata.__reduce__``)."""
    if isinstance(labels, bytes):
        labels = tuple(zlib.decompress(labels).decode().split(LABELS_PACKING_SEPARATOR))
    return ModelMetadata(labels=labels, **state)


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
    # What serves it: SAVEDMODEL_RUNTIME (the directory holds a SavedModel) or LITERT_WAVEFORM_RUNTIME (only the
    # TFLite file named in serving['litert_waveform']['file']).
    runtime: str = SAVEDMODEL_RUNTIME
    # How the outputs become probabilities: PROBABILITIES, {'kind': 'softmax'}, or {'kind': 'sigmoid',
    # 'scale': k, 'clip': c} = 1 / (1 + exp(-k * clip(x, -c, c))) (BirdNET's, k its sensitivity).
    activation: dict[str, Any] = field(default_factory=lambda: dict(PROBABILITIES))
    # True: every label scores on its own (sigmoid), so one window may hold several labels at once; each label at
    # least the threshold is detected. False: the labels compete (softmax) and a window is its top label.
    multi_label: bool = False
    # 0: a file is covered by windows until one reaches its end, the last zero-padded, a file shorter than a
    # window is one padded window. N > 0 (BirdNET's rule): a window starts every hop while at least N samples
    # remain (the last zero-padded), so a tail shorter than N is dropped and a file shorter than N has no window.
    min_window_samples: int = 0
    # Events' default merging (the --merge_consecutive option; audio.events): 0 joins every run of consecutive
    # windows with the same label into one event; N > 0 joins at most N (BirdNET: 1, one event per window).
    merge_consecutive: int = 0
    # A label's parts, when labels pack several names: BirdNET's 'Turdus merula_Eurasian Blackbird' with
    # label_fields ('scientific_name', 'common_name') and separator '_'. Empty: a label is its own name.
    label_fields: tuple[str, ...] = ()
    label_separator: str = '_'
    # Where the model comes from and under which terms (published packs: its licence must travel with it).
    source: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if not self.labels:
            raise ValueError('model metadata lists no labels')
        if self.window_samples <= 0 or self.hop_samples <= 0 or self.sample_rate_hz <= 0:
            raise ValueError('sample_rate_hz, window_samples and hop_samples must be positive')
        if not 0 <= self.min_window_samples <= self.window_samples:
            raise ValueError('min_window_samples must be between 0 and window_samples')
        if self.runtime not in MODEL_RUNTIMES:
            raise ValueError(f'unknown model runtime {self.runtime!r}; one of {", ".join(MODEL_RUNTIMES)}')
        if self.merge_consecutive < 0:
            raise ValueError('merge_consecutive must be 0 (whole runs) or positive')
        object.__setattr__(self, 'labels', tuple(self.labels))
        object.__setattr__(self, 'label_fields', tuple(self.label_fields))

    def __reduce__(self):
        """Pickled with its labels packed into one zlib-compressed text. Beam pickles (bz2) every DoFn that holds
        a model's metadata (RunInference's handler, its batching, the aggregation) and unpickles it for every
        bundle processor it builds: BirdNET's 6,522 labels as a tuple took ~9 ms of CPU each time, packed ~5 (most
        of it bz2). What needs only the windowing holds ``windowing_only()``."""
        state = {f.name: getattr(self, f.name) for f in fields(self) if f.name != 'labels'}
        if any(LABELS_PACKING_SEPARATOR in label for label in self.labels):
            return _metadata_of, (self.labels, state)
        return _metadata_of, (zlib.compress(LABELS_PACKING_SEPARATOR.join(self.labels).encode(), 9), state)

    def windowing_only(self) -> 'ModelMetadata':
        """This metadata with one placeholder label and no training or evaluation record: for what reads only the
        windowing (window counts, event timing). Beam unpickles each DoFn for every bundle processor it builds,
        and with BirdNET's labels in it, each of those DoFns cost ~9 ms of CPU each time (over a folder of 15-s
        files, ~3.5% of the model's own CPU)."""
        return dataclasses.replace(self, labels=(WINDOWING_ONLY_LABEL,), training={}, metrics={})

    def window_count(self, num_samples: int) -> int:
        """Windows of a file of ``num_samples`` (see ``min_window_samples``)."""
        if self.min_window_samples:
            if num_samples < self.min_window_samples:
                return 0
            return 1 + (num_samples - self.min_window_samples) // self.hop_samples
        if num_samples <= self.window_samples:
            return 1
        return 1 + math.ceil((num_samples - self.window_samples) / self.hop_samples)

    def label_names(self, label: str) -> dict[str, str]:
        """A label's names by ``label_fields`` (BirdNET: scientific and common name); {} when it has none."""
        if not self.label_fields:
            return {}
        parts = label.split(self.label_separator, len(self.label_fields) - 1)
        parts += [''] * (len(self.label_fields) - len(parts))
        return dict(zip(self.label_fields, parts))

    def display_name(self, label: str) -> str:
        """How a person reads the label: its last name field (BirdNET: the common name), else the label."""
        names = self.label_names(label)
        return names.get(self.label_fields[-1]) or label if names else label

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> 'ModelMetadata':
        data = json.loads(text)
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def with_hop(self, hop_samples: int) -> 'ModelMetadata':
        """The same model cut into windows ``hop_samples`` apart (--window_overlap_seconds)."""
        return dataclasses.replace(self, hop_samples=hop_samples)


# What a running pipeline has fixed about its model: the decode rate and, per file, the windows it cuts and
# the label each score column names. A model update must keep all of them.
SERVING_CONTRACT = ('labels', 'sample_rate_hz', 'window_samples', 'hop_samples', 'min_window_samples', 'runtime',
                    'multi_label')


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


def species_list_labels(metadata: ModelMetadata, path: str) -> frozenset[str]:
    """The labels a species list file names (local or gs://; one a line: a whole label or one of its names,
    ``label_names``). Raises ValueError naming the lines that match no label: a typo would silently
    report nothing of that species."""
    with FileSystems.open(path) as f:
        lines = [line.strip() for line in f.read().decode('utf-8').splitlines()]
    by_name: dict[str, set[str]] = {}
    for label in metadata.labels:
        for name in (label, *metadata.label_names(label).values()):
            by_name.setdefault(name, set()).add(label)
    listed: set[str] = set()
    unknown = []
    for line in lines:
        if line and not line.startswith('#'):
            if line in by_name:
                listed |= by_name[line]
            else:
                unknown.append(line)
    if unknown:
        raise ValueError(f'species list {path}: {len(unknown)} line(s) name no label of model '
                         f'{metadata.model_version!r}: {", ".join(repr(u) for u in unknown[:5])}')
    if not listed:
        raise ValueError(f'species list {path} lists no label')
    return frozenset(listed)


def model_dir_of(path: str) -> str:
    """A model directory from a path a watcher matched (the directory or a file inside it)."""
    path = path.rstrip('/')
    for suffix in ('/' + METADATA_FILE, '/saved_model.pb'):
        if path.endswith(suffix):
            return path[:-len(suffix)]
    return path
