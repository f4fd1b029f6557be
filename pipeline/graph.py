"""Turns validated options into the Beam graph: one function for batch and streaming.

Top-level labels are stable (Dataflow's ``--update`` maps running state by
them): ReadNotifications | MatchFiles, Dedupe, Decode, RenderSpectrogram,
Classify, WriteResults, CollectFailures, WriteErrors.
"""
from __future__ import annotations

import functools
from typing import NamedTuple, Optional, Sequence

import apache_beam as beam
from apache_beam.io.filesystem import FileMetadata

from model.handlers import WindowedClassifierHandler
from pipeline.options import PipelineConfig
from pipeline.handler_choice import make_handler
from results import tables
from transforms.coders import register_coders
from transforms.decode import DecodeAudio
from transforms.dedupe import DropRepeatedNotifications, SkipAlreadyProcessed
from transforms.inference import ClassifyAudio
from transforms.sinks import WriteErrors, WriteResults
from transforms.sources import MatchFiles, ReadNotifications
from transforms.spectrogram import RenderSpectrogram


def existing_keys_reader(config: PipelineConfig):
    """What SkipAlreadyProcessed calls once at the start, or None when every file is to be processed.

    A file with a result row or an error row counts as done: replaying a backlog twice adds no rows.
    """
    if config.streaming or config.reprocess:
        return None
    return functools.partial(tables.existing_keys, config.output_table, config.error_table)


class GraphOutputs(NamedTuple):
    """What the graph produced, for tests: the classified files and every failure (before they are written)."""
    classified: beam.PCollection
    failures: beam.PCollection


def build_pipeline(p: beam.Pipeline, config: PipelineConfig,
                   handler: Optional[WindowedClassifierHandler] = None,
                   listed_files: Optional[Sequence[FileMetadata]] = None) -> GraphOutputs:
    """Adds the whole graph to ``p``; ``handler`` defaults to the one the options choose. ``listed_files``:
    watch mode's run over the files its listing found (pipeline/watch.py)."""
    register_coders()
    handler = handler or make_handler(config)
    if config.streaming:
        assert config.input_subscription  # validate(): exactly one of the two inputs
        source = p | 'ReadNotifications' >> ReadNotifications(config.input_subscription, config.spectrogram_location)
        objects = source.ok | 'Dedupe' >> DropRepeatedNotifications(config.dedupe_ttl_seconds)
    else:
        assert config.input_pattern
        source = p | 'MatchFiles' >> MatchFiles(config.input_pattern, config.spectrogram_location, listed_files)
        objects = source.ok | 'Dedupe' >> SkipAlreadyProcessed(existing_keys_reader(config))

    decoded = objects | 'Decode' >> DecodeAudio(handler.metadata.sample_rate_hz, config.max_duration_seconds)
    rendered = decoded.ok | 'RenderSpectrogram' >> RenderSpectrogram(config.spectrogram_location,
                                                                       config.spectrogram_max_width)
    classified = rendered.ok | 'Classify' >> ClassifyAudio(handler, config.model_watch_pattern,
                                                            config.model_watch_interval_seconds)
    write_failures = classified.ok | 'WriteResults' >> WriteResults(config.output_table, config.streaming)

    failures = ((source.failed, decoded.failed, rendered.failed, classified.failed, write_failures)
                | 'CollectFailures' >> beam.Flatten())
    _ = failures | 'WriteErrors' >> WriteErrors(config.error_table, config.streaming)
    return GraphOutputs(classified.ok, failures)
