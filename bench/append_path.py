"""How many of ailib's own functions one append (and one load) passes through, per backend.

Traced with ``sys.setprofile`` after a warm-up: a function counts if its code lives in one of
the workspace's packages (``ailib``, ``ailib_store_*``). Prints the distinct functions, the
calls, and the modules they belong to, so a change of design shows in the path's length::

    .venv/bin/python bench/append_path.py [--verbose] [URL ...]

The default URLs need the local servers (Redis, PostgreSQL) and start moto's server for S3.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import ailib

#: The tree ailib is imported from (a checkout of another revision, through PYTHONPATH, too).
ROOT = Path(ailib.__file__).resolve().parents[3]
PACKAGES = tuple(
    str(path)
    for path in [
        ROOT / "ailib_core" / "src" / "ailib",
        *ROOT.glob("ailib_store_*/src/ailib_store_*"),
    ]
)
URLS = (
    "memory://",
    "sqlite:///{tmp}/append_path.db",
    "postgresql://postgres@127.0.0.1:5432/test",
    "redis://127.0.0.1:6379/0",
    "s3+mock://append-path",
)
MESSAGE = {"role": "user", "content": "lorem " * 30}


def ours(filename: str) -> bool:
    return filename.startswith(PACKAGES) and "/testing/" not in filename


def traced(action: Callable[[], object]) -> Counter[str]:
    calls: Counter[str] = Counter()

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event == "call" and ours(frame.f_code.co_filename):
            code = frame.f_code
            module = Path(code.co_filename).relative_to(ROOT).as_posix()
            calls[f"{module}:{code.co_qualname}"] += 1

    sys.setprofile(profile)
    try:
        action()
    finally:
        sys.setprofile(None)
    return calls


def report(url: str, name: str, calls: Counter[str], verbose: bool) -> None:
    modules = {key.split(":")[0] for key in calls}
    print(
        f"{url:<45} {name:<7} {len(calls):>4} functions {sum(calls.values()):>5} calls "
        f"{len(modules):>3} modules"
    )
    if verbose:
        for key, count in sorted(calls.items()):
            print(f"    {count:>3}  {key}")


@contextlib.contextmanager
def opened(url: str) -> Iterator[ailib.SessionStore]:
    store = ailib.open_store(url)
    try:
        yield store
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("urls", nargs="*")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for url in args.urls or [u.format(tmp=tmp) for u in URLS]:
            namespace = "path" + uuid.uuid4().hex[:8]
            full = url + ("&" if "?" in url else "?") + f"namespace={namespace}"
            with opened(full) as store:
                session = store.create()
                for _ in range(3):
                    store.append(session.session_id, MESSAGE)
                    store.load(session.session_id)
                report(
                    url,
                    "append",
                    traced(functools.partial(store.append, session.session_id, MESSAGE)),
                    args.verbose,
                )
                report(
                    url,
                    "load",
                    traced(functools.partial(store.load, session.session_id)),
                    args.verbose,
                )
                store.delete(session.session_id)


if __name__ == "__main__":
    main()
