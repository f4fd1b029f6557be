"""The BigQuery schema provision.sh creates the tables from is the one the pipeline writes with."""
from __future__ import annotations

import json
import subprocess
import sys

from results import schema
from templates import generate_schemas
from tests.templates.script_runner import REPO, TEMPLATES


def test_committed_schema_files_are_what_results_schema_generates():
    for path, text in generate_schemas.generated_files().items():
        assert path.read_text() == text, f'{path} is stale: run `make template-metadata`'
    assert generate_schemas.main(['--check']) == 0


def test_schema_files_equal_the_pipelines_own_command_output():
    for table in schema.TABLES:
        printed = subprocess.run([sys.executable, '-m', 'results.schema', table], cwd=REPO, capture_output=True,
                                 text=True, check=True).stdout
        assert json.loads(printed) == json.loads((TEMPLATES / 'schema' / f'{table}.json').read_text())


def test_the_sinks_schema_is_the_provisioned_schema():
    for table in schema.TABLES:
        provisioned = json.loads((TEMPLATES / 'schema' / f'{table}.json').read_text())
        assert schema.bigquery_schema(table)['fields'] == provisioned


def test_partitioning_and_clustering_come_from_results_schema():
    settings = dict(line.split('=', 1) for line in (TEMPLATES / 'schema' / 'tables.env').read_text().splitlines()
                    if line and not line.startswith('#'))
    assert settings == {'RESULTS_PARTITION_FIELD': schema.PARTITION_FIELD,
                        'RESULTS_CLUSTER_FIELDS': ','.join(schema.CLUSTER_FIELDS),
                        'ERRORS_PARTITION_FIELD': schema.ERRORS_PARTITION_FIELD,
                        'ERRORS_CLUSTER_FIELDS': ','.join(schema.ERRORS_CLUSTER_FIELDS),
                        'EVENTS_PARTITION_FIELD': schema.EVENTS_PARTITION_FIELD,
                        'EVENTS_CLUSTER_FIELDS': ','.join(schema.EVENTS_CLUSTER_FIELDS),
                        'REVIEWS_PARTITION_FIELD': schema.REVIEWS_PARTITION_FIELD,
                        'REVIEWS_CLUSTER_FIELDS': ','.join(schema.REVIEWS_CLUSTER_FIELDS),
                        'LATEST_VIEW_SUFFIX': schema.LATEST_VIEW_SUFFIX}
    for table_fields, partition, cluster in ((schema.PROCESSED_FIELDS, schema.PARTITION_FIELD, schema.CLUSTER_FIELDS),
                                             (schema.ERROR_FIELDS, schema.ERRORS_PARTITION_FIELD,
                                              schema.ERRORS_CLUSTER_FIELDS),
                                             (schema.REVIEW_FIELDS, schema.REVIEWS_PARTITION_FIELD,
                                              schema.REVIEWS_CLUSTER_FIELDS)):
        fields = {f['name']: f for f in table_fields}
        assert fields[partition]['type'] == 'TIMESTAMP'
        assert all(fields[name]['mode'] != 'REPEATED' for name in cluster)


def test_stale_files_are_reported_not_silently_used(tmp_path, monkeypatch, capsys):
    stale = tmp_path / 'processed.json'
    stale.write_text('[]\n')
    monkeypatch.setattr(generate_schemas, 'generated_files', lambda: {stale: generate_schemas.schema_json(
        'processed')})
    monkeypatch.setattr('templates.generated_file.REPO_ROOT', tmp_path)
    assert generate_schemas.main(['--check']) == 1
    assert 'stale' in capsys.readouterr().err
    assert generate_schemas.main([]) == 0 and stale.read_text() == generate_schemas.schema_json('processed')


def test_the_provisioned_view_is_results_schemas_query_over_the_provisioned_tables():
    sql = (TEMPLATES / 'schema' / 'latest_view.sql').read_text()
    assert sql == schema.latest_view_query('@RESULTS_TABLE@', '@ERRORS_TABLE@')
    assert 'QUALIFY ROW_NUMBER() OVER (PARTITION BY audio_file, generation' in sql
