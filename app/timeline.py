"""The inspected file's events as a timeline under its spectrogram: same width, same time scale.

The spectrogram PNG (``audio.spectrogram``) has margins for its axes; ``plot_columns`` says where its time
axis lies, so the timeline puts its time 0 and its end at the same fractions of the image width and lines
up with the image at any page width. Each event is a band with its label and confidence; choosing one
(click, or Enter on the focused band) plays the page's audio player from the event's start.

Rendered as a small HTML component (Streamlit runs it in a same-origin frame the width of the column), whose
script reaches the file's audio player in the page around it.
"""
from __future__ import annotations

import html
import io
from typing import Any, Callable, Sequence

from PIL import Image

from audio.spectrogram import plot_columns

ROW_HEIGHT = 22
# Distinct, readable on white; a label keeps its colour within the timeline.
COLOURS = ('#d95f02', '#1b9e77', '#7570b3', '#e7298a', '#66a61e', '#e6ab02', '#a6761d', '#1f78b4')


def image_width(png: bytes) -> int:
    with Image.open(io.BytesIO(png)) as image:
        return image.width


def rows_for(events: Sequence[dict[str, Any]]) -> list[int]:
    """A row per event so that overlapping ones (from different runs of windows) do not hide each other."""
    ends: list[float] = []
    rows = []
    for event in events:
        row = next((i for i, end in enumerate(ends) if end <= event['start_seconds']), len(ends))
        if row == len(ends):
            ends.append(0.0)
        ends[row] = event['end_seconds']
        rows.append(row)
    return rows


def timeline_html(events: Sequence[dict[str, Any]], duration_seconds: float, png_width: int,
                  name: Callable[[str], str] = str, full_name: Callable[[str], str] = str) -> str:
    """The timeline's HTML: bands placed in percent of the width, as the image's plot is.

    ``name`` is what a band says for its label (a species' common name), ``full_name`` what its tooltip says.
    """
    left, width = plot_columns(png_width)
    plot_left, plot_width = 100.0 * left / png_width, 100.0 * (width - 1) / png_width
    duration = max(float(duration_seconds), 1e-9)
    labels = sorted({e['label'] for e in events})
    colour = {label: COLOURS[i % len(COLOURS)] for i, label in enumerate(labels)}
    bands = []
    for i, (event, row) in enumerate(zip(events, rows_for(events))):
        start = min(max(event['start_seconds'], 0.0), duration)
        end = min(max(event['end_seconds'], start), duration)
        x = plot_left + plot_width * start / duration
        w = max(plot_width * (end - start) / duration, 0.4)
        text = f"{name(event['label'])} {event['confidence']:.2f}"
        title = f"{full_name(event['label'])} · {start:.2f}–{end:.2f} s · confidence {event['confidence']:.2f}"
        bands.append(
            f'<div class="band" role="button" tabindex="0" data-start="{start:.3f}" data-index="{i}" '
            f'aria-label="{html.escape(title)}" title="{html.escape(title)}" '
            f'style="left:{x:.4f}%;width:{w:.4f}%;top:{row * ROW_HEIGHT}px;background:{colour[event["label"]]}">'
            f'{html.escape(text)}</div>')
    height = ROW_HEIGHT * (max(rows_for(events), default=0) + 1)
    return f'''<!doctype html><html><head><style>
body {{ margin: 0; font: 12px sans-serif; }}
#timeline {{ position: relative; height: {height}px; }}
.axis {{ position: absolute; top: 0; bottom: 0; left: {plot_left:.4f}%; width: {plot_width:.4f}%;
         border-left: 1px solid #999; border-right: 1px solid #999; }}
.band {{ position: absolute; height: {ROW_HEIGHT - 4}px; line-height: {ROW_HEIGHT - 4}px; color: white;
         border-radius: 3px; overflow: hidden; white-space: nowrap; cursor: pointer; box-sizing: border-box;
         padding: 0 3px; }}
.band:focus, .band:hover {{ outline: 2px solid #222; }}
</style></head><body>
<div id="timeline" aria-label="Events of the inspected file" data-duration="{duration:.3f}">
<div class="axis"></div>{''.join(bands)}</div>
<script>
// The page's audio player for this file (the component is a same-origin frame of the page).
function player() {{
  try {{ return window.parent.document.querySelector('audio'); }} catch (e) {{ return null; }}
}}
function play(band) {{
  const audio = player();
  if (!audio) return;
  audio.currentTime = parseFloat(band.dataset.start);
  const started = audio.play();
  if (started && started.catch) started.catch(() => {{}});
}}
for (const band of document.querySelectorAll('.band')) {{
  band.addEventListener('click', () => play(band));
  band.addEventListener('keydown', (e) => {{ if (e.key === 'Enter' || e.key === ' ') play(band); }});
}}
</script></body></html>'''


def show_timeline(events: Sequence[dict[str, Any]], duration_seconds: float, png: bytes,
                  name: Callable[[str], str] = str, full_name: Callable[[str], str] = str) -> None:
    """Draws the timeline under the spectrogram (call it right after ``st.image`` in the same column)."""
    import streamlit as st
    import streamlit.components.v1 as components

    if not events:
        st.caption('No events in this file (no run of windows with a label other than background above the '
                   'threshold).')
        return
    height = ROW_HEIGHT * (max(rows_for(events)) + 1) + 4
    components.html(timeline_html(events, duration_seconds, image_width(png), name, full_name), height=height)
    st.caption(f'{len(events)} event{"s" if len(events) != 1 else ""}: choose one to play the audio from its start.')
