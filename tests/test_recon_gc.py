"""Reconciliation reads a bill with fewer garbage collections, and leaves the
process's collector settings as they were (also with runs overlapping in threads,
and after a failure)."""

from __future__ import annotations

import gc
import threading

import pytest

from payhub.recon._runner import _GC_THRESHOLD, _fewer_collections


@pytest.fixture(autouse=True)
def default_threshold():
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*saved)


def test_the_threshold_is_raised_while_reading_and_restored_after() -> None:
    with _fewer_collections():
        assert gc.get_threshold() == (_GC_THRESHOLD, 10, 10)
    assert gc.get_threshold() == (700, 10, 10)


def test_restored_after_a_failure() -> None:
    with pytest.raises(RuntimeError), _fewer_collections():
        raise RuntimeError("the bill was refused")
    assert gc.get_threshold() == (700, 10, 10)


def test_overlapping_runs_restore_the_original_once_the_last_ends() -> None:
    first_in, second_done, seen = threading.Event(), threading.Event(), []

    def first() -> None:
        with _fewer_collections():
            first_in.set()
            second_done.wait(5)
            seen.append(gc.get_threshold())

    worker = threading.Thread(target=first)
    worker.start()
    first_in.wait(5)
    with _fewer_collections():
        pass
    # the second run ended while the first still reads: still raised
    assert gc.get_threshold() == (_GC_THRESHOLD, 10, 10)
    second_done.set()
    worker.join(5)
    assert seen == [(_GC_THRESHOLD, 10, 10)]
    assert gc.get_threshold() == (700, 10, 10)
