"""``python -m stack COMMAND``: the local emulator stack from the command line (see ``stack/__init__.py``)."""
from __future__ import annotations

import argparse
import os
import shlex
import sys
import time

from stack.config import DEFAULT_STATE_DIR, StackConfig
from stack.emulators import PIPELINE, LocalStack
from stack.processes import StackError


def _print_env(stack: LocalStack) -> None:
    for key, value in stack.env().items():
        print(f'export {key}={shlex.quote(value)}')


def cmd_start(args) -> int:
    config = StackConfig().with_free_ports() if args.free_ports else StackConfig()
    try:
        running = LocalStack.load(args.state_dir)
        if all(s['alive'] for s in running.status().values()):
            print(f'# stack already running (state in {running.state_dir}); its variables:', file=sys.stderr)
            _print_env(running)
            return 0
        running.stop()  # a half-dead stack from an earlier run
    except StackError:
        pass
    stack = LocalStack(args.state_dir, config)
    began = time.monotonic()
    stack.start(fresh=not args.keep_data)
    c = stack.config
    print(f'# started and provisioned in {time.monotonic() - began:.1f} s: '
          + ', '.join(f'{name} on port {stack.services[name].port}' for name in stack.services), file=sys.stderr)
    print(f'# bucket gs://{c.upload_bucket} -> topic {c.topic_path} -> subscription {c.subscription_path}\n'
          f'# results {c.output_table}, errors {c.error_table}, spectrograms {c.spectrogram_location}\n'
          f'# Vertex AI: --model_endpoint {c.vertex_endpoint} --vertex_api_endpoint '
          f'http://127.0.0.1:{stack.services["vertex"].port}\n'
          f'# logs and pids in {stack.state_dir}; stop with `python -m stack stop`', file=sys.stderr)
    _print_env(stack)
    return 0


def cmd_stop(args) -> int:
    try:
        stack = LocalStack.load(args.state_dir)
    except StackError:
        print('no stack running', file=sys.stderr)
        return 0
    stack.stop()
    print('stack stopped', file=sys.stderr)
    return 0


def cmd_env(args) -> int:
    _print_env(LocalStack.load(args.state_dir))
    return 0


def cmd_status(args) -> int:
    stack = LocalStack.load(args.state_dir)
    healthy = True
    for name, s in stack.status().items():
        state = 'up' if s['alive'] and s['answers'] else ('running, not answering' if s['alive'] else 'DOWN')
        healthy &= s['alive']
        port = f" port {s['port']}" if s['port'] else ''
        print(f"{name:9s} pid {s['pid']}{port}: {state}  (log {s['log']})")
    return 0 if healthy else 1


def cmd_upload(args) -> int:
    from audio.naming import is_audio_name
    from stack.uploads import Uploader

    stack = LocalStack.load(args.state_dir)
    with stack.activated():
        uploader = Uploader(stack.config.topic_path)
        done = uploader.upload_files(args.paths, args.bucket or stack.config.upload_bucket, args.prefix, args.repeat)
    for item in done:
        print(f'{item.uri} generation {item.generation}' + (f' (notified {args.repeat}x)' if args.repeat > 1 else ''))
    audio = sum(is_audio_name(item.name) for item in done)
    print(f'# {len(done)} objects uploaded ({audio} audio), notifications on {stack.config.topic_path}',
          file=sys.stderr)
    return 0


def cmd_delete(args) -> int:
    from stack.uploads import Uploader

    stack = LocalStack.load(args.state_dir)
    with stack.activated():
        generation = Uploader(stack.config.topic_path).delete(args.bucket or stack.config.upload_bucket, args.name)
    print(f'deleted {args.name} generation {generation} (OBJECT_DELETE published)')
    return 0


def cmd_pipeline(args) -> int:
    from stack import streaming

    stack = LocalStack.load(args.state_dir)
    if args.action == 'stop':
        streaming.stop_pipeline(stack)
        print('pipeline stopped', file=sys.stderr)
        return 0
    service = streaming.start_pipeline(stack, args.model_uri, args.extra)
    print(f'pipeline started (pid {service.pid}), log {service.log}', file=sys.stderr)
    return 0


def cmd_watch(args) -> int:
    from stack import streaming

    stack = LocalStack.load(args.state_dir)
    with stack.activated():
        watcher = streaming.RowWatcher(stack.config.output_table, stack.config.error_table)
        print(f'# rows arriving in {stack.config.output_table} and {stack.config.error_table} '
              '(Ctrl-C to stop watching)', file=sys.stderr)
        try:
            done = streaming.watch(watcher, until=lambda: args.rows and sum(watcher.counts) >= args.rows,
                                   timeout=args.timeout)
        except KeyboardInterrupt:
            done = True
        ok, failed = watcher.counts
        print(f'# {ok} result rows, {failed} error rows', file=sys.stderr)
    return 0 if done else 1


def cmd_demo(args) -> int:
    """Stack + streaming pipeline + upload a folder + watch every file's row arrive. Leaves it all running."""
    from audio.naming import is_audio_name
    from stack import streaming
    from stack.uploads import Uploader

    try:
        stack = LocalStack.load(args.state_dir)
        if not all(s['alive'] for s in stack.status().values()):
            raise StackError('stack not fully up')
    except StackError:
        cmd_start(args)
        stack = LocalStack.load(args.state_dir)
    if PIPELINE not in stack.services:
        service = streaming.start_pipeline(stack, args.model_uri)
        print(f'# streaming pipeline started (pid {service.pid}, log {service.log})', file=sys.stderr)
    with stack.activated():
        watcher = streaming.RowWatcher(stack.config.output_table, stack.config.error_table)
        watcher.poll()  # rows of earlier uploads are not news
        started = time.monotonic()
        done = Uploader(stack.config.topic_path).upload_files(args.paths, stack.config.upload_bucket, args.prefix)
        expected = sum(is_audio_name(item.name) for item in done)
        print(f'# uploaded {len(done)} objects ({expected} audio) to gs://{stack.config.upload_bucket}/{args.prefix}'
              ' and published their notifications; rows as they arrive:', file=sys.stderr)
        base = watcher.counts
        arrived = streaming.watch(watcher, until=lambda: sum(watcher.counts) - sum(base) >= expected,
                                  timeout=args.timeout)
    ok, failed = (n - b for n, b in zip(watcher.counts, base))
    print(f'# {ok} result rows + {failed} error rows for {expected} audio uploads in '
          f'{time.monotonic() - started:.0f} s.' + ('' if arrived else ' Timed out waiting: see the pipeline log.'),
          file=sys.stderr)
    print('# Still running: upload more with `make upload DIR=...`, watch with `make watch`, '
          'stop everything with `make stack-stop`.', file=sys.stderr)
    return 0 if arrived else 1


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog='python -m stack', description=__doc__)
    p.add_argument('--state-dir', default=os.environ.get('STACK_STATE_DIR', DEFAULT_STATE_DIR),
                   help='where pids, ports, logs and emulator data live (default: .stack/)')
    sub = p.add_subparsers(dest='command', required=True)
    start = sub.add_parser('start', help='start the three emulators and create the resources; prints exports')
    start.add_argument('--free-ports', action='store_true', help='any free ports instead of 8085/9023/9050')
    start.add_argument('--keep-data', action='store_true', help='keep the data of the previous run')
    start.set_defaults(func=cmd_start)
    sub.add_parser('stop', help='stop the pipeline (if started here) and the emulators').set_defaults(func=cmd_stop)
    sub.add_parser('status', help='pids, ports and health').set_defaults(func=cmd_status)
    sub.add_parser('env', help='print the export lines for the emulator variables').set_defaults(func=cmd_env)
    upload = sub.add_parser('upload', help='upload files/folders and publish their OBJECT_FINALIZE notifications')
    upload.add_argument('paths', nargs='+')
    upload.add_argument('--bucket', help='default: the stack\'s upload bucket')
    upload.add_argument('--prefix', default='', help='object name prefix, e.g. uploads/')
    upload.add_argument('--repeat', type=int, default=1, help='publish each notification N times (redelivery)')
    upload.set_defaults(func=cmd_upload)
    delete = sub.add_parser('delete', help='delete an object and publish OBJECT_DELETE')
    delete.add_argument('name')
    delete.add_argument('--bucket')
    delete.set_defaults(func=cmd_delete)
    pipe = sub.add_parser('pipeline', help='start/stop the streaming pipeline against the stack (background)')
    pipe.add_argument('action', choices=['start', 'stop'])
    pipe.add_argument('--model_uri')
    pipe.add_argument('extra', nargs=argparse.REMAINDER, help='more pipeline options, after --')
    pipe.set_defaults(func=cmd_pipeline)
    watch = sub.add_parser('watch', help='print result and error rows as they arrive')
    watch.add_argument('--rows', type=int, default=0, help='stop after this many rows in all')
    watch.add_argument('--timeout', type=float)
    watch.set_defaults(func=cmd_watch)
    demo = sub.add_parser('demo', help='stack + pipeline + upload PATHS + watch until every file has its row')
    demo.add_argument('paths', nargs='+')
    demo.add_argument('--prefix', default='uploads/')
    demo.add_argument('--model_uri')
    demo.add_argument('--timeout', type=float, default=600)
    demo.add_argument('--free-ports', action='store_true')
    demo.add_argument('--keep-data', action='store_true')
    demo.set_defaults(func=cmd_demo)
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if getattr(args, 'extra', None) and args.extra[0] == '--':
        args.extra = args.extra[1:]
    try:
        return args.func(args)
    except StackError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(main())
