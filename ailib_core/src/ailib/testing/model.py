"""The model-based case of the conformance suite: random histories of store calls checked
against an independent model (plain lists and dicts, never another store).

:class:`StoreModelCases` is a base of :class:`ailib.testing.StoreConformance`, so every store
running the suite, sync or async (``AsyncStoreConformance`` drives the async store through
``BlockingStore``, on one event loop for the store's life), runs it too. The rules and the
model are in :mod:`ailib.testing.model_rules`; see there for what is checked.

It needs Hypothesis (``pip install hypothesis``); without it the case skips, or fails under
``CI=true``, saying so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import pytest

from ailib.testing.servers import in_ci

__all__ = ("StoreModelCases",)


class StoreModelCases:
    """Mixed into the conformance suite; tune the two class options for a slow backend."""

    #: Random histories per run (the same ones every run: the case is derandomized).
    model_examples: ClassVar[int] = 20
    #: Calls per history, at most.
    model_steps: ClassVar[int] = 30

    def test_matches_an_independent_model(self, make_store: Callable[..., Any]) -> None:
        try:
            from ailib.testing.model_rules import run_model
        except ImportError as exc:
            message = f"the model-based case needs Hypothesis ({exc}); pip install hypothesis"
            if in_ci():
                pytest.fail(f"{message} (CI=true: the case may not skip)")
            pytest.skip(message)
        lacks = {str(c) for c in getattr(self, "lacks", ())}
        run_model(
            make_store,
            checkpoints="checkpoints" not in lacks,
            ttl="ttl" not in lacks,
            examples=self.model_examples,
            steps=self.model_steps,
        )
