"""Run by the installed wheels' interpreter: a store round trip on the URL in argv[1].

Prints the version and where ``ailib`` was imported from, so the test can check that the
wheels (not the checkout) answered."""

from __future__ import annotations

import json
import sys
import uuid

import ailib


def main(url: str) -> None:
    namespace = f"wheel-{uuid.uuid4().hex[:12]}"
    with ailib.open_store(url, namespace=namespace) as store:
        session = store.create({"user_id": "wheel-test"})
        session.add_message("user", "hello from a wheel")
        store.append(session.session_id, {"role": "assistant", "content": "hello back"})
        loaded = store.load(session.session_id)
        contents = [(m["role"], m["content"]) for m in loaded.messages]
        listed = [s.session_id for s in store.list(user_id="wheel-test")]
        store.delete(session.session_id)
        gone = store.get(session.session_id) is None
    print(
        json.dumps(
            {
                "version": ailib.__version__,
                "file": ailib.__file__,
                "messages": contents,
                "listed": listed == [session.session_id],
                "deleted": gone,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
