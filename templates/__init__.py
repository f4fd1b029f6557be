"""Deployment to Google Cloud: the Flex Template's metadata, the BigQuery schema files and the scripts.

``templates/metadata.json`` and ``templates/schema/*`` are generated from the pipeline's own
definitions (``pipeline.options.OPTIONS``, ``results.schema``) by ``make template-metadata``;
tests fail when a committed copy is stale.
"""
