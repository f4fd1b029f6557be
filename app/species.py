"""How the page names a label: its common and scientific name when the model packs both into it (BirdNET).

The model's metadata is the one place that says how its labels read (``ModelMetadata.label_names``: BirdNET's
``Turdus merula_Eurasian Blackbird`` is ``Turdus merula``, the Eurasian Blackbird). The page learns it from the
model directory it is given (``--model_uri``, which ``app.serve`` also hands its watch-mode pipeline); without
one, or for a model whose labels are plain names (the demo's ``noise_burst``), a label is shown as it is.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

COMMON, SCIENTIFIC = 'common_name', 'scientific_name'


@dataclass(frozen=True)
class SpeciesNames:
    """label -> (common name, scientific name), for the labels of one model."""
    names: dict[str, tuple[str, str]] = field(default_factory=dict)

    def common(self, label: str) -> str:
        return self.names.get(label, (label, ''))[0]

    def scientific(self, label: str) -> str:
        return self.names.get(label, (label, ''))[1]

    def display(self, label: str) -> str:
        """``Eurasian Blackbird (Turdus merula)``; a label without names as it is."""
        if label not in self.names:
            return label
        common, scientific = self.names[label]
        return f'{common} ({scientific})' if scientific and scientific != common else common


def from_labels(labels: list[str] | tuple[str, ...], label_names) -> SpeciesNames:
    """Names of the labels that have both (``label_names``: the metadata's label -> {field: name})."""
    names = {}
    for label in labels:
        parts = label_names(label)
        if parts.get(COMMON) or parts.get(SCIENTIFIC):
            names[label] = (parts.get(COMMON) or parts.get(SCIENTIFIC, ''), parts.get(SCIENTIFIC, ''))
    return SpeciesNames(names)


def load(model_uri: Optional[str]) -> SpeciesNames:
    """The names of a model directory's labels (none without a model, or when it cannot be read)."""
    if not model_uri:
        return SpeciesNames()
    from model.metadata import load_metadata

    metadata = load_metadata(model_uri)
    return from_labels(metadata.labels, metadata.label_names)
