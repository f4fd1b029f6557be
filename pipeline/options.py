"""The pipeline's options: the one source of truth for every user-facing flag.

``OPTIONS`` declares each option once (name, type, default, help, and the regex
the Flex Template uses to validate it). ``AudioPipelineOptions`` registers them
with Beam, and ``templates/metadata.json`` is generated from the same list
(``python -m templates.generate_metadata``), so the template cannot drift.
``validate`` rejects bad combinations with a clear message before a job starts.
"""
from __future__ import annotations

import argparse
import dataclasses
import difflib
import os
import re
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions, _BeamArgumentParser

from model.metadata import METADATA_FILE

from results.store import ResultStore, open_store, table_name_problem
from results.tables import BQ_TABLE_RE
from results.thresholds import parse_label_thresholds
from transforms.failures import DEFAULT_TRANSIENT_RETRY_SECONDS  # the stages' default is the option's

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MODEL_URI = os.path.join(REPO_ROOT, 'artifacts', 'models', 'demo')

SUBSCRIPTION_RE = r'^projects/[a-z][-a-z0-9]{4,28}[a-z0-9]/subscriptions/[a-zA-Z][-_.~+%a-zA-Z0-9]{2,254}$'
GCS_PATH_RE = r'^gs://[a-z0-9][-_.a-z0-9]{1,220}[a-z0-9](/.*)?$'
ENDPOINT_RE = r'^projects/[^/]+/locations/[a-z0-9-]+/endpoints/[0-9a-z-]+$'
# The template's check (Dataflow workers cannot reach a loopback address): https:// or a bare gRPC host.
VERTEX_API_RE = r'^(https://)?[a-zA-Z0-9][-.a-zA-Z0-9]*(:[0-9]+)?/?$'
# Where a Flex Template runs, outputs are BigQuery tables and models live in Cloud Storage.
OUTPUT_TABLE_RE = BQ_TABLE_RE


@dataclass(frozen=True)
class Option:
    name: str
    help: str
    type: type = str
    default: Any = None
    regex: Optional[str] = None  # for the template's parameter validation
    is_flag: bool = False
    label: str = ''
    # The template exposes everything a user launching a job sets; a few options only
    # make sense on a local run (they point at this machine) and stay out of it.
    in_template: bool = True
    # validate() refuses to start a Dataflow job without it (locally it may default or be absent).
    required_on_dataflow: bool = False
    # validate() refuses zero and negative values.
    positive: bool = False
    # A folder, file or glob, local or gs://: made absolute when local; must be gs:// on Dataflow.
    is_path: bool = False

    @property
    def template_label(self) -> str:
        return self.label or self.name.replace('_', ' ').capitalize()


OPTIONS: tuple[Option, ...] = (
    Option('input_subscription',
           'Pub/Sub subscription receiving Cloud Storage OBJECT_FINALIZE notifications (JSON_API_V1 payload), as '
           'projects/PROJECT/subscriptions/NAME. Runs the pipeline in streaming mode. '
           'Exactly one of input_subscription and input_pattern is required (both with reconcile).',
           regex=SUBSCRIPTION_RE, label='Input Pub/Sub subscription'),
    Option('input_pattern',
           'Batch replay: a local or gs:// glob of audio files ("**" matches recursively), e.g. '
           'gs://BUCKET/uploads/**. Exactly one of input_subscription and input_pattern is required (both with '
           'reconcile: then the prefix a streaming job reconciles with at its start).',
           regex=r'^(gs://|/|\.).+$', label='Input file pattern (batch replay)', is_path=True),
    Option('output_table',
           'Where result rows go: a BigQuery table PROJECT:DATASET.TABLE (or DATASET.TABLE), or a local SQLite file '
           'ending in .db (tables "processed" and "errors").',
           regex=OUTPUT_TABLE_RE, label='Results table', required_on_dataflow=True),
    Option('error_table',
           'Where error rows go. Defaults to <output_table>_errors in BigQuery, or the "errors" table of the same '
           'SQLite file.',
           regex=BQ_TABLE_RE, label='Error table'),
    Option('spectrogram_location',
           'Folder or gs:// prefix where one spectrogram PNG per file is written. Objects under it are never '
           're-ingested.',
           regex=GCS_PATH_RE, label='Spectrogram location', required_on_dataflow=True, is_path=True),
    Option('model_uri',
           'Directory of the exported classifier (SavedModel + metadata.json), local or gs://. Local runs default '
           'to the demo model that `make run` trains; Dataflow jobs need a gs:// directory.',
           default=DEFAULT_MODEL_URI, regex=GCS_PATH_RE, label='Model directory', required_on_dataflow=True,
           is_path=True),
    Option('model_endpoint',
           'Classify on a Vertex AI endpoint instead of in the worker: '
           'projects/PROJECT/locations/REGION/endpoints/ID. model_uri still supplies the model metadata.',
           regex=ENDPOINT_RE, label='Vertex AI endpoint'),
    Option('vertex_api_endpoint',
           'Where model_endpoint\'s requests go: unset = the regional Vertex AI API (REGION-aiplatform.googleapis.com, '
           'gRPC); https://HOST[:PORT] = REST to another host (e.g. a Private Service Connect address); locally, '
           'http://127.0.0.1:PORT = the local endpoint of `python -m stack start` (plain HTTP, anonymous, loopback '
           'only).',
           regex=VERTEX_API_RE, label='Vertex AI API endpoint'),
    Option('model_watch_pattern',
           'Streaming only: a local or gs:// glob of model metadata files (e.g. gs://B/models/*/metadata.json). A new '
           'match is loaded by the running job without a restart; each row records the model_version it used.',
           regex=GCS_PATH_RE, label='Model update watch pattern', is_path=True),
    Option('model_watch_interval_seconds', 'How often to look for a new model under model_watch_pattern.',
           type=float, default=60.0, regex=r'^[0-9]+(\.[0-9]+)?$', positive=True),
    Option('max_duration_seconds',
           'Files longer than this become error rows (TooLong) without being decoded whole.',
           type=float, default=7200.0, regex=r'^[0-9]+(\.[0-9]+)?$', positive=True),
    Option('min_batch_size',
           'RunInference: the smallest inference batch, counted in model windows (a file contributes one window '
           'per hop of audio, at least one).',
           type=int, default=1, regex=r'^[0-9]+$', positive=True),
    Option('max_batch_size',
           'RunInference: the largest inference batch, counted in model windows; bounds memory when files are '
           'long (a longer file is batched alone and scored in chunks of this size).',
           type=int, default=256, regex=r'^[0-9]+$', positive=True),
    Option('max_batch_duration_secs',
           'RunInference, streaming: the longest time a batch waits to fill before it is run.',
           # 1 s, not 5: the last files of a burst wait this long for company that is not coming (5 s was a
           # third of a 240-file drain, benchmarks/drain.py); a full batch runs at once either way.
           type=int, default=1, regex=r'^[0-9]+$'),
    Option('inference_runtime',
           'How the worker runs the model: auto (LiteRT when the model directory lists classifier.tflite and the '
           'runtime is installed, else the SavedModel), litert, or savedmodel. Both give the same scores within '
           '1e-4; LiteRT computes the log-mel front end once per file and needs no TensorFlow in the worker.',
           default='auto', regex=r'^(auto|litert|savedmodel)$'),
    Option('model_copies', 'How many copies of the model one worker VM holds (with share_model_across_processes).',
           type=int, default=1, regex=r'^[0-9]+$', positive=True),
    Option('share_model_across_processes',
           'Hold one copy of the model per VM, shared by all SDK processes (saves memory on many-core workers).',
           is_flag=True, default=False, regex=r'^(true|false)$'),
    Option('reprocess',
           'Batch replay: process every matched file even if the results table already has its (audio_file, '
           'generation), e.g. after a model change. By default such files are skipped.',
           is_flag=True, default=False, regex=r'^(true|false)$'),
    Option('retry_failed',
           'Batch replay: also retry files whose error row says the file itself is bad (retryable = false), e.g. '
           'after a decoder upgrade. Files with only retryable error rows are retried by every replay anyway; '
           'files with a result are still skipped (--reprocess redoes those too).',
           is_flag=True, default=False, regex=r'^(true|false)$'),
    Option('reconcile',
           'Process every audio object under input_pattern that has no row yet (neither a result nor a permanent '
           'error; retryable errors are retried), and say how many there were (counter files_reconciled): what '
           'catches uploads whose notification never led to a row. Alone with input_pattern: a batch run that '
           'ends with that count. With input_subscription too: the streaming job does it once at its start, '
           'then streams, and skips notifications of objects that had a row at its start.',
           is_flag=True, default=False, regex=r'^(true|false)$', label='Reconcile with the bucket'),
    Option('transient_retry_seconds',
           'How long a stage keeps retrying a transient failure (Cloud Storage or BigQuery unavailable, timeouts, '
           'throttling, a locked SQLite file, a full disk), with exponential backoff and jitter, before it gives '
           'up: the file then gets an error row with retryable = true, which a batch replay retries (a store that '
           'stays unwritable fails the bundle instead, for the runner to retry). 0 = do not retry. Bad input '
           'is never retried.',
           type=float, default=DEFAULT_TRANSIENT_RETRY_SECONDS, regex=r'^[0-9]+(\.[0-9]+)?$'),
    Option('spectrogram_max_width', 'Upper bound on the pixel width of the spectrogram plot of a long file.',
           type=int, default=1600, regex=r'^[0-9]+$', positive=True),
    Option('dedupe_ttl_seconds',
           'Streaming: how long a (file, generation) already seen is remembered, to drop redelivered notifications.',
           type=int, default=3600, regex=r'^[0-9]+$'),
    Option('watch',
           'Local runs: keep running over input_pattern (a folder or a gs:// prefix, for buckets without '
           'notifications) and process each new file, and each new version of a file, once, a few seconds after '
           'it appears; a file still being written is read once it has not changed for 2 s. Stop with Ctrl-C; '
           'restarting the same command after a crash processes whatever has no row yet.',
           is_flag=True, default=False, in_template=False),
    Option('watch_interval_seconds', 'Watch mode: how often input_pattern is listed for new files.',
           type=float, default=2.0, in_template=False, positive=True),
    Option('events',
           'Write what was heard when: one row per event (a run of windows with the same label, not background, '
           'each at least event_min_confidence) to <output_table>_events in BigQuery or the "events" table of the '
           'SQLite file, and the count on each result row (event_count). --events=false turns it off.',
           is_flag=True, default=True, regex=r'^(true|false)$', label='Write events'),
    Option('event_min_confidence',
           'Events: the least probability of a window\'s top label for the window to be part of an event (0-1]; '
           'with a multi-label model (BirdNET: its min_conf) every label at least this is detected.',
           type=float, default=0.5, regex=r'^(0(\.[0-9]+)?|1(\.0+)?)$', label='Event minimum confidence'),
    Option('merge_consecutive',
           'Events: at most this many consecutive windows of the same label become one event, whose confidence is '
           'the mean of its 3 highest windows (BirdNET\'s rule; 1 = one event per window and label, as BirdNET '
           'reports them); 0 = every run of windows becomes one event, its confidence the mean over the run. '
           'Default: the model\'s (BirdNET 1, the models trained here 0).',
           type=int, regex=r'^[0-9]+$', label='Merge consecutive windows'),
    Option('window_overlap_seconds',
           'Seconds by which consecutive model windows overlap (window minus hop): e.g. 1.5 for BirdNET\'s 3-s '
           'windows every 1.5 s. Default: the model\'s own hop (BirdNET: no overlap).',
           type=float, regex=r'^[0-9]+(\.[0-9]+)?$', label='Window overlap (seconds)'),
    Option('species_list',
           'A text file (local or gs://), one label a line: only these labels are reported (events, the file\'s '
           'label and scores), like BirdNET\'s custom species list. A line is a whole label (BirdNET: '
           '"Turdus merula_Eurasian Blackbird") or one of its names (scientific or common).',
           regex=GCS_PATH_RE, label='Species list file', is_path=True),
    Option('label_thresholds',
           'Events: a JSON file, local or gs://, of per-label minimum confidences (python -m results.thresholds '
           'writes one from the reviews): for a label it names, a window needs at least that probability to be part '
           'of an event; other labels keep event_min_confidence.',
           regex=GCS_PATH_RE, label='Per-label event thresholds file', is_path=True),
    Option('spectrogram_events',
           'Mark the events on the spectrogram PNG itself: thin labelled bands under the time axis, so the image '
           'alone tells what was heard when.',
           is_flag=True, default=False, regex=r'^(true|false)$', label='Events on spectrograms'),
    Option('progress', 'Local runs: print progress and a summary while the pipeline runs.',
           is_flag=True, default=False, in_template=False),
    Option('verbose', 'Also show the start-up messages of TensorFlow and Beam that are hidden by default.',
           is_flag=True, default=False, in_template=False),
)
# The PipelineConfig field that no option declares: validate() computes it.
DERIVED_FIELDS = ('streaming',)


def parse_flag(value: str) -> bool:
    """``--x``, ``--x=true`` and ``--x=false`` all work: the Flex Template launcher passes ``--name=value``."""
    lowered = str(value).strip().lower()
    if lowered in ('true', '1', 'yes'):
        return True
    if lowered in ('false', '0', 'no', ''):
        return False
    raise argparse.ArgumentTypeError(f'expected true or false, got {value!r}')


class AudioPipelineOptions(PipelineOptions):

    @classmethod
    def _add_argparse_args(cls, parser):
        for option in OPTIONS:
            if option.is_flag:
                parser.add_argument(f'--{option.name}', nargs='?', const=True, type=parse_flag,
                                    default=option.default, help=option.help)
            else:
                parser.add_argument(f'--{option.name}', type=option.type, default=option.default, help=option.help)


@dataclass(frozen=True)
class PipelineConfig:
    """The validated options, typed, that ``build_pipeline`` consumes."""
    input_subscription: Optional[str]
    input_pattern: Optional[str]
    output_table: str
    error_table: str
    spectrogram_location: str
    model_uri: str
    model_endpoint: Optional[str]
    vertex_api_endpoint: Optional[str]
    model_watch_pattern: Optional[str]
    model_watch_interval_seconds: float
    max_duration_seconds: float
    min_batch_size: int
    max_batch_size: int
    max_batch_duration_secs: int
    inference_runtime: str
    model_copies: int
    share_model_across_processes: bool
    reprocess: bool
    retry_failed: bool
    reconcile: bool
    transient_retry_seconds: float
    spectrogram_max_width: int
    dedupe_ttl_seconds: int
    events: bool
    event_min_confidence: float
    merge_consecutive: Optional[int]
    window_overlap_seconds: Optional[float]
    species_list: Optional[str]
    label_thresholds: Optional[str]
    spectrogram_events: bool
    progress: bool
    watch: bool
    watch_interval_seconds: float
    verbose: bool
    streaming: bool

    @property
    def store(self) -> ResultStore:
        """Where rows go and are read back from (``results.store``), as --output_table / --error_table name it."""
        return open_store(self.output_table, self.error_table)


class OptionsError(ValueError):
    """A bad option or combination of options; the message says how to fix it."""


def validate(options: PipelineOptions) -> PipelineConfig:
    """Checks options up front; raises OptionsError listing every problem found."""
    o = options.view_as(AudioPipelineOptions)
    runner = (options.view_as(StandardOptions).runner or 'DirectRunner')
    on_dataflow = 'dataflow' in str(runner).lower()
    problems: list[str] = []

    if o.reconcile and o.input_subscription:
        if not o.input_pattern:
            problems.append('--reconcile with --input_subscription needs --input_pattern: the gs:// prefix the '
                            'notifications come from, e.g. gs://BUCKET/**')
    elif bool(o.input_subscription) == bool(o.input_pattern):
        problems.append('give exactly one of --input_subscription (streaming) or --input_pattern (batch replay)')
    if o.reconcile and o.reprocess:
        problems.append('--reconcile processes what has no row; --reprocess processes everything: give one')
    if o.reconcile and o.watch:
        problems.append('--watch already processes whatever has no row each interval; drop --reconcile')
    if o.input_subscription and not re.match(SUBSCRIPTION_RE, o.input_subscription):
        problems.append(f'--input_subscription must look like projects/P/subscriptions/S, got {o.input_subscription!r}')
    if not o.output_table:
        problems.append('--output_table is required (PROJECT:DATASET.TABLE, or a local file ending in .db)')
    elif table_name_problem(o.output_table):
        problems.append(table_name_problem(o.output_table))
    store = _store_or_problem(o.output_table, o.error_table, problems)
    if not o.spectrogram_location:
        problems.append('--spectrogram_location is required (a folder or a gs:// prefix)')
    if o.model_endpoint and not re.match(ENDPOINT_RE, o.model_endpoint):
        problems.append(f'--model_endpoint must be projects/P/locations/L/endpoints/E, got {o.model_endpoint!r}')
    if o.vertex_api_endpoint:
        problems += _vertex_api_problems(o.vertex_api_endpoint, bool(o.model_endpoint), on_dataflow)
    if o.model_watch_pattern and not o.input_subscription:
        problems.append('--model_watch_pattern only applies to streaming (--input_subscription) jobs')
    if o.model_watch_pattern and o.input_subscription and not on_dataflow and 'direct' in str(runner).lower():
        # Beam 2.77's local streaming runner cannot expand WatchFilePattern (PeriodicImpulse) at all.
        problems.append('--model_watch_pattern needs Dataflow (or another portable streaming runner); Beam\'s local '
                        'DirectRunner cannot watch for new models. Locally, restart the job with --model_uri')
    if o.model_watch_pattern and o.model_endpoint:
        problems.append('--model_watch_pattern updates the in-worker model; '
                        'it cannot be combined with --model_endpoint')
    if o.watch and not o.input_pattern:
        problems.append('--watch needs --input_pattern (the folder or gs:// prefix to watch); a Pub/Sub '
                        'subscription already streams')
    if o.watch and o.reprocess:
        problems.append('--watch cannot be combined with --reprocess (it would redo every file every interval)')
    if o.watch and 'direct' not in str(runner).lower():
        problems.append('--watch runs locally (a loop of local batch runs); on Dataflow stream from the bucket\'s '
                        'Pub/Sub notifications with --input_subscription')
    if o.reprocess and o.input_subscription:
        problems.append('--reprocess applies to batch replay (--input_pattern) only')
    if o.retry_failed and o.input_subscription:
        problems.append('--retry_failed applies to batch replay (--input_pattern) only')
    if o.transient_retry_seconds is None or o.transient_retry_seconds < 0:
        problems.append('--transient_retry_seconds must be 0 or more')
    for option in OPTIONS:
        if option.positive and (getattr(o, option.name) is None or getattr(o, option.name) <= 0):
            problems.append(f'--{option.name} must be positive')
    if o.inference_runtime not in ('auto', 'litert', 'savedmodel'):
        problems.append(f'--inference_runtime must be auto, litert or savedmodel, got {o.inference_runtime!r}')
    if (o.min_batch_size or 0) > (o.max_batch_size or 0):
        problems.append('--min_batch_size must not exceed --max_batch_size')
    if o.event_min_confidence is None or not 0 < o.event_min_confidence <= 1:
        problems.append(f'--event_min_confidence must be in (0, 1], got {o.event_min_confidence!r}')
    if o.merge_consecutive is not None and o.merge_consecutive < 0:
        problems.append(f'--merge_consecutive must be 0 (whole runs) or more, got {o.merge_consecutive}')
    if o.window_overlap_seconds is not None and o.window_overlap_seconds < 0:
        problems.append(f'--window_overlap_seconds must be 0 or more, got {o.window_overlap_seconds:g}')
    if o.label_thresholds and not o.events:
        problems.append('--label_thresholds sets the events\' thresholds: it needs --events (the default)')
    if o.spectrogram_events and not o.events:
        problems.append('--spectrogram_events draws the events: it needs --events (the default)')
    if (o.spectrogram_max_width or 0) < 64:
        problems.append('--spectrogram_max_width must be at least 64 pixels')
    if on_dataflow:
        for option in OPTIONS:
            if option.required_on_dataflow and not getattr(o, option.name):
                problems.append(f'--{option.name} is required on Dataflow')
        for option in OPTIONS:
            value = getattr(o, option.name)
            if option.is_path and value and not value.startswith('gs://'):
                problems.append(f'--{option.name} must be a gs:// path on Dataflow (workers cannot see {value!r})')
        if store is not None and store.local:
            problems.append('--output_table must be a BigQuery table on Dataflow, not a local SQLite file')
    if problems:
        raise OptionsError('invalid pipeline options:\n  - ' + '\n  - '.join(problems))

    # Every declared option, by name (an option PipelineConfig lacks, or the reverse, fails here, never as None).
    values: dict[str, Any] = {option.name: getattr(o, option.name) for option in OPTIONS}
    assert store is not None  # else a problem was reported
    values['error_table'] = store.error_table
    return PipelineConfig(**values, streaming=bool(o.input_subscription))


def _vertex_api_problems(api_endpoint: str, has_model_endpoint: bool, on_dataflow: bool) -> list[str]:
    from model.vertex_handler import ApiEndpoint

    problems = []
    if not has_model_endpoint:
        problems.append('--vertex_api_endpoint only applies with --model_endpoint')
    try:
        parsed = ApiEndpoint.parse(api_endpoint)
    except ValueError as e:
        return problems + [f'--vertex_api_endpoint: {e}']
    if on_dataflow and parsed.anonymous:
        problems.append(f'--vertex_api_endpoint {api_endpoint} is this machine: Dataflow workers cannot reach it '
                        '(leave it unset for Vertex AI)')
    return problems


def with_absolute_paths(config: PipelineConfig) -> PipelineConfig:
    """Local paths (the options declared ``is_path``, and a local store's files) made absolute; gs:// stays.

    Rows and the dashboard refer to files by absolute path, whatever the working directory.
    """
    changes: dict[str, Any] = {option.name: _absolute_if_local(getattr(config, option.name))
                               for option in OPTIONS if option.is_path}
    store = config.store.absolute()
    changes.update(output_table=store.output_table, error_table=store.error_table)
    return dataclasses.replace(config, **changes)


def _store_or_problem(output_table: Optional[str], error_table: Optional[str],
                      problems: list[str]) -> Optional[ResultStore]:
    """The store the options name, or None (and the reason in ``problems``, unless already reported)."""
    if not output_table or table_name_problem(output_table):
        return None
    try:
        return open_store(output_table, error_table)
    except ValueError as e:
        problems.append(str(e))
        return None


def _absolute_if_local(path: Optional[str]) -> Optional[str]:
    return path if not path or path.startswith('gs://') else os.path.abspath(path)


def check_known_options(argv: Sequence[str]) -> None:
    """Refuses arguments that neither this pipeline nor Beam (Dataflow included) declares.

    Beam itself only warns ("Discarding unparseable args") and runs with the defaults, so a typo such as
    ``--event_min_confidense 0.9`` would silently do nothing. The parser is Beam's own, with every registered
    ``PipelineOptions`` class, so whatever Beam accepts passes here. A value Beam cannot parse
    (``--min_batch_size ten``) is refused here too, with argparse's message.
    """
    parser = _RefusingParser(allow_abbrev=False)
    for cls in {str(c): c for c in PipelineOptions.__subclasses__()}.values():  # Beam's own set (get_all_options)
        cls._add_argparse_args(parser)
    _, unknown = parser.parse_known_args(list(argv))
    flags = [arg for arg in unknown if arg.startswith('-')]
    if flags:
        known = [name for name in parser._option_string_actions if name.startswith('--')]
        raise OptionsError('invalid pipeline options:\n  - ' + '\n  - '.join(_unknown(f, known) for f in flags))
    if unknown:
        raise OptionsError(f'unexpected argument {unknown[0]!r}: every value follows its option, e.g. '
                           f"--input_pattern 'DIR/**'")


class _RefusingParser(_BeamArgumentParser):
    def error(self, message):
        raise OptionsError(f'invalid pipeline options:\n  - {message}')


def _unknown(arg: str, known: list[str]) -> str:
    """The message for one unknown option: what was given, and the declared option it most likely meant."""
    name = arg.split('=', 1)[0]
    underscored = '--' + name.lstrip('-').replace('-', '_')
    if underscored in known:
        return f'unknown option {name}: options are spelled with underscores, use {underscored}'
    # This pipeline's own options first: a typo is more likely to be one of them than one of Beam's hundreds.
    own = [f'--{option.name}' for option in OPTIONS]
    match = (difflib.get_close_matches(underscored, own, n=1, cutoff=0.75)
             or difflib.get_close_matches(underscored, known, n=1, cutoff=0.75))
    hint = f' (did you mean {match[0]}?)' if match else ' (python -m pipeline.main --help lists the options)'
    return f'unknown option {name}{hint}'


def check_local_paths(config: PipelineConfig) -> None:
    """Local inputs that cannot work, refused before anything starts: the model directory, and (batch) an input
    pattern that can never match. gs:// paths are left to the run (checking them needs credentials)."""
    problems = []
    model = config.model_uri
    if model and not model.startswith('gs://'):
        if not os.path.isdir(model):
            fix = ' (the demo model: make model trains it)' if model == DEFAULT_MODEL_URI else ''
            problems.append(f'--model_uri: no such folder {model}{fix}')
        elif not os.path.isfile(os.path.join(model, METADATA_FILE)):
            problems.append(f'--model_uri: {model} has no {METADATA_FILE}, so it is not an exported model '
                            '(python -m model.train writes one)')
    thresholds = config.label_thresholds
    if thresholds and not thresholds.startswith('gs://'):
        try:
            with open(thresholds) as f:
                parse_label_thresholds(f.read())
        except OSError as e:
            problems.append(f'--label_thresholds: cannot read {thresholds} ({e.strerror})')
        except ValueError as e:
            problems.append(f'--label_thresholds: {thresholds}: {e}')
    pattern = config.input_pattern
    if pattern and not pattern.startswith('gs://') and not config.watch:
        problem = _never_matches(pattern)
        if problem:
            problems.append(f'--input_pattern: {problem}')
    if problems:
        raise OptionsError('invalid pipeline options:\n  - ' + '\n  - '.join(problems))


def _never_matches(pattern: str) -> Optional[str]:
    """Why a local glob can match no file at all (a missing folder, a folder given as the pattern), or None."""
    first_glob = re.search(r'[*?[]', pattern)
    if first_glob is None:
        if os.path.isdir(pattern):
            return f"{pattern} is a folder: give a pattern of its files, e.g. '{os.path.join(pattern, '**')}'"
        return None if os.path.exists(pattern) else f'no such file {pattern}'
    folder = os.path.dirname(pattern[:first_glob.start()]) or '.'
    return None if os.path.isdir(folder) else f'no such folder {folder}, so {pattern} can match no file'


def plain_text(text: str) -> str:
    """Text for a terminal: ``code`` and `code` (reStructuredText, Markdown) read as 'code'."""
    return re.sub(r'`{1,2}([^`]+)`{1,2}', r"'\1'", text)


def help_text(option: Option) -> str:
    """The option's help for ``--help``, with its default."""
    text = plain_text(option.help)
    if option.is_flag:
        return f'{text} Default: {"on" if option.default else "off"}.'
    if option.default is None:
        return text
    default = option.default
    if default == DEFAULT_MODEL_URI:
        default = f'{os.path.relpath(DEFAULT_MODEL_URI, REPO_ROOT)} (in this repository)'
    elif isinstance(default, float):
        default = f'{default:g}'
    return f'{text} Default: {default}.'


def add_help_arguments(parser: argparse.ArgumentParser) -> None:
    """Every option as ``--help`` shows it: a flag without a value placeholder, each with its default."""
    for option in OPTIONS:
        if option.is_flag:
            parser.add_argument(f'--{option.name}', action='store_true', help=help_text(option))
        else:
            parser.add_argument(f'--{option.name}', type=option.type, metavar=_metavar(option), help=help_text(option))


def _metavar(option: Option) -> str:
    if option.type is int:
        return 'N'
    if option.type is float:
        return 'SECONDS' if 'seconds' in option.name else 'X'
    return option.name.rsplit('_', 1)[-1].upper()   # --input_pattern PATTERN, --output_table TABLE
