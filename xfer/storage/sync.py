"""Moving data: pull a DVC-tracked path at a revision, push to the remote as configured now, and the
objects of run-cache entries that ``dvc push --run-cache`` leaves out."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xfer.storage.remote import (
    StorageError,
    check_remote,
    describe_endpoint,
    error_reason,
    find_repo_root,
    is_s3,
    open_repo,
    remote_settings,
)


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
        raise StorageError(f"cannot open repository {repo}: {error_reason(exc)}") from None


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
                raise StorageError(f"cannot clone {where}: {error_reason(exc)}") from None
            except FileNotFoundError:
                raise StorageError(f"'{rel}' is not tracked (by DVC or git) at revision '{rev}' of {where}") from None
            except ConfigError as exc:
                raise StorageError(f"{error_reason(exc)} (DVC config at revision '{rev}' of {where}; "
                                   "see `dvc remote list`)") from None
            except DvcException as exc:
                raise StorageError(f"cannot read revision '{rev}' of {where}: {error_reason(exc)}") from None
            is_dir = info["type"] == "directory"
            tracked_by_dvc = bool(info.get("dvc_info"))
            remote_settings_now = _settings_ofopen_repo(fs, remote_name) if tracked_by_dvc else None
            if remote_settings_now is not None and is_s3(remote_settings_now[1]):
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
                    f"{where_remote} ({error_reason(exc)}); push it from a checkout that has it "
                    "(`xfer push --all-tags`)"
                ) from None
            except StorageError:
                raise
            except Exception as exc:
                if unreachable is not None:
                    raise unreachable from None
                raise StorageError(f"fetching '{rel}' at revision '{rev}' failed: {error_reason(exc)}") from None
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


def _settings_ofopen_repo(fs: Any, name: str | None) -> tuple[str, dict[str, Any]] | None:
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
    with open_repo(root, config=override) as repo:
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
            endpoint = describe_endpoint(settings) if is_s3(settings) else settings.get("url")
            raise StorageError(f"push to remote '{name}' ({endpoint}) failed: {error_reason(exc)}") from None
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


