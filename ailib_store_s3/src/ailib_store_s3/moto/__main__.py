"""``python -m ailib_store_s3.moto [moto_server options]``: moto's S3 server with atomic
conditional writes (see :mod:`ailib_store_s3.moto`); the options are moto_server's."""

from __future__ import annotations

from moto.server import main

from ailib_store_s3.moto import make_conditional_writes_atomic

make_conditional_writes_atomic()
main()
