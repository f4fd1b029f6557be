"""The classifier: features, architecture, training, evaluation, export, RunInference handlers, Vertex AI."""
