"""The dashboard over the local stack (``python -m app.serve --stack``): BigQuery and Cloud Storage emulators,
and an upload announced on Pub/Sub as Cloud Storage would. Real emulators, real browser; nothing mocked.
"""
from __future__ import annotations

import json
import os

import pytest

from audio import encode, synth
from results import bigquery_store
from results.tables import default_events_table
from tests.app import sample_results
from tests.app.browser import grid_rows, dashboard, launch_chromium, open_page

pytestmark = pytest.mark.e2e
playwright_api = pytest.importorskip('playwright.sync_api')
expect = playwright_api.expect


def upload_on_page(page, name: str, wav: bytes, saved_as: str) -> None:
    """Uploads ``wav`` as ``name`` through the page's file picker and waits for the page to say where it went.

    A bounded wait of its own: run alone, this module has Playwright's 5 s default.
    """
    page.locator('input[type=file]').set_input_files([{'name': name, 'mimeType': 'audio/wav', 'buffer': wav}])
    expect(page.get_by_test_id('stAlert').filter(has_text=name)).to_contain_text(f'saved as {saved_as}',
                                                                                  timeout=30_000)


def publish_results(stack, sample) -> list[dict]:
    """The sample's rows as the streaming pipeline would leave them: audio and spectrograms in buckets, rows in
    the BigQuery tables."""
    from stack import clients

    config = stack.config
    storage = clients.storage_client()
    rows, events = [], []
    for row in sample.processed:
        name = os.path.basename(row['audio_file'])
        audio = storage.bucket(config.upload_bucket).blob(f'day/{name}')
        audio.upload_from_filename(row['audio_file'])
        png = storage.bucket(config.output_bucket).blob(f'spectrograms/day/{name}.png')
        png.upload_from_filename(row['spectrogram_image'], content_type='image/png')
        rows.append(dict(row, audio_file=f'gs://{config.upload_bucket}/day/{name}',
                         spectrogram_image=f'gs://{config.output_bucket}/spectrograms/day/{name}.png'))
        events += [dict(e, audio_file=rows[-1]['audio_file'])
                   for e in sample.events[(row['audio_file'], row['generation'])]]
    bq = bigquery_store.client()
    assert bq.insert_rows_json(bigquery_store.table_id(config.output_table), rows) == []
    assert bq.insert_rows_json(bigquery_store.table_id(config.error_table), sample.errors) == []
    events_table = bigquery_store.table_id(default_events_table(config.output_table))
    assert bq.insert_rows_json(events_table, events) == []
    return rows


def test_dashboard_over_the_local_stack(local_stack, tmp_path):
    from google.cloud import pubsub_v1

    sample = sample_results.build(str(tmp_path / 'sample'), files=4, errors=1)
    rows = publish_results(local_stack, sample)
    newest = max(rows, key=lambda r: r['processed_at'])
    with dashboard(['--stack', local_stack.state_dir], str(tmp_path / 'dashboard.log')) as url, \
            playwright_api.sync_playwright() as p:
        browser = launch_chromium(p)
        page = open_page(browser, url)
        expect(page.get_by_text(f'Results: BigQuery {local_stack.config.output_table}')).to_be_visible()
        value = page.get_by_test_id('stMetric').filter(has=page.get_by_text('Processed', exact=True))
        expect(value.get_by_test_id('stMetricValue')).to_have_text('4')
        image = page.get_by_role('img', name=f'Spectrogram of day/{os.path.basename(newest["audio_file"])}')
        image.evaluate('img => img.decode()')  # read from the storage emulator through the server
        assert image.evaluate('img => img.naturalWidth') > 0
        expect(grid_rows(page, 'errors_table')).to_have_count(1)
        # The inspected file's events, read from <output_table>_events, under its spectrogram.
        newest_events = [e for key, file_events in sample.events.items() for e in file_events
                         if os.path.basename(key[0]) == os.path.basename(newest['audio_file'])]
        assert newest_events
        expect(page.frame_locator('iframe').first.locator('.band')).to_have_count(len(newest_events))

        wav = encode.encode(synth.sine_sweep(1.0, 16000), 16000, 'wav')
        bucket = local_stack.config.upload_bucket
        upload_on_page(page, 'new take.wav', wav, f'gs://{bucket}/new_take.wav')
        browser.close()

    from stack import clients
    assert clients.storage_client().bucket(bucket).blob('new_take.wav').download_as_bytes() == wav
    subscriber = pubsub_v1.SubscriberClient()
    response = subscriber.pull(subscription=local_stack.config.subscription_path, max_messages=10, timeout=30)
    finalized = [m.message for m in response.received_messages if m.message.attributes['objectId'] == 'new_take.wav']
    assert len(finalized) == 1
    assert finalized[0].attributes['eventType'] == 'OBJECT_FINALIZE'
    assert finalized[0].attributes['bucketId'] == bucket
    assert json.loads(finalized[0].data)['size'] == str(len(wav))


def test_ui_stack_upload_becomes_a_row_on_the_page(local_stack, tiny_model_dir, tmp_path):
    """``make ui-stack`` (``python -m app.serve --stack --watch``): the page and, beside it, the stack's streaming
    pipeline, started by the server. A file uploaded on the page goes to the storage emulator, its notification to
    Pub/Sub, its row to the BigQuery emulator, and the row onto the page with no other action; stopping the server
    stops the pipeline it started."""
    from stack import processes
    from stack.emulators import PIPELINE, LocalStack

    args = ['--stack', local_stack.state_dir, '--watch', '--model_uri', tiny_model_dir]
    pipeline_pid = None
    try:
        with dashboard(args, str(tmp_path / 'ui-stack.log')) as url, playwright_api.sync_playwright() as p:
            pipeline_pid = LocalStack.load(local_stack.state_dir).services[PIPELINE].pid
            browser = launch_chromium(p)
            page = open_page(browser, url)
            expect(page.get_by_text('A pipeline runs beside this page')).to_be_visible()
            processed = page.get_by_test_id('stMetric').filter(has=page.get_by_text('Processed', exact=True))
            expect(processed.get_by_test_id('stMetricValue')).to_have_text('0')
            wav = encode.encode(synth.sine_sweep(1.5, 16000), 16000, 'wav')
            bucket = local_stack.config.upload_bucket
            upload_on_page(page, 'stack take.wav', wav, f'gs://{bucket}/stack_take.wav')
            # No click, no reload: the stack's pipeline writes the row and the page (refresh 5 s) shows it.
            expect(processed.get_by_test_id('stMetricValue')).to_have_text('1', timeout=120_000)
            rows = grid_rows(page, 'files_table')
            expect(rows).to_have_count(1)
            expect(rows.first).to_contain_text(f'{bucket}/stack_take.wav')
            expect(page.get_by_role('img', name=f'Spectrogram of {bucket}/stack_take.wav')).to_be_visible(
                timeout=30_000)
            browser.close()
        assert not processes.is_alive(pipeline_pid)
        assert PIPELINE not in LocalStack.load(local_stack.state_dir).services
    finally:
        if pipeline_pid and processes.is_alive(pipeline_pid):
            processes.stop(pipeline_pid)
