"""Runner selection and credential handling for local runs (no pipeline is run here)."""
import apache_beam as beam
import pytest
from apache_beam.internal.gcp import auth
from apache_beam.options.pipeline_options import DirectOptions, StandardOptions
from apache_beam.runners.direct.direct_runner import BundleBasedDirectRunner
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

from pipeline.local_runner import ONE_SDK_PROCESS_PER_VM, PROCESSES_FROM_FILES, configure_runner, scoring_threads
from pipeline.main import parse

LOCAL = ['--input_pattern', 'in/**', '--output_table', 'out.db', '--spectrogram_location', 'spec']
STREAM = ['--input_subscription', 'projects/proj-1234/subscriptions/audio-sub', '--output_table', 'proj-1234:d.t',
          '--spectrogram_location', 'gs://bucket/spec', '--model_uri', 'gs://bucket/model']
EMULATORS = ('PUBSUB_EMULATOR_HOST', 'STORAGE_EMULATOR_HOST', 'BIGQUERY_EMULATOR_HOST')


@pytest.fixture(autouse=True)
def clean_state(monkeypatch, tmp_path):
    for var in EMULATORS + ('GOOGLE_APPLICATION_CREDENTIALS',):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv('HOME', str(tmp_path))  # no application-default credentials file
    monkeypatch.setattr(auth._Credentials, '_credentials_init', False)
    monkeypatch.setattr(auth._Credentials, '_credentials', None)


@pytest.mark.parametrize('files,mode', [(None, 'multi_threading'), (100, 'multi_threading'),
                                        (PROCESSES_FROM_FILES, 'multi_processing')])
def test_local_batch_uses_threads_unless_the_backlog_repays_a_process_per_core(files, mode):
    options, config = parse(LOCAL + ['--direct_num_workers', '2'])
    assert isinstance(configure_runner(options, config, files), FnApiRunner)
    assert options.view_as(DirectOptions).direct_running_mode == mode


def test_an_explicit_running_mode_is_kept():
    options, config = parse(LOCAL + ['--direct_num_workers', '2', '--direct_running_mode', 'multi_processing'])
    configure_runner(options, config)
    assert options.view_as(DirectOptions).direct_running_mode == 'multi_processing'


@pytest.mark.parametrize('args,workers', [
    ([], 3),                                   # Beam's own default is 1: without the flag, every core
    (['--direct_num_workers', '1'], 1),        # ... but a user who asks for 1 gets 1
    (['--direct_num_workers=1'], 1),
    (['--direct_num_workers', '2'], 2),
    (['--direct_num_workers', '0'], 3),        # Beam's "0 = every core"
])
def test_every_core_unless_the_user_says_how_many(args, workers, monkeypatch):
    monkeypatch.setattr('os.sched_getaffinity', lambda pid: {0, 2, 5})   # 3 of the machine's cores are ours
    options, config = parse(LOCAL + args)   # Beam's real option parsing, with its defaults
    configure_runner(options, config)
    assert options.view_as(DirectOptions).direct_num_workers == workers
    assert options.view_as(DirectOptions).direct_running_mode == ('multi_threading' if workers > 1 else 'in_memory')


def test_local_paths_become_absolute():
    _, config = parse(LOCAL)
    assert config.output_table.startswith('/') and config.spectrogram_location.startswith('/')
    assert config.input_pattern.startswith('/') and config.input_pattern.endswith('in/**')


def test_against_emulators_beam_connects_anonymously_without_looking_up_credentials(monkeypatch):
    for var in EMULATORS:
        monkeypatch.setenv(var, 'localhost:1')

    def lookup(*args, **kwargs):
        raise AssertionError('google.auth.default was called: the ~30 s lookup would run')

    monkeypatch.setattr('google.auth.default', lookup)
    options, config = parse(STREAM)
    assert isinstance(configure_runner(options, config), BundleBasedDirectRunner)
    assert options.view_as(StandardOptions).streaming
    assert auth.get_service_credentials(options) is None


def test_batch_from_the_storage_emulator_runs_in_threads_that_share_the_answer(monkeypatch):
    monkeypatch.setenv('STORAGE_EMULATOR_HOST', 'http://localhost:1')
    options, config = parse(['--input_pattern', 'gs://b/in/**', '--output_table', 'out.db',
                             '--spectrogram_location', 'gs://b/spec', '--direct_num_workers', '2'])
    configure_runner(options, config, PROCESSES_FROM_FILES * 2)
    assert options.view_as(DirectOptions).direct_running_mode == 'multi_threading'
    assert auth._Credentials._credentials_init


def test_real_google_cloud_keeps_the_credential_lookup():
    options, config = parse(STREAM)
    configure_runner(options, config)
    assert not auth._Credentials._credentials_init


def test_configured_credentials_are_used_even_against_emulators(monkeypatch, tmp_path):
    for var in EMULATORS:
        monkeypatch.setenv(var, 'localhost:1')
    monkeypatch.setenv('GOOGLE_APPLICATION_CREDENTIALS', str(tmp_path / 'key.json'))
    options, config = parse(STREAM)
    configure_runner(options, config)
    assert not auth._Credentials._credentials_init


def test_dataflow_is_left_to_beam():
    options, config = parse(STREAM + ['--runner', 'DataflowRunner'])
    assert configure_runner(options, config) is None


def test_local_streaming_pulls_up_to_a_hundred_notifications_per_bundle_and_waits_briefly():
    """Beam's local streaming runner asks Pub/Sub for 10 messages a pull, waiting up to 30 s; the launcher
    makes it 100, waiting STREAMING_PULL_WAIT_SECONDS."""
    from apache_beam.runners.direct.transform_evaluator import _PubSubReadEvaluator

    from pipeline.local_runner import STREAMING_PULL_MESSAGES, STREAMING_PULL_WAIT_SECONDS, _LargerPulls

    class Recording:
        def __init__(self):
            self.calls = []

        def pull(self, **kwargs):
            self.calls.append(kwargs)
            return 'response'

        def acknowledge(self, **kwargs):
            return 'acked'

    options, config = parse(STREAM)
    configure_runner(options, config)
    configure_runner(options, config)   # twice: wrapped once
    inner = Recording()
    client = _LargerPulls(inner, STREAMING_PULL_MESSAGES)
    assert client.pull(subscription='s', max_messages=10, timeout=30) == 'response'
    assert inner.calls == [{'subscription': 's', 'max_messages': STREAMING_PULL_MESSAGES,
                            'timeout': STREAMING_PULL_WAIT_SECONDS}]
    assert client.acknowledge(subscription='s', ack_ids=['a']) == 'acked'   # everything else passes through
    # The evaluator gets its subscriber client through the wrapper, and only one wrapper deep.
    wrapped = _PubSubReadEvaluator.__dict__['_get_subscriber_client'].__func__
    assert getattr(wrapped, 'larger_pulls', False)
    inner_functions = [c.cell_contents for c in wrapped.__closure__ if callable(c.cell_contents)]
    assert inner_functions and not any(getattr(f, 'larger_pulls', False) for f in inner_functions)


def test_a_pull_that_reaches_its_deadline_is_an_empty_answer_and_other_errors_pass():
    """Real Pub/Sub may let a pull with nothing to deliver run into its deadline; that delivered nothing."""
    from google.api_core import exceptions as api_exceptions

    from pipeline.local_runner import _LargerPulls

    class Failing:
        def __init__(self, error):
            self.error = error

        def pull(self, **kwargs):
            raise self.error

    response = _LargerPulls(Failing(api_exceptions.DeadlineExceeded('no message')), 100).pull(subscription='s')
    assert list(response.received_messages) == []
    with pytest.raises(api_exceptions.PermissionDenied):
        _LargerPulls(Failing(api_exceptions.PermissionDenied('no')), 100).pull(subscription='s')


@pytest.mark.e2e
def test_pulls_from_the_pubsub_emulator_take_the_backlog_then_come_back_empty(local_stack):
    """On the real emulator: a backlog arrives 100 per pull, every message once, and a pull of an empty
    subscription comes back empty (after at most its short wait) instead of holding the runner for 30 s."""
    from google.cloud import pubsub

    from pipeline.local_runner import STREAMING_PULL_MESSAGES, _LargerPulls

    publisher, subscriber = pubsub.PublisherClient(), pubsub.SubscriberClient()
    project = local_stack.config.project
    topic = publisher.topic_path(project, 'pull-size-test')
    subscription = subscriber.subscription_path(project, 'pull-size-test')
    publisher.create_topic(name=topic)
    subscriber.create_subscription(name=subscription, topic=topic)
    for future in [publisher.publish(topic, str(i).encode()) for i in range(150)]:
        future.result()
    client = _LargerPulls(subscriber, STREAMING_PULL_MESSAGES)
    received, sizes = [], []
    while len(received) < 150:
        response = client.pull(subscription=subscription, max_messages=10, timeout=30)   # as Beam calls it
        messages = list(response.received_messages)
        assert messages, 'a pull came back empty while the backlog was not yet delivered'
        sizes.append(len(messages))
        received += [m.message.data for m in messages]
        client.acknowledge(subscription=subscription, ack_ids=[m.ack_id for m in messages])
    assert sorted(received) == sorted(str(i).encode() for i in range(150))
    assert max(sizes) > 10 and all(n <= STREAMING_PULL_MESSAGES for n in sizes)
    assert list(client.pull(subscription=subscription, max_messages=10, timeout=30).received_messages) == []


class _CountBundles(beam.DoFn):
    """Counts the bundles it is run on, in the class: the local runner copies the DoFn for every bundle."""
    bundles = 0

    def start_bundle(self):
        type(self).bundles += 1

    def process(self, element):
        yield element


def test_local_streaming_runs_no_step_on_an_empty_bundle_and_every_element_still_arrives(monkeypatch):
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.runners.direct.evaluation_context import EvaluationContext
    from apache_beam.testing.test_stream import TestStream
    from apache_beam.testing.util import assert_that, equal_to

    from pipeline.local_runner import skip_empty_bundles

    monkeypatch.setattr(EvaluationContext, '_commit_bundles', EvaluationContext.__dict__['_commit_bundles'])
    skip_empty_bundles()
    skip_empty_bundles()   # twice: wrapped once
    assert getattr(EvaluationContext.__dict__['_commit_bundles'], 'skips_empty', False)
    _CountBundles.bundles = 0
    stream = TestStream()
    for start in range(0, 30, 10):   # three bundles of ten, the watermark moving on after each
        stream = stream.add_elements(list(range(start, start + 10))).advance_watermark_to(start + 10)
    stream = stream.advance_watermark_to_infinity()

    def split(n):
        yield beam.pvalue.TaggedOutput('odd', n) if n % 2 else n

    with beam.Pipeline(runner=BundleBasedDirectRunner(), options=PipelineOptions(streaming=True)) as p:
        numbers = p | stream
        parts = numbers | beam.FlatMap(split).with_outputs('odd', 'never', main='even')
        never = parts.never | 'CountNever' >> beam.ParDo(_CountBundles())
        assert_that(parts.even, equal_to(list(range(0, 30, 2))), label='Even')
        assert_that(parts.odd, equal_to(list(range(1, 30, 2))), label='Odd')
        assert_that(never, equal_to([]), label='Never')
    assert _CountBundles.bundles == 0


@pytest.mark.parametrize('args,threads', [
    ([], 3),                                                   # a worker thread per core, one process
    (['--direct_num_workers', '2'], 2),
    (['--direct_num_workers', '1'], 1),                        # one worker: one scoring thread
    (['--direct_num_workers', '3', '--direct_running_mode', 'multi_processing'], 1),   # a core per process
    (['--direct_num_workers', '1', '--direct_running_mode', 'multi_processing'], 1),
])
def test_local_scoring_threads_are_the_cores_each_worker_process_is_given(args, threads, monkeypatch):
    monkeypatch.setattr('os.sched_getaffinity', lambda pid: {0, 2, 5})   # 3 of the machine's cores are ours
    options, config = parse(LOCAL + args)
    assert scoring_threads(options, config) == threads      # before configure_runner (watch mode) ...
    configure_runner(options, config)
    assert scoring_threads(options, config) == threads      # ... and after


@pytest.mark.parametrize('args,threads', [
    (['--runner', 'DataflowRunner'], 1),                    # an SDK process per vCPU
    (['--runner', 'DataflowRunner', '--experiments', ONE_SDK_PROCESS_PER_VM], 0),   # one process: every core
    ([], 0),                                                # local streaming: one process
])
def test_streaming_and_dataflow_scoring_threads(args, threads):
    options, config = parse(STREAM + args)
    assert scoring_threads(options, config) == threads
