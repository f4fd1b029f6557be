"""The timeline's HTML: bands at the image's time scale (the whole file or a range), a lane per label, labels
escaped, overlapping events of one label on rows of their own within its lane."""
import re

from app.timeline import in_view, lanes, rows_for, timeline_html
from audio.spectrogram import plot_columns


def event(start, end, label='tone', confidence=0.9):
    return {'start_seconds': start, 'end_seconds': end, 'label': label, 'confidence': confidence}


def test_bands_sit_at_the_fractions_of_the_image_width_where_the_plot_puts_their_times():
    left, width = plot_columns(1000)
    html = timeline_html([event(2.5, 5.0)], 0.0, 10.0, 1000)
    x = 100 * (left + (width - 1) * 0.25) / 1000
    w = 100 * (width - 1) * 0.25 / 1000
    assert f'left:{x:.4f}%;width:{w:.4f}%' in html
    assert 'data-start="2.500" data-end="5.000"' in html and '>0.90</div>' in html


def test_a_range_places_bands_in_its_own_time_and_plays_them_from_the_range_audio():
    left, width = plot_columns(1000)
    # The range 700..760 s; its audio starts at 700 s. An event crossing the range's start is cut at it.
    html = timeline_html([event(690, 705), event(730, 745), event(800, 810)], 700.0, 760.0, 1000, audio_start=700)
    assert html.count('class="band"') == 2
    assert 'data-start="0.000" data-end="5.000"' in html and 'data-start="30.000" data-end="45.000"' in html
    x = 100 * (left + (width - 1) * 0.5) / 1000
    assert f'left:{x:.4f}%' in html
    assert [e['start_seconds'] for e in in_view([event(0, 700), event(760, 770), event(759, 761)], 700, 760)] == [759]


def test_one_lane_per_label_and_labels_at_the_same_time_are_both_seen():
    events = [event(0, 2, 'hum'), event(1, 3, 'tone'), event(1.5, 2.5, 'tone'), event(4, 5, 'hum')]
    shaped = lanes(events)
    assert [(lane.label, lane.top, lane.rows) for lane in shaped] == [('hum', 0, 1), ('tone', 1, 2)]
    assert shaped[1].event_rows == [0, 1]
    html = timeline_html(events, 0.0, 6.0, 800)
    tops = {label: sorted(set(re.findall(rf'class="band"[^>]*data-label="{label}"[^>]*top:(\d+)px', html)))
            for label in ('hum', 'tone')}
    assert tops == {'hum': ['2'], 'tone': ['24', '46']}   # the hum lane, then the tone lane's two rows
    assert html.count('class="name"') == 2


def test_labels_are_escaped_and_overlaps_get_their_own_row():
    html = timeline_html([event(0, 1, '<b>x</b>')], 0.0, 2.0, 800)
    assert '<b>x</b>' not in html and '&lt;b&gt;x&lt;/b&gt;' in html
    assert rows_for([event(0, 2), event(1, 3), event(2, 4)]) == [0, 1, 0]
