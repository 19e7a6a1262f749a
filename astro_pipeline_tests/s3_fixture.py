"""An S3 endpoint for tests: a local moto server, and a fresh bucket per test.

Design: one ``ThreadedMotoServer`` per test session on 127.0.0.1 and a free port (starting it
costs about a second). Code under test reaches it the way it would reach MinIO or any
S3-compatible store: through the standard ``AWS_ENDPOINT_URL`` variable, which botocore (under
s3fs/aiobotocore) reads natively, plus dummy credentials. So nothing in the project needs a
test-only endpoint option. s3fs caches filesystem instances, so the fixture clears that cache when
it changes the environment (a cached instance would keep an old endpoint).

Use: ``from astro_pipeline_tests.s3_fixture import moto_server, s3_bucket  # noqa: F401`` in a
test module or conftest; ``s3_bucket`` gives ``"s3://<bucket>"`` with the environment set.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

import pytest


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """The endpoint URL of a moto S3 server running for the whole session."""
    pytest.importorskip("moto.server")
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def _clear_s3fs_cache() -> None:
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()


@pytest.fixture
def s3_env(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Point botocore (and so s3fs) at the moto server with dummy credentials; yields the endpoint."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    # never read a developer's real AWS config or credentials files
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
    _clear_s3fs_cache()
    yield moto_server
    _clear_s3fs_cache()


@pytest.fixture
def s3_bucket(s3_env: str) -> str:
    """A new, empty bucket on the moto server: ``"s3://<bucket>"``."""
    import boto3

    name = f"astro-test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_env, region_name="us-east-1").create_bucket(Bucket=name)
    return f"s3://{name}"
