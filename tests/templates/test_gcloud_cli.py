"""Every gcloud and bq command the scripts print exists, with every flag they pass, per the installed CLI.

Each distinct command's ``--help`` (``bq help COMMAND``) is read once: a renamed command, a
misspelt flag or a value outside a flag's documented choices fails here rather than midway
through provisioning a project.
"""
from __future__ import annotations

import ast
import functools
import json
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.templates.gcloud_sdk import gcloud_help_texts, help_text, offline_env, require_sdk, run_gcloud_python
from tests.templates.script_runner import dry_run

# Every branch: optional settings on, each run.sh command.
ALL_SETTINGS = dict(MODEL_ENDPOINT='projects/p/locations/us-central1/endpoints/1',
                    MODEL_WATCH_PATTERN='gs://m/models/*/metadata.json', SUBNETWORK='regions/r/subnetworks/s',
                    DISABLE_PUBLIC_IPS='1', TRANSFORM_NAME_MAPPINGS='A=B', TAG='v1')
RUNS = [('provision.sh',), ('provision.sh', '--reconcile-schedule', '0 3 * * *'), ('build.sh',),
        ('run.sh', 'streaming'), ('run.sh', 'streaming', '--update'),
        ('run.sh', 'replay', 'gs://b/{x,y}/**', '--reprocess'), ('run.sh', 'drain'), ('teardown.sh',), ('smoke.sh',)]


@functools.lru_cache(maxsize=None)
def all_commands() -> tuple[tuple[str, ...], ...]:
    commands = {tuple(c) for run in RUNS for c in dry_run(*run, **ALL_SETTINGS)}
    return tuple(sorted(commands))


@functools.lru_cache(maxsize=None)
def gcloud_tree() -> dict:
    """The CLI's static command tree (shipped for shell completion): tells command words from arguments."""
    source = (require_sdk() / 'data' / 'cli' / 'gcloud_completions.py').read_text()
    literal = source.split('STATIC_COMPLETION_CLI_TREE =', 1)[1].strip()
    try:
        return json.loads(literal)  # it is JSON in practice, and json reads its 6 MB 25 times faster
    except json.JSONDecodeError:
        return ast.literal_eval(literal)


def split_gcloud(command: tuple[str, ...]) -> tuple[tuple[str, ...], list[tuple[str, str | None]]]:
    """(command path, [(flag, value)]) of a gcloud command line."""
    node, path = gcloud_tree(), ['gcloud']
    for token in command[1:]:
        if token.startswith('-') or token not in node['commands']:
            break
        node = node['commands'][token]
        path.append(token)
    return tuple(path), flags_of(command[len(path):])


def split_bq(command: tuple[str, ...]) -> tuple[str, list[tuple[str, str | None]], list[tuple[str, str | None]]]:
    """(bq command, its global flags, its command flags)."""
    at = next(i for i, token in enumerate(command[1:], 1) if not token.startswith('-'))
    return command[at], flags_of(command[1:at]), flags_of(command[at + 1:])


def flags_of(tokens) -> list[tuple[str, str | None]]:
    flags = []
    for token in tokens:
        if token.startswith('--'):
            name, _, value = token[2:].partition('=')
            flags.append((name, value if '=' in token else None))
    return flags


def documents_flag(text: str, name: str, negation: str) -> bool:
    return re.search(rf'--(\[{negation}\])?{re.escape(name)}(?![\w-])', text) is not None


def documented_choices(text: str, name: str) -> list[str] | None:
    """The values a flag's help lists inline ("FORMAT must be one of: json, none."), if it does."""
    metavar = re.search(rf'--{re.escape(name)}=\[?([A-Z_]+)', text)
    if not metavar:
        return None
    choices = re.search(rf'{metavar.group(1)} must be one of:\s*([\w-]+(?:,\s+[\w-]+)*)\.', text)
    return re.split(r',\s+', choices.group(1)) if choices else None


def test_the_dry_runs_use_both_clis():
    tools = {c[0] for c in all_commands()}
    assert tools == {'gcloud', 'bq', 'python3'}   # python3: templates/flex_spec.py (build.sh)
    assert len(all_commands()) > 40


def test_every_gcloud_command_and_flag_exists():
    require_sdk()
    by_path: dict[tuple[str, ...], list] = {}
    for command in all_commands():
        if command[0] == 'gcloud':
            path, flags = split_gcloud(command)
            assert len(path) >= 3, f'not a gcloud command: {" ".join(command)}'
            by_path.setdefault(path, []).extend(flags)
    helps = gcloud_help_texts(list(by_path))
    problems = []
    for path, flags in by_path.items():
        text = helps[path]
        name_line = re.search(r'NAME\n\s+(.+?) - ', text)
        if not name_line or name_line.group(1).split() != list(path):
            problems.append(f'{" ".join(path)}: no such command')
            continue
        for flag, value in flags:
            if not documents_flag(text, flag, 'no-'):
                problems.append(f'{" ".join(path)}: no flag --{flag}')
            choices = documented_choices(text, flag)
            if choices and value is not None and not set(value.split(',')) <= set(choices):
                problems.append(f'{" ".join(path)} --{flag}={value}: not one of {choices}')
    assert problems == []
    # The checks can fail: a misspelt flag and an undocumented choice would be caught.
    run_help = helps[('gcloud', 'dataflow', 'flex-template', 'run')]
    assert documents_flag(run_help, 'update', 'no-') and not documents_flag(run_help, 'max-worker', 'no-')
    notify_help = helps[('gcloud', 'storage', 'buckets', 'notifications', 'create')]
    assert documented_choices(notify_help, 'payload-format') == ['json', 'none']


def test_every_bq_command_and_flag_exists():
    require_sdk()
    problems = []
    bq_commands = [split_bq(command) for command in all_commands() if command[0] == 'bq']
    names = sorted({name for name, _, _ in bq_commands})
    with ThreadPoolExecutor(max_workers=len(names) + 1) as pool:
        pool.submit(bq_global_help)
        usages = dict(zip(names, pool.map(lambda name: help_text('bq', name), names)))
    for name, global_flags, flags in bq_commands:
        for flag, _ in flags:  # bq also takes global flags after the command
            if not (documents_flag(usages[name], flag, 'no') or documents_flag(bq_global_help(), flag, 'no')):
                problems.append(f'bq {name}: no flag --{flag}')
        for flag, _ in global_flags:
            if not documents_flag(bq_global_help(), flag, 'no'):
                problems.append(f'bq: no global flag --{flag}')
    assert usages and problems == []


@functools.lru_cache(maxsize=None)
def bq_global_help() -> str:
    result = subprocess.run(['bq', '--helpfull'], capture_output=True, text=True, timeout=120, env=offline_env())
    return result.stdout + result.stderr


@pytest.mark.parametrize('flag', ['--parameters=^|^input_pattern=gs://b/{x,y}/**', '--parameters=reprocess=true'])
def test_gcloud_reads_a_parameter_as_one_name_and_value(flag):
    """gcloud's own --parameters parser (ArgDict) on run.sh's escaping of a value with a comma."""
    value = flag.split('=', 1)[1]
    parsed = run_gcloud_python('''
import json, sys
from googlecloudsdk.calliope import arg_parsers
print(json.dumps(arg_parsers.ArgDict()(sys.argv[1])))
''', value)
    name, expected = value.removeprefix('^|^').split('=', 1)
    assert parsed.strip() == '{"%s": "%s"}' % (name, expected)


@pytest.mark.parametrize('flag,expected', [
    ('^|^dataflow_service_options=a,b|experiments=x', ['dataflow_service_options=a,b', 'experiments=x']),
    ('experiments=x,sdk_container_image=img:1', ['experiments=x', 'sdk_container_image=img:1']),
])
def test_gcloud_reads_run_sh_pipeline_options_one_by_one(flag, expected):
    """gcloud's own --additional-pipeline-options parser (ArgList) on what run.sh passes."""
    parsed = run_gcloud_python('''
import json, sys
from googlecloudsdk.calliope import arg_parsers
print(json.dumps(arg_parsers.ArgList()(sys.argv[1])))
''', flag)
    assert json.loads(parsed) == expected
