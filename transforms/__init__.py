"""The pipeline's stages, one composite PTransform per concern, each with a stable label.

Every stage returns ``StageOutputs(ok, failed)``: the records that go on, and
``FailedAudio`` records that become error rows.
"""
METRICS_NAMESPACE = 'audio_pipeline'
