"""The dashboard end to end: ``python -m app.serve`` on a results database these tests write, driven in
Debian's headless Chromium through Playwright. Nothing is mocked.
"""
from __future__ import annotations

import os
import re

import numpy as np
import pytest
from PIL import Image

from audio import encode, synth
from results import sqlite_store
from tests.app import sample_results
from tests.app.browser import dashboard, launch_chromium, open_page

pytestmark = pytest.mark.e2e
playwright_api = pytest.importorskip('playwright.sync_api')
expect = playwright_api.expect


@pytest.fixture(scope='module')
def sample(tmp_path_factory):
    return sample_results.build(str(tmp_path_factory.mktemp('dashboard')), files=12, errors=3)


@pytest.fixture(scope='module')
def browser():
    with playwright_api.sync_playwright() as p:
        chromium = launch_chromium(p)
        yield chromium
        chromium.close()


@pytest.fixture(scope='module')
def url(sample, tmp_path_factory):
    log = str(tmp_path_factory.mktemp('logs') / 'dashboard.log')
    with dashboard(['--results', sample.db_path, '--input', sample.input_dir, '--page_size', '10',
                    '--max_upload_mb', '1'], log) as served:
        yield served


@pytest.fixture
def page(browser, url):
    page = open_page(browser, url)
    yield page
    page.close()


def metric(page, label: str):
    return page.get_by_test_id('stMetric').filter(has=page.get_by_text(label, exact=True)).get_by_test_id(
        'stMetricValue')


def table_rows(page, name: str):
    return page.get_by_role('table', name=name).locator('tbody tr')


def newest(rows: list[dict]) -> dict:
    return max(rows, key=lambda r: r['processed_at'])


def test_overview_shows_the_totals(page, sample):
    expect(metric(page, 'Processed')).to_have_text(str(len(sample.processed)))
    expect(metric(page, 'Failed')).to_have_text(str(len(sample.errors)))
    expect(metric(page, 'Failure rate')).to_have_text(f'{3 / 15:.1%}')
    label_chart = page.get_by_test_id('stVegaLiteChart').filter(has_text='Files per label')
    for label in {r['label'] for r in sample.processed}:
        expect(label_chart).to_contain_text(label)
    expect(page.get_by_test_id('stVegaLiteChart').filter(has_text='Processing latency')).to_be_visible()
    expect(table_rows(page, 'Processed files on this page')).to_have_count(10)  # the first page only


def test_inspected_file_shows_spectrogram_audio_and_scores(page, sample):
    row = newest(sample.processed)
    name = 'input/' + os.path.basename(row['audio_file'])  # the page names a file with its folder
    image = page.get_by_role('img', name=f'Spectrogram of {name}')
    expect(image).to_be_visible()
    image.evaluate('img => img.decode()')  # resolves once the browser has the image decoded
    natural = image.evaluate('img => [img.naturalWidth, img.naturalHeight]')
    assert natural == list(Image.open(row['spectrogram_image']).size)

    audio = page.locator('audio')
    expect(audio).to_have_count(1)
    audio_bytes = page.request.get(audio.get_attribute('src')).body()
    assert audio_bytes == open(row['audio_file'], 'rb').read()

    scores = page.get_by_test_id('stVegaLiteChart').filter(has_text='Scores')
    expect(scores).to_be_visible()
    for item in row['scores']:
        expect(scores).to_contain_text(item['label'])
    assert scores.locator('path[aria-roledescription="bar"], .mark-rect path').count() == len(row['scores'])
    expect(page.get_by_role('table', name='Metadata of the inspected file')).to_contain_text(row['audio_file'])


def test_recent_errors_show_stage_and_reason(page, sample):
    rows = table_rows(page, 'Recent errors')
    expect(rows).to_have_count(len(sample.errors))
    first = rows.filter(has_text='broken-00.mp3')
    error = next(e for e in sample.errors if e['audio_file'].endswith('broken-00.mp3'))
    for text in (error['stage'], error['error_type'], error['message']):
        expect(first).to_contain_text(text)


def test_name_filter_narrows_the_list(page, sample):
    expected = [r for r in sample.processed if 'park' in r['audio_file']]
    assert 0 < len(expected) < len(sample.processed)
    page.get_by_label('Name contains').fill('park')
    page.get_by_label('Name contains').press('Enter')
    expect(metric(page, 'Processed')).to_have_text(str(len(expected)))
    rows = table_rows(page, 'Processed files on this page')
    expect(rows).to_have_count(len(expected))
    for i in range(len(expected)):
        expect(rows.nth(i)).to_contain_text('park')


def test_label_filter_narrows_the_list(page, sample):
    label = sample.processed[0]['label']
    expected = [r for r in sample.processed if r['label'] == label]
    page.get_by_test_id('stMultiSelect').click()
    page.get_by_role('option', name=label, exact=True).click()
    page.keyboard.press('Escape')
    expect(metric(page, 'Processed')).to_have_text(str(len(expected)))
    rows = table_rows(page, 'Processed files on this page')
    expect(rows).to_have_count(min(10, len(expected)))
    for i in range(min(10, len(expected))):
        expect(rows.nth(i).locator('td').nth(2)).to_have_text(label)


def test_upload_lands_in_the_input_folder(page, sample):
    wav = encode.encode(synth.sine_sweep(1.0, 16000), 16000, 'wav')
    page.locator('input[type=file]').set_input_files([
        {'name': 'field recording #1.wav', 'mimeType': 'audio/wav', 'buffer': wav},
        {'name': 'notes.txt', 'mimeType': 'text/plain', 'buffer': b'not audio'},
    ])
    saved = os.path.join(sample.input_dir, 'field_recording_1.wav')
    expect(page.get_by_test_id('stAlert').filter(has_text='field recording #1.wav: saved as')).to_contain_text(saved)
    expect(page.get_by_test_id('stAlert').filter(has_text='notes.txt')).to_contain_text('not an audio file')
    assert open(saved, 'rb').read() == wav
    assert not [f for f in os.listdir(sample.input_dir) if f.startswith(('notes', '.upload-'))]


def test_oversized_upload_is_refused_with_a_message(page, sample):
    # --max_upload_mb 1: Streamlit's uploader refuses it in the page, so it never reaches the input folder.
    noise = np.random.default_rng(0).uniform(-0.5, 0.5, 48000 * 12).astype(np.float32)
    big = encode.encode(noise, 48000, 'wav')
    assert len(big) > 1024 * 1024
    page.locator('input[type=file]').set_input_files([{'name': 'long.wav', 'mimeType': 'audio/wav', 'buffer': big}])
    expect(page.get_by_test_id('stFileUploader')).to_contain_text(re.compile(r'1(\.0)? ?MB', re.I))
    assert not os.path.exists(os.path.join(sample.input_dir, 'long.wav'))


def test_auto_refresh_shows_rows_added_by_a_running_pipeline(browser, tmp_path):
    fresh = sample_results.build(str(tmp_path), files=3, errors=0)
    with dashboard(['--results', fresh.db_path], str(tmp_path / 'dashboard.log')) as served:
        page = open_page(browser, served)
        expect(metric(page, 'Processed')).to_have_text('3')
        page.get_by_test_id('stSelectbox').filter(has_text='Auto-refresh').click()
        page.get_by_role('option', name='Every 5 s').click()
        more = sample_results.bulk_rows(4)  # what a streaming run would append meanwhile
        with sqlite_store.connect(fresh.db_path) as conn:
            sqlite_store.write_processed(conn, more)
        # No reload, no click: the refresh brings the new rows in.
        expect(metric(page, 'Processed')).to_have_text('7', timeout=45_000)
        page.close()
