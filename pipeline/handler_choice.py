"""Chooses the RunInference model handler from the options and the model's runtime."""
from __future__ import annotations

from typing import Any

from model.handlers import WindowedClassifierHandler
from model.litert_waveform import WaveformLiteRTHandler
from model.metadata import LITERT_WAVEFORM_RUNTIME, ModelMetadata, load_metadata
from model.serving import ServingHandler
from pipeline.options import OptionsError, PipelineConfig


def run_metadata(config: PipelineConfig) -> ModelMetadata:
    """The model's metadata with this run's windowing: ``--window_overlap_seconds`` moves the hop."""
    metadata = load_metadata(config.model_uri)
    if config.window_overlap_seconds is None:
        return metadata
    window = metadata.window_samples
    hop = window - round(config.window_overlap_seconds * metadata.sample_rate_hz)
    if not 0 < hop <= window:
        raise OptionsError(f'--window_overlap_seconds must be at least 0 and less than the model\'s window '
                           f'({window / metadata.sample_rate_hz:g} s), got {config.window_overlap_seconds:g}')
    return metadata.with_hop(hop)


def make_handler(config: PipelineConfig) -> WindowedClassifierHandler:
    metadata = run_metadata(config)
    batching: dict[str, Any] = dict(
        min_batch_size=config.min_batch_size, max_batch_size=config.max_batch_size,
        max_batch_duration_secs=config.max_batch_duration_secs if config.streaming else None, metadata=metadata)
    if config.model_endpoint:
        from model.vertex_handler import VertexEndpointHandler  # only needed for remote inference

        return VertexEndpointHandler(config.model_uri, endpoint=config.model_endpoint, **batching)
    if metadata.runtime == LITERT_WAVEFORM_RUNTIME:
        if config.inference_runtime not in ('auto', 'litert'):
            raise OptionsError(f'model {metadata.model_version!r} is a whole-model TFLite file: it runs on LiteRT '
                               f'only, not --inference_runtime={config.inference_runtime}')
        return WaveformLiteRTHandler(config.model_uri, model_copies=config.model_copies,
                                     share_model_across_processes=config.share_model_across_processes, **batching)
    return ServingHandler(config.model_uri, runtime=config.inference_runtime, model_copies=config.model_copies,
                          share_model_across_processes=config.share_model_across_processes, **batching)
