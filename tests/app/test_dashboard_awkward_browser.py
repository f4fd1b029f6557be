"""The dashboard end to end on files with awkward properties (AIFF, sub-second, Markdown in the name) and the
errors a person acts on (a long message, a retry), served once for the module and driven in Debian's headless
Chromium through Playwright. Nothing is mocked.
"""
from __future__ import annotations

import os
import re

import pytest

from results import sqlite_store
from tests.app import sample_results
from tests.app.browser import (click_row, dashboard, grid, grid_rows, heading, in_order,
                               open_page, shown)

pytestmark = pytest.mark.e2e
playwright_api = pytest.importorskip('playwright.sync_api')
expect = playwright_api.expect
expect.set_options(timeout=20_000)  # a rerun that reads new rows and images takes seconds on a busy machine


@pytest.fixture(scope='module')
def awkward(tmp_path_factory):
    import datetime as dt

    root = str(tmp_path_factory.mktemp('awkward'))
    sample = sample_results.build(root, files=3, errors=0)
    now = dt.datetime.now(dt.timezone.utc)
    rows = {
        'aiff': sample_results.add_file(sample, 'take.aiff', kind='aiff', processed_at=now - dt.timedelta(minutes=3)),
        'short': sample_results.add_file(sample, 'blip.wav', duration=0.4, processed_at=now - dt.timedelta(minutes=2)),
        'markdown': sample_results.add_file(sample, '*draft* __v2__ take ~~old~~.wav',
                                            processed_at=now - dt.timedelta(minutes=1)),
    }
    locked = sample_results.add_file(sample, 'locked.wav', processed_at=now - dt.timedelta(minutes=4))
    with sqlite_store.connect(sample.db_path) as conn:  # it failed on a locked database instead
        conn.execute('DELETE FROM processed WHERE audio_file = ?', (locked['audio_file'],))
    errors = {
        'retryable': sample_results.add_error(sample, locked['audio_file'], locked['generation'],
                                              'database is locked', retryable=True),
        'long': sample_results.add_error(sample, os.path.join(sample.input_dir, 'noise.mp3'), '7',
                                         'Invalid data: ' + 'frame header missing; ' * 300, retryable=False,
                                         error_type='Corrupt', stage='decode'),
    }
    log = str(tmp_path_factory.mktemp('logs') / 'awkward.log')
    with dashboard(['--results', sample.db_path, '--input', sample.input_dir], log) as served:
        yield served, sample, rows, errors


def open_row(page, rows: list[dict], wanted: dict) -> None:
    index = [r['audio_file'] for r in rows].index(wanted['audio_file'])
    click_row(page, 'files_table', index)
    expect(heading(page)).to_have_text(shown(wanted))


def listed(sample) -> list[dict]:
    return in_order(sqlite_store.read_table(sample.db_path, 'processed'))


def test_names_are_text_not_markdown(browser, awkward):
    served, sample, rows, _ = awkward
    page = open_page(browser, served)
    open_row(page, listed(sample), rows['markdown'])
    expect(heading(page)).to_have_text('input/*draft* __v2__ take ~~old~~.wav')
    assert heading(page).locator('em, strong, del').count() == 0
    expect(grid_rows(page, 'files_table').first).to_contain_text('*draft* __v2__ take ~~old~~.wav')
    metadata = page.get_by_role('table', name='Metadata of the opened file')
    expect(metadata).to_contain_text(rows['markdown']['audio_file'])
    assert metadata.locator('em, strong, del').count() == 0
    page.close()


def test_aiff_plays_through_a_wav_copy(browser, awkward):
    served, sample, rows, _ = awkward
    page = open_page(browser, served)
    open_row(page, listed(sample), rows['aiff'])
    audio = page.locator('audio')
    expect(audio).to_have_count(1)
    state = audio.evaluate('''a => new Promise(resolve => {
        const done = () => resolve({duration: a.duration, error: a.error && a.error.code});
        if (a.readyState >= 1 || a.error) return done();
        a.addEventListener('loadedmetadata', done); a.addEventListener('error', done); a.load(); })''')
    assert state['error'] is None and abs(state['duration'] - rows['aiff']['duration_seconds']) < 0.05, state
    expect(page.get_by_text('AIFF does not play in browsers')).to_be_visible()
    page.close()


def test_sub_second_clips_show_milliseconds(browser, awkward):
    served, sample, rows, _ = awkward
    page = open_page(browser, served)
    open_row(page, listed(sample), rows['short'])
    expect(page.get_by_text('Duration 400 ms')).to_be_visible()
    expect(grid_rows(page, 'files_table').filter(has_text='blip.wav')).to_contain_text('400 ms')
    page.close()


def test_a_long_error_message_is_one_line_until_selected(browser, awkward):
    served, _, _, errors = awkward
    page = open_page(browser, served)
    table = grid(page, 'errors_table')
    expect(grid_rows(page, 'errors_table')).to_have_count(2)
    # The grid keeps every row one line high, whatever the message's length.
    assert table.bounding_box()['height'] <= 3 * 35 + 10
    rows = sqlite_store.read_table(awkward[1].db_path, 'errors')
    order = [e['audio_file'] for e in sorted(rows, key=lambda e: e['failed_at'], reverse=True)]
    click_row(page, 'errors_table', order.index(errors['long']['audio_file']))
    messages = page.locator('.st-key-error_messages')
    expect(messages).to_contain_text(errors['long']['message'].strip()[:200])
    assert errors['long']['message'].strip() in messages.inner_text()
    expect(page.get_by_role('button', name=re.compile('^Retry 0'))).to_be_disabled()  # permanent: no retry
    page.close()


def test_retry_requeues_a_retryable_failure(browser, awkward):
    served, sample, _, errors = awkward
    page = open_page(browser, served)
    rows = sqlite_store.read_table(sample.db_path, 'errors')
    order = [e['audio_file'] for e in sorted(rows, key=lambda e: e['failed_at'], reverse=True)]
    click_row(page, 'errors_table', order.index(errors['retryable']['audio_file']))
    page.get_by_role('button', name='Retry 1 failed file').click()
    # The outcome's message box (the button's tooltip, shown while the pointer rests on it, says "back in the
    # queue" too).
    expect(page.get_by_test_id('stAlert').filter(has_text='1 file back in the queue')).to_be_visible()
    left = {(e['audio_file'], e['generation']) for e in sqlite_store.read_table(sample.db_path, 'errors')}
    assert (errors['retryable']['audio_file'], errors['retryable']['generation']) not in left
    assert (errors['long']['audio_file'], errors['long']['generation']) in left  # only what was retried
    # With no row left, the file is pending again: any pipeline over the input processes it.
    page.reload()
    expect(page.locator('.st-key-pending')).to_contain_text('locked.wav', timeout=15_000)
    page.close()
