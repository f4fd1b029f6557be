"""The result, error and events tables: the schema (the one definition), table names, SQLite and BigQuery access."""
