"""The dashboard: a Streamlit page over the results (SQLite or BigQuery) with upload into the pipeline's input.

    python -m app.serve --results demo/output/results.db --input demo/input     # or: make ui
"""
