"""The clients the stores use (boto3; aiobotocore for the async twin, built from the same
options), and how S3's errors become ailib's.

Retries of throttling, 500 and 503 answers (real S3 sends them at times; moto's server answers
some concurrent PUTs to one key with 500) are left to botocore's retry modes; 412 answers to
conditional writes are the store's business and are never retried here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    EndpointConnectionError,
    NoCredentialsError,
)

from ailib.errors import AilibError, ConfigurationError, StoreUnavailable

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from ailib_store_s3.core import ClientSettings

__all__ = (
    "client_options",
    "error_code",
    "is_missing",
    "is_precondition_failed",
    "make_client",
    "retried",
    "translate",
)

_DENIED = frozenset(
    {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled"}
)


def client_options(settings: ClientSettings) -> dict[str, Any]:
    """The arguments of ``create_client("s3", …)``, the same for boto3 and aiobotocore: the
    usual credential chain unless the URL carried keys, standard retries, timeouts, and
    twice the store's concurrency in connections."""
    config = Config(
        retries={"mode": "standard", "total_max_attempts": settings.max_attempts},
        max_pool_connections=settings.workers * 2,
        connect_timeout=settings.timeout,
        read_timeout=settings.timeout,
    )
    return {
        "region_name": settings.region,
        "endpoint_url": settings.endpoint_url,
        "aws_access_key_id": settings.access_key,
        "aws_secret_access_key": settings.secret_key,
        "config": config,
    }


def make_client(settings: ClientSettings) -> S3Client:
    """The sync store's boto3 client."""
    return boto3.session.Session().client("s3", **client_options(settings))


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        error: Any = exc.response.get("Error", {})
        return str(error.get("Code", ""))
    return ""


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def is_precondition_failed(exc: BaseException) -> bool:
    """True for a conditional write that lost (412; 409 when S3 saw a concurrent one)."""
    return isinstance(exc, ClientError) and (
        error_code(exc) in {"PreconditionFailed", "ConditionalRequestConflict"}
        or _status(exc) in {409, 412}
    )


def retried(exc: ClientError) -> bool:
    """True if botocore sent the request more than once before this answer."""
    return int(exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)) > 0


def is_missing(exc: BaseException) -> bool:
    """True for a missing key (not a missing bucket)."""
    return isinstance(exc, ClientError) and (
        error_code(exc) in {"NoSuchKey", "404", "NotFound"}
        or (_status(exc) == 404 and error_code(exc) != "NoSuchBucket")
    )


def translate(exc: BaseException, *, bucket: str, endpoint: str, action: str) -> AilibError:
    """An ailib error for a failed S3 call, naming the bucket and endpoint (never keys)."""
    where = f"bucket {bucket!r} at {endpoint}"
    code = error_code(exc)
    if code == "NoSuchBucket":
        return ConfigurationError(
            f"{where} does not exist ({action}); create the bucket or fix the URL"
        )
    if code in _DENIED:
        return StoreUnavailable(
            f"{where} refused {action} ({code}); check the credentials and that their policy "
            "allows s3:GetObject, s3:PutObject, s3:DeleteObject and s3:ListBucket"
        )
    if isinstance(exc, NoCredentialsError):
        return ConfigurationError(
            f"no AWS credentials found for {where}; set AWS_ACCESS_KEY_ID/"
            "AWS_SECRET_ACCESS_KEY, a profile, or an instance role"
        )
    if isinstance(exc, EndpointConnectionError | ConnectionError):
        return StoreUnavailable(
            f"cannot reach {where} ({action}): {type(exc).__name__}; check endpoint_url, "
            "the network, and that the service is running"
        )
    if isinstance(exc, ClientError):
        return StoreUnavailable(f"{where} failed {action}: {code or _status(exc)}")
    if isinstance(exc, BotoCoreError):
        return StoreUnavailable(f"{where} failed {action}: {type(exc).__name__}")
    return StoreUnavailable(f"{where} failed {action}: {type(exc).__name__}")
