"""A receiver for Nordkestrel webhooks, with nothing but the standard library and the
``standardwebhooks`` package (``pip install standardwebhooks``).

It does what every receiver should:

1. verify the signature on the raw body, before parsing it (``Webhook(secret).verify``
   checks ``webhook-id``, ``webhook-timestamp``, ``webhook-signature``, and refuses a
   timestamp more than 5 minutes away: a replayed request);
2. answer 2xx at once and do the work afterwards (Nordkestrel waits 15 seconds at most and
   retries what it did not see answered);
3. deduplicate on ``webhook-id``: a message can arrive more than once (a retry after a lost
   answer, a resend from the delivery log), always with the same id.

Run it with the endpoint's secret (``whsec_...``, shown once when the endpoint is created)::

    NORDKESTREL_WEBHOOK_SECRET=whsec_... python webhook_receiver.py 8000

and put it behind your HTTPS proxy: Nordkestrel delivers to ``https://`` URLs only. During a
secret rotation both secrets sign each message, so the receiver keeps verifying whether it
has the new secret yet or not.
"""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError

Message = dict[str, Any]  # {"type": ..., "timestamp": ..., "data": {...}}

# Bodies larger than this are not Nordkestrel's.
MAX_BODY_BYTES = 1024 * 1024
# How many message ids are remembered (a production receiver keeps them in its database,
# for a few days, under a unique constraint).
REMEMBERED_IDS = 100_000


class Receiver:
    """Verifies, deduplicates, and hands each new message to ``handle`` on a thread of its
    own, so the HTTP answer never waits for the work."""

    def __init__(self, secret: str, handle: Callable[[str, Message], None]) -> None:
        self.webhook = Webhook(secret)
        self.handle = handle
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()
        self._work: queue.Queue[tuple[str, Message] | None] = queue.Queue()
        self._worker = threading.Thread(target=self._run, daemon=True)
        self._worker.start()

    def receive(self, body: bytes, headers: Mapping[str, str]) -> int:
        """The status to answer with for one request."""
        try:
            message = self.webhook.verify(body, dict(headers))
        except WebhookVerificationError:
            return 400  # not signed with our secret, or too old: never act on it
        message_id = {name.lower(): value for name, value in headers.items()}["webhook-id"]
        with self._lock:
            if message_id in self._seen:
                return 200  # had it already: say so, and do nothing twice
            self._seen[message_id] = None
            while len(self._seen) > REMEMBERED_IDS:
                self._seen.popitem(last=False)
        self._work.put((message_id, message))
        return 204

    def _run(self) -> None:
        while (job := self._work.get()) is not None:
            try:
                self.handle(*job)
            finally:
                self._work.task_done()

    def drain(self) -> None:
        """Wait until every message received so far has been handled."""
        self._work.join()

    def close(self) -> None:
        self._work.put(None)
        self._worker.join()


def server(receiver: Receiver, port: int, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self.send_response(413)
                self.end_headers()
                return
            status = receiver.receive(self.rfile.read(length), dict(self.headers.items()))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return ThreadingHTTPServer((host, port), Handler)


def print_message(message_id: str, message: Message) -> None:
    """The work: here a line per message; yours updates the POS, the books, ..."""
    data = json.dumps(message["data"])
    print(f"{message['timestamp']} {message['type']} {message_id}: {data}", flush=True)


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    receiver = Receiver(os.environ["NORDKESTREL_WEBHOOK_SECRET"], print_message)
    with server(receiver, port) as httpd:
        httpd.serve_forever()


if __name__ == "__main__":
    main()
