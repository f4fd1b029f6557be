"""model.native_logs: native INFO lines written to fd 2 while TensorFlow loads are dropped, nothing else."""
import os

import pytest

from model.native_logs import info_logs_hidden

NATIVE = (b'WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n'
          b'I0000 00:00:1795856299.444070   26053 port.cc:153] oneDNN custom operations are on.\n'
          b'W0000 00:00:1795856299.444070   26053 cuda.cc:12] a warning stays\n'
          b'Traceback (most recent call last): stays too\n')


@pytest.mark.parametrize('level,hidden', [('2', True), ('1', True), ('0', False)])
def test_only_info_lines_are_dropped_and_only_when_the_level_asks(level, hidden, monkeypatch, capfd):
    monkeypatch.setenv('TF_CPP_MIN_LOG_LEVEL', level)
    with info_logs_hidden():
        os.write(2, NATIVE)
    err = capfd.readouterr().err
    assert 'a warning stays' in err and 'stays too' in err
    assert ('oneDNN' in err) is not hidden and ('absl::InitializeLog' in err) is not hidden


def test_an_error_inside_still_restores_stderr(monkeypatch, capfd):
    monkeypatch.setenv('TF_CPP_MIN_LOG_LEVEL', '2')
    with pytest.raises(ImportError), info_logs_hidden():
        raise ImportError('no tensorflow')
    os.write(2, b'after\n')
    assert 'after' in capfd.readouterr().err
