"""The Review page: a person checks detections one at a time, and each label's precision curve comes from it.

Reached from the main page's **Review** button (``?view=review``). Choose a label (or all) and a confidence range
and an order (``app.review_queue``); each detection shows its own clip (its seconds plus ``CONTEXT_SECONDS`` on
each side, not the whole file), that clip's spectrogram and an audio player. **Correct** (key Y), **Wrong** (N),
**Skip** (S) and **Undo** (U): a verdict is a row of the reviews table (``results.reviews``; reviewing a
detection again replaces its verdict), then the next detection shows. Undo takes back the last verdict of this
session (the detection's earlier verdict, if it had one, is back) and returns to it. The place in the queue and
the choices live in the URL, so a reload shows the same detection.

Below: per label, the logistic fit of P(correct | confidence) from the reviews (``results.thresholds``) with the
confidences reaching 90, 95 and 99 % precision, and the thresholds file the pipeline's ``--label_thresholds``
reads, for download.
"""
from __future__ import annotations

import io
import json
from typing import Any, Optional

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from app import review_queue
from app.review_queue import EVEN, MODES, QueueSpec
from results import reviews
from results.thresholds import DEFAULT_MIN_REVIEWS, PRECISIONS, fit_labels, thresholds_document

VIEW_PARAM, VIEW = 'view', 'review'
CONTEXT_SECONDS = 1.0
# The URL's names for the page's choices and place.
PARAMS = {'label': 'rlabel', 'low': 'rlow', 'high': 'rhigh', 'mode': 'rmode', 'position': 'rpos'}
SHORTCUTS = {'Correct': 'Y', 'Wrong': 'N', 'Skip': 'S', 'Undo': 'U'}
ALL_LABELS = 'All labels'


def wanted() -> bool:
    return st.query_params.get(VIEW_PARAM) == VIEW


def open_review() -> None:
    """The main page's Review button: the page's own URL parameters replace the results view's."""
    st.query_params.from_dict({VIEW_PARAM: VIEW})
    for key in ('review_loaded', 'review_undo'):
        st.session_state.pop(key, None)


def close_review() -> None:
    st.query_params.clear()
    st.session_state['url_loaded'] = False   # the results view reads its (now default) URL state again


# ---- URL <-> choices ---------------------------------------------------------------------------------------------

def _float(text: Optional[str], default: float) -> float:
    try:
        return min(1.0, max(0.0, float(text))) if text is not None else default
    except ValueError:
        return default


def load_choices() -> None:
    """Once per browser session: the URL's label, range, order and place become the widgets' values."""
    if st.session_state.get('review_loaded'):
        return
    st.session_state['review_loaded'] = True
    q = st.query_params
    st.session_state['review_label'] = q.get(PARAMS['label']) or ALL_LABELS
    low, high = _float(q.get(PARAMS['low']), 0.0), _float(q.get(PARAMS['high']), 1.0)
    st.session_state['review_range'] = (min(low, high), max(low, high))
    mode = q.get(PARAMS['mode'])
    st.session_state['review_mode'] = mode if mode in MODES else EVEN
    try:
        st.session_state['review_position'] = max(0, int(q.get(PARAMS['position']) or 0))
    except ValueError:
        st.session_state['review_position'] = 0
    st.session_state['review_spec'] = _spec()


def save_choices() -> None:
    spec = _spec()
    wanted_params = {VIEW_PARAM: VIEW, PARAMS['mode']: spec.mode,
                     PARAMS['position']: str(st.session_state.get('review_position', 0))}
    if spec.label:
        wanted_params[PARAMS['label']] = spec.label
    if spec.low > 0:
        wanted_params[PARAMS['low']] = f'{spec.low:g}'
    if spec.high < 1:
        wanted_params[PARAMS['high']] = f'{spec.high:g}'
    if {k: st.query_params.get(k) for k in st.query_params.keys()} != wanted_params:
        st.query_params.from_dict(wanted_params)


def _spec() -> QueueSpec:
    label = st.session_state.get('review_label') or ALL_LABELS
    low, high = st.session_state.get('review_range') or (0.0, 1.0)
    return QueueSpec(label='' if label == ALL_LABELS else label, low=float(low), high=float(high),
                     mode=st.session_state.get('review_mode') or EVEN)


# ---- actions (button callbacks: they run before the page is drawn again) -----------------------------------------

def _verdict(store, detection: dict[str, Any], verdict: str, position: int) -> None:
    row = reviews.review_row(detection, verdict, st.session_state.get('reviewer') or '')
    previous = reviews.record(store, row)
    st.session_state.setdefault('review_undo', []).append((row, previous, position))
    st.session_state['review_position'] = position + 1


def _skip(position: int) -> None:
    st.session_state['review_position'] = position + 1


def _undo(store) -> None:
    stack = st.session_state.get('review_undo') or []
    if stack:
        row, previous, position = stack.pop()
        reviews.undo(store, row, previous)
        st.session_state['review_position'] = position


def _new_choices() -> None:
    """Another label, range or order: a new queue, from its start."""
    st.session_state['review_position'] = 0


# ---- drawing -----------------------------------------------------------------------------------------------------

@st.cache_data(ttl=30, show_spinner=False)
def _queue(_store, store_name: str, dialect_name: str, spec: QueueSpec) -> list[dict[str, Any]]:
    """The ordered queue; cached briefly (reviews do not change it, new results do)."""
    from app.backends import DIALECTS

    query = review_queue.detections_query(DIALECTS[dialect_name], spec)
    return review_queue.order_queue(_store.query(query.sql, query.params), spec)


@st.cache_data(max_entries=32, ttl=600, show_spinner=False)
def _clip(audio_file: str, generation: str, start: float, end: float) -> tuple[bytes, bytes, int]:
    """(WAV bytes, spectrogram PNG, sample rate) of one stretch of one file version."""
    import soundfile

    from audio.spectrogram import SpectrogramStyle, render_png
    from results.clips import read_clip

    samples, rate = read_clip(audio_file, generation, start, end)
    out = io.BytesIO()
    soundfile.write(out, samples, rate, format='WAV', subtype='PCM_16')
    mono = np.asarray(samples, dtype=np.float32).mean(axis=1) if len(samples) else np.zeros(1, np.float32)
    png = render_png(mono, rate, '', SpectrogramStyle(min_width=480, max_width=900))
    return out.getvalue(), png, rate


def controls(labels: list[str]) -> QueueSpec:
    left, middle, right = st.columns([2, 3, 3])
    if st.session_state.get('review_label') not in [ALL_LABELS] + labels:
        st.session_state['review_label'] = ALL_LABELS
    left.selectbox('Label to review', [ALL_LABELS] + labels, key='review_label', on_change=_new_choices)
    middle.slider('Confidence range', 0.0, 1.0, step=0.01, key='review_range', on_change=_new_choices)
    right.radio('Order', list(MODES), format_func=MODES.get, key='review_mode', horizontal=True,
                on_change=_new_choices,
                help='Even across confidence bins: one detection from each tenth of the range in turn, so the '
                     'precision curve is not fitted mostly from the most confident detections.')
    st.session_state.setdefault('reviewer', reviews.default_reviewer())
    st.text_input('Reviewer', key='reviewer', help='Recorded with each verdict (default: this computer\'s user).')
    return _spec()


def detection_panel(store, queue: list[dict[str, Any]], verdicts: dict[tuple, str], text) -> None:
    position = min(st.session_state.get('review_position', 0), len(queue))
    st.session_state['review_position'] = position
    undo_stack = st.session_state.get('review_undo') or []
    done = sum(1 for d in queue if review_queue.detection_key(d) in verdicts)
    st.caption(f'{done:,} of {len(queue):,} detections in this queue have a verdict.')
    if position >= len(queue):
        st.success('The end of this queue: every detection in it has been shown.' if queue else
                   'No detections match this label and confidence range.')
        st.button('Undo', key='review_undo_button', disabled=not undo_stack, on_click=_undo, args=(store,),
                  shortcut=SHORTCUTS['Undo'], help='Take back the last verdict and go back to it')
        return
    detection = queue[position]
    key = review_queue.detection_key(detection)
    start, end = float(detection['start_seconds']), float(detection['end_seconds'])
    with st.container(border=True, key='review_detection'):
        st.markdown(f'**Detection {position + 1:,} of {len(queue):,}** · {text(detection["label"])} · confidence '
                    f'{float(detection["confidence"]):.3f} · {start:.2f}–{end:.2f} s of '
                    f'{text(detection["audio_file"].rsplit("/", 1)[-1])}')
        current = verdicts.get(key)
        st.caption(f'Current verdict: {current}' if current else 'Not reviewed yet.')
        duration = detection.get('duration_seconds')
        span = review_queue.clip_span(start, end, float(duration) if duration else None, CONTEXT_SECONDS)
        media, about = st.columns([3, 2])
        about.table(pd.DataFrame({'Field': ['Label', 'Confidence', 'Seconds', 'Model', 'File', 'Verdict'], 'Value': [
            text(detection['label']), f'{float(detection["confidence"]):.3f}', f'{start:.2f}–{end:.2f}',
            text(detection.get('model_version') or '–'), text(detection['audio_file']), current or '–']}),
            hide_index=True, hide_header=True)
        try:
            wav, png, _ = _clip(detection['audio_file'], str(detection['generation']), *span)
            name = detection['audio_file'].rsplit('/', 1)[-1]
            media.image(png, width='stretch', output_format='PNG', alt=f'Spectrogram of the clip of {name}',
                        caption=f'{span[0]:.2f}–{span[1]:.2f} s of the file (the clip\'s time axis starts at 0): '
                                f'the detection and up to {CONTEXT_SECONDS:g} s around it')
            media.audio(wav, format='audio/wav')
        except Exception as e:   # a file moved, replaced or unreadable: say so, the buttons still work
            media.warning(f'Clip not available: {text(e)}')
        cols = st.columns(4)
        cols[0].button('Correct', key='review_correct', type='primary', on_click=_verdict,
                       args=(store, detection, reviews.CORRECT, position), shortcut=SHORTCUTS['Correct'],
                       width='stretch', help=f'The model is right: this is {detection["label"]}')
        cols[1].button('Wrong', key='review_wrong', on_click=_verdict,
                       args=(store, detection, reviews.WRONG, position), shortcut=SHORTCUTS['Wrong'],
                       width='stretch', help=f'The model is wrong: this is not {detection["label"]}')
        cols[2].button('Skip', key='review_skip', on_click=_skip, args=(position,), shortcut=SHORTCUTS['Skip'],
                       width='stretch', help='Next detection, no verdict')
        cols[3].button('Undo', key='review_undo_button', disabled=not undo_stack, on_click=_undo, args=(store,),
                       shortcut=SHORTCUTS['Undo'], width='stretch', help='Take back the last verdict and go back to it')


def precision_panel(current: list[dict[str, Any]], label: str) -> None:
    st.subheader('Precision from reviews')
    min_correct = min_wrong = DEFAULT_MIN_REVIEWS
    fits, not_fitted = fit_labels(current, min_correct, min_wrong)
    shown = [label] if label else sorted(set(fits) | set(not_fitted))
    if not shown:
        st.caption(f'No reviews yet. A label gets its curve once it has {min_correct} correct and {min_wrong} wrong '
                   'verdicts.')
        return
    table = []
    for name in shown:
        fit = fits.get(name)
        row = {'Label': name, 'Correct': 0, 'Wrong': 0}
        row['Correct'] = sum(1 for r in current if r['label'] == name and r['verdict'] == reviews.CORRECT)
        row['Wrong'] = sum(1 for r in current if r['label'] == name and r['verdict'] == reviews.WRONG)
        for p in PRECISIONS:
            t = fit.threshold(p) if fit else None
            row[f'{p:.0%} precision at'] = '–' if t is None else f'{t:.3f}'
        row['Note'] = not_fitted.get(name) or ('' if fit is None or fit.threshold(PRECISIONS[0]) is not None else
                                               f'P(correct) stays under {PRECISIONS[0]:.0%} up to confidence 1')
        table.append(row)
    st.dataframe(pd.DataFrame(table), hide_index=True, key='review_thresholds')
    for name in shown:
        if name in fits:
            st.altair_chart(precision_chart(fits[name], [r for r in current if r['label'] == name]),
                            width='stretch', alt=f'Precision curve of {name}')
    document = thresholds_document(fits, not_fitted, min_correct=min_correct, min_wrong=min_wrong)
    st.download_button('Download thresholds.json', data=json.dumps(document, indent=2) + '\n',
                       file_name='thresholds.json', mime='application/json', key='review_download',
                       disabled=not fits, help='For the pipeline: --label_thresholds thresholds.json '
                                               '(the same as python -m results.thresholds writes)')


def precision_chart(fit, rows: list[dict[str, Any]]) -> alt.LayerChart:
    curve = pd.DataFrame(review_queue.curve_points(fit))
    marks = pd.DataFrame({'confidence': [float(r['confidence']) for r in rows],
                          'p_correct': [1.0 if r['verdict'] == reviews.CORRECT else 0.0 for r in rows],
                          'verdict': [r['verdict'] for r in rows]})
    lines = pd.DataFrame([{'confidence': t, 'precision': f'{p:.0%}'} for p in PRECISIONS
                          if (t := fit.threshold(p)) is not None])
    chart = alt.Chart(curve, title=f'{fit.label}: P(correct) by confidence').mark_line().encode(
        x=alt.X('confidence:Q', scale=alt.Scale(domain=[0, 1])), y=alt.Y('p_correct:Q', title='P(correct)',
                                                                          scale=alt.Scale(domain=[0, 1])))
    dots = alt.Chart(marks).mark_tick(thickness=2).encode(x='confidence:Q', y='p_correct:Q',
                                                          color=alt.Color('verdict:N', title='Verdict'))
    layers = [chart, dots]
    if len(lines):
        layers.append(alt.Chart(lines).mark_rule(strokeDash=[4, 3]).encode(
            x='confidence:Q', tooltip=['precision', alt.Tooltip('confidence:Q', format='.3f')]))
    return alt.layer(*layers).properties(height=220)


def page(data, labels: list[str], text) -> None:
    """The whole Review view (``data``: the dashboard's ``DashboardData``)."""
    store = data.backend.store
    load_choices()
    head, back = st.columns([5, 1], vertical_alignment='bottom')
    head.subheader('Review detections')
    back.button('Back to results', key='review_back', on_click=close_review, width='stretch')
    spec = controls(labels)
    queue = _queue(store, store.description, store.dialect, spec)
    current = reviews.current_reviews(store)
    verdicts = {review_queue.detection_key(r): r['verdict'] for r in current}
    detection_panel(store, queue, verdicts, text)
    save_choices()
    precision_panel(current, spec.label)

