"""The request/response logger: KServe's ``logger {url, mode}`` as CloudEvents.

Each logged request and response becomes one CloudEvent, as KServe's agent sends them:
binary mode over HTTP (the payload as the body; ``ce-specversion``, ``ce-id``,
``ce-type`` ``org.kubeflow.serving.inference.request`` or ``.response``, ``ce-source``,
``ce-time``, ``ce-inferenceservicename``, ``ce-namespace``, ``ce-component``,
``ce-endpoint`` and ``ce-metadata`` (the request headers named in the logger's
``metadataHeaders``, as a JSON object of lists) headers; a request and its response share
``ce-id``, taken from the request's ``x-request-id`` when it has one), or one structured
JSON event per line when ``url`` is a file path or ``file://`` URL.

Logging never slows a reply: events go into a bounded buffer and one background thread
delivers them. When the buffer is full the event is dropped and counted
(``ketch_request_logger_events_total{outcome="dropped"}``); an event the receiver does not
accept is counted as ``failed``.
"""

from __future__ import annotations

import base64
import http.client
import json
import queue
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from ketch.serving._metrics import ReplicaMetrics

__all__ = ["LOGGER_MODES", "REQUEST_TYPE", "RESPONSE_TYPE", "RequestLogger"]

LOGGER_MODES = ("all", "request", "response")
REQUEST_TYPE = "org.kubeflow.serving.inference.request"
RESPONSE_TYPE = "org.kubeflow.serving.inference.response"
_STOP = object()
_SEND_TIMEOUT = 5.0


class LoggedRequest:
    """What a response event shares with its request's: the id and the metadata."""

    __slots__ = ("id", "metadata")

    def __init__(self, event_id: str, metadata: str) -> None:
        self.id = event_id
        self.metadata = metadata


class _Event:
    __slots__ = ("body", "content_type", "id", "metadata", "time", "type")

    def __init__(self, logged: LoggedRequest, kind: str, body: bytes,
                 content_type: str) -> None:
        self.id = logged.id
        self.metadata = logged.metadata
        self.type = kind
        self.body = body
        self.content_type = content_type
        self.time = datetime.now(UTC).isoformat().replace("+00:00", "Z")


class RequestLogger:
    """Sends request and response CloudEvents to a URL or appends them to a file.

    Args:
        url: ``http://``/``https://`` (POSTed, binary content mode), or a file path or
            ``file://`` URL (JSON lines, structured mode).
        mode: ``all``, ``request`` or ``response``.
        metrics: Where sent, dropped and failed events are counted.
        service: The InferenceService name (``ce-inferenceservicename``).
        namespace: Its namespace (``ce-namespace``).
        component: ``predictor`` (``ce-component``).
        endpoint: ``ce-endpoint`` (KServe: the component's endpoint; empty by default).
        metadata_headers: Request headers copied into ``ce-metadata``.
        buffer: Events held at most while the receiver is slow.

    Raises:
        ValueError: On an unknown mode or an unsupported URL scheme.
    """

    def __init__(self, url: str, mode: str, metrics: ReplicaMetrics, *, service: str,
                 namespace: str = "default", component: str = "predictor",
                 endpoint: str = "", metadata_headers: tuple[str, ...] = (),
                 buffer: int = 10_000) -> None:
        if mode not in LOGGER_MODES:
            raise ValueError(f"logger mode must be one of {', '.join(LOGGER_MODES)}, "
                             f"got {mode!r}")
        parts = urlsplit(url)
        if parts.scheme in ("http", "https"):
            self._file: Path | None = None
        elif parts.scheme in ("", "file"):
            self._file = Path(parts.path if parts.scheme == "file" else url)
        else:
            raise ValueError(f"logger url must be http(s)://, file:// or a path, got {url!r}")
        self.url = url
        self._parts = parts
        self.log_requests = mode in ("all", "request")
        self.log_responses = mode in ("all", "response")
        self.metrics = metrics
        self.source = f"/serving/{namespace}/{service}/{component}"
        self._static = {"ce-specversion": "1.0", "ce-source": self.source,
                        "ce-inferenceservicename": service, "ce-namespace": namespace,
                        "ce-component": component, "ce-endpoint": endpoint}
        self._metadata_headers = tuple((h, h.lower()) for h in metadata_headers)
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=buffer)
        self._thread = threading.Thread(target=self._deliver, name="request-logger",
                                        daemon=True)
        self._conn: http.client.HTTPConnection | None = None
        self._out: IO[str] | None = None

    def start(self) -> None:
        """Start delivering (opens the file, creating its directory, in file mode).

        Raises:
            OSError: If the log file cannot be opened.
        """
        if self._file is not None:
            self._file.parent.mkdir(parents=True, exist_ok=True)
            self._out = self._file.open("a", encoding="utf-8")
        self._thread.start()

    def request(self, body: bytes, headers: dict[str, str]) -> LoggedRequest:
        """Log a request (when the mode includes requests); never blocks.

        Args:
            body: The request body as received.
            headers: The request headers, names lower-cased.

        Returns:
            What :meth:`response` needs to log the matching response.
        """
        meta: dict[str, list[str]] = {}
        for name, key in self._metadata_headers:
            if key in headers:
                meta[name] = [headers[key]]
        logged = LoggedRequest(headers.get("x-request-id") or str(uuid.uuid4()),
                               json.dumps(meta, separators=(",", ":")))
        if self.log_requests:
            self._put(_Event(logged, REQUEST_TYPE, body,
                             headers.get("content-type") or "application/json"))
        return logged

    def response(self, logged: LoggedRequest, body: bytes, content_type: str) -> None:
        """Log the response to a logged request (when the mode includes responses)."""
        if self.log_responses:
            self._put(_Event(logged, RESPONSE_TYPE, body, content_type))

    def _put(self, event: _Event) -> None:
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self.metrics.logger_dropped += 1

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is buffered (up to ``timeout`` s), then stop."""
        if self._thread.is_alive():
            try:
                self._queue.put(_STOP, timeout=timeout)
            except queue.Full:
                return
            self._thread.join(timeout)

    # -- the delivery thread ---------------------------------------------------------

    def _deliver(self) -> None:
        while True:
            event = self._queue.get()
            if event is _STOP:
                break
            try:
                ok = self._write(event) if self._out is not None else self._post(event)
            except Exception:  # a receiver's failure must never stop the logger
                ok = False
            if ok:
                self.metrics.logger_sent += 1
            else:
                self.metrics.logger_failed += 1
        if self._out is not None:
            self._out.close()
        if self._conn is not None:
            self._conn.close()

    def _write(self, event: _Event) -> bool:
        assert self._out is not None
        record: dict[str, Any] = {
            "specversion": "1.0", "id": event.id, "type": event.type, "source": self.source,
            "time": event.time, "datacontenttype": event.content_type,
            "inferenceservicename": self._static["ce-inferenceservicename"],
            "namespace": self._static["ce-namespace"],
            "component": self._static["ce-component"],
            "endpoint": self._static["ce-endpoint"], "metadata": event.metadata}
        try:
            record["data"] = json.loads(event.body) if "json" in event.content_type else None
        except ValueError:
            record["data"] = None
        if record["data"] is None:
            del record["data"]
            record["data_base64"] = base64.b64encode(event.body).decode()
        self._out.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._out.flush()
        return True

    def _post(self, event: _Event) -> bool:
        headers = {**self._static, "ce-id": event.id, "ce-type": event.type,
                   "ce-time": event.time, "ce-metadata": event.metadata,
                   "content-type": event.content_type,
                   "content-length": str(len(event.body))}
        target = self._parts.path or "/"
        if self._parts.query:
            target += "?" + self._parts.query
        for attempt in (1, 2):  # a kept-alive connection the receiver closed: once more
            conn = self._conn or self._connect()
            try:
                conn.request("POST", target, body=event.body, headers=headers)
                response = conn.getresponse()
                response.read()
                return 200 <= response.status < 300
            except (OSError, http.client.HTTPException):
                conn.close()
                self._conn = None
                if attempt == 2:
                    return False
        return False

    def _connect(self) -> http.client.HTTPConnection:
        host = self._parts.hostname or "127.0.0.1"
        if self._parts.scheme == "https":
            self._conn = http.client.HTTPSConnection(host, self._parts.port,
                                                     timeout=_SEND_TIMEOUT)
        else:
            self._conn = http.client.HTTPConnection(host, self._parts.port,
                                                    timeout=_SEND_TIMEOUT)
        return self._conn
