"""A TCP proxy on loopback in front of PostgreSQL or Redis that fails the way the service does.

The fault tests point a live server at this proxy instead of the service, so an outage can
be staged for that server alone: the shared service (CI's PostgreSQL, everyone's Redis) is
never paused. Three modes, switched at any time:

- ``normal()``: bytes flow both ways.
- ``silent()``: a frozen server (``SIGSTOP``, a hung host behind a load balancer). New
  connections are accepted and existing ones stay open, but nothing is forwarded in either
  direction: what a client sends is held, as the server's socket buffers would hold it, and
  delivered in order when the proxy turns normal again. The kernel still acknowledges every
  byte, so TCP keepalives and ``tcp_user_timeout`` do not notice: only a client-side bound
  on each wait does.
- ``refusing()``: a stopped server. Nothing listens on the port any more (a new connection
  is refused) and every open connection is reset.

Usage::

    proxy = FaultProxy(("127.0.0.1", 5432)).start()
    ...  # connect to ("127.0.0.1", proxy.port)
    proxy.silent(); proxy.normal(); proxy.refusing(); proxy.normal()
    proxy.stop()
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
from dataclasses import dataclass, field

NORMAL, SILENT, REFUSING = "normal", "silent", "refusing"
POLL_SECONDS = 0.05


@dataclass(eq=False)
class _Link:
    client: socket.socket
    upstream: socket.socket
    closed: threading.Event = field(default_factory=threading.Event)

    def close(self, *, reset: bool = False) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        if reset:
            # SO_LINGER with a zero timeout: close() sends RST, as a dead server's host does.
            for sock in (self.client, self.upstream):
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        for sock in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                sock.close()


class FaultProxy:
    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self.mode = NORMAL
        self._changed = threading.Condition()
        self._links: set[_Link] = set()
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._stopping = False

    # --- Modes -----------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._listen()
        return self

    def normal(self) -> None:
        with self._changed:
            was = self.mode
            self.mode = NORMAL
            self._changed.notify_all()
        if was == REFUSING:
            self._listen()

    def silent(self) -> None:
        with self._changed:
            if self.mode == REFUSING:
                raise RuntimeError("turn the proxy normal before making it silent")
            self.mode = SILENT
            self._changed.notify_all()

    def refusing(self) -> None:
        with self._changed:
            self.mode = REFUSING
            self._changed.notify_all()
            links, self._links = self._links, set()
        self._close_listener()
        for link in links:
            link.close(reset=True)

    def stop(self) -> None:
        self._stopping = True
        self.refusing()

    @property
    def connections(self) -> int:
        """Client connections currently open through the proxy."""
        with self._changed:
            return sum(1 for link in self._links if not link.closed.is_set())

    # --- Plumbing --------------------------------------------------------------------------

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._acceptor = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._acceptor.start()

    def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is None:
            return
        # shutdown() stops listening at once, even while the accept thread is in select();
        # close() alone would keep the port bound until that select() returns.
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        if self._acceptor is not None:
            self._acceptor.join()

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                ready, _, _ = select.select([listener], [], [], POLL_SECONDS)
                if not ready:
                    continue
                client, _ = listener.accept()
            except (OSError, ValueError):  # closed under us: the proxy stopped listening
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            link = _Link(client, upstream)
            with self._changed:
                if self.mode == REFUSING:
                    link.close(reset=True)
                    continue
                self._links.add(link)
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(
                    target=self._pump, args=(link, source, target), daemon=True
                ).start()

    def _flowing(self, link: _Link) -> bool:
        """Wait while the proxy is silent; False once the link is gone."""
        with self._changed:
            while self.mode == SILENT and not link.closed.is_set():
                self._changed.wait(POLL_SECONDS)
            return self.mode == NORMAL and not link.closed.is_set()

    def _pump(self, link: _Link, source: socket.socket, target: socket.socket) -> None:
        try:
            while self._flowing(link):
                ready, _, _ = select.select([source], [], [], POLL_SECONDS)
                if not ready:
                    continue
                data = source.recv(65536)
                if not data:
                    break
                # Turned silent since select(): hold what was read until the proxy flows.
                if not self._flowing(link):
                    break
                target.sendall(data)
        except (OSError, ValueError):
            pass
        link.close()
        with self._changed:
            self._links.discard(link)
