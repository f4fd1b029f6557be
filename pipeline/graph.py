"""Turns validated options into the Beam graph: one function for batch and streaming.

Top-level labels are stable (Dataflow's ``--update`` maps running state by
them): ReadNotifications | MatchFiles, Dedupe, Decode, RenderSpectrogram,
Classify, [MarkSpectrogramEvents, only with --spectrogram_events], WriteResults, CollectFailures, WriteErrors.
"""
from __future__ import annotations

import functools
from typing import Mapping, NamedTuple, Optional, Sequence

import apache_beam as beam
from apache_beam.io.filesystem import FileMetadata

from model.handlers import WindowedClassifierHandler
from pipeline.options import OptionsError, PipelineConfig
from pipeline.handler_choice import make_handler
from results import sqlite_store, tables
from transforms.coders import register_coders
from transforms.decode import DecodeAudio
from transforms.dedupe import DropRepeatedNotifications, SkipAlreadyProcessed
from transforms.failures import Retrier
from transforms.inference import ClassifyAudio, event_settings, read_label_thresholds
from transforms.sinks import WriteErrors, WriteResults
from transforms.sources import MatchFiles, ReadNotifications
from transforms.spectrogram import MarkSpectrogramEvents, RenderSpectrogram


def key_states_reader(config: PipelineConfig):
    """What SkipAlreadyProcessed calls once at the start, or None when every file is to be processed.

    Returns (audio_file, generation) -> RESULT | PERMANENT_ERROR | RETRYABLE_ERROR (results.sqlite_store).
    """
    if config.streaming or config.reprocess:
        return None
    return functools.partial(tables.key_states, config.output_table, config.error_table)


def done_states(config: PipelineConfig) -> frozenset[str]:
    """The rows that make a replay skip a file: a result, or a permanent error unless --retry_failed.

    A file whose only rows are retryable errors (an outage outlasted the retries) is always retried.
    """
    if config.retry_failed:
        return frozenset({sqlite_store.RESULT})
    return frozenset({sqlite_store.RESULT, sqlite_store.PERMANENT_ERROR})


def label_thresholds(config: PipelineConfig) -> Optional[dict[str, float]]:
    """``--label_thresholds``, read once when the graph is built (a bad file stops the run before it starts)."""
    if not config.label_thresholds:
        return None
    try:
        return read_label_thresholds(config.label_thresholds)
    except (OSError, ValueError) as e:
        raise OptionsError(f'invalid pipeline options:\n  - --label_thresholds: {config.label_thresholds}: {e}') from e


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
    handler = handler or make_handler(config)
    retrier = Retrier(config.transient_retry_seconds)
    if config.streaming:
        assert config.input_subscription  # validate(): exactly one of the two inputs
        source = p | 'ReadNotifications' >> ReadNotifications(config.input_subscription, config.spectrogram_location)
        objects = source.ok | 'Dedupe' >> DropRepeatedNotifications(config.dedupe_ttl_seconds)
    else:
        assert config.input_pattern
        source = p | 'MatchFiles' >> MatchFiles(config.input_pattern, config.spectrogram_location, retrier,
                                                listed_files, seen_at)
        objects = source.ok | 'Dedupe' >> SkipAlreadyProcessed(key_states_reader(config), done_states(config))

    decoded = objects | 'Decode' >> DecodeAudio(handler.metadata.sample_rate_hz, config.max_duration_seconds,
                                                 retrier)
    # With --spectrogram_events the PNG is written once, after inference, with the events drawn on it.
    rendered = decoded.ok | 'RenderSpectrogram' >> RenderSpectrogram(
        config.spectrogram_location, config.spectrogram_max_width, retrier, write=not config.spectrogram_events)
    events = event_settings(config.event_min_confidence, label_thresholds(config)) if config.events else None
    classified = rendered.ok | 'Classify' >> ClassifyAudio(handler, config.model_watch_pattern,
                                                            config.model_watch_interval_seconds, events)
    results = classified.ok
    stage_failures = [source.failed, decoded.failed, rendered.failed, classified.failed]
    if config.spectrogram_events:  # a step of its own, only when asked for: running jobs keep their graph
        marked = results | 'MarkSpectrogramEvents' >> MarkSpectrogramEvents(retrier)
        results = marked.ok
        stage_failures.append(marked.failed)
    write_failures = results | 'WriteResults' >> WriteResults(config.output_table, config.streaming, retrier,
                                                              config.events_table)

    failures = (*stage_failures, write_failures) | 'CollectFailures' >> beam.Flatten()
    _ = failures | 'WriteErrors' >> WriteErrors(config.error_table, config.streaming, retrier)
    return GraphOutputs(classified.ok, failures)
