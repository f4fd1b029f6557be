"""The results dashboard page (Streamlit). Start it with ``python -m app.serve`` or ``make ui``.

Sidebar: filters (kept in the URL, with a clear button), auto-refresh, upload.
Main: uploads still pending, overview figures and charts, one page of files (click
a row to open it; CSV export of everything the filters match), the opened file
(spectrogram, audio, scores, metadata; previous/next), and recent errors (select
rows to read their whole message or retry them). Everything below the title
re-runs on its own every ``refresh`` seconds (a Streamlit fragment), so a running
pipeline's new rows appear without touching the page.

Every name and message that comes from a file is shown as text, never as Markdown.
"""
from __future__ import annotations

import datetime as dt
import io
import re
import sys
from dataclasses import dataclass
from typing import Any, Optional

import pandas as pd
import streamlit as st

from app import charts, clips, export, review, urlstate
from app.backends import NoResultsYet, ResultsUnavailable
from app.data import DashboardData, Page, Summary, open_data
from app.media import (MAX_AUDIO_BYTES, MAX_IMAGE_BYTES, MediaUnavailable, playable_audio, read_media)
from app.pending import pending_uploads
from app.queries import Filters
from app.retry import requeue
from app.settings import REFRESH_CHOICES, Settings, parse
from app.species import SpeciesNames, load as load_species
from app.timeline import in_view, show_timeline
from app.units import MB, size_text
from app.upload import UPLOAD_TYPES, save_upload

TIME_RANGES = {'All time': None, 'Last hour': dt.timedelta(hours=1), 'Last 24 hours': dt.timedelta(days=1),
               'Last 7 days': dt.timedelta(days=7), 'Between dates': 'dates'}
PAGE_SIZES = (10, 20, 50, 100)
RECENT_ERRORS = 20
PENDING_SHOWN = 20
FILTER_KEYS = ('labels', 'confidence', 'time_range', 'dates', 'name', 'event_label')
_MARKDOWN = re.compile(r'([\\`*_{}\[\]()#+\-.!|~<>$:])')


def text(value: Any) -> str:
    """A file name or message made safe for Streamlit's Markdown: shown as typed, never as formatting."""
    return _MARKDOWN.sub(r'\\\1', str(value))


@st.cache_resource(show_spinner=False)
def _data(results: str, error_table: str | None) -> DashboardData:
    return open_data(results, error_table)


@st.cache_resource(show_spinner=False)
def _species(model_uri: str | None) -> SpeciesNames:
    return load_species(model_uri)


def species() -> SpeciesNames:
    """The results' species names (``--model_uri``), or labels as they are."""
    return _species(st.session_state.get('model_uri'))


# Cached so an auto-refresh does not fetch the opened file again; few audio entries, as each may be 64 MB.
@st.cache_data(max_entries=64, ttl=600, show_spinner=False)
def _image(uri: str) -> bytes:
    return read_media(uri, MAX_IMAGE_BYTES)


@st.cache_data(max_entries=4, ttl=600, show_spinner=False)
def _audio(uri: str, generation: str) -> tuple[bytes, str, str]:  # the generation keys the cache
    return playable_audio(uri, read_media(uri, MAX_AUDIO_BYTES))


@st.cache_data(max_entries=32, ttl=600, show_spinner=False)
def _clip(uri: str, generation: str, start: float, end: float) -> bytes:
    """The WAV of one detection's seconds of that file version (``results.clips``, as the clips export cuts it)."""
    import soundfile

    from results import clips

    try:
        samples, rate = clips.read_clip(uri, generation, start, end)
    except (clips.Changed, OSError, ValueError) as e:
        raise MediaUnavailable(str(e)) from e
    out = io.BytesIO()
    soundfile.write(out, samples, rate, format='WAV', subtype='PCM_16')
    return out.getvalue()


def when(value: dt.datetime | None) -> str:
    return value.strftime('%Y-%m-%d %H:%M:%S') if value else '–'


def seconds(value: float | None) -> str:
    if value is None:
        return '–'
    if value < 1:
        return f'{value * 1000:.0f} ms'  # a sub-second clip is not "0.0 s" (its player shows 0:00)
    return f'{value:.1f} s' if value < 120 else f'{value / 60:.1f} min'


def offset(value: float) -> str:
    """A moment in a recording: ``0:03.0``, ``12:09.0``, ``1:02:03.0``."""
    minutes, secs = divmod(max(float(value), 0.0), 60)
    hours, minutes = divmod(int(minutes), 60)
    return f'{hours}:{minutes:02d}:{secs:04.1f}' if hours else f'{minutes}:{secs:04.1f}'


def short_name(uri: str) -> str:
    """The file name with its folder: uploads often share names (``clip 0.wav``) across folders."""
    return '/'.join(uri.rstrip('/').split('/')[-2:]) or uri


# ---- URL <-> widgets -------------------------------------------------------------------------------------------

def load_url_state(settings: Settings) -> None:
    """Once per browser session: the URL's view becomes the widgets' starting values."""
    if st.session_state.get('url_loaded'):
        return
    st.session_state['url_loaded'] = True
    view = urlstate.from_params({k: st.query_params.get_all(k) for k in st.query_params.keys()})
    st.session_state['labels'] = list(view.labels)
    st.session_state['confidence'] = view.confidence
    st.session_state['time_range'] = view.time_range
    if view.dates:
        st.session_state['dates'] = view.dates
    st.session_state['name'] = view.name
    st.session_state['event_label'] = view.event_label or 'Any'
    st.session_state['page'] = view.page
    if view.page_size:
        st.session_state['page_size'] = view.page_size
    if view.inspect:
        st.session_state['inspect'] = view.inspect
    if view.span:
        st.session_state['span_request'] = view.span   # applied when the long file it belongs to is drawn
    st.session_state['refresh'] = view.refresh if view.refresh in REFRESH_CHOICES else settings.refresh_seconds
    st.session_state['filter_choices'] = _filter_choices()  # the URL's page is not reset by "new filters"


def current_view() -> urlstate.ViewState:
    """The view the widgets show now (what the URL keeps)."""
    dates = st.session_state.get('dates')
    return urlstate.ViewState(
        labels=tuple(st.session_state.get('labels') or ()),
        confidence=tuple(st.session_state.get('confidence') or (0.0, 1.0)),
        time_range=st.session_state.get('time_range') or 'All time',
        dates=tuple(dates) if dates and len(dates) == 2 else None,
        name=st.session_state.get('name') or '', page=int(st.session_state.get('page') or 1),
        event_label='' if st.session_state.get('event_label') in (None, 'Any') else st.session_state['event_label'],
        page_size=st.session_state.get('page_size'), inspect=st.session_state.get('inspect'),
        refresh=st.session_state.get('refresh'), span=_shown_span())


def save_url_state(settings: Settings) -> None:
    wanted = urlstate.to_params(current_view(), settings.page_size, settings.refresh_seconds)
    current = {k: st.query_params.get_all(k) for k in st.query_params.keys()}
    if {k: v if isinstance(v, list) else [v] for k, v in wanted.items()} != current:
        st.query_params.from_dict(wanted)


def _shown_span() -> Optional[tuple[float, float]]:
    """The range shown of the opened file, when it is a long one (kept in the URL with the file)."""
    span = st.session_state.get('span')
    if span and st.session_state.get('span_file') == st.session_state.get('inspect'):
        return span
    return None


def _filter_choices() -> tuple[str, ...]:
    return tuple(str(st.session_state.get(k)) for k in FILTER_KEYS)


def clear_filters() -> None:
    st.session_state['labels'] = []
    st.session_state['confidence'] = (0.0, 1.0)
    st.session_state['time_range'] = 'All time'
    st.session_state['name'] = ''
    st.session_state['event_label'] = 'Any'
    st.session_state.pop('dates', None)
    st.session_state['page'] = 1


# ---- sidebar ---------------------------------------------------------------------------------------------------

def filter_controls(data: Optional[DashboardData]) -> Filters:
    """Always drawn, with or without results yet: the label choices fill in when results appear."""
    st.sidebar.header('Filters')
    try:
        labels = data.labels() if data else []
    except ResultsUnavailable:
        labels = []
    st.session_state['sidebar_labels'] = labels
    # A label from a link that these results do not have is dropped, not an error.
    st.session_state['labels'] = [x for x in st.session_state.get('labels', []) if x in labels]
    names = species()
    chosen = st.sidebar.multiselect('Label', labels, key='labels', placeholder='All labels',
                                    format_func=names.display)
    low, high = st.sidebar.slider('Confidence', 0.0, 1.0, step=0.01, key='confidence')
    range_name = st.sidebar.selectbox('Time range (processed at)', list(TIME_RANGES), key='time_range')
    since = until = None
    now = dt.datetime.now(dt.timezone.utc)
    if TIME_RANGES[range_name] == 'dates':
        today = now.date()
        if 'dates' not in st.session_state:
            st.session_state['dates'] = (today - dt.timedelta(days=6), today)
        chosen_dates = st.sidebar.date_input('From / to (UTC dates)', key='dates')
        if len(chosen_dates) == 2:  # while the second date is being picked, keep the range open
            since = dt.datetime.combine(chosen_dates[0], dt.time(), dt.timezone.utc)
            until = dt.datetime.combine(chosen_dates[1] + dt.timedelta(days=1), dt.time(), dt.timezone.utc)
    elif TIME_RANGES[range_name] is not None:
        since = now - TIME_RANGES[range_name]
    name = st.sidebar.text_input('Name contains', key='name', placeholder='part of the file name or path')
    try:
        event_labels = data.event_labels() if data else []
    except ResultsUnavailable:
        event_labels = []
    if st.session_state.get('event_label') not in ['Any'] + event_labels:
        st.session_state['event_label'] = 'Any'
    event_label = st.sidebar.selectbox('Has an event of label', ['Any'] + event_labels, key='event_label',
                                       format_func=names.display,
                                       help='Only files in which this label (a species: type its common or '
                                            'scientific name) was heard somewhere (events).')
    filters = Filters(labels=tuple(chosen), min_confidence=low, max_confidence=high, since=since, until=until,
                      name=name, event_label='' if event_label == 'Any' else event_label)
    active = filters != Filters() or range_name != 'All time'
    st.sidebar.button('Clear filters', on_click=clear_filters, disabled=not active, key='clear_filters',
                      help='Back to every file (the URL keeps the filters: reload or share it to see the same view)')
    return filters


def refresh_control() -> int:
    return st.sidebar.selectbox('Auto-refresh', REFRESH_CHOICES,
                                format_func=lambda s: 'Off' if s == 0 else f'Every {s} s', key='refresh',
                                help='Re-read the results while a pipeline is adding rows.')


def upload_panel(settings: Settings) -> None:
    st.sidebar.header('Upload audio')
    if not settings.input_location:
        st.sidebar.caption('Upload is off: start the dashboard with `--input FOLDER` or `--input gs://BUCKET/PREFIX`.')
        return
    processed_by = ('A pipeline runs beside this page: each upload becomes a row within seconds.'
                    if settings.pipeline_running else
                    'Processed when a pipeline runs over this input (`make ui` runs one beside the page).')
    st.sidebar.caption(f'Files go to the pipeline\'s input, `{settings.input_location}`. Audio files only, up to '
                       f'{settings.max_upload_mb} MB each. {processed_by}')
    files = st.sidebar.file_uploader('Audio files', accept_multiple_files=True, key='uploads', type=UPLOAD_TYPES,
                                     max_upload_size=settings.max_upload_mb)
    # A dropped file stays in the widget across reruns; store each one once and keep its outcome.
    outcomes = st.session_state.setdefault('upload_outcomes', {})
    for file in files or []:
        if file.file_id not in outcomes:
            outcomes[file.file_id] = save_upload(settings.input_location, file.name, file.getvalue(),
                                                 settings.max_upload_mb * MB, settings.notify_topic)
        outcome = outcomes[file.file_id]
        (st.sidebar.success if outcome.ok else st.sidebar.error)(text(outcome.message))


# ---- main area -------------------------------------------------------------------------------------------------

def pending_section(data: DashboardData, settings: Settings) -> None:
    """Uploads (files in the input) that have no row yet: the person sees their file is on its way."""
    if not settings.input_location:
        return
    try:
        pending = pending_uploads(data, settings.input_location)
    except Exception as e:  # listing a bucket can fail (no access, outage); the rest of the page still works
        st.caption(f'Pending uploads not shown: {text(type(e).__name__)}: {text(e)}')
        return
    if not pending.files:
        return
    count = len(pending.files)
    who = ('the pipeline beside this page picks them up within seconds' if settings.pipeline_running else
           'no pipeline was started with this page: run `make run`, or `make ui` for the whole loop')
    with st.container(border=True, key='pending'):
        files = f'{count} file{"s" if count != 1 else ""}'
        st.markdown(f':material/hourglass_top: **{files} waiting for the pipeline** ({who})')
        now = dt.datetime.now(dt.timezone.utc).timestamp()
        st.dataframe(pd.DataFrame({
            'File': [short_name(f.path) for f in pending.files[:PENDING_SHOWN]],
            'Size': [size_text(f.size) for f in pending.files[:PENDING_SHOWN]],
            'Waiting': [seconds(max(0.0, now - f.modified)) for f in pending.files[:PENDING_SHOWN]],
        }), hide_index=True, key='pending_table')


def overview(data: DashboardData, filters: Filters, summary: Summary) -> None:
    cols = st.columns(5)
    cols[0].metric('Processed', f'{summary.files:,}')
    only = filters.results_only
    cols[1].metric('Failed', f'{summary.failed:,}',
                   help='Errors have no label, confidence or events: under those filters this counts the failures '
                        'of the time range and name.' if only else None)
    rate = summary.failure_rate
    cols[2].metric('Failure rate', '–' if rate is None else f'{rate:.1%}',
                   help=(f'{summary.failed:,} failed of {summary.files_all + summary.failed:,} files in this time '
                         'range and name (label and confidence do not apply to failures).') if only else
                   'Failed / (processed + failed).')
    cols[3].metric('Mean latency', seconds(summary.mean_latency_seconds),
                   help='From the moment the pipeline first saw the file (its upload notification, or the listing '
                        'that found it) to its result row. Max: ' + seconds(summary.max_latency_seconds))
    last = summary.last_processed_at
    today = dt.datetime.now(dt.timezone.utc).date()
    # A full timestamp does not fit a fifth of the page: the time of day today, else the day; exact in the help.
    shown = '–' if last is None else last.strftime('%H:%M:%S' if last.date() == today else '%b %d')
    cols[4].metric('Last processed (UTC)', shown, help=when(last))
    if not summary.files:
        return
    left, right = st.columns(2)
    left.altair_chart(charts.label_chart(data.label_counts(filters)), width='stretch', alt='Files per label')
    series = data.latency_over_time(filters, summary)
    if series:
        right.altair_chart(charts.latency_chart(series), width='stretch', alt='Processing latency over time')
    else:
        right.caption('No latency to show: these rows carry no time the pipeline first saw their file.')


def _open(key: tuple[str, str], page: Optional[int] = None) -> None:
    st.session_state['inspect'] = key
    if page is not None:
        st.session_state['page'] = page


def _selected_row(table_key: str, keys: list[tuple[str, str]]) -> None:
    """A click on a row opens it (clicking the ticked row again clears its box but keeps the file open)."""
    rows = st.session_state[table_key].selection.rows
    if rows and rows[0] < len(keys):
        _open(keys[rows[0]])


@dataclass(frozen=True)
class Opened:
    """The opened file: its row (None for a link to a file that has no row) and its index in the list."""
    key: tuple[str, str]
    row: Optional[dict]
    position: Optional[int]


def resolve_opened(data: DashboardData, filters: Filters, page: Page) -> Opened:
    """The file to show: the one opened (clicked, linked, or walked to), as long as the filters list it; else the
    newest listed. A filter that leaves the opened file out opens the newest file it lists instead."""
    first = (page.rows[0]['audio_file'], page.rows[0]['generation'])
    key = st.session_state.get('inspect') or first
    row = data.result(*key)
    position = data.position(filters, row) if row is not None else None
    if row is not None and position is None:
        key, row = first, data.result(*first)
        position = data.position(filters, row) if row is not None else None
    st.session_state['inspect'] = key
    return Opened(key, row, position)


def files_section(data: DashboardData, filters: Filters, summary: Summary,
                  default_page_size: int) -> tuple[Optional[Page], Optional[Opened]]:
    head, download = st.columns([4, 1])
    head.subheader('Files')
    if not summary.files:
        st.info('No processed files match the filters.')
        st.session_state.pop('inspect', None)  # nothing listed, nothing opened
        return None, None
    download.download_button('Download CSV', data=lambda: export.csv_bytes(data.export_rows(filters)),
                             file_name=export.file_name(current_view()), mime='text/csv', key='csv',
                             icon=':material/download:',
                             help=f'Every file matching the filters ({summary.files:,} rows), as CSV.')
    size = st.session_state.get('page_size', default_page_size)
    pages = max(1, -(-summary.files // size))
    st.session_state['page'] = min(max(1, st.session_state.get('page', 1)), pages)
    nav = st.columns([1, 1, 4])
    number = nav[0].number_input(f'Page (of {pages:,})', min_value=1, max_value=pages, step=1, key='page')
    sizes = sorted(set(PAGE_SIZES) | {default_page_size, size})
    nav[1].selectbox('Per page', sizes, index=sizes.index(size), key='page_size')
    page = data.page(filters, number, size, summary.files)
    first = (page.number - 1) * size + 1
    nav[2].caption(f'Files {first:,}–{first + len(page.rows) - 1:,} of {summary.files:,}, newest first. '
                   'Click a row to open the file.')

    keys = [(r['audio_file'], r['generation']) for r in page.rows]
    opened = resolve_opened(data, filters, page)
    table = pd.DataFrame({
        'Processed (UTC)': [when(r['processed_at']) for r in page.rows],
        'File': [short_name(r['audio_file']) for r in page.rows],
        'Label': [species().display(r['label']) if r['label'] else r['label'] for r in page.rows],
        'Confidence': [r['confidence'] for r in page.rows],
        'Duration': [seconds(r['duration_seconds']) for r in page.rows],
        'Events': ['–' if r.get('event_count') is None else str(r['event_count']) for r in page.rows],
        'Model': [r['model_version'] for r in page.rows],
    })
    selected = [keys.index(opened.key)] if opened.key in keys else []
    # Keyed by the rows shown, not by the selection: a grid re-keyed on every click would report its new
    # selection back in a second run, and a click made meanwhile could be lost. The box marks the row clicked.
    table_key = f'files_{abs(hash(tuple(keys)))}'
    st.container(key='files_table').dataframe(
        table, hide_index=True, key=table_key, on_select=lambda: _selected_row(table_key, keys),
        selection_mode='single-row', selection_default={'selection': {'rows': selected, 'columns': []}},
        column_config={'Confidence': st.column_config.NumberColumn(format='%.2f'),
                       'File': st.column_config.TextColumn(width='large')},
        alt='Processed files on this page')
    return page, opened


def _neighbour(data: DashboardData, filters: Filters, index: int, page_size: int) -> Optional[tuple]:
    """The file at ``index`` of the list and the page it is on, as ``_open`` takes them; None past either end."""
    row = data.at(filters, index)
    return ((row['audio_file'], row['generation']), index // page_size + 1) if row else None


def file_detail(data: DashboardData, filters: Filters, page: Page, opened: Opened) -> None:
    """The opened file, built from panels (media, scores, events timeline, metadata) so more can slot in.

    Previous / Next walk the list from the opened file's own place in it, whichever page the list shows."""
    audio_file, generation = opened.key
    row = opened.row
    head, prev_col, next_col = st.columns([6, 1, 1], vertical_alignment='bottom')
    if row is None:
        head.warning(f'{text(audio_file)} (version {text(generation)}) is not among the results.')
        return
    head.markdown(f'#### {text(short_name(audio_file))}')
    if opened.position is not None:
        before = _neighbour(data, filters, opened.position - 1, page.size)
        after = _neighbour(data, filters, opened.position + 1, page.size)
        prev_col.button('◀ Previous', key='previous', disabled=before is None, width='stretch',
                        on_click=_open, args=before or (None,), help='The newer file before this one in the list')
        next_col.button('Next ▶', key='next', disabled=after is None, width='stretch',
                        on_click=_open, args=after or (None,), help='The older file after this one in the list')
    if clips.is_long(row['duration_seconds']):  # a range at a time, across the page: its axis stays readable
        long_media_panel(data, row)
        left, right = st.columns([3, 2])
        with left:
            metadata_panel(row)
        with right:
            scores_panel(row)
        return
    left, right = st.columns([3, 2])
    with left:
        media_panel(data, row)
    with right:
        scores_panel(row)
        metadata_panel(row)


def media_panel(data: DashboardData, row: dict) -> None:
    name = short_name(row['audio_file'])
    events = data.events(row)
    try:
        png = _image(row['spectrogram_image'])
        st.image(png, width='stretch', output_format='PNG', alt=f'Spectrogram of {name}')
        names = species()
        show_timeline(events, 0.0, row['duration_seconds'] or 0.0, png,  # what was heard when (app/timeline)
                      name=names.common, full_name=names.display)
    except MediaUnavailable as e:
        st.warning(f'Spectrogram not shown: {text(e)}')
    try:
        audio, mime, note = _audio(row['audio_file'], row['generation'])
        st.container(key='file_audio').audio(audio, format=mime)
        st.caption(text(f'Duration {seconds(row["duration_seconds"])}' + (f'. {note}' if note else '')))
    except MediaUnavailable as e:
        st.warning(f'Audio not playable here: {text(e)}')
    detections_panel(row, events)


def detections_panel(row: dict, events: list[dict]) -> None:
    """The opened file's detections as a table (several species may share a moment); choosing one plays that
    detection's own clip, cut from the file on the server (``results.clips``: an hour-long recording, too large for
    the page's player, still plays each detection)."""
    if not events:
        return
    names = species()
    table = pd.DataFrame({
        'Start': [offset(e['start_seconds']) for e in events],
        'End': [offset(e['end_seconds']) for e in events],
        'Common name': [names.common(e['label']) for e in events],
        'Scientific name': [names.scientific(e['label']) for e in events],
        'Confidence': [e['confidence'] for e in events],
    })
    if not any(table['Scientific name']):
        table = table.drop(columns='Scientific name').rename(columns={'Common name': 'Label'})
    key = f'detections_{abs(hash((row["audio_file"], row["generation"], len(events))))}'
    chosen = st.container(key='detections_table').dataframe(
        table, hide_index=True, key=key, on_select='rerun', selection_mode='single-row',
        column_config={'Confidence': st.column_config.NumberColumn(format='%.2f')},
        alt=f'Detections in {short_name(row["audio_file"])}')
    rows = [i for i in chosen.selection.rows if i < len(events)]
    if not rows:
        st.caption(f'{len(events)} detection{"s" if len(events) != 1 else ""}: select one to play its own clip.')
        return
    event = events[rows[0]]
    try:
        clip = _clip(row['audio_file'], row['generation'], float(event['start_seconds']), float(event['end_seconds']))
    except MediaUnavailable as e:
        st.warning(f'Clip not playable here: {text(e)}')
        return
    with st.container(key='detection_clip'):
        st.audio(clip, format='audio/wav', autoplay=True)
        st.caption(text(f'{names.display(event["label"])}, {offset(event["start_seconds"])} to '
                        f'{offset(event["end_seconds"])}, confidence {event["confidence"]:.2f}'))


@st.cache_data(max_entries=8, ttl=600, show_spinner=False)
def _span_media(uri: str, generation: str, start: float, end: float, title: str) -> tuple[bytes, bytes]:
    """(spectrogram PNG, WAV) of a range of a file; the generation keys the cache."""
    span = clips.Span(start, end)
    samples, rate = clips.read_span(uri, span)
    return clips.span_spectrogram(samples, rate, span, title), clips.wav_bytes(samples, rate)


def _as_time(value: float) -> dt.time:
    value = min(max(0, int(round(value))), 86399)
    return dt.time(value // 3600, value % 3600 // 60, value % 60)


def _as_seconds(value: dt.time) -> float:
    return float(value.hour * 3600 + value.minute * 60 + value.second)


def _move_span(direction: int, duration: float) -> None:
    low, high = st.session_state['span_slider']
    span = clips.shifted(clips.clamp(_as_seconds(low), _as_seconds(high), duration), direction, duration)
    st.session_state['span_slider'] = (_as_time(span.start), _as_time(span.end))


def long_media_panel(data: DashboardData, row: dict) -> None:
    """A long file a range at a time: pick the range (slider, or one range earlier / later); see that range's
    spectrogram (drawn for it), its events (a lane per label) and hear its audio."""
    key = (row['audio_file'], row['generation'])
    duration = float(row['duration_seconds'])
    name = short_name(row['audio_file'])
    if st.session_state.get('span_file') != key:  # another file: its first range, or the one its link names
        asked = st.session_state.pop('span_request', None)
        span = clips.clamp(*asked, duration) if asked else clips.first_span(duration)
        st.session_state['span_file'] = key
        st.session_state['span_slider'] = (_as_time(span.start), _as_time(span.end))
    pick, earlier, later = st.columns([8, 1, 1], vertical_alignment='bottom')
    low, high = pick.slider(
        f'Time range (at most {clips.clock(clips.MAX_RANGE_SECONDS)} of {clips.clock(duration)})',
        min_value=dt.time(0, 0, 0), max_value=_as_time(duration), step=dt.timedelta(seconds=1), format='HH:mm:ss',
        key='span_slider', help='Drag either end; the spectrogram, events and audio below are of this range.')
    span = clips.clamp(_as_seconds(low), _as_seconds(high), duration)
    st.session_state['span'] = (span.start, span.end)
    if _as_seconds(high) > span.end:
        st.caption(f'At most {clips.clock(clips.MAX_RANGE_SECONDS)} at a time: showing '
                   f'{clips.clock(span.start)}–{clips.clock(span.end)}.')
    earlier.button('◀ Earlier', key='span_earlier', width='stretch', disabled=span.start <= 0,
                   on_click=_move_span, args=(-1, duration), help='The same length just before')
    later.button('Later ▶', key='span_later', width='stretch', disabled=span.end >= duration,
                 on_click=_move_span, args=(1, duration), help='The same length just after')
    try:
        png, wav = _span_media(row['audio_file'], row['generation'], span.start, span.end, name)
    except MediaUnavailable as e:
        st.warning(f'This range cannot be shown: {text(e)}')
        return
    label = f'{clips.clock(span.start)}–{clips.clock(span.end)}'
    st.image(png, width='stretch', output_format='PNG', alt=f'Spectrogram of {name}, {label}')
    events, names = data.events(row), species()
    show_timeline(events, span.start, span.end, png, audio_start=span.start, name=names.common,
                  full_name=names.display)
    st.container(key='file_audio').audio(wav, format='audio/wav')
    st.caption(text(f'Playing {label} ({seconds(span.seconds)}) of {seconds(duration)}.'))
    detections_panel(row, in_view(events, span.start, span.end))   # the range's detections


def scores_panel(row: dict) -> None:
    st.altair_chart(charts.score_chart(row['scores'], row['label']), width='stretch',
                    alt=f'Scores of {short_name(row["audio_file"])}')


def metadata_panel(row: dict) -> None:
    confidence = f'{row["confidence"]:.3f}' if row['confidence'] is not None else '–'
    metadata = {
        'Label': row['label'] or '–', 'Confidence': confidence, 'Model': row['model_version'] or '–',
        'Duration': seconds(row['duration_seconds']), 'Sample rate': f'{row["sample_rate_hz"] or "–"} Hz',
        'Channels': str(row['channels'] or '–'), 'Uploaded (UTC)': when(row['event_time']),
        'First seen (UTC)': when(row.get('seen_at')), 'Processed (UTC)': when(row['processed_at']),
        'Generation': row['generation'], 'Audio file': row['audio_file'],
        'Spectrogram': row['spectrogram_image'] or '–'}
    # st.table wraps long paths (a grid would cut them) and renders Markdown: every value goes through text().
    st.table(pd.DataFrame({'Field': list(metadata), 'Value': [text(v) for v in metadata.values()]}),
             hide_index=True, hide_header=True, alt='Metadata of the opened file')


def errors_section(data: DashboardData, filters: Filters, summary: Summary, settings: Settings) -> None:
    st.subheader('Recent errors')
    if not summary.failed:
        st.success(text(urlstate.no_failures_text(current_view())))
        return
    errors = data.recent_errors(filters, RECENT_ERRORS)
    st.caption(f'The {len(errors)} most recent of {summary.failed:,} failed files. Label and confidence filters '
               'do not apply to errors. Select rows to read the whole message or to retry them.')
    table = pd.DataFrame({
        'Failed (UTC)': [when(e['failed_at']) for e in errors],
        'File': [short_name(e['audio_file']) for e in errors],
        'Stage': [e['stage'] for e in errors],
        'Error': [e['error_type'] for e in errors],
        'Retryable': [bool(e.get('retryable')) for e in errors],
        'Reason': [e['message'] or '' for e in errors],
    })
    keys = tuple((e['audio_file'], e['generation']) for e in errors)
    event = st.container(key='errors_table').dataframe(
                         table, hide_index=True, key=f'errors_{abs(hash(keys))}', on_select='rerun',
                         selection_mode='multi-row', alt='Recent errors',
                         column_config={'Reason': st.column_config.TextColumn(width='large'),
                                        'Retryable': st.column_config.CheckboxColumn(
                                            help='A bad moment (outage, lock, full disk), not a bad file')})
    chosen = [errors[i] for i in event.selection.rows if i < len(errors)]
    if chosen:
        with st.container(border=True, key='error_messages'):
            for e in chosen:
                st.markdown(f'**{text(short_name(e["audio_file"]))}** · {text(e["stage"])} · '
                            f'{text(e["error_type"])}' + (f' · {e["attempts"]} attempts' if e.get('attempts') else ''))
                st.text(e['message'] or '')
        retryable = sum(1 for e in chosen if e.get('retryable'))
        if st.button(f'Retry {retryable} failed file{"s" if retryable != 1 else ""}', key='retry',
                     disabled=not retryable, icon=':material/replay:',
                     help='Put the selected retryable files back in the queue (permanent errors are not retried)'):
            outcome = requeue(settings.results, chosen, settings.input_location)
            st.session_state['retry_message'] = outcome.message
    if st.session_state.get('retry_message'):
        st.info(text(st.session_state['retry_message']))
    with st.expander('Failures by stage'):
        st.dataframe(pd.DataFrame(data.errors_by_stage(filters)).rename(
            columns={'stage': 'Stage', 'error_type': 'Error', 'files': 'Files'}), hide_index=True)


def how_rows_come(settings: Settings) -> str:
    """What to do on a page with no results yet (Markdown: the commands are code)."""
    if settings.pipeline_running:
        return ('Upload an audio file (sidebar): the pipeline running beside this page turns each upload into a '
                'row here within seconds.')
    if settings.input_location:
        return ('Upload an audio file (sidebar), then run a pipeline over the input: `make ui` runs one beside '
                'the page, or a batch run, `make run`.')
    return 'Run the pipeline first (`make run`), or start the dashboard with `--results` pointing at a results file.'


def live_results(data: DashboardData, filters: Filters, settings: Settings) -> None:
    try:
        # One slot whether or not uploads wait, so the elements below keep their places when the box comes or goes:
        # Streamlit keeps an element until the run draws another in its place, and with the box gone the figures
        # were drawn one place up while the old ones still showed below (the page showed them twice for a moment).
        with st.container(key='pending_slot'):
            pending_section(data, settings)
        summary = data.summary(filters)
        if data.labels() != st.session_state.get('sidebar_labels'):
            st.rerun(scope='app')  # results (or new labels) appeared: redraw the filters with them
        overview(data, filters, summary)
        page, opened = files_section(data, filters, summary, settings.page_size)
        # The view is settled (page, opened file): write the URL before drawing the file, so that a reload or a
        # copied link made as soon as the file shows opens that file, not the one before (written at the end,
        # the URL lagged the heading by the rest of the run: charts, media, the errors' queries).
        save_url_state(settings)
        if page is not None and opened is not None:
            file_detail(data, filters, page, opened)
        errors_section(data, filters, summary, settings)
    except NoResultsYet as e:
        st.info(text(e) + ' ' + how_rows_come(settings))
    except ResultsUnavailable as e:
        st.info(text(e))
    save_url_state(settings)  # also when there are no results yet (the filters); unchanged: writes nothing
    st.caption(f'Read at {when(dt.datetime.now(dt.timezone.utc))} UTC')


def main() -> None:
    settings = parse(sys.argv[1:])
    st.session_state['model_uri'] = settings.model_uri
    st.set_page_config(page_title='Audio results', layout='wide')
    st.title('Audio results')
    load_url_state(settings)
    try:
        data = _data(settings.results, settings.error_table)
    except ResultsUnavailable as e:  # not a results database at all: say what --results takes, no traceback
        st.error(text(e))
        st.stop()
    st.caption(f'Results: {text(data.backend.description)}')
    if review.wanted():   # the Review page (app/review.py) instead of the results
        review.page(data, data.event_labels(), text)
        return
    st.button('Review', key='open_review', on_click=review.open_review, icon=':material/fact_check:',
              help='Check detections one at a time (correct or wrong): per-label precision and thresholds')
    filters = filter_controls(data)
    refresh = refresh_control()
    upload_panel(settings)
    # New filter choices: back to the first page. (The choices, not the Filters: "last hour" moves with the clock.)
    choices = _filter_choices()
    if st.session_state.get('filter_choices') != choices:
        st.session_state['filter_choices'] = choices
        st.session_state['page'] = 1
    st.fragment(run_every=refresh or None)(live_results)(data, filters, settings)


main()
