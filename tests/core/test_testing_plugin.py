"""What a plugin author gets from ailib.testing: the suite, its opt-outs and the fixture."""

from __future__ import annotations

import pytest


def test_subclassing_the_suite_with_an_opt_out(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_mine="""
        import pytest
        from ailib.testing import Capability, StoreConformance

        class TestMine(StoreConformance):
            lacks = frozenset({Capability.TTL, Capability.CORRUPTION})

            @pytest.fixture
            def store_url(self):
                return "memory://author-suite"
        """
    )
    result = pytester.runpytest("-q", "-rs", "-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0
    assert outcomes["skipped"] == 8
    assert outcomes["passed"] >= 30
    result.stdout.fnmatch_lines(["*the store declares it lacks 'ttl'*"])
    result.stdout.fnmatch_lines(["*the store declares it lacks 'corruption'*"])


def test_a_suite_that_cannot_damage_data_is_told_what_to_do(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_mine="""
        import pytest
        from ailib.testing import StoreConformance

        class TestMine(StoreConformance):
            @pytest.fixture
            def store_url(self):
                return "memory://author-suite-2"
        """
    )
    result = pytester.runpytest("-q", "-p", "no:cacheprovider", "-k", "corrupt")
    assert result.parseoutcomes()["failed"] == 4
    result.stdout.fnmatch_lines(["*implement corrupt_session*Capability.CORRUPTION*"])


def test_session_store_fixture_uses_the_option(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_fixture="""
        def test_it(session_store):
            assert type(session_store).__name__ == "MemoryStore"
            assert session_store.namespace.startswith("test-")
            session_store.create().add_message("user", "hi")
            assert len(session_store.list()) == 1
        """
    )
    result = pytester.runpytest("-q", "--ailib-store", "memory://fixture-check")
    result.assert_outcomes(passed=1)
