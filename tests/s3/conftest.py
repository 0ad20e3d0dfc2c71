"""S3 test fixtures: moto's S3 server on 127.0.0.1, started once per test session, with
dummy credentials; nothing here ever talks to AWS."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import boto3
import pytest
from moto.server import ThreadedMotoServer

DUMMY_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """The URL of a moto S3 server this test session runs on 127.0.0.1."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in DUMMY_ENV.items():
            patch.setenv(name, value)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()


@pytest.fixture(scope="session")
def moto_bucket(moto_endpoint: str) -> str:
    """A bucket on the moto server, created once."""
    name = f"ailib-test-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1").create_bucket(
        Bucket=name
    )
    return name


@pytest.fixture
def moto_url(moto_endpoint: str, moto_bucket: str) -> str:
    """An ``s3://`` URL on the moto server, its prefix unique to the test."""
    return f"s3://{moto_bucket}/t{uuid.uuid4().hex[:8]}?endpoint_url={moto_endpoint}"
