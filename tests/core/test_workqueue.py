"""The controller work queue: dedupe, re-queue while processing, delays, backoff."""

from __future__ import annotations

import threading
import time

from ketch.core.controller import ObjectKey, WorkQueue

A, B = ObjectKey("default", "a"), ObjectKey("default", "b")


def test_adds_are_deduplicated_and_fifo() -> None:
    q = WorkQueue()
    for key in (A, B, A, A):
        q.add(key)
    assert q.get(0.1) == A
    assert q.get(0.1) == B
    assert q.get(0.05) is None


def test_add_while_processing_requeues_once_after_done() -> None:
    q = WorkQueue()
    q.add(A)
    key = q.get(0.1)
    q.add(A)
    q.add(A)
    assert q.get(0.05) is None  # one worker per key at a time
    assert key is not None
    q.done(key)
    assert q.get(0.1) == A
    q.done(A)
    assert q.get(0.05) is None


def test_delayed_add_arrives_after_its_delay() -> None:
    q = WorkQueue()
    start = time.monotonic()
    q.add_after(A, 0.2)
    assert q.get(0.05) is None
    assert q.get(2.0) == A
    assert time.monotonic() - start >= 0.2


def test_rate_limited_backoff_grows_and_forget_resets() -> None:
    q = WorkQueue(base_delay=0.05, max_delay=1.0)
    waits = []
    for _ in range(3):
        start = time.monotonic()
        q.add_rate_limited(A)
        assert q.get(2.0) == A
        q.done(A)
        waits.append(time.monotonic() - start)
    assert waits[0] >= 0.05 and waits[1] >= 0.1 and waits[2] >= 0.2
    q.forget(A)
    start = time.monotonic()
    q.add_rate_limited(A)
    assert q.get(2.0) == A
    assert time.monotonic() - start < waits[2]


def test_close_wakes_blocked_getters() -> None:
    q = WorkQueue()
    got: list[object] = []
    thread = threading.Thread(target=lambda: got.append(q.get()))
    thread.start()
    q.close()
    thread.join(5)
    assert got == [None]


def test_a_failing_key_backs_off_even_when_it_was_re_added_while_processed() -> None:
    """A reconcile that writes its object and then fails is re-added by its own write;
    that add must not skip the backoff (client-go's rate limiter delays it)."""
    q = WorkQueue(base_delay=0.05, max_delay=10.0)
    for failures in range(4):
        q.add(A)
        key = q.get(1.0)
        assert key == A
        q.add(A)  # the reconcile's own status write
        q.add_rate_limited(A)
        q.done(A)
        # Not back before base * 2**failures: 50, 100, 200, 400 ms.
        assert q.get(0.05 * 2**failures * 0.8) is None
        assert q.get(5.0) == A
        q.done(A)
    assert q.failures(A) == 4


def test_default_backoff_is_client_gos() -> None:
    q = WorkQueue()
    assert (q._base, q._max) == (0.005, 1000.0)


def test_delayed_adds_of_one_key_keep_only_the_earliest() -> None:
    """client-go's AddAfter: a key waits once, for its earliest time. Without that, every
    resync or write of an object that requeues itself forked another never-ending
    requeue chain, and an idle InferenceService was reconciled ever more often."""
    q = WorkQueue()
    q.add_after(A, 0.03)
    q.add_after(A, 0.01)
    q.add_after(A, 0.02)
    assert q.get(1.0) == A
    q.done(A)
    assert q.get(0.2) is None



def test_a_key_failing_without_end_keeps_the_queue_alive() -> None:
    """2**1024 overflowed a float: after ~1,000 failures the worker threads died."""
    q = WorkQueue(base_delay=0.005, max_delay=1000.0)
    for _ in range(1100):
        with q._cond:
            q._failures[A] = q._failures.get(A, 0) + 1
    q.add_rate_limited(A)  # no OverflowError: the delay is the cap
    assert q.failures(A) == 1101
    assert q.get(0.05) is None
