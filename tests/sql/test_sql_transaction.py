"""The retry decisions both twins share (``transaction.attempts``), driven step by step with
the outcomes a database would send back: no connection needed."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from ailib_store_sql.operations import Operation, Program
from ailib_store_sql.transaction import Failed, Pause, Run, Work, attempts


class _Orig(Exception):
    def __init__(self, sqlstate: str | None = None) -> None:
        super().__init__("driver error")
        self.sqlstate = sqlstate


def deadlock() -> Failed:
    return Failed(sa.exc.OperationalError("UPDATE", None, _Orig("40P01")))


def lost() -> Failed:
    error = sa.exc.OperationalError("UPDATE", None, _Orig(), connection_invalidated=True)
    return Failed(error)


def duplicate_op() -> Failed:
    return Failed(sa.exc.IntegrityError("INSERT", None, _Orig("23505")))


def _program() -> Program[int]:
    yield sa.text("SELECT 1"), None
    return 7


def _recover() -> Program[int | None]:
    yield sa.text("SELECT version"), None
    return None


def write(*, recoverable: bool = True) -> Operation[int]:
    recover = _recover if recoverable else None
    return Operation("write to session 's'", True, _program, recover=recover)


def read() -> Operation[int]:
    return Operation("load session 's'", False, _program)


def step(work: Work[Any], outcome: Any = None, *, first: bool = False) -> Any:
    return next(work) if first else work.send(outcome)


def finish(work: Work[Any], outcome: Any) -> Any:
    with pytest.raises(StopIteration) as done:
        work.send(outcome)
    return done.value.value


def test_success_is_one_transaction_of_the_program() -> None:
    operation = write()
    work = attempts(operation)
    run = step(work, first=True)
    assert run == Run(operation.program, write=True)
    assert finish(work, 7) == 7


def test_a_deadlock_victim_pauses_and_runs_again() -> None:
    operation = write()
    work = attempts(operation)
    step(work, first=True)
    assert isinstance(step(work, deadlock()), Pause)
    assert step(work) == Run(operation.program, write=True)
    assert finish(work, 7) == 7


def test_a_lost_write_looks_up_its_op_id_before_running_again() -> None:
    operation = write()
    work = attempts(operation)
    step(work, first=True)
    assert isinstance(step(work, lost()), Pause)
    assert step(work) == Run(operation.recover, write=False)  # type: ignore[arg-type]
    # Landed: its version is the answer, the write is not run again.
    assert finish(work, 3) == 3


def test_a_lost_write_that_did_not_land_runs_again() -> None:
    operation = write()
    work = attempts(operation)
    step(work, first=True)
    step(work, lost())
    step(work)
    assert step(work, None) == Run(operation.program, write=True)
    assert finish(work, 4) == 4


def test_a_failed_look_up_pauses_and_looks_again() -> None:
    operation = write()
    work = attempts(operation)
    step(work, first=True)
    step(work, lost())
    step(work)
    assert isinstance(step(work, lost()), Pause)
    assert step(work) == Run(operation.recover, write=False)  # type: ignore[arg-type]


def test_a_lost_write_without_an_op_id_is_not_run_again() -> None:
    work = attempts(write(recoverable=False))
    step(work, first=True)
    failure = lost()
    with pytest.raises(sa.exc.OperationalError) as raised:
        step(work, failure)
    assert raised.value is failure.error


def test_a_lost_read_runs_again() -> None:
    operation = read()
    work = attempts(operation)
    step(work, first=True)
    assert isinstance(step(work, lost()), Pause)
    assert step(work) == Run(operation.program, write=False)


def test_a_repeated_op_id_returns_what_it_first_produced() -> None:
    operation = write()
    work = attempts(operation)
    step(work, first=True)
    assert step(work, duplicate_op()) == Run(operation.recover, write=False)  # type: ignore[arg-type]
    assert finish(work, 5) == 5


def test_a_constraint_violation_without_a_recorded_op_id_is_raised() -> None:
    work = attempts(write())
    step(work, first=True)
    failure = duplicate_op()
    step(work, failure)
    with pytest.raises(sa.exc.IntegrityError) as raised:
        step(work, None)
    assert raised.value is failure.error


def test_an_error_that_is_not_worth_retrying_is_raised_at_once() -> None:
    work = attempts(read())
    step(work, first=True)
    failure = Failed(sa.exc.ProgrammingError("SELECT", None, _Orig("42P01")))
    with pytest.raises(sa.exc.ProgrammingError) as raised:
        step(work, failure)
    assert raised.value is failure.error


def test_deadlocks_are_retried_a_bounded_number_of_times() -> None:
    work = attempts(write())
    step(work, first=True)
    for _ in range(7):
        assert isinstance(step(work, deadlock()), Pause)
        assert isinstance(step(work), Run)
    with pytest.raises(sa.exc.OperationalError):
        step(work, deadlock())
