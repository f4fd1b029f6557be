"""Benchmarks: scripts a user runs (``python -m benchmarks.<name>``), each printing a table and writing JSON.

throughput  the pipeline, the original per-file design and a bare loop, side by side on the same files
stages      where a file's time goes, stage by stage
memory      peak memory for long files and for many files
scaling     throughput against workers and file count: fixed cost and cost per file
(latency    streaming latency: owned with the streaming work)

Benchmarks are not tests: ``tests/benchmarks`` only checks that the scripts run.
"""
