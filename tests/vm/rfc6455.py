"""A minimal RFC 6455 WebSocket client (pure Python, blocking sockets):
enough to open noVNC's console WebSocket, read what the guest's VNC server
sends, and tell a refused connection from an open one.

    ws = WebSocket.connect("ws://127.0.0.1:6080/?token=…",
                           origin="http://127.0.0.1:6080")
    data = ws.read_bytes(12, timeout=10)      # b"RFB 003.008\\n"
    ws.close()
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import struct
import time
from urllib.parse import urlsplit

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA


class HandshakeError(Exception):
    """The server did not switch protocols (status line and headers in .response)."""

    def __init__(self, message: str, response: str = ""):
        super().__init__(message)
        self.response = response


class WebSocket:
    def __init__(self, sock: socket.socket, response: str, leftover: bytes):
        self.sock = sock
        self.response = response           # the 101 response's head, as text
        self._buf = leftover
        self.closed_by_server = False
        self.close_payload: bytes | None = None
        self.eof = False

    # ------------------------------------------------------------ handshake
    @classmethod
    def connect(cls, url: str, origin: str | None = None, timeout: float = 10.0,
                protocols: tuple[str, ...] = ("binary",),
                extra_headers: dict | None = None) -> "WebSocket":
        u = urlsplit(url)
        if u.scheme != "ws":
            raise ValueError(f"only ws:// URLs: {url}")
        host = u.hostname or "127.0.0.1"
        port = u.port or 80
        path = (u.path or "/") + (f"?{u.query}" if u.query else "")
        sock = socket.create_connection((host, port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: {u.netloc}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
        ]
        if protocols:
            lines.append("Sec-WebSocket-Protocol: " + ", ".join(protocols))
        if origin is not None:
            lines.append(f"Origin: {origin}")
        for k, v in (extra_headers or {}).items():
            lines.append(f"{k}: {v}")
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())

        head = b""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in head:
            sock.settimeout(max(0.05, deadline - time.monotonic()))
            chunk = sock.recv(4096)
            if not chunk:
                sock.close()
                raise HandshakeError("connection closed during the handshake",
                                     head.decode(errors="replace"))
            head += chunk
            if len(head) > 65536:
                sock.close()
                raise HandshakeError("handshake response too large")
        raw, leftover = head.split(b"\r\n\r\n", 1)
        response = raw.decode(errors="replace")
        status_line, *header_lines = response.split("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or parts[1] != "101":
            sock.close()
            raise HandshakeError(f"no protocol switch: {status_line!r}", response)
        headers = {}
        for line in header_lines:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        want = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
        if headers.get("sec-websocket-accept") != want:
            sock.close()
            raise HandshakeError(
                f"bad Sec-WebSocket-Accept {headers.get('sec-websocket-accept')!r}", response)
        return cls(sock, response, leftover)

    # ------------------------------------------------------------- framing
    def _read_exact(self, n: int, deadline: float) -> bytes | None:
        while len(self._buf) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise TimeoutError from None
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.eof = True
                return None
            self._buf += chunk
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def recv_frame(self, timeout: float = 10.0) -> tuple[int, bool, bytes] | None:
        """(opcode, fin, payload) of the next frame; None at end of stream.
        Raises TimeoutError."""
        deadline = time.monotonic() + timeout
        head = self._read_exact(2, deadline)
        if head is None:
            return None
        b0, b1 = head
        fin = bool(b0 & 0x80)
        opcode = b0 & 0x0F
        masked = bool(b1 & 0x80)
        length = b1 & 0x7F
        if length == 126:
            ext = self._read_exact(2, deadline)
            if ext is None:
                return None
            length = struct.unpack("!H", ext)[0]
        elif length == 127:
            ext = self._read_exact(8, deadline)
            if ext is None:
                return None
            length = struct.unpack("!Q", ext)[0]
        mask = b""
        if masked:  # servers must not mask, but be lenient
            mask = self._read_exact(4, deadline)
            if mask is None:
                return None
        payload = self._read_exact(length, deadline) if length else b""
        if payload is None:
            return None
        if masked:
            payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
        return opcode, fin, payload

    def send_frame(self, opcode: int, payload: bytes = b"", fin: bool = True):
        b0 = (0x80 if fin else 0) | opcode
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", b0, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", b0, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", b0, 0x80 | 127, n)
        mask = os.urandom(4)
        masked = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
        self.sock.sendall(head + mask + masked)

    def send_binary(self, data: bytes):
        self.send_frame(OP_BINARY, data)

    # ------------------------------------------------------------ reading
    def read_bytes(self, n: int, timeout: float = 10.0) -> bytes:
        """Data bytes (binary or text messages) until n have arrived, the
        server closes, or the timeout passes; whatever arrived is returned."""
        data = b""
        deadline = time.monotonic() + timeout
        while len(data) < n and not self.closed_by_server and not self.eof:
            try:
                frame = self.recv_frame(max(0.01, deadline - time.monotonic()))
            except TimeoutError:
                break
            if frame is None:
                break
            opcode, _fin, payload = frame
            if opcode in (OP_BINARY, OP_TEXT, OP_CONTINUATION):
                data += payload
            elif opcode == OP_PING:
                self.send_frame(OP_PONG, payload)
            elif opcode == OP_CLOSE:
                self.closed_by_server = True
                self.close_payload = payload
                try:
                    self.send_frame(OP_CLOSE, payload[:2])
                except OSError:
                    pass
        return data

    def close(self):
        try:
            if not self.closed_by_server and not self.eof:
                self.send_frame(OP_CLOSE, struct.pack("!H", 1000))
                try:
                    self.recv_frame(1.0)
                except (TimeoutError, OSError):
                    pass
        except OSError:
            pass
        finally:
            self.sock.close()


def console_attempt(url: str, origin: str | None, n: int = 12,
                    timeout: float = 10.0) -> tuple[bytes, str]:
    """Open a console WebSocket and read up to n bytes from the far end.
    Returns (bytes, how): how says what happened ("connection refused",
    "handshake refused: …", "closed by the server", "open"). A refused
    console gives no bytes whichever way it refuses."""
    try:
        ws = WebSocket.connect(url, origin=origin, timeout=timeout)
    except ConnectionRefusedError:
        return b"", "connection refused"
    except HandshakeError as e:
        return b"", f"handshake refused: {e}"
    except OSError as e:
        return b"", f"connection failed: {e!r}"
    try:
        data = ws.read_bytes(n, timeout=timeout)
        if ws.closed_by_server:
            how = f"closed by the server (close payload {ws.close_payload!r})"
        elif ws.eof:
            how = "connection dropped by the server"
        else:
            how = "open"
        return data, how
    finally:
        ws.close()
