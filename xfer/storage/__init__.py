"""Versioned datasets and checkpoints in a DVC remote: local by default, S3 one command away.

Datasets (``data/...``) and checkpoints (``models/...``) are DVC outputs; their bytes live in a DVC
remote and git records which bytes belong to which commit. This package sets the remote up, checks
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
extra and importing these modules has no side effects.

Modules: :mod:`xfer.storage.remote` (the remote: set up, settings, reachability),
:mod:`xfer.storage.sync` (pull, push, run-cache objects), :mod:`xfer.storage.cli` (``xfer remote`` /
``xfer pull`` / ``xfer push``).
"""
