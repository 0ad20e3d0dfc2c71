"""moto's S3 server on 127.0.0.1, started once per test session in a process of its own,
with dummy credentials; nothing here ever talks to AWS."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import boto3
import pytest

from ailib_store_s3.moto import serve

DUMMY_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """The URL of a moto S3 server this test session runs on 127.0.0.1.

    In a process of its own: in this one, moto's garbage would make the test process's
    pauses (gen-2 garbage collections of 50-100 ms) part of what the async stores'
    event-loop heartbeat measures."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in DUMMY_ENV.items():
            patch.setenv(name, value)
        with serve() as endpoint:
            yield endpoint


@pytest.fixture
def moto_bucket(moto_endpoint: str) -> str:
    """A bucket on the moto server, created when missing."""
    name = "ailib-test-bucket"
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    if name not in {b["Name"] for b in client.list_buckets().get("Buckets", [])}:
        client.create_bucket(Bucket=name)
    return name


@pytest.fixture
def moto_url(moto_endpoint: str, moto_bucket: str) -> str:
    """An ``s3://`` URL on the moto server, its prefix unique to the test."""
    return f"s3://{moto_bucket}/t{uuid.uuid4().hex[:8]}?endpoint_url={moto_endpoint}"
