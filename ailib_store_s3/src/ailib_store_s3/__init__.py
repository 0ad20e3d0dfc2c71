"""ailib-store-s3: ailib sessions in Amazon S3 and S3-compatible services.

``s3://bucket/prefix?region=…&endpoint_url=…&ttl=…`` opens :class:`S3Store`;
``s3+mock://bucket`` opens :class:`MockS3Store` on moto's in-process S3 (for tests).
"""

from __future__ import annotations

from ailib_store_s3.lifecycle import install_lifecycle_rule
from ailib_store_s3.store import S3Store

__all__ = ("S3Store", "install_lifecycle_rule")
