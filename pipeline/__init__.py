"""Options -> the Beam graph, and the launcher (`python -m pipeline.main`) that runs it locally or on Dataflow."""
