"""Turns validated options into the Beam graph: one function for batch and streaming.

Top-level labels are stable (Dataflow's ``--update`` maps running state by
them): ReadNotifications [+ Reconcile, with --reconcile] | MatchFiles, Dedupe, Decode, RenderSpectrogram,
Classify, [MarkSpectrogramEvents, only with --spectrogram_events], WriteResults, CollectFailures, WriteErrors.
"""
from __future__ import annotations

from typing import Mapping, NamedTuple, Optional, Sequence

import apache_beam as beam
from apache_beam.io.filesystem import FileMetadata

from model.handlers import WindowedClassifierHandler
from model.metadata import ModelMetadata, species_list_labels
from pipeline.options import OptionsError, PipelineConfig
from pipeline.handler_choice import make_handler
from pipeline.local_runner import scoring_threads
from results import tables
from transforms.coders import register_coders
from transforms.decode import DecodeAudio
from transforms.dedupe import DropRepeatedNotifications, LogReconcileTally, SkipAlreadyProcessed
from transforms.failures import Retrier
from transforms.inference import ClassifyAudio, event_settings, read_label_thresholds
from transforms.sinks import WriteErrors, WriteResults
from transforms.sources import MatchFiles, ReadNotifications
from transforms.spectrogram import MarkSpectrogramEvents, RenderSpectrogram


def key_states_reader(config: PipelineConfig):
    """What SkipAlreadyProcessed calls once at the start, or None when every file is to be processed.

    Returns (audio_file, generation) -> RESULT | PERMANENT_ERROR | RETRYABLE_ERROR (results.tables).
    """
    if config.reprocess or (config.streaming and not config.reconcile):
        return None
    return config.store.key_states


def done_states(config: PipelineConfig) -> frozenset[str]:
    """The rows that make a replay skip a file: a result, or a permanent error unless --retry_failed.

    A file whose only rows are retryable errors (an outage outlasted the retries) is always retried.
    """
    return tables.done_states(config.retry_failed)


def run_species(config: PipelineConfig, metadata: ModelMetadata) -> Optional[frozenset[str]]:
    """The labels ``--species_list`` allows (None: all); a list naming no label of the model is refused."""
    if not config.species_list:
        return None
    try:
        return species_list_labels(metadata, config.species_list)
    except (OSError, ValueError) as e:
        raise OptionsError(f'--species_list: {e}') from e
def label_thresholds(config: PipelineConfig) -> Optional[dict[str, float]]:
    """``--label_thresholds``, read once when the graph is built (a bad file stops the run before it starts)."""
    if not config.label_thresholds:
        return None
    try:
        return read_label_thresholds(config.label_thresholds)
    except (OSError, ValueError) as e:
        raise OptionsError(f'invalid pipeline options:\n  - --label_thresholds: {config.label_thresholds}: {e}') from e


def _with_reconciliation(p: beam.Pipeline, config: PipelineConfig, notified: beam.PCollection,
                         retrier: Retrier) -> tuple[beam.PCollection, beam.PCollection]:
    """Streaming with --reconcile: the notified objects plus, once at the start, every audio object under
    --input_pattern without a row; both skip what had a row at the start. (objects, the listing's failures)

    A notification lost before its row was written (the local runner acknowledges on pull; a job cancelled
    with a backlog) is made good by the next start's listing; a notification of an object the listing also
    found is dropped by Dedupe, and one of an object done before the start by the skip: a restart adds no
    second row.
    """
    assert config.input_pattern
    read_states, done = key_states_reader(config), done_states(config)
    listing = MatchFiles(config.input_pattern, config.spectrogram_location, retrier, reconciling=True)
    listed = p | 'Reconcile' >> listing
    missing = SkipAlreadyProcessed(read_states, done, count_missing=True)
    reconciled = listed.ok | 'ReconcileSkipDone' >> missing
    assert missing.tally is not None
    _ = missing.tally | 'ReconcileTally' >> LogReconcileTally(config.input_pattern)
    notified = notified | 'SkipDone' >> SkipAlreadyProcessed(read_states, done)
    return (notified, reconciled) | 'WithReconciled' >> beam.Flatten(), listed.failed


class GraphOutputs(NamedTuple):
    """What the graph produced, for tests: the classified files and every failure (before they are written)."""
    classified: beam.PCollection
    failures: beam.PCollection


def build_pipeline(p: beam.Pipeline, config: PipelineConfig,
                   handler: Optional[WindowedClassifierHandler] = None,
                   listed_files: Optional[Sequence[FileMetadata]] = None,
                   seen_at: Optional[Mapping[str, float]] = None) -> GraphOutputs:
    """Adds the whole graph to ``p``; ``handler`` defaults to the one the options choose. ``listed_files``:
    watch mode's run over the files its listing found (pipeline/watch.py), first listed at ``seen_at[path]``."""
    register_coders()
    handler = handler or make_handler(config, scoring_threads=scoring_threads(p.options, config))
    retrier = Retrier(config.transient_retry_seconds)
    source_failures = []
    if config.streaming:
        assert config.input_subscription  # validate(): exactly one of the two inputs, or both with --reconcile
        source = p | 'ReadNotifications' >> ReadNotifications(config.input_subscription, config.spectrogram_location)
        source_failures.append(source.failed)
        objects = source.ok
        if config.reconcile:
            objects, reconcile_failed = _with_reconciliation(p, config, objects, retrier)
            source_failures.append(reconcile_failed)
        objects = objects | 'Dedupe' >> DropRepeatedNotifications(config.dedupe_ttl_seconds)
    else:
        assert config.input_pattern
        source = p | 'MatchFiles' >> MatchFiles(config.input_pattern, config.spectrogram_location, retrier,
                                                listed_files, reconciling=config.reconcile, seen_at=seen_at)
        source_failures.append(source.failed)
        objects = source.ok | 'Dedupe' >> SkipAlreadyProcessed(key_states_reader(config), done_states(config),
                                                               count_missing=config.reconcile)

    decoded = objects | 'Decode' >> DecodeAudio(handler.metadata.sample_rate_hz, config.max_duration_seconds,
                                                 retrier)
    # With --spectrogram_events the PNG is written once, after inference, with the events drawn on it.
    rendered = decoded.ok | 'RenderSpectrogram' >> RenderSpectrogram(
        config.spectrogram_location, config.spectrogram_max_width, retrier, write=not config.spectrogram_events)
    species = run_species(config, handler.metadata)
    events = (event_settings(config.event_min_confidence, handler.metadata, config.merge_consecutive, species,
                             label_thresholds(config)) if config.events else None)
    classified = rendered.ok | 'Classify' >> ClassifyAudio(handler, config.model_watch_pattern,
                                                            config.model_watch_interval_seconds, events, species)
    results = classified.ok
    stage_failures = [*source_failures, decoded.failed, rendered.failed, classified.failed]
    if config.spectrogram_events:  # a step of its own, only when asked for: running jobs keep their graph
        marked = results | 'MarkSpectrogramEvents' >> MarkSpectrogramEvents(retrier)
        results = marked.ok
        stage_failures.append(marked.failed)
    write_failures = results | 'WriteResults' >> WriteResults(config.store, config.streaming, retrier,
                                                              config.events)

    failures = (*stage_failures, write_failures) | 'CollectFailures' >> beam.Flatten()
    _ = failures | 'WriteErrors' >> WriteErrors(config.store, config.streaming, retrier)
    return GraphOutputs(classified.ok, failures)
