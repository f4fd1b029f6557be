"""A 1-hour recording on the page, a range at a time: the range's own spectrogram (drawn for it, near 1:1, its
axis in the file's time), its events in one lane per label, its audio; Earlier / Later and a link choose the
range; choosing an event plays that event. Real dashboard, real Chromium; the hour of audio is made here.
"""
from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest

from app import clips
from app.timeline import in_view
from tests.app import sample_results
from tests.app.browser import dashboard, open_page, settled

pytestmark = pytest.mark.e2e
playwright_api = pytest.importorskip('playwright.sync_api')
expect = playwright_api.expect
expect.set_options(timeout=20_000)


@pytest.fixture(scope='module')
def hour(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('long'))
    sample = sample_results.build(root, files=1, errors=0)
    return sample, sample_results.add_long_recording(sample)   # the newest row: opened first


@pytest.fixture(scope='module')
def url(hour, tmp_path_factory):
    log = str(tmp_path_factory.mktemp('logs') / 'dashboard.log')
    with dashboard(['--results', hour[0].db_path], log) as served:
        yield served


def spectrogram(page, label: str):
    return page.get_by_role('img', name=f'Spectrogram of input/hour.wav, {label}')


def timeline(page):
    return page.frame_locator('iframe[title="Events of the inspected file"]')


def player_duration(page) -> float:
    return page.locator('.st-key-file_audio audio').evaluate('''a => new Promise(resolve => {
        if (a.readyState >= 1) return resolve(a.duration);
        a.addEventListener('loadedmetadata', () => resolve(a.duration)); a.load(); })''')


def test_the_first_minute_is_drawn_for_itself_with_a_lane_per_label_and_its_own_audio(browser, url, hour):
    _, row = hour
    page = open_page(browser, url)
    image = spectrogram(page, '0:00–1:00')
    expect(image).to_be_visible()
    # The range's own rendering (the file's time on its axis), not the whole hour's image squeezed.
    span = clips.Span(0.0, 60.0)
    samples, rate = clips.read_span(row['audio_file'], span)
    expected = clips.span_spectrogram(samples, rate, span, 'input/hour.wav')
    assert page.request.get(image.get_attribute('src')).body() == expected
    # Drawn near its own size: the axis labels stay readable.
    natural = image.evaluate('img => img.decode().then(() => img.naturalWidth)')
    assert 0.8 <= image.bounding_box()['width'] / natural <= 1.25, (image.bounding_box(), natural)

    shown = in_view(row['events'], 0.0, 60.0)
    expect(timeline(page).locator('.band')).to_have_count(len(shown))
    expect(timeline(page).locator('.lane .name')).to_have_text(sorted({e['label'] for e in shown}))
    expect(page.get_by_text(f'{len(shown)} events in this range ({len(row["events"])} in the file)')).to_be_visible()
    assert abs(player_duration(page) - 60.0) < 0.1   # the range's audio, not the hour
    page.close()


def test_later_and_a_link_choose_the_range_and_an_event_plays_itself(browser, url, hour):
    sample, row = hour
    page = open_page(browser, url)
    expect(spectrogram(page, '0:00–1:00')).to_be_visible()
    settled(page)
    page.get_by_role('button', name='Later ▶').click()
    expect(spectrogram(page, '1:00–2:00')).to_be_visible()
    page.wait_for_url(re.compile(r't=60-120'))   # the range is part of the view's URL
    page.close()

    # A link to half past, thirty seconds of it: two sounds at once sit in two lanes at the same time.
    link = urlencode({'file': row['audio_file'], 'gen': row['generation'], 't': '1800-1830'})
    page = open_page(browser, f'{url}/?{link}')
    expect(spectrogram(page, '30:00–30:30')).to_be_visible()
    shown = in_view(row['events'], 1800.0, 1830.0)
    bands = timeline(page).locator('.band')
    expect(bands).to_have_count(len(shown))
    first, overlapping = shown[0], next(e for e in shown[1:] if e['start_seconds'] < shown[0]['end_seconds'])
    assert first['label'] != overlapping['label']
    boxes = [bands.filter(has=timeline(page).locator(
        f'xpath=self::*[starts-with(@aria-label, "{e["label"]} · {e["start_seconds"]:.2f}")]')).bounding_box()
        for e in (first, overlapping)]
    assert boxes[0]['x'] < boxes[1]['x'] < boxes[0]['x'] + boxes[0]['width']   # at the same time ...
    assert boxes[0]['y'] != boxes[1]['y']                                        # ... in their own lanes
    assert abs(player_duration(page) - 30.0) < 0.1

    # Choosing an event plays that event, from its start to its end, in the range's audio.
    bands.nth(0).click()
    start, end = first['start_seconds'] - 1800, first['end_seconds'] - 1800
    page.wait_for_function('([s]) => { const a = document.querySelector(".st-key-file_audio audio"); '
                           'return !a.paused && a.currentTime >= s - 0.05; }', arg=[start], timeout=10_000)
    page.wait_for_function('() => document.querySelector(".st-key-file_audio audio").paused',
                           timeout=10_000 + 1000 * (end - start))
    position = page.locator('.st-key-file_audio audio').evaluate('a => a.currentTime')
    assert end - 0.05 <= position < end + 0.3, (position, end)
    page.close()
