"""The dashboard's charts (Altair specs built from plain rows; Streamlit draws them)."""
from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd

PREDICTED_COLOUR = '#d62728'
OTHER_COLOUR = '#9ecae9'
# Bar charts are sized per bar: Streamlit's theme squashes discrete axes given a fixed pixel height.
BAR_STEP = 26


def score_chart(scores: list[dict[str, Any]], predicted: str | None) -> alt.Chart:
    """Every label's score as a horizontal bar, highest first; the predicted label stands out."""
    frame = pd.DataFrame(scores or [], columns=['label', 'score'])
    frame['predicted'] = frame['label'] == predicted
    return alt.Chart(frame, title='Scores').mark_bar().encode(
        x=alt.X('score:Q', scale=alt.Scale(domain=[0, 1]), title='score'),
        y=alt.Y('label:N', sort='-x', title=None),
        color=alt.condition(alt.datum.predicted, alt.value(PREDICTED_COLOUR), alt.value(OTHER_COLOUR)),
        tooltip=['label', alt.Tooltip('score:Q', format='.3f')],
    ).properties(height=alt.Step(BAR_STEP))


def label_chart(label_counts: list[dict[str, Any]]) -> alt.Chart:
    frame = pd.DataFrame(label_counts or [], columns=['label', 'files'])
    frame['label'] = frame['label'].fillna('(none)')
    return alt.Chart(frame, title='Files per label').mark_bar(color='#4c78a8').encode(
        # Counts are whole: no 0.5 ticks when there are only a few files.
        x=alt.X('files:Q', title='files', axis=alt.Axis(tickMinStep=1, format='d')),
        y=alt.Y('label:N', sort='-x', title=None),
        tooltip=['label', 'files'],
    ).properties(height=alt.Step(BAR_STEP))


def latency_chart(series: list[dict[str, Any]]) -> alt.Chart:
    """Mean and max processing latency (processed_at - event_time) per time bucket."""
    frame = pd.DataFrame(series or [], columns=['bucket_start', 'files', 'mean_latency_seconds',
                                                'max_latency_seconds'])
    long = frame.melt(id_vars=['bucket_start', 'files'], value_vars=['mean_latency_seconds', 'max_latency_seconds'],
                      var_name='measure', value_name='seconds')
    long['measure'] = long['measure'].map({'mean_latency_seconds': 'mean', 'max_latency_seconds': 'max'})
    # Naive UTC: Vega-Lite shows naive times as given, so the axis reads in UTC like the rest of the page.
    long['bucket_start'] = pd.to_datetime(long['bucket_start'], utc=True).dt.tz_localize(None)
    return alt.Chart(long, title='Processing latency (upload to result)').mark_line(point=True).encode(
        x=alt.X('bucket_start:T', title='processed at (UTC)'),
        y=alt.Y('seconds:Q', title='seconds'),
        color=alt.Color('measure:N', title=None, sort=['mean', 'max'],
                        scale=alt.Scale(domain=['mean', 'max'], range=['#4c78a8', '#f58518'])),
        tooltip=[alt.Tooltip('bucket_start:T', title='from', format='%Y-%m-%d %H:%M'), 'measure',
                 alt.Tooltip('seconds:Q', format='.1f'), 'files'],
    ).properties(height=260)
