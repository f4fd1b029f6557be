"""app.species: a label's common and scientific name from the model's metadata, or the label as it is."""
from __future__ import annotations

from app import species
from model.metadata import ModelMetadata, save_metadata

BLACKBIRD = 'Turdus merula_Eurasian Blackbird'


def test_names_come_from_the_models_label_fields(tmp_path):
    save_metadata(ModelMetadata(model_version='b', labels=(BLACKBIRD, 'Dog_Dog'), sample_rate_hz=48000,
                                window_samples=144000, hop_samples=144000,
                                label_fields=('scientific_name', 'common_name')), str(tmp_path))
    names = species.load(str(tmp_path))
    assert (names.common(BLACKBIRD), names.scientific(BLACKBIRD)) == ('Eurasian Blackbird', 'Turdus merula')
    assert names.display(BLACKBIRD) == 'Eurasian Blackbird (Turdus merula)'
    assert names.display('Dog_Dog') == 'Dog'               # BirdNET's non-bird labels repeat one name
    assert names.display('not a label of it') == 'not a label of it'


def test_plain_labels_and_no_model_show_as_they_are(tmp_path):
    save_metadata(ModelMetadata(model_version='d', labels=('noise_burst', 'tone'), sample_rate_hz=16000,
                                window_samples=16000, hop_samples=8000), str(tmp_path))
    for names in (species.load(str(tmp_path)), species.load(None)):
        assert names.display('noise_burst') == names.common('noise_burst') == 'noise_burst'
        assert names.scientific('noise_burst') == ''
