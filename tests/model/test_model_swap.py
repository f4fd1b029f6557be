"""Model updates through RunInference's model-update side input, in a streaming pipeline.

What runs: the production ``ClassifyAudio`` (RunInference with
``model_metadata_pcoll``, ``KeyedModelHandler``, ``SavedModelHandler.update_model_path``)
and the production SQLite sink, in a streaming pipeline on the local streaming
runner, with real model exports on the storage emulator (a real process): the
handler, the metadata and the update all read them through Beam's FileSystems,
as on Dataflow. A compatible update is applied; one that changes the labels,
their order or the sample rate is rejected (logged; the running model keeps
serving, and rows keep its version and labels).

What is stood in for, and why: Beam's ``WatchFilePattern``, which cannot run on
the local streaming runner (Beam 2.77's Python direct runner rejects its
splittable DoFn with "was not replaced as expected"; it runs on Dataflow). The
stand-in emits what it would, ``ModelMetadata(model_id=<new metadata.json>)`` in
the global window with the same trigger, from a ``TestStream``.

What cannot be shown here: rows from two versions in one run. The local runner
holds the main input back until the side input has a first pane, and it keeps
every pane of a triggered side input (a second update fails as "more than one
element accessed as a singleton view"), so on it every row comes from the
first update. The mid-stream swap itself needs Dataflow (or Prism, which needs
a download); see docs/model.md.
"""
import logging
from typing import NamedTuple

import apache_beam as beam
import keras
import pytest
from apache_beam.ml.inference.base import ModelMetadata as ModelUpdate
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.runners.direct.direct_runner import BundleBasedDirectRunner
from apache_beam.testing.test_stream import TestStream
from apache_beam.transforms import trigger, window

import transforms.inference
from audio.records import AudioInfo, AudioObject, DecodedAudio
from model.architecture import build_classifier
from model.export import export_model
from model.features import FeatureConfig
from model.handlers import SavedModelHandler
from model.metadata import METADATA_FILE, ModelMetadata
from results import sqlite_store, tables
from tests.model.tiny import synthetic_audio
from transforms.inference import ClassifyAudio
from transforms.sinks import WriteResults

pytestmark = pytest.mark.e2e

LABELS = ('clicks', 'hum', 'tone')
RATE = 8000
FILES_PER_WAVE = 4


class NewModelFile(NamedTuple):
    path: str


def export_version(models_dir: str, version: str, seed: int, labels: tuple[str, ...] = LABELS, rate: int = RATE) -> str:
    keras.utils.set_random_seed(seed)
    metadata = ModelMetadata(model_version=version, labels=labels, sample_rate_hz=rate, window_samples=4000,
                             hop_samples=2000)
    classifier = build_classifier(len(labels), 4000, FeatureConfig(sample_rate_hz=rate, fmax_hz=rate / 2), width=4)
    return export_model(classifier, metadata, f'{models_dir}/{version}')


def decoded(i: int, samples) -> DecodedAudio:
    name = f'{i:02d}.wav'
    return DecodedAudio(source=AudioObject(uri=f'/inbox/{name}', name=name, generation='1'),
                        info=AudioInfo(RATE, 1, len(samples) / RATE), samples=samples, sample_rate_hz=RATE,
                        spectrogram_uri=f'/spectrograms/{name}.png')


def watcher_stand_in(events):
    """What ``WatchFilePattern`` emits: the newest matching path (or '' for none newer), in the global window."""

    class StandIn(beam.PTransform):
        def __init__(self, file_pattern, interval):
            super().__init__()

        def expand(self, pbegin):
            return (events
                    | 'NewModelFiles' >> beam.Filter(lambda e: isinstance(e, NewModelFile))
                    | 'ToModelUpdate' >> beam.Map(lambda e: ModelUpdate(model_id=e.path, model_name='metadata'))
                    | 'ApplyGlobalWindow' >> beam.WindowInto(
                        window.GlobalWindows(), trigger=trigger.Repeatedly(trigger.AfterProcessingTime(1)),
                        accumulation_mode=trigger.AccumulationMode.DISCARDING))
    return StandIn


def run_with_update(first: str, update: str, db: str, monkeypatch):
    """Files, then a model update naming ``update``'s metadata.json, then more files.

    Returns the rows by file, and the files sent after the update. (The ``model_updates_rejected`` counter is
    checked in test_handlers.py: this runner drops the RunInference step's metrics.)
    """
    clips = [c.samples for c in synthetic_audio(LABELS, 3, seed=0, rate=RATE)][:2 * FILES_PER_WAVE]
    first_wave = [decoded(i, s) for i, s in enumerate(clips[:FILES_PER_WAVE])]
    second_wave = [decoded(i + FILES_PER_WAVE, s) for i, s in enumerate(clips[FILES_PER_WAVE:])]
    stream = (TestStream()
              .add_elements(first_wave)
              .advance_processing_time(5)
              .add_elements([NewModelFile(f'{update}/{METADATA_FILE}')])
              .advance_processing_time(5)
              .add_elements(second_wave)
              .advance_processing_time(5)
              .advance_watermark_to_infinity())

    options = PipelineOptions()
    options.view_as(StandardOptions).streaming = True
    p = beam.Pipeline(runner=BundleBasedDirectRunner(), options=options)
    events = p | stream
    monkeypatch.setattr(transforms.inference, 'WatchFilePattern', watcher_stand_in(events))
    audio = events | 'Audio' >> beam.Filter(lambda e: isinstance(e, DecodedAudio))
    handler = SavedModelHandler(first, max_batch_size=1)
    classified = audio | 'Classify' >> ClassifyAudio(handler, f'{first.rsplit("/", 1)[0]}/*/{METADATA_FILE}', 1)
    _ = classified.ok | "Write" >> WriteResults(db, streaming=True)
    result = p.run()
    result.wait_until_finish()
    rows = {r['audio_file']: r for r in sqlite_store.read_table(db, tables.PROCESSED)}
    assert sorted(rows) == sorted(a.source.uri for a in first_wave + second_wave), 'one row per file, none lost'
    return rows, [a.source.uri for a in second_wave]


def test_a_compatible_model_update_on_cloud_storage_is_applied_and_no_file_is_lost(tmp_path, monkeypatch,
                                                                                    cloud_storage):
    """Both versions on the storage emulator: the handler, the metadata and the update all read gs://."""
    local = str(tmp_path / 'models')
    first = cloud_storage.upload_dir(export_version(local, 'swap-v1', seed=1), 'gs://models/swap/swap-v1')
    second = cloud_storage.upload_dir(export_version(local, 'swap-v2', seed=2), 'gs://models/swap/swap-v2')
    rows, after_update = run_with_update(first, second, str(tmp_path / 'results.db'), monkeypatch)
    # The pipeline started with swap-v1; files after the update carry the version it switched to. (Files
    # before it do too on this runner, which holds them back until the side input has a pane.)
    assert {rows[uri]['model_version'] for uri in after_update} == {'swap-v2'}
    assert {r['model_version'] for r in rows.values()} <= {'swap-v1', 'swap-v2'}
    assert {r['label'] for r in rows.values()} <= set(LABELS)


@pytest.mark.parametrize('change', [dict(labels=LABELS[::-1]), dict(labels=('clicks', 'hum', 'tone', 'noise')),
                                    dict(rate=16000)], ids=['label order', 'labels', 'sample rate'])
def test_an_incompatible_model_update_is_rejected_and_the_running_model_keeps_serving(tmp_path, monkeypatch,
                                                                                     caplog, change, cloud_storage):
    local, remote = str(tmp_path / 'models'), f'gs://models/{tmp_path.name}'   # one folder per case
    first = cloud_storage.upload_dir(export_version(local, 'swap-v1', seed=1), f'{remote}/swap-v1')
    incompatible = cloud_storage.upload_dir(export_version(local, 'swap-bad', seed=2, **change), f'{remote}/swap-bad')
    with caplog.at_level(logging.ERROR, logger='model.handlers'):
        rows, _ = run_with_update(first, incompatible, str(tmp_path / 'results.db'), monkeypatch)
    assert {r['model_version'] for r in rows.values()} == {'swap-v1'}
    assert {r['label'] for r in rows.values()} <= set(LABELS)
    # Every score is named after the running model's labels, in its order.
    assert {tuple(s['label'] for s in r['scores']) for r in rows.values()} == {LABELS}
    (message,) = {r.getMessage() for r in caplog.records if 'rejected' in r.getMessage()}
    assert f'Model update {incompatible} rejected, still serving swap-v1' in message
