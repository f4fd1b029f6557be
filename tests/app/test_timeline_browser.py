"""The event timeline in the browser: aligned with the spectrogram's time axis, choosing an event plays the audio
from its start, and the file list filters by event label and shows event counts. Real dashboard, real Chromium.
"""
from __future__ import annotations

import pytest
from PIL import Image

from audio.spectrogram import plot_columns
from tests.app import sample_results
from tests.app.browser import grid, grid_rows, dashboard, launch_chromium, open_page

pytestmark = pytest.mark.e2e
playwright_api = pytest.importorskip('playwright.sync_api')
expect = playwright_api.expect


@pytest.fixture(scope='module')
def sample(tmp_path_factory):
    return sample_results.build(str(tmp_path_factory.mktemp('timeline')), files=8, errors=1)


@pytest.fixture(scope='module')
def log(tmp_path_factory):
    return str(tmp_path_factory.mktemp('logs') / 'dashboard.log')


@pytest.fixture(scope='module')
def page(sample, log):
    with dashboard(['--results', sample.db_path, '--page_size', '10'], log) as url:
        with playwright_api.sync_playwright() as p:
            browser = launch_chromium(p)
            page = open_page(browser, url)
            yield page
            browser.close()


def newest(rows):
    return max(rows, key=lambda r: r['processed_at'])


def band_of(frame, event):
    """The band of one event: its accessible name says its label and times."""
    name = f"{event['label']} · {event['start_seconds']:.2f}–{event['end_seconds']:.2f} s"
    return frame.locator('.band').filter(has=frame.locator(f'xpath=self::*[starts-with(@aria-label, "{name}")]'))


def test_timeline_lines_up_with_the_spectrogram_and_plays_the_chosen_event(page, sample):
    row = newest(sample.processed)   # the file inspected by default
    events = sample.events[(row['audio_file'], row['generation'])]
    assert len(events) == 2 and events[0]['label'] != events[1]['label']
    image = page.get_by_role('img', name='Spectrogram of input/' + row['audio_file'].rsplit('/', 1)[-1])
    expect(image).to_be_visible()
    frame = page.frame_locator('iframe[title="Events of the inspected file"]')
    expect(frame.locator('.band')).to_have_count(len(events))
    # One lane per label, named in the margin; each band shows its confidence.
    expect(frame.locator('.lane .name')).to_have_text(sorted(e['label'] for e in events))
    for event in events:
        expect(band_of(frame, event)).to_have_text(f"{event['confidence']:.2f}")

    # Same time scale as the image's own axis: an event's start and end sit over the same instants.
    box = image.bounding_box()
    natural_width = Image.open(row['spectrogram_image']).width
    left, width = plot_columns(natural_width)
    duration = row['duration_seconds']

    def x_of(seconds: float) -> float:
        return box['x'] + box['width'] * (left + (width - 1) * seconds / duration) / natural_width

    lanes = {}
    for event in events:
        band_box = band_of(frame, event).bounding_box()
        assert abs(band_box['x'] - x_of(event['start_seconds'])) <= 2, (band_box, event)
        assert abs(band_box['x'] + band_box['width'] - x_of(event['end_seconds'])) <= 2, (band_box, event)
        lanes[event['label']] = band_box['y']
    assert len(set(lanes.values())) == 2   # two labels, two lanes

    # Choosing the second event plays that event: from its start, stopping at its end.
    audio = page.locator('.st-key-file_audio audio')
    expect(audio).to_have_count(1)
    band_of(frame, events[1]).click()
    start, end = events[1]['start_seconds'], events[1]['end_seconds']
    page.wait_for_function('([s]) => { const a = document.querySelector(".st-key-file_audio audio"); '
                           'return a && !a.paused && a.currentTime >= s - 0.05; }', arg=[start], timeout=10_000)
    page.wait_for_function('() => document.querySelector(".st-key-file_audio audio").paused',
                           timeout=10_000 + 1000 * (end - start))
    position = audio.evaluate('a => a.currentTime')
    assert end - 0.05 <= position < end + 0.3, (position, end)


def test_file_list_shows_event_counts_and_filters_by_event_label(page, sample):
    rows = grid_rows(page, 'files_table')
    expect(rows).to_have_count(len(sample.processed))
    header = grid(page, 'files_table').locator('thead th')
    names = [header.nth(i).inner_text().strip() for i in range(header.count())]
    events_column = names.index('Events')
    newest_first = sorted(sample.processed, key=lambda r: r['processed_at'], reverse=True)
    for i, row in enumerate(newest_first):
        expect(rows.nth(i).locator('td, th').nth(events_column)).to_have_text(str(row['event_count']))

    # The second label of the even files is heard in them without being their file label.
    label = sample.events[(newest_first[0]['audio_file'], newest_first[0]['generation'])][-1]['label']
    expected = [r for r in sample.processed
                if any(e['label'] == label for e in sample.events[(r['audio_file'], r['generation'])])]
    assert 0 < len(expected) < len(sample.processed)
    assert any(r['label'] != label for r in expected)
    page.get_by_test_id('stSelectbox').filter(has_text='Has an event of label').click()
    page.get_by_role('option', name=label, exact=True).click()
    expect(rows).to_have_count(len(expected))
    shown = {rows.nth(i).inner_text() for i in range(len(expected))}
    for row in expected:
        assert any(row['audio_file'].rsplit('/', 1)[-1] in text for text in shown)


def test_the_timeline_uses_the_current_api_so_the_server_warns_of_nothing(page, log):
    # st.components.v1.html made Streamlit print "Please replace `st.components.v1.html` with `st.iframe`" on
    # every run (83 times in 20 minutes); st.iframe draws the same frame.
    expect(page.frame_locator('iframe[title="Events of the inspected file"]').locator('.band').first).to_be_visible()
    text = open(log).read()
    assert 'Please replace' not in text and 'deprecat' not in text.lower(), text[-2000:]
