"""The timeline's HTML: bands at the image's time scale, labels escaped, overlapping events on their own rows."""
from audio.spectrogram import plot_columns
from app.timeline import rows_for, timeline_html


def event(start, end, label='tone', confidence=0.9):
    return {'start_seconds': start, 'end_seconds': end, 'label': label, 'confidence': confidence}


def test_bands_sit_at_the_fractions_of_the_image_width_where_the_plot_puts_their_times():
    left, width = plot_columns(1000)
    html = timeline_html([event(2.5, 5.0)], 10.0, 1000)
    x = 100 * (left + (width - 1) * 0.25) / 1000
    w = 100 * (width - 1) * 0.25 / 1000
    assert f'left:{x:.4f}%;width:{w:.4f}%' in html
    assert 'data-start="2.500"' in html and 'tone 0.90' in html


def test_labels_are_escaped_and_overlaps_get_their_own_row():
    html = timeline_html([event(0, 1, '<b>x</b>')], 2.0, 800)
    assert '<b>x</b>' not in html and '&lt;b&gt;x&lt;/b&gt;' in html
    assert rows_for([event(0, 2), event(1, 3), event(2, 4)]) == [0, 1, 0]
