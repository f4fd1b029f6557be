"""The opened file's events as a timeline under its spectrogram: same width, same time scale, a lane per label.

The spectrogram PNG (``audio.spectrogram``) has margins for its axes; ``plot_columns`` says where its time
axis lies, so the timeline puts the start and the end of the time shown (the whole file, or the range of a
long one) at the same fractions of the image width and lines up with the image at any page width. Each label
has its own lane, named in the left margin, so labels heard at the same time are seen at the same time; events
of one label that overlap (several runs, several sources) take extra rows within their lane. Each event is a
band showing its confidence; choosing one (click, or Enter on the focused band) plays that event: the page's
audio player from the event's start to its end (the part of it inside the range shown), then stops.

Rendered with ``st.iframe`` (an HTML document in a same-origin frame the width of the column), whose script
reaches the file's audio player in the page around it.
"""
from __future__ import annotations

import html
import io
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from PIL import Image

from audio.spectrogram import plot_columns

ROW_HEIGHT = 22
MIN_BAND_PERCENT = 0.4      # a very short event stays clickable
# Distinct, readable on white; a label keeps its colour within the timeline.
COLOURS = ('#d95f02', '#1b9e77', '#7570b3', '#e7298a', '#66a61e', '#e6ab02', '#a6761d', '#1f78b4')
PLAYER_SELECTOR = '.st-key-file_audio audio'   # the opened file's player (the page wraps it in this container)


def image_width(png: bytes) -> int:
    with Image.open(io.BytesIO(png)) as image:
        return image.width


def rows_for(events: Sequence[dict[str, Any]]) -> list[int]:
    """A row per event (events in start order) so that overlapping ones do not hide each other."""
    ends: list[float] = []
    rows = []
    for event in events:
        row = next((i for i, end in enumerate(ends) if end <= event['start_seconds']), len(ends))
        if row == len(ends):
            ends.append(0.0)
        ends[row] = event['end_seconds']
        rows.append(row)
    return rows


@dataclass(frozen=True)
class Lane:
    label: str
    top: int                         # first row of the lane, counted from the top of the timeline
    rows: int                        # rows the lane needs (1 unless events of its label overlap)
    events: list[dict[str, Any]]     # in start order
    event_rows: list[int]            # each event's row within the lane


def lanes(events: Sequence[dict[str, Any]], name: Callable[[str], str] = str) -> list[Lane]:
    """One lane per label (in the order of their names), as tall as its own overlapping events need."""
    out = []
    top = 0
    for label in sorted({e['label'] for e in events}, key=lambda x: (name(x), x)):
        own = sorted((e for e in events if e['label'] == label), key=lambda e: (e['start_seconds'], e['end_seconds']))
        rows = rows_for(own)
        out.append(Lane(label, top, max(rows) + 1, own, rows))
        top += max(rows) + 1
    return out


def in_view(events: Sequence[dict[str, Any]], start: float, end: float) -> list[dict[str, Any]]:
    """The events that overlap the time shown (an event touching the range only at an edge is left out)."""
    return [e for e in events if e['end_seconds'] > start and e['start_seconds'] < end]


def timeline_height(events: Sequence[dict[str, Any]]) -> int:
    return ROW_HEIGHT * sum(lane.rows for lane in lanes(events)) + 4


def timeline_html(events: Sequence[dict[str, Any]], view_start: float, view_end: float, png_width: int,
                  audio_start: float = 0.0, name: Callable[[str], str] = str,
                  full_name: Callable[[str], str] = str) -> str:
    """The timeline's HTML for the time ``view_start``..``view_end`` of the file, under an image ``png_width``
    pixels wide. ``audio_start``: the file time at which the page's player starts (a range's audio starts at the
    range). Bands sit in percent of the width, as the image's plot does. ``name`` is what a lane says for its
    label (a species' common name), ``full_name`` what the tooltips say (common and scientific name)."""
    left, width = plot_columns(png_width)
    plot_left, plot_width = 100.0 * left / png_width, 100.0 * (width - 1) / png_width
    span = max(float(view_end) - float(view_start), 1e-9)
    shown = in_view(events, view_start, view_end)
    all_labels = sorted({e['label'] for e in events})   # colours do not change as the range moves
    colour = {label: COLOURS[i % len(COLOURS)] for i, label in enumerate(all_labels)}
    parts = []
    index = 0
    for lane in lanes(shown, name):
        label = html.escape(lane.label)
        parts.append(f'<div class="lane" data-label="{label}" style="top:{lane.top * ROW_HEIGHT}px;'
                     f'height:{lane.rows * ROW_HEIGHT}px"><span class="name" '
                     f'title="{html.escape(full_name(lane.label))}" style="width:{plot_left:.4f}%">'
                     f'{html.escape(name(lane.label))}</span></div>')
        for event, row in zip(lane.events, lane.event_rows):
            start = min(max(event['start_seconds'], view_start), view_end)
            end = min(max(event['end_seconds'], start), view_end)
            x = plot_left + plot_width * (start - view_start) / span
            w = max(plot_width * (end - start) / span, MIN_BAND_PERCENT)
            title = (f"{full_name(event['label'])} · {event['start_seconds']:.2f}–{event['end_seconds']:.2f} s · "
                     f"confidence {event['confidence']:.2f}")
            parts.append(
                f'<div class="band" role="button" tabindex="0" data-index="{index}" data-label="{label}" '
                f'data-start="{start - audio_start:.3f}" data-end="{end - audio_start:.3f}" '
                f'aria-label="{html.escape(title)}" title="{html.escape(title)}" '
                f'style="left:{x:.4f}%;width:{w:.4f}%;top:{(lane.top + row) * ROW_HEIGHT + 2}px;'
                f'background:{colour[event["label"]]}">{event["confidence"]:.2f}</div>')
            index += 1
    height = timeline_height(shown)
    return f'''<!doctype html><html><head><style>
body {{ margin: 0; font: 12px sans-serif; }}
#timeline {{ position: relative; height: {height}px; }}
.axis {{ position: absolute; top: 0; bottom: 0; left: {plot_left:.4f}%; width: {plot_width:.4f}%;
         border-left: 1px solid #999; border-right: 1px solid #999; }}
.lane {{ position: absolute; left: 0; right: 0; border-bottom: 1px solid #eee; box-sizing: border-box; }}
.name {{ position: absolute; left: 0; top: 0; height: {ROW_HEIGHT}px; line-height: {ROW_HEIGHT}px;
         padding-right: 6px; box-sizing: border-box; text-align: right; overflow: hidden; text-overflow: ellipsis;
         white-space: nowrap; color: #333; }}
.band {{ position: absolute; height: {ROW_HEIGHT - 4}px; line-height: {ROW_HEIGHT - 4}px; color: white;
         border-radius: 3px; overflow: hidden; white-space: nowrap; cursor: pointer; box-sizing: border-box;
         padding: 0 3px; }}
.band:focus, .band:hover, .band.playing {{ outline: 2px solid #222; }}
</style></head><body>
<div id="timeline" aria-label="Events of the inspected file" data-start="{view_start:.3f}" data-end="{view_end:.3f}">
<div class="axis"></div>{''.join(parts)}</div>
<script>
// The page's audio player for this file (the frame is same-origin with the page).
function player() {{
  try {{ return window.parent.document.querySelector({PLAYER_SELECTOR!r}); }} catch (e) {{ return null; }}
}}
let stopAt = null;
function play(band) {{
  const audio = player();
  if (!audio) return;
  for (const b of document.querySelectorAll('.band.playing')) b.classList.remove('playing');
  band.classList.add('playing');
  stopAt = parseFloat(band.dataset.end);
  audio.currentTime = parseFloat(band.dataset.start);
  const started = audio.play();
  if (started && started.catch) started.catch(() => {{}});
  // Stop at the event's end: checked every frame (timeupdate comes only every quarter second).
  const watch = () => {{
    if (stopAt === null || audio.paused) return;
    if (audio.currentTime >= stopAt) {{ audio.pause(); stopAt = null; band.classList.remove('playing'); return; }}
    requestAnimationFrame(watch);
  }};
  requestAnimationFrame(watch);
}}
for (const band of document.querySelectorAll('.band')) {{
  band.addEventListener('click', () => play(band));
  band.addEventListener('keydown', (e) => {{
    if (e.key === 'Enter' || e.key === ' ') {{ e.preventDefault(); play(band); }}
  }});
}}
</script></body></html>'''


def show_timeline(events: Sequence[dict[str, Any]], view_start: float, view_end: float, png: bytes,
                  audio_start: float = 0.0, name: Callable[[str], str] = str,
                  full_name: Callable[[str], str] = str) -> None:
    """Draws the timeline under the spectrogram (call it right after ``st.image`` in the same column)."""
    import streamlit as st

    shown = in_view(events, view_start, view_end)
    if not events:
        st.caption('No events in this file (no run of windows with a label other than background above the '
                   'threshold).')
        return
    if not shown:
        st.caption(f'No events in this range ({len(events)} in the whole file).')
        return
    st.iframe(timeline_html(events, view_start, view_end, image_width(png), audio_start, name, full_name),
              height=timeline_height(shown), alt='Events of the inspected file')
    count = f'{len(shown)} event{"s" if len(shown) != 1 else ""}'
    where = f' in this range ({len(events)} in the file)' if len(shown) < len(events) else ''
    st.caption(f'{count}{where}, one lane per label: choose one to play it.')
