"""A bucket lifecycle rule that lets S3 itself delete old session objects.

S3 lifecycle rules expire objects by *age* (days since they were last written), not by the
TTL recorded in each manifest; the store's own TTL handling (expired sessions read as absent,
``purge_expired``) does not need a rule. The rule is a backstop for buckets nobody purges:

    from ailib_store_s3 import install_lifecycle_rule
    install_lifecycle_rule(store, days=30)

Only install it if no session stays in use longer than ``days`` after it was *created*: a
session's old chunks and checkpoints are written once and never rewritten, so S3 would expire
them while the session lives on (its manifest, rewritten on every write, would survive).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from ailib.errors import ConfigurationError
from ailib_store_s3.client import error_code, translate

if TYPE_CHECKING:
    from ailib_store_s3.store import S3Store

__all__ = ("install_lifecycle_rule", "rule_id")


def rule_id(store: S3Store) -> str:
    """The ID of the rule this module manages for ``store``'s prefix and namespace."""
    return f"ailib-expire-{store.layout.root}".rstrip("/")[:255]


def install_lifecycle_rule(store: S3Store, days: int) -> dict[str, Any]:
    """Install (or replace) a rule expiring every object under the store's
    ``prefix/namespace/`` ``days`` after it was last written; other rules are kept.
    Returns the rule. Needs ``s3:GetLifecycleConfiguration`` and
    ``s3:PutLifecycleConfiguration`` on the bucket."""
    if not isinstance(days, int) or days < 1:
        raise ConfigurationError(f"days must be a whole number >= 1, not {days!r}")
    rule: dict[str, Any] = {
        "ID": rule_id(store),
        "Filter": {"Prefix": store.layout.root},
        "Status": "Enabled",
        "Expiration": {"Days": days},
    }
    client = store.client
    try:
        try:
            existing = client.get_bucket_lifecycle_configuration(Bucket=store.bucket)["Rules"]
        except ClientError as exc:
            if error_code(exc) != "NoSuchLifecycleConfiguration":
                raise
            existing = []
        rules = [r for r in existing if r.get("ID") != rule["ID"]] + [rule]
        client.put_bucket_lifecycle_configuration(
            Bucket=store.bucket,
            LifecycleConfiguration={"Rules": rules},  # type: ignore[typeddict-item]
        )
    except (ClientError, BotoCoreError) as exc:
        raise translate(
            exc, bucket=store.bucket, endpoint=store.endpoint, action="installing a lifecycle rule"
        ) from exc
    return rule
