"""Both graphs, translated into Dataflow jobs offline: ``--runner DataflowRunner --dry_run=True --no_auth
--sdk_location=container``, with the model read from the storage emulator (a real process), as the
Flex Template launcher would do it. Dataflow itself cannot be reached from a test, so the job is only
built, not submitted; what this guards is every change that would give Dataflow a graph it cannot run
(a transform that does not translate, a coder that is missing, a stateful key coder that may not be
deterministic).
"""
from __future__ import annotations

import logging
import re

import apache_beam as beam
import pytest
from apache_beam.portability import common_urns
from apache_beam.portability.api import beam_runner_api_pb2
from apache_beam.runners.dataflow.internal.apiclient import Job

from pipeline.graph import build_pipeline
from pipeline.local_runner import configure_runner
from pipeline.main import parse

PROJECT = 'audio-project'
# Our own top-level transforms (stable labels, see pipeline/graph.py), as they appear in the job.
IMAGE = f'us-central1-docker.pkg.dev/{PROJECT}/audio-pipeline/audio-pipeline:t'
# Stateful DoFns inside Beam's own transforms, keyed by Beam's code: WatchFilePattern's (with
# --model_watch_pattern), and the batching RunInference does in streaming. Nothing the pipeline can type.
BEAM_INTERNAL_STATEFUL_STEPS = {'GetLatestFileMetaData', 'AcceptNewSideInputOnly', 'ParDo(_GetLatestFileByTimeStamp)',
                                'ParDo(_ConvertIterToSingleton)', 'ParDo(_StatefulBatchElementsDoFn)'}
OUR_LABELS = ('Decode', 'RenderSpectrogram', 'Classify', 'WriteResults', 'CollectFailures', 'WriteErrors')


@pytest.fixture(scope='module')
def model_on_cloud_storage(tiny_model_dir, cloud_storage) -> str:
    cloud_storage.bucket('dataflow-temp')
    return cloud_storage.upload_dir(tiny_model_dir, 'gs://models/translation/tiny')


def translate(caplog, *source: str, model_uri: str) -> Job:
    """The job the launcher's code would submit: Beam's Dataflow job, with its validated portable graph."""
    argv = [*source, '--output_table', f'{PROJECT}:audio.results', '--spectrogram_location',
            'gs://audio-output/spectrograms', '--model_uri', model_uri,
            '--runner', 'DataflowRunner', '--dry_run=True', '--no_auth', '--sdk_location=container',
            '--project', PROJECT, '--region', 'us-central1', '--temp_location', 'gs://dataflow-temp/temp',
            '--sdk_container_image', IMAGE]
    with caplog.at_level(logging.WARNING):
        options, config = parse(argv)   # what pipeline.main.run does, keeping the runner's result
        pipeline = beam.Pipeline(runner=configure_runner(options, config), options=options)
        build_pipeline(pipeline, config)
        result = pipeline.run()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    return result.job


def stateful_key_warnings(caplog) -> set[str]:
    """The transforms Beam warns about: "Key coder ... for transform <... label=[X]> with stateful DoFn may
    not be deterministic"."""
    found = set()
    for record in caplog.records:
        message = record.getMessage()
        if 'may not be deterministic' in message:
            match = re.search(r'label=\[([^\]]+)\]', message)
            found.add(match.group(1) if match else message)
    return found


def top_level_labels(job: Job) -> set[str]:
    return {t.unique_name.split('/')[0] for t in job.proto_pipeline.components.transforms.values()}


def worker_images(job: Job) -> set[str]:
    return {beam_runner_api_pb2.DockerPayload.FromString(env.payload).container_image
            for env in job.proto_pipeline.components.environments.values()
            if env.urn == common_urns.environments.DOCKER.urn}


def assert_translated(job: Job, caplog, streaming: bool):
    assert job.proto.type.name == ('JOB_TYPE_STREAMING' if streaming else 'JOB_TYPE_BATCH')
    assert set(OUR_LABELS) <= top_level_labels(job), set(OUR_LABELS) - top_level_labels(job)
    assert worker_images(job) == {IMAGE}
    # Stateful steps keyed with a coder that may not be deterministic: none of ours (the dedupe's key is a
    # declared str); Beam's own internals in WatchFilePattern and RunInference's batching still warn.
    assert stateful_key_warnings(caplog) <= BEAM_INTERNAL_STATEFUL_STEPS


def test_the_streaming_graph_translates_into_a_dataflow_job(caplog, model_on_cloud_storage):
    job = translate(caplog, '--input_subscription', f'projects/{PROJECT}/subscriptions/uploads',
                    '--model_watch_pattern', 'gs://models/translation/*/metadata.json',
                    model_uri=model_on_cloud_storage)
    assert_translated(job, caplog, streaming=True)
    assert {'ReadNotifications', 'Dedupe'} <= top_level_labels(job)


def test_the_batch_graph_translates_into_a_dataflow_job(caplog, model_on_cloud_storage):
    job = translate(caplog, '--input_pattern', 'gs://audio-input/uploads/**',
                    model_uri=model_on_cloud_storage)
    assert_translated(job, caplog, streaming=False)
    assert {'MatchFiles', 'Dedupe'} <= top_level_labels(job)


@pytest.fixture(scope='module')
def birdnet_on_cloud_storage(cloud_storage, birdnet_pack, tmp_path_factory) -> tuple[str, str]:
    """(the BirdNET pack's gs:// directory, a species list's gs:// path), as a user would upload them."""
    pack_uri = cloud_storage.upload_dir(birdnet_pack, 'gs://models/translation/birdnet')
    lists = tmp_path_factory.mktemp('lists')
    (lists / 'species.txt').write_text('Turdus merula_Eurasian Blackbird\nParus major\n')
    cloud_storage.bucket('dataflow-temp')
    return pack_uri, cloud_storage.upload_dir(str(lists), 'gs://models/translation/lists') + '/species.txt'


@pytest.mark.parametrize('streaming', [False, True], ids=['batch', 'streaming'])
def test_a_published_multi_label_model_translates_with_its_options(caplog, birdnet_on_cloud_storage, streaming):
    """The BirdNET pack on Cloud Storage, as any model: its handler, per-label events, a species list on gs://."""
    pack_uri, species_uri = birdnet_on_cloud_storage
    source = (('--input_subscription', f'projects/{PROJECT}/subscriptions/uploads') if streaming
              else ('--input_pattern', 'gs://audio-input/uploads/**'))
    job = translate(caplog, *source, '--event_min_confidence', '0.25', '--merge_consecutive', '2',
                    '--window_overlap_seconds', '1.5', '--species_list', species_uri, model_uri=pack_uri)
    assert_translated(job, caplog, streaming=streaming)
