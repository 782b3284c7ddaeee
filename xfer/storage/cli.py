"""``xfer remote``, ``xfer pull`` and ``xfer push``: the command line of :mod:`xfer.storage`."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from xfer.storage.remote import (
    DEFAULT_LOCAL_PATH,
    DEFAULT_LOCAL_REMOTE,
    DVC_CONNECT_TIMEOUT_S,
    DVC_READ_TIMEOUT_S,
    check_remote,
    configure_s3_remote,
    describe_endpoint,
    ensure_default_local_remote,
    find_repo_root,
    remote_settings,
)
from xfer.storage.sync import pull, push


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _quiet_libraries(args: argparse.Namespace) -> None:
    """Keep boto's INFO chatter ("Found credentials in ...") out of the output unless -v, and let
    DVC's messages go through DVC's own handlers only (importing dvc installs them), not twice."""
    verbose = getattr(args, "verbose", False)
    for name in ("dvc", "dvc_objects", "dvc_data"):
        logging.getLogger(name).propagate = False
        if verbose:
            logging.getLogger(name).setLevel(logging.DEBUG)
    if not verbose:
        for name in ("aiobotocore", "botocore", "boto3", "s3fs", "fsspec"):
            logging.getLogger(name).setLevel(logging.WARNING)


def _cmd_remote_s3(args: argparse.Namespace) -> int:
    _quiet_libraries(args)
    root = find_repo_root()
    settings = configure_s3_remote(
        root,
        args.url,
        name=args.name,
        endpoint_url=args.endpoint_url,
        region=args.region,
        profile=args.profile,
        default=args.default,
        access_key_id=args.access_key_id,
        secret_access_key=args.secret_access_key,
        connect_timeout=args.connect_timeout,
        read_timeout=args.read_timeout,
    )
    name = args.name.lower()
    extra = " (default remote)" if args.default else ""
    print(f"configured DVC remote '{name}': {args.url} at {describe_endpoint(settings)}{extra}")
    if args.access_key_id is not None:
        print("credentials stored in .dvc/config.local (not committed)")
    if args.no_check:
        return 0
    print(f"OK: {check_remote(name, settings)}")
    return 0


def _cmd_remote_local(args: argparse.Namespace) -> int:
    root = find_repo_root()
    name = ensure_default_local_remote(root, args.path, args.name)
    print(f"default DVC remote: '{name}'")
    return 0


def _cmd_remote_check(args: argparse.Namespace) -> int:
    _quiet_libraries(args)
    name, settings = remote_settings(find_repo_root(), args.name)
    print(f"OK: {check_remote(name, settings)}")
    return 0


def _cmd_pull(args: argparse.Namespace) -> int:
    _quiet_libraries(args)
    res = pull(args.path, args.rev, repo=args.repo, remote=args.remote, out=args.out)
    if res.note:
        print(f"xfer pull: note: {res.note}", file=sys.stderr)
    kind = "directory" if res.is_dir else "file"
    files = f"{res.files} file" + ("" if res.files == 1 else "s")
    print(f"fetched {res.path}@{res.rev} ({kind}: {files}, {res.bytes} bytes, "
          f"{_human(res.bytes)}) -> {res.dest}")
    return 0


def _cmd_push(args: argparse.Namespace) -> int:
    _quiet_libraries(args)
    res = push(
        remote=args.remote,
        targets=args.targets,
        run_cache=args.run_cache,
        all_tags=args.all_tags,
        all_branches=args.all_branches,
        all_commits=args.all_commits,
        revs=args.rev or (),
        jobs=args.jobs,
    )
    print(f"pushed {res.pushed} objects to remote '{res.remote}' ({res.url})")
    return 0


EPILOG_REMOTE = """examples:
  xfer remote s3 --url s3://my-bucket/xfer --default                  # AWS; credentials from env/profile
  xfer remote s3 --url s3://xfer/store --endpoint-url http://minio:9000 --default
  xfer remote s3 --url s3://xfer/store --access-key-id AKIA... --secret-access-key ...  # -> .dvc/config.local
  xfer remote check s3
  xfer remote local                                                     # default local directory remote"""

EPILOG_PULL = """examples:
  xfer pull models/teacher_pong.safetensors --rev v1
  xfer pull data/offline/pong --rev v2 --out /data/pong-v2
  xfer pull data/offline/pong --rev main --repo https://github.com/ORG/REPO.git --remote s3

The path is relative to the repository root. DEST is replaced only after a complete download."""


def add_storage_commands(sub: Any) -> None:
    """Add ``xfer remote``, ``xfer pull`` and ``xfer push`` to the ``xfer`` subparsers ``sub``."""
    fmt = argparse.RawDescriptionHelpFormatter
    r = sub.add_parser("remote", help="configure and check the DVC remote (local directory or S3)",
                       description="Configure and check the DVC remote that stores datasets and checkpoints.",
                       epilog=EPILOG_REMOTE, formatter_class=fmt)
    rsub = r.add_subparsers(dest="remote_command", required=True)

    s3 = rsub.add_parser("s3", help="add or update an S3 (or S3-compatible) remote",
                         description="Add or update a DVC S3 remote and check that it answers. URL, endpoint, "
                         "region and profile go to .dvc/config (commit it); access keys, if given, only to "
                         ".dvc/config.local. Without keys, credentials come from AWS_ACCESS_KEY_ID/"
                         "AWS_SECRET_ACCESS_KEY, AWS_PROFILE or ~/.aws.", epilog=EPILOG_REMOTE, formatter_class=fmt)
    s3.add_argument("--url", required=True, help="s3://BUCKET/PREFIX")
    s3.add_argument("--endpoint-url", help="endpoint of an S3-compatible server (MinIO, Ceph, SeaweedFS, ...)")
    s3.add_argument("--name", default="s3", help="remote name (default s3)")
    s3.add_argument("--default", action="store_true", help="make it the default remote")
    s3.add_argument("--region", help="AWS region")
    s3.add_argument("--profile", help="AWS profile name (from ~/.aws/credentials)")
    s3.add_argument("--access-key-id", help="stored in .dvc/config.local only")
    s3.add_argument("--secret-access-key", help="stored in .dvc/config.local only")
    s3.add_argument("--no-check", action="store_true", help="do not check that the endpoint answers")
    s3.add_argument("--connect-timeout", type=int, default=DVC_CONNECT_TIMEOUT_S, metavar="S",
                    help=f"seconds to open a connection, per attempt, for every DVC command (default {DVC_CONNECT_TIMEOUT_S})")
    s3.add_argument("--read-timeout", type=int, default=DVC_READ_TIMEOUT_S, metavar="S",
                    help=f"seconds to wait for an answer, per attempt, for every DVC command (default {DVC_READ_TIMEOUT_S}); "
                    "a silent endpoint makes plain `dvc push` fail after a few attempts instead of hanging")
    s3.set_defaults(func=_cmd_remote_s3)

    loc = rsub.add_parser("local", help="set the default local-directory remote if none is set")
    loc.add_argument("--path", default=DEFAULT_LOCAL_PATH, help=f"directory inside the repo (default {DEFAULT_LOCAL_PATH})")
    loc.add_argument("--name", default=DEFAULT_LOCAL_REMOTE, help=f"remote name (default {DEFAULT_LOCAL_REMOTE})")
    loc.set_defaults(func=_cmd_remote_local)

    chk = rsub.add_parser("check", help="check that a remote answers (exit code 2 if not)")
    chk.add_argument("name", nargs="?", help="remote name (default: the default remote)")
    chk.set_defaults(func=_cmd_remote_check)

    p = sub.add_parser("pull", help="fetch a dataset or checkpoint at a git revision or tag",
                       description="Fetch a DVC-tracked file or directory as it was at a git revision, "
                       "through dvc.api, into DEST (atomically).", epilog=EPILOG_PULL, formatter_class=fmt)
    p.add_argument("path", help="path inside the repository, e.g. data/ds or models/m.safetensors")
    p.add_argument("--rev", required=True, help="git revision: tag, branch or commit")
    p.add_argument("--repo", default=".", help="local checkout or git URL (default: .)")
    p.add_argument("-r", "--remote", help="DVC remote name (default: the default remote)")
    p.add_argument("--out", metavar="DEST", help="destination (default: <basename>@<rev> here)")
    p.set_defaults(func=_cmd_pull)

    u = sub.add_parser("push", help="dvc push to the remote (optionally run-cache, tags)",
                       description="dvc push, applying the remote's current settings to every revision "
                       "pushed. --run-cache also pushes stage results for `dvc repro --pull` on other hosts.")
    u.add_argument("targets", nargs="*", help="DVC files/stages to push (default: all)")
    u.add_argument("-r", "--remote", help="DVC remote name (default: the default remote)")
    u.add_argument("--run-cache", action="store_true", help="also push the run-cache (stage results)")
    u.add_argument("--all-tags", action="store_true", help="push the data of every tag")
    u.add_argument("--all-branches", action="store_true", help="push the data of every branch")
    u.add_argument("--all-commits", action="store_true", help="push the data of every commit")
    u.add_argument("--rev", action="append", help="also push the data of this revision (repeatable)")
    u.add_argument("-j", "--jobs", type=int, help="parallel transfers")
    u.set_defaults(func=_cmd_push)
