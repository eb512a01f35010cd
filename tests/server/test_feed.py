"""The change feed hands each stored object to its watch streams without decoding it.

A pipeline run's object holds its whole IR and every status write is an event, so a
feed that decoded and re-encoded each object paid for the run's size on every step.
The feed reads the change log as JSON text (``ResourceStore.raw_events``) and wraps it in
the event envelope; the decoding read (``events``) is counted here and must not be used.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request

from ketch.core.config import Settings
from ketch.core.fields import FieldSelector
from ketch.core.kinds import KindInfo
from ketch.core.labels import LabelSelector
from ketch.core.resources import Resource
from ketch.core.runtime import Runtime
from ketch.core.store import WatchEvent
from ketch.jobs import JOB, component
from ketch.server._feed import FeedEvent, change_feed
from ketch.server._watch import watch_stream


def job(name: str, namespace: str) -> Resource:
    return Resource.model_validate({
        "apiVersion": "ketch.dev/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": {"a": "b"}},
        "spec": {"command": ["true"]}})


def runtime(database_url: str, tmp_path: Path) -> Runtime:
    return Runtime(Settings.from_env({"KETCH_HOME": str(tmp_path / "home"),
                                      "KETCH_DATABASE_URL": database_url}),
                   [component], run_controllers=False)


def test_the_feed_sends_stored_objects_without_decoding_them(
        database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rt = runtime(database_url, tmp_path)
    counts: Counter[str] = Counter()
    events = rt.store.events

    def counted(since: int, **kwargs: Any) -> list[WatchEvent]:
        counts["events"] += 1
        return events(since, **kwargs)

    monkeypatch.setattr(rt.store, "events", counted)

    async def scenario() -> tuple[list[FeedEvent], list[Resource]]:
        feed = change_feed(rt)
        sub = await feed.subscribe(frozenset({JOB.key}), "here")
        written = [await asyncio.to_thread(rt.store.create, JOB, job("a", "here")),
                   await asyncio.to_thread(rt.store.create, JOB, job("x", "elsewhere"))]
        running = written[0].model_copy(update={"status": {"phase": "Running"}})
        written.append(await asyncio.to_thread(rt.store.update_status, JOB, running))
        got = []
        for _ in range(2):
            item = await asyncio.wait_for(sub.queue.get(), 30)
            assert isinstance(item, FeedEvent), item
            got.append(item)
        feed.unsubscribe(sub)
        return got, [written[0], written[2]]

    try:
        got, expected = asyncio.run(scenario())
    finally:
        rt.store.close()
    sent = [json.loads(item.sse.removeprefix("data: ")) for item in got]
    assert [e["type"] for e in sent] == ["ADDED", "MODIFIED"]
    assert [e["object"] for e in sent] == [obj.to_wire() for obj in expected]
    assert all(item.sse.endswith("\n\n") and item.sse.count("\n") == 2 for item in got)
    assert counts["events"] == 0


def test_a_watch_of_one_object_does_not_repeat_a_write_its_first_read_saw(
        database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``?watch&fieldSelector=metadata.name=N`` reads the revision, then the object: a
    create landing between the two reads is in the ADDED the stream opens with, and its
    change-log event must not follow as a second ADDED (``ketch wait``, ``ketch run
    --wait`` and the test suite's watchers saw that now and then). The store's get is
    wrapped so that the create lands there every time; the store does the work."""
    rt = runtime(database_url, tmp_path)
    get = rt.store.get

    def get_after_a_create(info: KindInfo, namespace: str | None, name: str) -> Resource:
        rt.store.create(JOB, job("new", "here"))
        return get(info, namespace, name)

    monkeypatch.setattr(rt.store, "get", get_after_a_create)

    async def never() -> dict[str, Any]:
        await asyncio.Event().wait()
        return {}

    async def scenario() -> list[dict[str, Any]]:
        request = Request({"type": "http", "method": "GET", "path": "/", "headers": []},
                          never)
        stream = watch_stream(request, rt, JOB, "here", LabelSelector(),
                              FieldSelector.for_kind("metadata.name=new", JOB), None, None)
        sent = [json.loads((await asyncio.wait_for(anext(stream), 30))[len("data: "):])]
        created = await asyncio.to_thread(get, JOB, "here", "new")
        running = created.model_copy(update={"status": {"phase": "Running"}})
        await asyncio.to_thread(rt.store.update_status, JOB, running)
        sent.append(json.loads((await asyncio.wait_for(anext(stream), 30))[len("data: "):]))
        await stream.aclose()
        return sent

    try:
        sent = asyncio.run(scenario())
    finally:
        rt.store.close()
    assert [e["type"] for e in sent] == ["ADDED", "MODIFIED"]
    assert sent[1]["object"]["status"] == {"phase": "Running"}




def test_a_watch_asked_for_objects_without_spec_sends_metadata_and_status(
        database_url: str, tmp_path: Path) -> None:
    """``X-Ketch-Without-Spec: true`` (what ``ketch run --wait`` sends): the object of
    every event, the opening ADDED and the feed's MODIFIED alike, is the stored one
    less its spec, resourceVersion and status as stored; without the header, whole."""
    rt = runtime(database_url, tmp_path)

    async def never() -> dict[str, Any]:
        await asyncio.Event().wait()
        return {}

    async def follow(headers: list[tuple[bytes, bytes]]) -> tuple[list[dict[str, Any]],
                                                                   list[Resource]]:
        request = Request({"type": "http", "method": "GET", "path": "/", "headers": headers},
                          never)
        name = f"n{len(headers)}"
        created = await asyncio.to_thread(rt.store.create, JOB, job(name, "here"))
        stream = watch_stream(request, rt, JOB, "here", LabelSelector(),
                              FieldSelector.for_kind(f"metadata.name={name}", JOB), None, None)
        sent = [json.loads((await asyncio.wait_for(anext(stream), 30))[len("data: "):])]
        running = created.model_copy(update={"status": {"phase": "Running"}})
        written = await asyncio.to_thread(rt.store.update_status, JOB, running)
        sent.append(json.loads((await asyncio.wait_for(anext(stream), 30))[len("data: "):]))
        await stream.aclose()
        return sent, [created, written]

    try:
        lean, lean_written = asyncio.run(follow([(b"x-ketch-without-spec", b"true")]))
        whole, whole_written = asyncio.run(follow([]))
    finally:
        rt.store.close()
    assert [e["type"] for e in lean] == ["ADDED", "MODIFIED"]
    expected = [{k: v for k, v in obj.to_wire().items() if k != "spec"} for obj in lean_written]
    assert [e["object"] for e in lean] == expected
    assert lean[1]["object"]["status"] == {"phase": "Running"}
    assert [e["object"] for e in whole] == [obj.to_wire() for obj in whole_written]
    assert whole[1]["object"]["spec"] == {"command": ["true"]}
