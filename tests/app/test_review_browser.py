"""The Review page in Chromium: verdicts by click and by key become rows of the reviews table, Undo takes the last
one back, and a reload shows the same detection. Real dashboard (python -m app.serve), real SQLite results."""
from __future__ import annotations

import re

import pytest

from results import reviews
from results.store import open_store
from tests.app import sample_results
from tests.app.browser import dashboard, launch_chromium, open_page, settled

pytestmark = pytest.mark.e2e
playwright_api = pytest.importorskip('playwright.sync_api')
expect = playwright_api.expect


@pytest.fixture(scope='module')
def sample(tmp_path_factory):
    return sample_results.build(str(tmp_path_factory.mktemp('review')), files=12, errors=0)


def review_count(sample) -> int:
    return len(reviews.current_reviews(open_store(sample.db_path)))


def showing(page, number: int, total: int):
    return page.get_by_text(f'Detection {number} of {total}', exact=True)


def test_review_ten_by_clicking_undo_the_last_and_a_reload_keeps_the_place(sample, tmp_path):
    total = sum(len(events) for events in sample.events.values())
    assert total > 11
    with dashboard(['--results', sample.db_path], str(tmp_path / 'dashboard.log')) as url:
        with playwright_api.sync_playwright() as p:
            browser = launch_chromium(p)
            page = open_page(browser, url)
            page.get_by_role('button', name='Review').click()
            expect(showing(page, 1, total)).to_be_visible()
            expect(page.get_by_role('img', name=re.compile('Spectrogram of the clip of'))).to_be_visible()
            expect(page.locator('audio')).to_have_count(1)
            for i in range(10):
                settled(page)   # a click during the previous verdict's rerun can land on a button being replaced
                page.get_by_role('button', name='Wrong' if i % 3 == 2 else 'Correct').click()
                expect(showing(page, i + 2, total)).to_be_visible()
            assert review_count(sample) == 10
            rows = reviews.current_reviews(open_store(sample.db_path))
            assert sorted(r['verdict'] for r in rows) == ['correct'] * 7 + ['wrong'] * 3

            settled(page)
            page.get_by_role('button', name='Undo').click()
            expect(showing(page, 10, total)).to_be_visible()
            assert review_count(sample) == 9

            settled(page)
            page.get_by_role('button', name='Skip').click()
            expect(showing(page, 11, total)).to_be_visible()
            settled(page)
            assert 'rpos=10' in page.url
            page.reload()
            expect(showing(page, 11, total)).to_be_visible()
            assert review_count(sample) == 9

            # The keyboard: Y is Correct.
            settled(page)
            page.keyboard.press('y')
            expect(showing(page, 12, total)).to_be_visible()
            assert review_count(sample) == 10
            browser.close()
