"""The DVC remote: the default local remote, S3 settings, reading them back, checking that one answers."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
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
def open_repo(root: str | os.PathLike[str], **kwargs: Any) -> Iterator[Any]:
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
    with open_repo(root) as repo:
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
    with open_repo(repo_root) as repo:
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


def is_s3(settings: dict[str, Any]) -> bool:
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
    with open_repo(repo_root) as repo:
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


def error_reason(exc: BaseException) -> str:
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
    if not is_s3(settings):
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
            f"no usable AWS credentials for remote '{name}' ({url} at {endpoint}): {error_reason(exc)}; set "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or AWS_PROFILE, or pass --access-key-id/"
            "--secret-access-key to `xfer remote s3` (stored in .dvc/config.local)"
        ) from None
    except ProfileNotFound as exc:
        raise StorageError(f"remote '{name}': {error_reason(exc)}; check --profile or ~/.aws/config") from None
    except PermissionError as exc:
        raise StorageError(
            f"access to {url} at {endpoint} denied: {error_reason(exc)}; check credentials and bucket policy"
        ) from None
    except FileNotFoundError as exc:
        raise StorageError(
            f"S3 endpoint {endpoint} answered but bucket '{bucket}' was not found ({error_reason(exc)}); "
            "create it or fix --url"
        ) from None
    except Exception as exc:  # connection refused, DNS, timeouts, TLS, HTTP errors, ...
        raise StorageError(
            f"cannot reach S3 endpoint {endpoint}: {error_reason(exc)}; check --endpoint-url / credentials"
        ) from None
    return f"remote '{name}' ({url} at {endpoint}) is reachable"


# ----------------------------------------------------------------------------------------------
# Pull

