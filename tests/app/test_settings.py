"""The dashboard's command line and the ``streamlit run`` command built from it."""
from __future__ import annotations

import pytest

from app.settings import DASHBOARD_SCRIPT, parse, streamlit_command


def test_streamlit_is_local_headless_and_quiet_by_default():
    command = streamlit_command(['--results', 'r.db'])
    assert command[1:5] == ['-m', 'streamlit', 'run', DASHBOARD_SCRIPT]
    options = dict(zip(command[5:command.index('--'):2], command[6:command.index('--'):2]))
    assert options['--server.address'] == '127.0.0.1'
    assert options['--server.headless'] == 'true'
    assert options['--browser.gatherUsageStats'] == 'false'
    assert command[command.index('--') + 1:] == ['--results', 'r.db']


def test_host_and_port_are_explicit_choices():
    command = streamlit_command(['--results', 'r.db'], host='0.0.0.0', port=9000)
    assert command[command.index('--server.address') + 1] == '0.0.0.0'
    assert command[command.index('--server.port') + 1] == '9000'


def test_arguments_and_environment(monkeypatch):
    monkeypatch.setenv('DASHBOARD_INPUT', 'gs://bucket/uploads/')
    settings = parse(['--results', 'proj:audio.results', '--refresh', '15'])
    assert settings.results == 'proj:audio.results' and settings.input_location == 'gs://bucket/uploads/'
    assert settings.refresh_seconds == 15 and settings.error_table is None


@pytest.mark.parametrize('argv', [[], ['--results', 'r.db', '--refresh', '7'],
                                  ['--results', 'r.db', '--page_size', '0']])
def test_bad_arguments_stop_before_streamlit_starts(argv, monkeypatch, capsys):
    monkeypatch.delenv('DASHBOARD_RESULTS', raising=False)
    with pytest.raises(SystemExit):
        streamlit_command(argv)
    assert 'usage: python -m app.serve' in capsys.readouterr().err


def test_notify_topic_is_for_a_bucket_input():
    settings = parse(['--results', 'p:d.t', '--input', 'gs://b/in/', '--notify_topic', 'projects/p/topics/t'])
    assert settings.notify_topic == 'projects/p/topics/t'
    with pytest.raises(SystemExit):
        parse(['--results', 'r.db', '--input', 'demo/input', '--notify_topic', 'projects/p/topics/t'])
