"""What the page shows, kept in its URL: filters, page, inspected file, refresh.

A reload, a bookmark or a link sent to a colleague opens the same view, as in
Grafana. ``to_params`` writes only what differs from the defaults (a clean URL
for the plain page); ``from_params`` reads a URL back, ignoring what it cannot
use rather than failing on a hand-edited link.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence

# URL value <-> the time-range choice shown in the sidebar.
TIME_CODES = {'all': 'All time', '1h': 'Last hour', '24h': 'Last 24 hours', '7d': 'Last 7 days',
              'dates': 'Between dates'}
TIME_NAMES = {name: code for code, name in TIME_CODES.items()}


@dataclass(frozen=True)
class ViewState:
    labels: tuple[str, ...] = ()
    confidence: tuple[float, float] = (0.0, 1.0)
    time_range: str = 'All time'
    dates: Optional[tuple[dt.date, dt.date]] = None
    name: str = ''
    event_label: str = ''
    page: int = 1
    page_size: Optional[int] = None
    inspect: Optional[tuple[str, str]] = None   # (audio_file, generation)
    refresh: Optional[int] = None
    span: Optional[tuple[float, float]] = None   # the time range shown of a long file, seconds from its start
    extra: dict = field(default_factory=dict)


def _first(params: Mapping[str, Sequence[str]], key: str) -> Optional[str]:
    values = params.get(key) or []
    return values[0] if values else None


def _int(text: Optional[str]) -> Optional[int]:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def from_params(params: Mapping[str, Sequence[str]]) -> ViewState:
    """``params``: each key's values (Streamlit's ``st.query_params.get_all``)."""
    state = {}
    labels = tuple(v for v in params.get('label') or [] if v)
    if labels:
        state['labels'] = labels
    conf = _first(params, 'conf')
    if conf:
        try:
            low, high = (min(1.0, max(0.0, float(x))) for x in conf.split('-', 1))
            if low <= high:
                state['confidence'] = (low, high)
        except ValueError:
            pass
    time_code = _first(params, 'time')
    if time_code in TIME_CODES:
        state['time_range'] = TIME_CODES[time_code]
    if time_code == 'dates':
        try:
            start, end = dt.date.fromisoformat(_first(params, 'from') or ''), dt.date.fromisoformat(
                _first(params, 'to') or '')
            if start <= end:
                state['dates'] = (start, end)
        except ValueError:
            pass
    name = _first(params, 'name')
    if name:
        state['name'] = name
    event_label = _first(params, 'event')
    if event_label:
        state['event_label'] = event_label
    page = _int(_first(params, 'page'))
    if page and page > 0:
        state['page'] = page
    size = _int(_first(params, 'size'))
    if size and size > 0:
        state['page_size'] = size
    audio_file, generation = _first(params, 'file'), _first(params, 'gen')
    if audio_file and generation:
        state['inspect'] = (audio_file, generation)
    refresh = _int(_first(params, 'refresh'))
    if refresh is not None and refresh >= 0:
        state['refresh'] = refresh
    span = _first(params, 't')
    if span and 'inspect' in state:
        try:
            start, end = (float(x) for x in span.split('-', 1))
            if 0 <= start < end:
                state['span'] = (start, end)
        except ValueError:
            pass
    return ViewState(**state)


def to_params(state: ViewState, default_page_size: int, default_refresh: int) -> dict[str, object]:
    """The URL's query parameters for ``state``: only what differs from the defaults."""
    params: dict[str, object] = {}
    if state.labels:
        params['label'] = list(state.labels)
    if tuple(state.confidence) != (0.0, 1.0):
        params['conf'] = f'{state.confidence[0]:.2f}-{state.confidence[1]:.2f}'
    if state.time_range != 'All time':
        params['time'] = TIME_NAMES.get(state.time_range, 'all')
    if state.time_range == 'Between dates' and state.dates:
        params['from'], params['to'] = state.dates[0].isoformat(), state.dates[1].isoformat()
    if state.name:
        params['name'] = state.name
    if state.event_label:
        params['event'] = state.event_label
    if state.page > 1:
        params['page'] = str(state.page)
    if state.page_size and state.page_size != default_page_size:
        params['size'] = str(state.page_size)
    if state.inspect:
        params['file'], params['gen'] = state.inspect
    if state.refresh is not None and state.refresh != default_refresh:
        params['refresh'] = str(state.refresh)
    if state.inspect and state.span:
        params['t'] = f'{state.span[0]:g}-{state.span[1]:g}'
    return params


_TIME_PHRASES = {'Last hour': 'in the last hour', 'Last 24 hours': 'in the last 24 hours',
                 'Last 7 days': 'in the last 7 days'}


def no_failures_text(state: ViewState) -> str:
    """What the errors box says when no failure matches: which filters (of those errors take) were applied."""
    conditions = []
    if state.name.strip():
        conditions.append(f'whose name contains "{state.name.strip()}"')
    if state.time_range in _TIME_PHRASES:
        conditions.append(_TIME_PHRASES[state.time_range])
    elif state.time_range == 'Between dates' and state.dates:
        conditions.append(f'between {state.dates[0].isoformat()} and {state.dates[1].isoformat()} (UTC)')
    text = 'No failed files' + ''.join(' ' + c for c in conditions) + '.'
    if state.labels or tuple(state.confidence) != (0.0, 1.0) or state.event_label:
        text += ' Label, confidence and event filters do not apply to failures.'
    return text
