"""The async twin passes the whole conformance suite: the native ``AsyncS3Store`` against
moto's S3 server, heartbeat case included, and ``s3+mock://``'s threaded twin against moto's
in-process mock. Each class is the sync one (same fixtures) with the async suite's store
factory."""

from __future__ import annotations

from ailib.testing.async_conformance import AsyncStoreConformance

from . import test_s3_conformance as sync


class TestAsyncS3OnMotoServer(AsyncStoreConformance, sync.TestS3OnMotoServer):
    """aiobotocore over real HTTP to moto's server on 127.0.0.1."""


class TestAsyncS3OnMockAws(AsyncStoreConformance, sync.TestS3OnMockAws):
    """``s3+mock://``: moto's ``mock_aws`` does not serve aiobotocore, so this is the sync
    mock store's operations in worker threads (``AsyncMockS3Store``)."""

    #: The loop stays free of the store's operations, which run in threads; but moto's
    #: in-process S3 runs in this process too, and its work under the GIL and its garbage
    #: collections hold up the loop's callbacks by up to ~100 ms. So this twin is held to
    #: "never blocked for the length of an operation" rather than the native stores' bound.
    max_loop_block = 0.5
