"""Coders for the elements that carry a whole file's samples: cheap to size, pickled like the default.

Beam estimates the byte size of a sample of elements at every step's output
(for its throughput counters) by encoding them; with the default coder that
pickles the samples: a 230 MB transient copy per step for a one-hour file,
which sets the worker's memory peak. These coders encode the same way but
take the size from the array's byte count. The transforms declare their
output types (``DecodedAudio``; ``Samples``, the waveform on its way into
RunInference; ``FileScores``, each file's scores out of it) and
``register_coders``, which ``build_pipeline`` calls, tells Beam which coder
each of those types takes: only those types, never every ``np.ndarray`` in the
process.
"""
from __future__ import annotations

import abc
import pickle

import apache_beam as beam
import numpy as np

from audio.pcm import PcmSamples
from audio.signal import Signal
from audio.spill import SpilledSamples
from audio.records import DecodedAudio
from model.handlers import FileScores

_RECORD_OVERHEAD = 512  # bytes: the pickled metadata next to the samples, roughly


class _PickledWithArraySize(beam.coders.Coder):

    def encode(self, value) -> bytes:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)

    def decode(self, encoded: bytes):
        return pickle.loads(encoded)

    def is_deterministic(self) -> bool:
        return False

    def __eq__(self, other):
        return type(self) is type(other)

    def __hash__(self):
        return hash(type(self))


class DecodedAudioCoder(_PickledWithArraySize):

    def estimate_size(self, value: DecodedAudio) -> int:
        return value.samples.nbytes + _RECORD_OVERHEAD

    def to_type_hint(self):
        return DecodedAudio


class Samples(metaclass=abc.ABCMeta):
    """A file's waveform on its way into RunInference, typed for its coder: ``FloatSamples`` (a zero-copy view
    of a decoded float32 array), or, as decoded, ``audio.pcm.PcmSamples`` (16-bit PCM read as float32) or
    ``audio.spill.SpilledSamples`` (a long file's samples on local disk)."""

    @property
    @abc.abstractmethod
    def nbytes(self) -> int:
        """The bytes the samples hold: the coder's size estimate."""

    @staticmethod
    def of(samples: Signal) -> Signal:
        return samples.view(FloatSamples) if isinstance(samples, np.ndarray) else samples


class FloatSamples(np.ndarray):
    """A decoded float32 array as ``Samples``."""


Samples.register(FloatSamples)
Samples.register(PcmSamples)
Samples.register(SpilledSamples)


class SamplesCoder(_PickledWithArraySize):

    def estimate_size(self, value: Signal) -> int:
        return value.nbytes + _RECORD_OVERHEAD

    def to_type_hint(self):
        return Samples


class FileScoresCoder(_PickledWithArraySize):
    """A file's scores out of RunInference (``[windows, labels]``: 31 MB for an hour of BirdNET)."""

    def estimate_size(self, value: FileScores) -> int:
        return value.inference.nbytes + _RECORD_OVERHEAD

    def to_type_hint(self):
        return FileScores


def register_coders() -> None:
    """Tells Beam the coder of each type the stages declare; ``build_pipeline`` calls it (repeating it is harmless)."""
    beam.coders.registry.register_coder(DecodedAudio, DecodedAudioCoder)
    beam.coders.registry.register_coder(Samples, SamplesCoder)
    beam.coders.registry.register_coder(FileScores, FileScoresCoder)
