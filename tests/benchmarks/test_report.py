"""The benchmarks' arithmetic and helpers (no timing is asserted anywhere)."""
import json
import os
import sys

import pytest

from benchmarks import report
from benchmarks.inputs import generate_clips, list_audio, pipeline_folder, repeated_folder, spread_subset
from benchmarks.scaling import fit
from benchmarks.treemem import run_measured


def test_summary_gives_median_extremes_and_spread():
    s = report.summary([10.0, 12.0, 8.0])
    assert (s['median'], s['min'], s['max'], s['runs']) == (10.0, 8.0, 12.0, 3)
    assert s['spread'] == pytest.approx(0.4)
    assert report.spread_text(s) == '±20%' and report.spread_text(report.summary([5])) == 'one run'


@pytest.mark.parametrize('value,text', [(1234.5, '1,234'), (12.345, '12.3'), (0.01234, '0.012'), (0, '0'),
                                        (None, 'n/a'), (float('inf'), 'n/a')])
def test_numbers_are_printed_readably(value, text):
    assert report.fmt(value) == text


def test_table_aligns_columns():
    lines = report.table(['name', 'n'], [['a', 1], ['long name', 123]]).splitlines()
    assert len({len(line) for line in lines}) == 1 and lines[3].startswith('long name')


def test_a_line_fit_separates_fixed_cost_from_cost_per_file():
    f = fit([100, 500, 2500], [7.0 + 0.004 * n for n in (100, 500, 2500)])
    assert f['fixed_seconds'] == pytest.approx(7.0) and f['ms_per_file'] == pytest.approx(4.0)
    assert f['marginal_files_per_second'] == pytest.approx(250.0)


def test_spread_subset_takes_evenly_from_the_whole_list():
    files = [f'{i:04d}' for i in range(100)]
    assert spread_subset(files, 4) == ['0000', '0025', '0050', '0075']
    assert spread_subset(files, 0) == files and spread_subset(files, 500) == files


def test_a_subset_folder_links_exactly_the_chosen_files(tmp_path):
    folder = tmp_path / 'all'
    generate_clips(str(folder), 6, min_s=0.1, max_s=0.2)
    files = list_audio(str(folder))
    assert pipeline_folder(str(folder), files, str(tmp_path / 'scratch')) == str(folder)
    linked = pipeline_folder(str(folder), files[::2], str(tmp_path / 'scratch'))
    assert sorted(os.path.realpath(p) for p in list_audio(linked)) == files[::2]


def test_saved_json_records_the_machine(tmp_path):
    path = report.save('unit', {'x': 1}, str(tmp_path / 'out.json'))
    with open(path) as f:
        saved = json.load(f)
    assert saved['x'] == 1 and saved['benchmark'] == 'unit' and saved['machine_after']['cpus'] >= 1


def test_tree_memory_sees_a_child_process_allocation():
    """A child that holds 200 MB while its own child holds 100 MB: the tree's peak covers both."""
    script = ('import subprocess, sys, time\n'
              'kid = subprocess.Popen([sys.executable, "-c",'
              ' "b = bytearray(100 << 20); import time; time.sleep(1.5)"])\n'
              'a = bytearray(200 << 20); time.sleep(1.5); kid.wait()\n')
    result, memory, seconds, cpu = run_measured([sys.executable, '-c', script])
    assert result.returncode == 0
    assert memory.peak_rss_mib > 300 and memory.max_processes >= 2 and memory.max_process_hwm_mib > 200
    assert seconds > 0 and cpu >= 0


def test_a_repeated_folder_holds_distinct_names_for_reused_files(tmp_path):
    folder = tmp_path / 'all'
    generate_clips(str(folder), 3, min_s=0.1, max_s=0.2)
    seven = list_audio(repeated_folder(str(folder), 7, str(tmp_path / 'scratch')))
    assert len(seven) == 7 and len(set(seven)) == 7
    assert {os.path.realpath(p) for p in seven} == set(list_audio(str(folder)))
    assert len(list_audio(repeated_folder(str(folder), 2, str(tmp_path / 'scratch2')))) == 2
