"""Coders for the elements that carry a whole file's samples: cheap to size, pickled like the default.

Beam estimates the byte size of a sample of elements at every step's output
(for its throughput counters) by encoding them; with the default coder that
pickles the samples: a 230 MB transient copy per step for a one-hour file,
which sets the worker's memory peak. These coders encode the same way but
take the size from the array's byte count. The transforms declare their
output types (``DecodedAudio``; ``Samples``, the waveform on its way into
RunInference) and ``register_coders``, which ``build_pipeline`` calls, tells
Beam which coder each of those types takes: only those two types, never every
``np.ndarray`` in the process.
"""
from __future__ import annotations

import pickle

import apache_beam as beam
import numpy as np

from audio.records import DecodedAudio

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


class Samples(np.ndarray):
    """A file's waveform on its way into RunInference: a zero-copy view of the decoded array, typed for its coder."""

    @staticmethod
    def of(samples: np.ndarray) -> 'Samples':
        return samples.view(Samples)


class SamplesCoder(_PickledWithArraySize):

    def estimate_size(self, value: np.ndarray) -> int:
        return value.nbytes + _RECORD_OVERHEAD

    def to_type_hint(self):
        return Samples


def register_coders() -> None:
    """Tells Beam the coder of each type the stages declare; ``build_pipeline`` calls it (repeating it is harmless)."""
    beam.coders.registry.register_coder(DecodedAudio, DecodedAudioCoder)
    beam.coders.registry.register_coder(Samples, SamplesCoder)
