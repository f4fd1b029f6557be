"""The results dashboard page (Streamlit). Start it with ``python -m app.serve`` or ``make ui``.

Sidebar: filters, auto-refresh, upload. Main: overview figures and charts,
one page of files, the inspected file (spectrogram, audio, scores, metadata)
and recent errors. Everything below the title re-runs on its own every
``refresh`` seconds (a Streamlit fragment), so a streaming run's new rows
appear without touching the page.
"""
from __future__ import annotations

import datetime as dt
import sys

import pandas as pd
import streamlit as st

from app import charts
from app.backends import ResultsUnavailable
from app.data import DashboardData, Summary, open_data
from app.media import MAX_AUDIO_BYTES, MAX_IMAGE_BYTES, MediaUnavailable, audio_mime_type, read_media
from app.queries import Filters
from app.settings import REFRESH_CHOICES, Settings, parse
from app.timeline import show_timeline
from app.upload import MB, save_upload

TIME_RANGES = {'All time': None, 'Last hour': dt.timedelta(hours=1), 'Last 24 hours': dt.timedelta(days=1),
               'Last 7 days': dt.timedelta(days=7), 'Between dates': 'dates'}
PAGE_SIZES = (10, 20, 50, 100)
RECENT_ERRORS = 20


@st.cache_resource(show_spinner=False)
def _data(results: str, error_table: str | None) -> DashboardData:
    return open_data(results, error_table)


# Cached so an auto-refresh does not fetch the inspected file again; few audio entries, as each may be 64 MB.
@st.cache_data(max_entries=64, ttl=600, show_spinner=False)
def _image(uri: str) -> bytes:
    return read_media(uri, MAX_IMAGE_BYTES)


@st.cache_data(max_entries=4, ttl=600, show_spinner=False)
def _audio(uri: str, generation: str) -> bytes:  # the generation keys the cache: a file replaced is read again
    return read_media(uri, MAX_AUDIO_BYTES)


def when(value: dt.datetime | None) -> str:
    return value.strftime('%Y-%m-%d %H:%M:%S') if value else '–'


def seconds(value: float | None) -> str:
    if value is None:
        return '–'
    return f'{value:.1f} s' if value < 120 else f'{value / 60:.1f} min'


def short_name(uri: str) -> str:
    """The file name with its folder: uploads often share names (``clip 0.wav``) across folders."""
    return '/'.join(uri.rstrip('/').split('/')[-2:]) or uri


def filter_controls(data: DashboardData) -> Filters:
    st.sidebar.header('Filters')
    labels = st.sidebar.multiselect('Label', data.labels(), key='labels', placeholder='All labels')
    low, high = st.sidebar.slider('Confidence', 0.0, 1.0, (0.0, 1.0), step=0.01, key='confidence')
    range_name = st.sidebar.selectbox('Time range (processed at)', list(TIME_RANGES), key='time_range')
    since = until = None
    now = dt.datetime.now(dt.timezone.utc)
    if TIME_RANGES[range_name] == 'dates':
        today = now.date()
        chosen = st.sidebar.date_input('From / to (UTC dates)', (today - dt.timedelta(days=6), today), key='dates')
        if len(chosen) == 2:  # while the second date is being picked, keep the range open
            since = dt.datetime.combine(chosen[0], dt.time(), dt.timezone.utc)
            until = dt.datetime.combine(chosen[1] + dt.timedelta(days=1), dt.time(), dt.timezone.utc)
    elif TIME_RANGES[range_name] is not None:
        since = now - TIME_RANGES[range_name]
    name = st.sidebar.text_input('Name contains', key='name', placeholder='part of the file name or path')
    event_label = st.sidebar.selectbox('Has an event of label', ['Any'] + data.event_labels(), key='event_label',
                                       help='Only files in which this label was heard somewhere (events).')
    return Filters(labels=tuple(labels), min_confidence=low, max_confidence=high, since=since, until=until,
                   name=name, event_label='' if event_label == 'Any' else event_label)


def refresh_control(settings: Settings) -> int:
    return st.sidebar.selectbox('Auto-refresh', REFRESH_CHOICES, index=REFRESH_CHOICES.index(settings.refresh_seconds),
                                format_func=lambda s: 'Off' if s == 0 else f'Every {s} s', key='refresh',
                                help='Re-read the results while a streaming run is adding rows.')


def upload_panel(settings: Settings) -> None:
    st.sidebar.header('Upload audio')
    if not settings.input_location:
        st.sidebar.caption('Upload is off: start the dashboard with `--input FOLDER` or `--input gs://BUCKET/PREFIX`.')
        return
    st.sidebar.caption(f'Files go to the pipeline\'s input, `{settings.input_location}`. '
                       f'Audio files only, up to {settings.max_upload_mb} MB each.')
    files = st.sidebar.file_uploader('Audio files', accept_multiple_files=True, key='uploads',
                                     max_upload_size=settings.max_upload_mb)
    # A dropped file stays in the widget across reruns; store each one once and keep its outcome.
    outcomes = st.session_state.setdefault('upload_outcomes', {})
    for file in files or []:
        if file.file_id not in outcomes:
            outcomes[file.file_id] = save_upload(settings.input_location, file.name, file.getvalue(),
                                                 settings.max_upload_mb * MB, settings.notify_topic)
        outcome = outcomes[file.file_id]
        (st.sidebar.success if outcome.ok else st.sidebar.error)(outcome.message)


def overview(data: DashboardData, filters: Filters, summary: Summary) -> None:
    cols = st.columns(5)
    cols[0].metric('Processed', f'{summary.files:,}')
    cols[1].metric('Failed', f'{summary.failed:,}')
    rate = summary.failure_rate
    cols[2].metric('Failure rate', '–' if rate is None else f'{rate:.1%}')
    cols[3].metric('Mean latency', seconds(summary.mean_latency_seconds),
                   help='Upload (object finalized) to result row. Max: ' + seconds(summary.max_latency_seconds))
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
        right.caption('No latency to show: these rows carry no upload (event) time.')


def files_section(data: DashboardData, filters: Filters, summary: Summary, default_page_size: int) -> None:
    st.subheader('Files')
    if not summary.files:
        st.info('No processed files match the filters.')
        return
    size = st.session_state.get('page_size', default_page_size)
    pages = max(1, -(-summary.files // size))
    st.session_state['page'] = min(max(1, st.session_state.get('page', 1)), pages)
    nav = st.columns([1, 1, 4])
    number = nav[0].number_input(f'Page (of {pages:,})', min_value=1, max_value=pages, step=1, key='page')
    sizes = sorted(set(PAGE_SIZES) | {default_page_size})
    nav[1].selectbox('Per page', sizes, index=sizes.index(size), key='page_size')
    page = data.page(filters, number, size, summary.files)
    first = (page.number - 1) * size + 1
    nav[2].caption(f'Files {first:,}–{first + len(page.rows) - 1:,} of {summary.files:,}, newest first')

    table = pd.DataFrame({
        'Processed (UTC)': [when(r['processed_at']) for r in page.rows],
        'File': [short_name(r['audio_file']) for r in page.rows],
        'Label': [r['label'] for r in page.rows],
        'Confidence': [f'{r["confidence"]:.2f}' if r['confidence'] is not None else '–' for r in page.rows],
        'Duration': [seconds(r['duration_seconds']) for r in page.rows],
        'Events': ['–' if r.get('event_count') is None else str(r['event_count']) for r in page.rows],
        'Model': [r['model_version'] for r in page.rows],
    })
    st.table(table, hide_index=True, alt='Processed files on this page')

    keys = [(r['audio_file'], r['generation']) for r in page.rows]
    labels = {(r['audio_file'], r['generation']): f'{short_name(r["audio_file"])} · {r["label"]} · '
              f'{when(r["processed_at"])}' for r in page.rows}
    chosen = st.selectbox('Inspect a file on this page', keys, format_func=labels.get, key='inspect')
    if chosen:
        file_detail(data, *chosen)


def file_detail(data: DashboardData, audio_file: str, generation: str) -> None:
    row = data.result(audio_file, generation)
    if row is None:
        st.warning(f'{audio_file} is no longer in the results.')
        return
    st.markdown(f'#### {short_name(audio_file)}')
    left, right = st.columns([3, 2])
    with left:
        try:
            png = _image(row['spectrogram_image'])
            st.image(png, width='stretch', output_format='PNG', alt=f'Spectrogram of {short_name(audio_file)}')
            show_timeline(data.events(row), row['duration_seconds'] or 0.0, png)
        except MediaUnavailable as e:
            st.warning(f'Spectrogram not shown: {e}')
        try:
            st.audio(_audio(audio_file, generation), format=audio_mime_type(audio_file))
        except MediaUnavailable as e:
            st.warning(f'Audio not playable here: {e}')
    with right:
        st.altair_chart(charts.score_chart(row['scores'], row['label']), width='stretch',
                        alt=f'Scores of {short_name(audio_file)}')
        confidence = f'{row["confidence"]:.3f}' if row['confidence'] is not None else '–'
        metadata = {
            'Label': row['label'] or '–', 'Confidence': confidence, 'Model': row['model_version'] or '–',
            'Duration': seconds(row['duration_seconds']), 'Sample rate': f'{row["sample_rate_hz"] or "–"} Hz',
            'Channels': str(row['channels'] or '–'), 'Uploaded (UTC)': when(row['event_time']),
            'Processed (UTC)': when(row['processed_at']), 'Generation': row['generation'],
            'Audio file': audio_file, 'Spectrogram': row['spectrogram_image'] or '–'}
        st.table(pd.DataFrame({'Field': list(metadata), 'Value': list(metadata.values())}), hide_index=True,
                 hide_header=True, alt='Metadata of the inspected file')


def errors_section(data: DashboardData, filters: Filters, summary: Summary) -> None:
    st.subheader('Recent errors')
    if not summary.failed:
        st.success('No failed files in this time range.')
        return
    errors = data.recent_errors(filters, RECENT_ERRORS)
    st.caption(f'The {len(errors)} most recent of {summary.failed:,} failed files. Label and confidence filters '
               'do not apply to errors.')
    st.table(pd.DataFrame({
        'Failed (UTC)': [when(e['failed_at']) for e in errors],
        'File': [short_name(e['audio_file']) for e in errors],
        'Stage': [e['stage'] for e in errors],
        'Error': [e['error_type'] for e in errors],
        'Reason': [e['message'] or '' for e in errors],
    }), hide_index=True, alt='Recent errors')
    with st.expander('Failures by stage'):
        st.table(pd.DataFrame(data.errors_by_stage(filters)).rename(
            columns={'stage': 'Stage', 'error_type': 'Error', 'files': 'Files'}), hide_index=True)


def live_results(data: DashboardData, filters: Filters, settings: Settings) -> None:
    try:
        summary = data.summary(filters)
        overview(data, filters, summary)
        files_section(data, filters, summary, settings.page_size)
        errors_section(data, filters, summary)
    except ResultsUnavailable as e:
        st.info(str(e))
    st.caption(f'Read at {when(dt.datetime.now(dt.timezone.utc))} UTC')


def main() -> None:
    settings = parse(sys.argv[1:])
    st.set_page_config(page_title='Audio results', layout='wide')
    st.title('Audio results')
    data = _data(settings.results, settings.error_table)
    st.caption(f'Results: {data.backend.description}')
    try:
        filters = filter_controls(data)
    except ResultsUnavailable:  # no results yet: the results section below says so, and how to get some
        filters = Filters()
    refresh = refresh_control(settings)
    upload_panel(settings)
    # New filter choices: back to the first page. (The choices, not the Filters: "last hour" moves with the clock.)
    choices = tuple(str(st.session_state.get(k)) for k in ('labels', 'confidence', 'time_range', 'dates', 'name',
                                                          'event_label'))
    if st.session_state.get('filter_choices') != choices:
        st.session_state['filter_choices'] = choices
        st.session_state['page'] = 1
    st.fragment(run_every=refresh or None)(live_results)(data, filters, settings)


main()
