"""moto's S3 with S3's guarantee for conditional writes: check and write in one step.

moto (5.x) checks a PutObject's ``If-Match`` / ``If-None-Match`` (and a DeleteObject's
``If-Match``) and then writes in a second step, so two concurrent conditional writes to one
key can both pass the check and the later silently overwrites the earlier: a lost update that
S3 itself never allows, and the one thing the S3 store's concurrency rests on.
:func:`make_conditional_writes_atomic` runs those requests one at a time; requests without a
condition run as before. ``s3+mock://`` applies it to moto's in-process S3, and
``python -m ailib_store_s3.moto`` runs moto's server with it.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ("make_conditional_writes_atomic",)

F = TypeVar("F", bound=Callable[..., Any])

_conditional = threading.Lock()
_patched = threading.Lock()
_MARK = "_ailib_conditional_writes_atomic"


def _one_at_a_time_when_conditional(handler: F) -> F:
    @functools.wraps(handler)
    def handle(self: Any, *args: Any, **kwargs: Any) -> Any:
        if self.headers.get("If-Match") or self.headers.get("If-None-Match"):
            with _conditional:
                return handler(self, *args, **kwargs)
        return handler(self, *args, **kwargs)

    return handle  # type: ignore[return-value]


def make_conditional_writes_atomic() -> None:
    """Patch moto's S3 request handler (once per process; later calls do nothing)."""
    from moto.s3.responses import S3Response

    with _patched:
        if getattr(S3Response, _MARK, False):
            return
        for name in ("put_object", "delete_object"):
            setattr(S3Response, name, _one_at_a_time_when_conditional(getattr(S3Response, name)))
        setattr(S3Response, _MARK, True)
