"""The dashboard end to end over one results database these tests write, served once for the module
(``python -m app.serve``) and driven in Debian's headless Chromium through Playwright. Nothing is mocked.

The pages over results that change or are missing: test_dashboard_live_browser.py; files with awkward
properties and the errors a person acts on: test_dashboard_awkward_browser.py.
"""
from __future__ import annotations

import csv
import io
import os
import re
from urllib.parse import quote

import numpy as np
import pytest
from PIL import Image

from audio import encode, synth
from app.units import size_text
from tests.app import sample_results
from tests.app.browser import (click, click_row, dashboard, grid_rows, heading, in_order,
                               metric, newest, open_page, settled, shown)

pytestmark = pytest.mark.e2e
playwright_api = pytest.importorskip('playwright.sync_api')
expect = playwright_api.expect
expect.set_options(timeout=20_000)  # a rerun that reads new rows and images takes seconds on a busy machine


@pytest.fixture(scope='module')
def sample(tmp_path_factory):
    return sample_results.build(str(tmp_path_factory.mktemp('dashboard')), files=12, errors=3)


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


def test_overview_shows_the_totals(page, sample):
    expect(metric(page, 'Processed')).to_have_text(str(len(sample.processed)))
    expect(metric(page, 'Failed')).to_have_text(str(len(sample.errors)))
    expect(metric(page, 'Failure rate')).to_have_text(f'{3 / 15:.1%}')
    label_chart = page.get_by_test_id('stVegaLiteChart').filter(has_text='Files per label')
    for label in {r['label'] for r in sample.processed}:
        expect(label_chart).to_contain_text(label)
    expect(page.get_by_test_id('stVegaLiteChart').filter(has_text='Processing latency')).to_be_visible()
    expect(grid_rows(page, 'files_table')).to_have_count(10)  # the first page only


def test_inspected_file_shows_spectrogram_audio_and_scores(page, sample):
    row = newest(sample.processed)
    image = page.get_by_role('img', name=f'Spectrogram of {shown(row)}')
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
    expect(page.get_by_role('table', name='Metadata of the opened file')).to_contain_text(row['audio_file'])


def test_clicking_a_row_opens_its_file_and_previous_next_walk_the_list(browser, url, sample):
    page = open_page(browser, url, 1400, 2200)
    rows = in_order(sample.processed)
    expect(heading(page)).to_have_text(shown(rows[0]))
    click_row(page, 'files_table', 3)
    expect(heading(page)).to_have_text(shown(rows[3]))
    expect(page.get_by_role('img', name=f'Spectrogram of {shown(rows[3])}')).to_be_visible()
    click(page, 'Next ▶')
    expect(heading(page)).to_have_text(shown(rows[4]))
    click(page, '◀ Previous')
    # Each button carries the file it opens as drawn: wait for the page a click produced before the next click
    # (on a loaded machine the status widget may not have shown yet when `settled` looks).
    expect(heading(page)).to_have_text(shown(rows[3]))
    click(page, '◀ Previous')
    expect(heading(page)).to_have_text(shown(rows[2]))
    # The opened file is in the URL by the time it shows (the page writes the URL before drawing the file): a
    # reload, or a link copied now, opens it again. (Written at the end of the run, the URL still named the file
    # before: reloading at once reopened that one.)
    assert quote(os.path.basename(rows[2]['audio_file'])) in page.url
    page.reload()
    expect(heading(page)).to_have_text(shown(rows[2]))
    page.close()


def test_next_crosses_to_the_next_page(browser, url, sample):
    from urllib.parse import urlencode

    rows = in_order(sample.processed)
    # A link to the last file of page 1 (as the URL keeps it); Next opens the first of page 2, Previous comes back.
    page = open_page(browser, f'{url}/?{urlencode({"file": rows[9]["audio_file"], "gen": rows[9]["generation"]})}')
    expect(heading(page)).to_have_text(shown(rows[9]))
    click(page, 'Next ▶')
    expect(heading(page)).to_have_text(shown(rows[10]))
    expect(page.get_by_label(re.compile('Page'))).to_have_value('2')
    click(page, '◀ Previous')
    expect(heading(page)).to_have_text(shown(rows[9]))
    expect(page.get_by_label(re.compile('Page'))).to_have_value('1')
    page.close()


def test_previous_next_walk_from_a_file_opened_off_the_current_page(browser, url, sample):
    from urllib.parse import urlencode

    rows = in_order(sample.processed)
    # A link to the fifth file with the list on page 2 (as when new rows push the opened file off page 1).
    link = urlencode({'file': rows[4]['audio_file'], 'gen': rows[4]['generation'], 'page': '2'})
    page = open_page(browser, f'{url}/?{link}')
    expect(heading(page)).to_have_text(shown(rows[4]))
    expect(page.get_by_label(re.compile('Page'))).to_have_value('2')
    expect(page.get_by_role('button', name='◀ Previous')).to_be_enabled()
    click(page, 'Next ▶')
    expect(heading(page)).to_have_text(shown(rows[5]))   # the file after it, not the newest of page 2
    expect(page.get_by_label(re.compile('Page'))).to_have_value('1')
    click(page, '◀ Previous')
    expect(heading(page)).to_have_text(shown(rows[4]))
    click(page, '◀ Previous')
    expect(heading(page)).to_have_text(shown(rows[3]))
    page.close()


def test_a_filter_that_matches_nothing_opens_nothing_and_the_errors_box_says_what_was_filtered(page, sample):
    expect(heading(page)).to_have_text(shown(newest(sample.processed)))
    page.get_by_label('Name contains').fill('no-such-file')
    page.get_by_label('Name contains').press('Enter')
    expect(page.get_by_text('No processed files match the filters.')).to_be_visible()
    expect(heading(page)).to_have_count(0)   # the file opened before is not shown under a filter it fails
    expect(page.locator('audio')).to_have_count(0)
    expect(page.get_by_test_id('stAlert').filter(has_text='No failed files')).to_have_text(
        'No failed files whose name contains "no-such-file".')
    # A filter that lists other files opens the newest of them.
    page.get_by_label('Name contains').fill('park')
    page.get_by_label('Name contains').press('Enter')
    expect(heading(page)).to_have_text(shown(newest([r for r in sample.processed if 'park' in r['audio_file']])))


def test_recent_errors_show_stage_and_reason(page, sample):
    rows = grid_rows(page, 'errors_table')
    expect(rows).to_have_count(len(sample.errors))
    first = rows.filter(has_text='broken-00.mp3')
    error = next(e for e in sample.errors if e['audio_file'].endswith('broken-00.mp3'))
    for text in (error['stage'], error['error_type'], error['message']):
        expect(first).to_contain_text(text)


def test_name_filter_narrows_the_list_and_lives_in_the_url(page, sample):
    expected = [r for r in sample.processed if 'park' in r['audio_file']]
    assert 0 < len(expected) < len(sample.processed)
    page.get_by_label('Name contains').fill('park')
    page.get_by_label('Name contains').press('Enter')
    expect(metric(page, 'Processed')).to_have_text(str(len(expected)))
    rows = grid_rows(page, 'files_table')
    expect(rows).to_have_count(len(expected))
    for i in range(len(expected)):
        expect(rows.nth(i)).to_contain_text('park')
    page.wait_for_url(re.compile(r'name=park'))
    page.reload()  # the filter survives a reload
    expect(page.get_by_label('Name contains')).to_have_value('park')
    expect(metric(page, 'Processed')).to_have_text(str(len(expected)))
    page.get_by_role('button', name='Clear filters').click()
    expect(page.get_by_label('Name contains')).to_have_value('')
    expect(metric(page, 'Processed')).to_have_text(str(len(sample.processed)))
    page.wait_for_url(lambda u: 'name=' not in u)


def test_label_filter_narrows_the_list_but_not_the_failure_rate(page, sample):
    label = sample.processed[0]['label']
    expected = [r for r in sample.processed if r['label'] == label]
    page.get_by_test_id('stMultiSelect').click()
    page.get_by_role('option', name=label, exact=True).click()
    page.keyboard.press('Escape')
    expect(metric(page, 'Processed')).to_have_text(str(len(expected)))
    rows = grid_rows(page, 'files_table')
    expect(rows).to_have_count(min(10, len(expected)))
    for i in range(min(10, len(expected))):
        expect(rows.nth(i).locator('td').nth(2)).to_have_text(label)
    # Errors have no label: the rate stays failed / (all processed + failed) in this time range and name.
    expect(metric(page, 'Failed')).to_have_text(str(len(sample.errors)))
    expect(metric(page, 'Failure rate')).to_have_text(f'{3 / 15:.1%}')


def download_csv(page) -> tuple[str, list[dict]]:
    with page.expect_download() as download:
        page.get_by_role('button', name='Download CSV').click()
    content = open(download.value.path(), encoding='utf-8').read()
    return download.value.suggested_filename, list(csv.DictReader(io.StringIO(content)))


def test_csv_export_holds_every_filtered_row_with_events_and_scores(page, sample):
    name, rows = download_csv(page)
    assert name == 'audio-results.csv'
    assert len(rows) == len(sample.processed) > 10  # all of them, not the page shown
    by_file = {r['Audio file']: r for r in rows}
    assert set(by_file) == {r['audio_file'] for r in sample.processed}
    # The page's names for its columns (the metadata says "Uploaded (UTC)"), the event count, every score.
    assert {'Processed (UTC)', 'Uploaded (UTC)', 'Label', 'Confidence', 'Events', 'Generation'} <= set(rows[0])
    for row in sample.processed:
        exported = by_file[row['audio_file']]
        assert exported['Events'] == str(row['event_count'])
        for score in row['scores']:
            assert float(exported[f"Score: {score['label']}"]) == pytest.approx(score['score'])
    expect(page.get_by_role('table', name='Metadata of the opened file')).to_contain_text('Uploaded (UTC)')

    page.get_by_label('Name contains').fill('park')
    page.get_by_label('Name contains').press('Enter')
    expect(metric(page, 'Processed')).to_have_text(str(sum('park' in r['audio_file'] for r in sample.processed)))
    settled(page)
    name, rows = download_csv(page)
    assert name == 'audio-results-name-park.csv' and all('park' in r['Audio file'] for r in rows)

def test_the_file_picker_offers_audio_only(page):
    accept = page.locator('input[type=file]').get_attribute('accept')
    assert '.wav' in accept and '.flac' in accept and '.aiff' in accept
    assert '.txt' not in accept and '.pdf' not in accept


def test_upload_lands_in_the_input_folder_readable_and_pending(page, sample):
    wav = encode.encode(synth.sine_sweep(1.0, 16000), 16000, 'wav')
    page.locator('input[type=file]').set_input_files([
        {'name': 'field recording #1.wav', 'mimeType': 'audio/wav', 'buffer': wav},
        {'name': '*draft* __v2__.wav', 'mimeType': 'audio/wav', 'buffer': wav},
    ])
    saved = os.path.join(sample.input_dir, 'field_recording_1.wav')
    expect(page.get_by_test_id('stAlert').filter(has_text='field recording #1.wav: saved as')).to_contain_text(saved)
    # The name as typed, not as Markdown.
    expect(page.get_by_test_id('stAlert').filter(has_text='*draft* __v2__.wav: saved as')).to_be_visible()
    assert open(saved, 'rb').read() == wav
    assert os.stat(saved).st_mode & 0o777 == 0o644  # a pipeline running as another user can read it
    assert not [f for f in os.listdir(sample.input_dir) if f.startswith('.upload-')]
    # No pipeline runs beside this page: the upload is shown as waiting for one.
    pending = page.locator('.st-key-pending')
    expect(pending).to_contain_text('waiting for the pipeline', timeout=15_000)
    expect(pending).to_contain_text('field_recording_1.wav')
    expect(pending).to_contain_text(size_text(len(wav)))   # sizes as everywhere on the page (and the uploader)
    expect(page.get_by_test_id('stSidebar')).to_contain_text('up to 1 MB each')


def test_a_non_audio_file_is_refused_in_the_picker(page, sample):
    page.locator('input[type=file]').set_input_files([
        {'name': 'notes.txt', 'mimeType': 'text/plain', 'buffer': b'not audio'}])
    expect(page.get_by_test_id('stFileUploader')).to_contain_text(re.compile('not allowed|not supported', re.I))
    assert not os.path.exists(os.path.join(sample.input_dir, 'notes.txt'))


def test_oversized_upload_is_refused_with_a_message(page, sample):
    # --max_upload_mb 1: Streamlit's uploader refuses it in the page, so it never reaches the input folder.
    noise = np.random.default_rng(0).uniform(-0.5, 0.5, 48000 * 12).astype(np.float32)
    big = encode.encode(noise, 48000, 'wav')
    assert len(big) > 1024 * 1024
    page.locator('input[type=file]').set_input_files([{'name': 'long.wav', 'mimeType': 'audio/wav', 'buffer': big}])
    expect(page.get_by_test_id('stFileUploader')).to_contain_text(re.compile(r'1(\.0)? ?MB', re.I))
    assert not os.path.exists(os.path.join(sample.input_dir, 'long.wav'))
