"""Versioned datasets and checkpoints in a DVC remote: local by default, S3 one command away.

Datasets (``data/...``) and checkpoints (``models/...``) are DVC outputs; their bytes live in a DVC
remote and git records which bytes belong to which commit. This module sets the remote up, checks
that an S3 remote answers, and moves data:

* :func:`ensure_default_local_remote` -- the committed default remote ``local``, a directory
  ``.dvc-storage/`` inside the repository (ignored by git and by DVC), so ``dvc push`` / ``dvc pull``
  work with nothing external.
* :func:`configure_s3_remote` -- a DVC S3 remote (AWS or any S3-compatible endpoint such as MinIO),
  the same settings ``dvc remote add`` / ``dvc remote modify`` write. URL, endpoint, region and
  profile go to the committed ``.dvc/config``; access keys, when given at all, only to the
  git-ignored ``.dvc/config.local``. Otherwise credentials come from the usual AWS environment
  variables, profiles or instance roles.
* :func:`check_remote` -- one short ``ListObjectsV2`` call (5 s connect timeout, no retries) that
  turns "nothing answers" into one readable line naming the endpoint.
* :func:`pull` -- a DVC-tracked file or directory at a git revision, through
  :class:`dvc.api.DVCFileSystem`, written atomically to a destination.
* :func:`push` -- ``dvc push`` (optionally ``--run-cache`` and other revisions) to the remote as
  configured *now*.

The remote "as configured now": DVC reads remote settings from the ``.dvc/config`` of the revision
it is looking at, so a tag made before ``xfer remote s3 --default`` knows nothing about S3 (plain
``dvc push --all-tags`` silently skips such revisions, and ``dvc.api`` at such a tag looks in the
old remote). :func:`pull` and :func:`push` therefore take the remote's settings from the current
checkout (or, for a git URL, from the default branch) and apply them to every revision.

All failures are :class:`StorageError` (a ``RuntimeError``) with a one-line message; the CLI prints
it and exits with code 2. DVC, s3fs and boto3 are imported lazily: they come with the ``pipeline``
extra and importing this module has no side effects.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_LOCAL_REMOTE = "local"
DEFAULT_LOCAL_PATH = ".dvc-storage"
CHECK_CONNECT_TIMEOUT_S = 5.0
CHECK_READ_TIMEOUT_S = 10.0
# written into the DVC remote config, so plain `dvc push` / `dvc pull` give up on an endpoint that
# accepts connections and never answers instead of hanging (botocore's default read timeout is 60 s
# per attempt, times its and s3fs' retries)
DVC_CONNECT_TIMEOUT_S = 5
DVC_READ_TIMEOUT_S = 10
_CREDENTIAL_KEYS = ("access_key_id", "secret_access_key", "session_token")


class StorageError(RuntimeError):
    """A storage operation failed; the message is one line meant for the user."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


@dataclass(frozen=True)
class PullResult:
    """What :func:`pull` wrote: ``files`` regular files totalling ``bytes`` bytes at ``dest``."""

    path: str
    rev: str
    dest: Path
    files: int
    bytes: int
    is_dir: bool
    note: str | None = None


@dataclass(frozen=True)
class PushResult:
    """What :func:`push` did: ``pushed`` objects sent to remote ``remote`` at ``url``."""

    remote: str
    url: str
    pushed: int


# ----------------------------------------------------------------------------------------------
# Repository and remote configuration


def find_repo_root(start: str | os.PathLike[str] | None = None) -> Path:
    """The root of the DVC repository containing ``start`` (default: the working directory).

    Raises:
        StorageError: ``start`` is not inside a DVC repository (run ``dvc init``).
    """
    from dvc.exceptions import NotDvcRepoError
    from dvc.repo import Repo

    where = os.fspath(start) if start is not None else os.getcwd()
    try:
        return Path(Repo.find_root(where))
    except NotDvcRepoError:
        raise StorageError(f"{where} is not inside a DVC repository (run `git init && dvc init` first)") from None


@contextlib.contextmanager
def _open_repo(root: str | os.PathLike[str], **kwargs: Any) -> Iterator[Any]:
    from dvc.exceptions import DvcException, NotDvcRepoError
    from dvc.repo import Repo

    try:
        repo = Repo(os.fspath(root), **kwargs)
    except NotDvcRepoError:
        raise StorageError(f"{root} is not a DVC repository (run `dvc init` there)") from None
    except DvcException as exc:
        raise StorageError(f"cannot open the DVC repository {root}: {exc}") from exc
    try:
        yield repo
    finally:
        repo.close()


def _append_line(path: Path, line: str) -> bool:
    """Append ``line`` to the text file ``path`` unless already present; True when written."""
    text = path.read_text() if path.exists() else ""
    if line in text.splitlines():
        return False
    with open(path, "a") as f:
        if text and not text.endswith("\n"):
            f.write("\n")
        f.write(line + "\n")
    return True


def ensure_default_local_remote(
    repo_root: str | os.PathLike[str], path: str = DEFAULT_LOCAL_PATH, name: str = DEFAULT_LOCAL_REMOTE
) -> str:
    """Give the repository a default DVC remote if it has none: the directory ``path`` (relative to
    the repository root) as remote ``name``, written to the committed ``.dvc/config``.

    The directory is listed in ``.gitignore`` and ``.dvcignore`` (so git never sees the objects and
    DVC does not walk them when collecting stages). A repository that already has a default
    remote is left alone. Returns the name of the default remote.

    Raises:
        StorageError: ``repo_root`` is not a DVC repository, or the config cannot be written.
    """
    from dvc.exceptions import DvcException

    root = Path(repo_root)
    rel = Path(path)
    if rel.is_absolute() or ".." in rel.parts:
        raise StorageError(f"the local remote path must be inside the repository, got {path!r}")
    with _open_repo(root) as repo:
        current = repo.config["core"].get("remote")
        if current:
            return current
        try:
            with repo.config.edit("repo") as conf:
                # a relative path (relative to the process's cwd) is stored relative to .dvc/, as
                # `dvc remote add -d local <dir>` stores it: the repository stays relocatable
                conf["remote"][name] = {"url": os.path.relpath((root / rel).absolute(), Path.cwd())}
                conf["core"]["remote"] = name
        except DvcException as exc:
            raise StorageError(f"cannot write {root / '.dvc' / 'config'}: {exc}") from exc
    entry = "/" + rel.as_posix().strip("/") + "/"
    _append_line(root / ".gitignore", entry)
    _append_line(root / ".dvcignore", entry)
    return name


def remote_settings(repo_root: str | os.PathLike[str], name: str | None = None) -> tuple[str, dict[str, Any]]:
    """The name and merged settings (all config levels, ``config.local`` included) of remote
    ``name`` -- by default the default remote -- as configured in the working tree.

    Raises:
        StorageError: no default remote, or no remote called ``name``.
    """
    with _open_repo(repo_root) as repo:
        return _settings_from_config(repo.config, name, str(repo_root))


def _settings_from_config(config: Any, name: str | None, where: str) -> tuple[str, dict[str, Any]]:
    remotes = config["remote"]
    name = name or config["core"].get("remote")
    if not name:
        raise StorageError(
            f"no default DVC remote in {where}: run `xfer remote s3 --url s3://BUCKET/PREFIX --default` "
            "or `dvc remote add -d NAME URL`"
        )
    if name not in remotes:
        known = ", ".join(sorted(remotes)) or "none"
        raise StorageError(f"no DVC remote named '{name}' in {where} (configured: {known})")
    return name, dict(remotes[name])


def _is_s3(settings: dict[str, Any]) -> bool:
    return str(settings.get("url", "")).startswith("s3://")


def _split_s3_url(url: str) -> tuple[str, str]:
    if not url.startswith("s3://"):
        raise StorageError(f"an S3 remote URL looks like s3://BUCKET/PREFIX, got {url!r}")
    bucket, _, prefix = url[len("s3://"):].partition("/")
    if not bucket:
        raise StorageError(f"no bucket in S3 URL {url!r} (expected s3://BUCKET/PREFIX)")
    return bucket, prefix.strip("/")


def describe_endpoint(settings: dict[str, Any]) -> str:
    """The endpoint of an S3 remote's settings, for messages (``AWS S3`` when none is set)."""
    endpoint = settings.get("endpointurl")
    if endpoint:
        return str(endpoint)
    region = settings.get("region") or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    return f"AWS S3 ({region})" if region else "AWS S3"


def configure_s3_remote(
    repo_root: str | os.PathLike[str],
    url: str,
    *,
    name: str = "s3",
    endpoint_url: str | None = None,
    region: str | None = None,
    profile: str | None = None,
    default: bool = False,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    connect_timeout: int = DVC_CONNECT_TIMEOUT_S,
    read_timeout: int = DVC_READ_TIMEOUT_S,
) -> dict[str, Any]:
    """Add or update the DVC S3 remote ``name`` at ``url`` (``s3://bucket/prefix``).

    Writes what ``dvc remote add [-d] NAME URL`` and ``dvc remote modify NAME endpointurl|region|
    profile|connect_timeout|read_timeout VALUE`` would to the committed ``.dvc/config`` (an existing
    remote of that name is replaced; its options not given here are dropped). The timeouts (whole
    seconds, per attempt) make every DVC command fail with a timeout error instead of hanging on an
    endpoint that accepts connections and never answers; DVC's own retries still multiply them. The keys, if given, go to
    ``.dvc/config.local`` only (``dvc remote modify --local``), never to the committed file.
    Returns the merged settings of the remote.

    Raises:
        StorageError: bad URL, only one of the two keys given, not a DVC repository, or the config
            cannot be written.
    """
    from dvc.exceptions import DvcException

    _split_s3_url(url)
    if (access_key_id is None) != (secret_access_key is None):
        raise StorageError("give both --access-key-id and --secret-access-key, or neither")
    name = name.lower()
    if connect_timeout < 1 or read_timeout < 1:
        raise StorageError(f"timeouts must be whole seconds >= 1, got connect {connect_timeout}, read {read_timeout}")
    section: dict[str, Any] = {"url": url, "connect_timeout": connect_timeout, "read_timeout": read_timeout}
    for key, value in (("endpointurl", endpoint_url), ("region", region), ("profile", profile)):
        if value:
            section[key] = value
    with _open_repo(repo_root) as repo:
        try:
            with repo.config.edit("repo") as conf:
                conf["remote"][name] = section
                if default:
                    conf["core"]["remote"] = name
            if access_key_id is not None:
                with repo.config.edit("local") as conf:
                    local = conf["remote"].setdefault(name, {})
                    local["access_key_id"] = access_key_id
                    local["secret_access_key"] = secret_access_key
        except DvcException as exc:
            raise StorageError(f"cannot configure DVC remote '{name}': {exc}") from exc
    return remote_settings(repo_root, name)[1]


# ----------------------------------------------------------------------------------------------
# Reachability


def _s3fs_for(settings: dict[str, Any]) -> Any:
    """An s3fs filesystem built from DVC remote settings exactly as DVC builds it, but with short
    timeouts and a single attempt."""
    import s3fs
    from dvc_s3 import S3FileSystem as DvcS3FileSystem

    args = dict(DvcS3FileSystem(**settings).fs_args)
    config_kwargs = dict(args.get("config_kwargs") or {})
    config_kwargs.update(
        connect_timeout=CHECK_CONNECT_TIMEOUT_S,
        read_timeout=CHECK_READ_TIMEOUT_S,
        retries={"max_attempts": 1, "mode": "standard"},
    )
    args["config_kwargs"] = config_kwargs
    args["skip_instance_cache"] = True
    fs = s3fs.S3FileSystem(**args)
    fs.retries = 1
    return fs


def _reason(exc: BaseException) -> str:
    kwargs = getattr(exc, "kwargs", None)  # botocore keeps the underlying error here
    inner = kwargs.get("error") if isinstance(kwargs, dict) else None
    text = str(inner or exc) or type(exc).__name__
    return " ".join(text.split())


def check_remote(name: str, settings: dict[str, Any]) -> str:
    """Check that a remote answers; returns a one-line description of what was reached.

    For S3 remotes: one ``ListObjectsV2`` (at most one key) on the bucket and prefix, with a 5 s
    connect timeout and no retries, using the same credentials DVC would. A local-directory
    remote only needs its parent directory to exist (DVC creates the rest).

    Raises:
        StorageError: the endpoint does not answer ("cannot reach S3 endpoint X: ..."), no
            credentials, unknown profile, access denied, no such bucket, or the local remote's
            parent directory is missing.
    """
    url = str(settings.get("url", ""))
    if not _is_s3(settings):
        if "://" in url:
            return f"remote '{name}' ({url}): not checked (only S3 and local remotes are)"
        parent = Path(url).parent
        if not parent.is_dir():
            raise StorageError(f"local remote '{name}' at {url}: parent directory {parent} does not exist")
        return f"remote '{name}' is the local directory {url}"
    from botocore.exceptions import NoCredentialsError, PartialCredentialsError, ProfileNotFound

    bucket, prefix = _split_s3_url(url)
    endpoint = describe_endpoint(settings)
    try:
        fs = _s3fs_for(settings)
        fs.call_s3("list_objects_v2", Bucket=bucket, Prefix=f"{prefix}/" if prefix else "", MaxKeys=1)
    except (NoCredentialsError, PartialCredentialsError) as exc:
        raise StorageError(
            f"no usable AWS credentials for remote '{name}' ({url} at {endpoint}): {_reason(exc)}; set "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or AWS_PROFILE, or pass --access-key-id/"
            "--secret-access-key to `xfer remote s3` (stored in .dvc/config.local)"
        ) from None
    except ProfileNotFound as exc:
        raise StorageError(f"remote '{name}': {_reason(exc)}; check --profile or ~/.aws/config") from None
    except PermissionError as exc:
        raise StorageError(
            f"access to {url} at {endpoint} denied: {_reason(exc)}; check credentials and bucket policy"
        ) from None
    except FileNotFoundError as exc:
        raise StorageError(
            f"S3 endpoint {endpoint} answered but bucket '{bucket}' was not found ({_reason(exc)}); "
            "create it or fix --url"
        ) from None
    except Exception as exc:  # connection refused, DNS, timeouts, TLS, HTTP errors, ...
        raise StorageError(
            f"cannot reach S3 endpoint {endpoint}: {_reason(exc)}; check --endpoint-url / credentials"
        ) from None
    return f"remote '{name}' ({url} at {endpoint}) is reachable"


# ----------------------------------------------------------------------------------------------
# Pull


def default_dest(path: str, rev: str) -> Path:
    """The default destination of :func:`pull`: ``<basename>@<rev>`` in the working directory
    (slashes in the revision become ``_``)."""
    base = Path(path.rstrip("/")).name
    return Path.cwd() / f"{base}@{rev.replace('/', '_')}"


def _is_local_repo(repo: str) -> bool:
    return "://" not in repo and os.path.isdir(repo)


def _count(path: Path) -> tuple[int, int]:
    if path.is_file():
        return 1, path.stat().st_size
    files = size = 0
    for dirpath, _, names in os.walk(path):
        for n in names:
            files += 1
            size += os.lstat(os.path.join(dirpath, n)).st_size
    return files, size


def _swap_in(src: Path, dest: Path, scratch: Path) -> None:
    """Move the complete download ``src`` to ``dest``, replacing what is there. A file replacing a
    file is one atomic rename; otherwise the old ``dest`` is first moved into ``scratch`` (and
    restored if the second rename fails)."""
    if not dest.exists() and not dest.is_symlink():
        os.rename(src, dest)
        return
    if src.is_file() and dest.is_file() and not dest.is_symlink():
        os.replace(src, dest)
        return
    old = scratch / "previous"
    os.rename(dest, old)
    try:
        os.rename(src, dest)
    except OSError:
        os.rename(old, dest)
        raise


def _offline_config(scratch: Path) -> dict[str, Any]:
    """A config whose default remote is an empty directory: DVC then serves only its local cache."""
    empty = scratch / "no-remote"
    empty.mkdir()
    return {"core": {"remote": "xfer-offline"}, "remote": {"xfer-offline": {"url": str(empty)}}}


def _current_remote(repo: str, name: str | None) -> tuple[str, dict[str, Any]] | None:
    """The remote ``name`` (default: the default remote) as configured in the working tree of a
    local ``repo``, or on the default branch of a git URL; None when there is none."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo.open(repo, uninitialized=True) as r:
            conf = r.config
            chosen = name or conf["core"].get("remote")
            if not chosen or chosen not in conf["remote"] or chosen == "auto-generated-upstream":
                return None
            return chosen, dict(conf["remote"][chosen])
    except StorageError:
        raise
    except DvcException as exc:
        raise StorageError(f"cannot open repository {repo}: {_reason(exc)}") from None


def pull(
    path: str,
    rev: str,
    *,
    repo: str = ".",
    remote: str | None = None,
    out: str | os.PathLike[str] | None = None,
) -> PullResult:
    """Fetch the DVC-tracked file or directory ``path`` (relative to the repository root) as it
    was at git revision ``rev`` of ``repo`` (a local checkout or a git URL), and write it to
    ``out`` (default :func:`default_dest`).

    The data comes from the repository's local cache or the remote: ``remote`` (a name), else
    the default remote, with its settings taken from the current checkout (or the default branch of
    a git URL), so old tags are fetched from where the data lives today. Everything is downloaded
    into a temporary directory next to ``out`` and renamed into place only when complete: an
    existing ``out`` is replaced then, and left untouched by any failure. An S3 remote is checked
    first (short timeout); if it does not answer, the local cache alone is tried before failing.
    Git-tracked (non-DVC) paths are fetched from git.

    Raises:
        StorageError: unknown revision, path not present at that revision, remote unreachable
            (naming the endpoint), missing credentials, data in neither cache nor remote, or a
            write error at the destination.
    """
    from dvc.api import DVCFileSystem
    from dvc.config import ConfigError
    from dvc.exceptions import DvcException
    from dvc.scm import CloneError, RevError
    from dvc_data.index.index import DataIndexError

    rel = path.strip().strip("/")
    if not rel or rel == ".":
        raise StorageError("give a path inside the repository, e.g. data/ds or models/model.safetensors")
    dest = Path(out) if out is not None else default_dest(rel, rev)
    dest = dest.absolute()
    if not dest.parent.is_dir():
        raise StorageError(f"destination directory {dest.parent} does not exist")
    repo_url = os.path.abspath(repo) if _is_local_repo(repo) else repo
    where = f"{repo_url}"

    current = _current_remote(repo_url, remote)
    config: dict[str, Any] | None = None
    remote_name = remote
    if current is not None:
        remote_name, settings = current
        config = {"core": {"remote": remote_name}, "remote": {remote_name: settings}}

    unreachable: StorageError | None = None
    scratch = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".xfer-tmp", dir=dest.parent))
    try:
        fs = DVCFileSystem(repo_url, rev=rev, config=config, remote=None if config else remote)
        try:
            try:
                info = fs.info("/" + rel)
            except RevError:
                raise StorageError(f"no such git revision '{rev}' in {where}") from None
            except CloneError as exc:
                raise StorageError(f"cannot clone {where}: {_reason(exc)}") from None
            except FileNotFoundError:
                raise StorageError(f"'{rel}' is not tracked (by DVC or git) at revision '{rev}' of {where}") from None
            except ConfigError as exc:
                raise StorageError(f"{_reason(exc)} (DVC config at revision '{rev}' of {where}; "
                                   "see `dvc remote list`)") from None
            except DvcException as exc:
                raise StorageError(f"cannot read revision '{rev}' of {where}: {_reason(exc)}") from None
            is_dir = info["type"] == "directory"
            tracked_by_dvc = bool(info.get("dvc_info"))
            remote_settings_now = _settings_of_open_repo(fs, remote_name) if tracked_by_dvc else None
            if remote_settings_now is not None and _is_s3(remote_settings_now[1]):
                try:
                    check_remote(*remote_settings_now)
                except StorageError as exc:
                    unreachable = exc
            if unreachable is not None:
                # the remote is down: the local cache may still hold the data
                fs.close()
                fs = DVCFileSystem(repo_url, rev=rev, config=_offline_config(scratch))
            payload = scratch / "payload"
            try:
                fs.get("/" + rel, str(payload), recursive=is_dir)
            except (FileNotFoundError, DataIndexError) as exc:
                if unreachable is not None:
                    raise unreachable from None
                where_remote = (
                    f"remote '{remote_settings_now[0]}' ({remote_settings_now[1].get('url')})"
                    if remote_settings_now
                    else "any remote (none is configured)"
                )
                raise StorageError(
                    f"the data of '{rel}' at revision '{rev}' is neither in the local cache nor in "
                    f"{where_remote} ({_reason(exc)}); push it from a checkout that has it "
                    "(`xfer push --all-tags`)"
                ) from None
            except StorageError:
                raise
            except Exception as exc:
                if unreachable is not None:
                    raise unreachable from None
                raise StorageError(f"fetching '{rel}' at revision '{rev}' failed: {_reason(exc)}") from None
            if not payload.exists():
                if is_dir:
                    payload.mkdir()
                else:
                    raise StorageError(f"fetching '{rel}' at revision '{rev}' produced nothing")
        finally:
            fs.close()
        files, nbytes = _count(payload)
        try:
            _swap_in(payload, dest, scratch)
        except OSError as exc:
            raise StorageError(f"cannot move the download into {dest}: {exc}") from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    note = f"the remote was not usable ({unreachable}); served from the local cache" if unreachable else None
    return PullResult(path=rel, rev=rev, dest=dest, files=files, bytes=nbytes, is_dir=is_dir, note=note)


def _settings_of_open_repo(fs: Any, name: str | None) -> tuple[str, dict[str, Any]] | None:
    conf = fs.repo.config
    chosen = name or conf["core"].get("remote")
    if not chosen:
        return None
    if chosen not in conf["remote"]:
        known = ", ".join(sorted(conf["remote"])) or "none"
        raise StorageError(f"no DVC remote named '{chosen}' (configured: {known})")
    return chosen, dict(conf["remote"][chosen])


# ----------------------------------------------------------------------------------------------
# Push


def push(
    repo_root: str | os.PathLike[str] | None = None,
    *,
    remote: str | None = None,
    targets: Sequence[str] = (),
    run_cache: bool = False,
    all_tags: bool = False,
    all_branches: bool = False,
    all_commits: bool = False,
    revs: Sequence[str] = (),
    jobs: int | None = None,
) -> PushResult:
    """``dvc push`` to ``remote`` (default: the default remote) with the remote's current settings
    applied to every revision pushed (``all_tags`` etc.), so tags made before the remote was
    configured are pushed too. ``run_cache`` also pushes the run-cache (stage results that
    ``dvc repro --pull`` on another host can reuse). S3 remotes are checked first.

    Raises:
        StorageError: not a DVC repository, no such remote, remote unreachable or refusing, or
            objects missing from the local cache.
    """
    from dvc.exceptions import DvcException

    root = find_repo_root(repo_root)
    name, settings = remote_settings(root, remote)
    check_remote(name, settings)
    override = {"core": {"remote": name}, "remote": {name: settings}}
    with _open_repo(root, config=override) as repo:
        try:
            pushed = repo.push(
                targets=list(targets) or None,
                remote=name,
                run_cache=run_cache,
                all_tags=all_tags,
                all_branches=all_branches,
                all_commits=all_commits,
                revs=list(revs) or None,
                jobs=jobs,
            )
            if run_cache:
                pushed = int(pushed or 0) + push_run_cache_objects(repo, name, jobs=jobs)
        except DvcException as exc:
            endpoint = describe_endpoint(settings) if _is_s3(settings) else settings.get("url")
            raise StorageError(f"push to remote '{name}' ({endpoint}) failed: {_reason(exc)}") from None
    return PushResult(remote=name, url=str(settings.get("url")), pushed=int(pushed or 0))


def run_cache_objects(repo: Any) -> set[Any]:
    """The data objects that the local run-cache entries of the open DVC ``repo`` refer to and that the
    local cache holds (``dvc_data`` ``HashInfo`` objects).

    A run-cache entry (``.dvc/cache/runs/<key>/<value>``) records a stage's outputs by hash; another
    host restores the stage from it (``dvc repro --pull``: "Stage ... is cached - skipping run") only if
    every one of those objects is on the remote. ``dvc push --run-cache`` (DVC 3.67) uploads the entries
    and the objects of the *workspace's* cached outputs, but not the objects of ``cache: false`` outputs
    (xfer's stage metrics), which DVC keeps in the local cache for the run-cache only: without them the
    other host silently recomputes the stage (issue 13). Objects gone from the local cache (``dvc gc``)
    are left out.
    """
    from dvc.stage.cache import StageCache

    cache: StageCache = repo.stage_cache
    found: set[Any] = set()
    if not os.path.isdir(cache.cache_dir):
        return found
    for prefix in sorted(os.listdir(cache.cache_dir)):
        for key in sorted(os.listdir(os.path.join(cache.cache_dir, prefix))):
            entries = [(key, value) for value in sorted(os.listdir(cache._get_cache_dir(key)))]
            for odb_objs in cache.get_used_objs(entries).values():
                found.update(o for o in odb_objs if o.value and _in_local_cache(repo, o))
    return found


def _in_local_cache(repo: Any, hash_info: Any) -> bool:
    odb = repo.cache.legacy if hash_info.name == "md5-dos2unix" else repo.cache.local
    return bool(odb.exists(hash_info.value))


def push_run_cache_objects(repo: Any, remote: str | None = None, *, jobs: int | None = None) -> int:
    """Upload the objects of :func:`run_cache_objects` to ``remote`` (default: the default remote) that
    it lacks; returns how many were sent. Call it after ``repo.push(run_cache=True)`` so that every
    pushed run-cache entry can be restored on another host.

    Raises:
        StorageError: an object could not be uploaded.
    """
    objs = run_cache_objects(repo)
    if not objs:
        return 0
    result = repo.cloud.push(objs, jobs=jobs, remote=remote)
    if result.failed:
        raise StorageError(f"{len(result.failed)} run-cache object(s) could not be pushed to remote "
                           f"'{remote or repo.config['core'].get('remote')}'")
    return len(result.transferred)


# ----------------------------------------------------------------------------------------------
# CLI


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
