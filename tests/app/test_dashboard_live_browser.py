"""The dashboard end to end over results that appear, grow, or are not results at all: each test serves its own
(``python -m app.serve``) and drives it in Debian's headless Chromium through Playwright. Nothing is mocked.
"""
from __future__ import annotations

import os
import re

import pytest

from results import sqlite_store
from tests.app import sample_results
from tests.app.browser import dashboard, metric, open_page, settled

pytestmark = pytest.mark.e2e
playwright_api = pytest.importorskip('playwright.sync_api')
expect = playwright_api.expect
expect.set_options(timeout=20_000)  # a rerun that reads new rows and images takes seconds on a busy machine


def test_count_axis_has_whole_numbers_only(browser, tmp_path):
    few = sample_results.build(str(tmp_path), files=3, errors=0)  # one file per label: ticks 0..1
    with dashboard(['--results', few.db_path], str(tmp_path / 'dashboard.log')) as served:
        page = open_page(browser, served)
        chart = page.get_by_test_id('stVegaLiteChart').filter(has_text='Files per label')
        expect(chart).to_be_visible()
        labels = chart.locator('g.role-axis-label text')
        labels.first.wait_for()
        ticks = labels.all_text_contents()
        numbers = [t for t in ticks if re.fullmatch(r'[\d.,]+', t)]
        assert numbers and all(re.fullmatch(r'\d+', t) for t in numbers), ticks
        page.close()


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


# Records the most "Processed" figures the page shows at once, after every change of the page.
WATCH_PROCESSED_FIGURES = """() => {
  window.mostProcessed = 0;
  const count = () => [...document.querySelectorAll('[data-testid="stMetricLabel"]')]
      .filter(e => e.innerText.trim() === 'Processed').length;
  new MutationObserver(() => { window.mostProcessed = Math.max(window.mostProcessed, count()); })
      .observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


def test_figures_keep_their_place_when_pending_uploads_get_their_rows(browser, tmp_path):
    """The pending box goes away when the pipeline writes the uploads' rows; the figures below it are drawn once,
    not one place up while the old ones still show (it happened in 4 of 6 such refreshes before the fix)."""
    fresh = sample_results.build(str(tmp_path), files=3, errors=0)
    args = ['--results', fresh.db_path, '--input', fresh.input_dir, '--refresh', '5']
    with dashboard(args, str(tmp_path / 'dashboard.log')) as served:
        page = open_page(browser, served)
        page.evaluate(WATCH_PROCESSED_FIGURES)
        for i in range(2):
            row = sample_results.add_file(fresh, f'waiting-{i}.wav', record=False)
            expect(page.locator('.st-key-pending')).to_contain_text(f'waiting-{i}.wav')
            settled(page)
            page.evaluate('window.mostProcessed = 0')
            sample_results.record_rows(fresh, [row])  # what the pipeline does: the next refresh drops the box
            expect(page.locator('.st-key-pending')).to_have_count(0)
            expect(metric(page, 'Processed')).to_have_text(str(4 + i))
            settled(page)
            assert page.evaluate('window.mostProcessed') == 1
        page.close()


def test_filters_appear_when_the_results_file_appears_later(browser, tmp_path):
    db = tmp_path / 'later' / 'results.db'
    with dashboard(['--results', str(db), '--refresh', '5'], str(tmp_path / 'dashboard.log')) as served:
        page = browser.new_page(viewport={'width': 1400, 'height': 1600})
        page.goto(served)
        expect(page.get_by_text('No results database')).to_be_visible(timeout=30_000)
        expect(page.get_by_test_id('stMain').locator('code', has_text='make run')).to_be_visible()  # not `make run`
        expect(page.get_by_label('Name contains')).to_be_visible()
        later = sample_results.build(str(tmp_path / 'later'), files=3, errors=0)  # the pipeline's first rows
        expect(metric(page, 'Processed')).to_have_text('3', timeout=45_000)
        settled(page)
        page.get_by_test_id('stMultiSelect').click()  # the label filter now offers the new labels
        for label in {r['label'] for r in later.processed}:
            expect(page.get_by_role('option', name=label, exact=True)).to_be_visible()
        page.close()


def test_an_empty_page_beside_a_running_pipeline_says_upload_a_file(browser, tmp_path):
    # What `make ui` starts on a fresh clone: no results yet, a pipeline watching the upload folder.
    args = ['--results', str(tmp_path / 'results.db'), '--input', str(tmp_path / 'in'), '--pipeline_running']
    (tmp_path / 'in').mkdir()
    with dashboard(args, str(tmp_path / 'dashboard.log')) as served:
        page = browser.new_page(viewport={'width': 1400, 'height': 1600})
        page.goto(served)
        main = page.get_by_test_id('stMain')
        expect(main).to_contain_text('Upload an audio file (sidebar): the pipeline running beside this page',
                                     timeout=30_000)
        expect(main).not_to_contain_text('make run')
        expect(main).not_to_contain_text('`')
        page.close()


@pytest.mark.parametrize('kind', ['sqlite-not-named-db', 'text-named-db', 'nothing'])
def test_bad_results_give_a_message_not_a_traceback(browser, tmp_path, kind):
    if kind == 'sqlite-not-named-db':
        sample = sample_results.build(str(tmp_path), files=2, errors=0)
        results = str(tmp_path / 'results.sqlite')
        os.rename(sample.db_path, results)
    elif kind == 'text-named-db':
        results = str(tmp_path / 'junk.db')
        open(results, 'w').write('these are not the rows you are looking for\n' * 20)
    else:
        results = str(tmp_path / 'no' / 'such' / 'results.sqlite')
    with dashboard(['--results', results], str(tmp_path / 'dashboard.log')) as served:
        page = browser.new_page(viewport={'width': 1400, 'height': 1600})
        page.goto(served)
        main = page.get_by_test_id('stMain')
        if kind == 'sqlite-not-named-db':
            expect(metric(page, 'Processed')).to_have_text('2', timeout=30_000)  # a SQLite file is read as such
        elif kind == 'text-named-db':
            expect(main).to_contain_text('is not a SQLite database', timeout=30_000)
        else:
            expect(main).to_contain_text('neither an existing file nor a BigQuery table', timeout=30_000)
        for leak in ('Traceback', 'ValueError', 'DatabaseError', 'not a BigQuery table ('):
            expect(main).not_to_contain_text(leak)
        page.close()
