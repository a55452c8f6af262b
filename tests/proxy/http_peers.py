"""Loopback HTTP backends and a raw HTTP client for the proxy tests (asyncio, real sockets)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Req:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    trailers: list[tuple[str, str]] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None


@dataclass
class Resp:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    trailers: list[tuple[str, str]] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def json(self) -> Any:
        return json.loads(self.body)


def _fields(lines: list[bytes]) -> list[tuple[str, str]]:
    out = []
    for line in lines:
        name, _, value = line.partition(b":")
        out.append((name.decode("latin-1"), value.strip().decode("latin-1")))
    return out


async def _read_chunked(reader: asyncio.StreamReader) -> tuple[bytes, list[tuple[str, str]]]:
    body = b""
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";")[0].strip(), 16)
        if size == 0:
            break
        body += await reader.readexactly(size)
        await reader.readexactly(2)
    trailers = []
    while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
        trailers.append(line[:-2])
    return body, _fields(trailers)


async def read_request(reader: asyncio.StreamReader) -> Req | None:
    """One request from a connection, or None at EOF."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    lines = head[:-4].split(b"\r\n")
    method, target, version = lines[0].decode("latin-1").split(" ")
    req = Req(method, target, version, _fields(lines[1:]))
    te = (req.header("transfer-encoding") or "").lower()
    if "chunked" in te:
        req.body, req.trailers = await _read_chunked(reader)
    elif req.header("content-length"):
        req.body = await reader.readexactly(int(req.header("content-length") or 0))
    return req


async def read_response(reader: asyncio.StreamReader, method: str = "GET") -> Resp:
    """One response (skipping nothing: 1xx come back as their own Resp)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head[:-4].split(b"\r\n")
    status = int(lines[0].split(b" ")[1])
    resp = Resp(status, _fields(lines[1:]), b"")
    if method == "HEAD" or status < 200 or status in (204, 304):
        return resp
    te = (resp.header("transfer-encoding") or "").lower()
    if "chunked" in te:
        resp.body, resp.trailers = await _read_chunked(reader)
    elif resp.header("content-length") is not None:
        resp.body = await reader.readexactly(int(resp.header("content-length") or 0))
    else:
        resp.body = await reader.read()
    return resp


def response_bytes(
    status: int = 200, body: bytes = b"", headers: list[tuple[str, str]] | None = None
) -> bytes:
    hdrs = headers if headers is not None else [("Content-Length", str(len(body)))]
    head = f"HTTP/1.1 {status} X\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs) + "\r\n"
    return head.encode() + body


Handler = Callable[[Req, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[bool | None]]


async def echo_handler(req: Req, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    """Answer with JSON describing the request."""
    body = json.dumps(
        {
            "method": req.method,
            "target": req.target,
            "version": req.version,
            "headers": req.headers,
            "body": req.body.decode("latin-1"),
            "trailers": req.trailers,
        }
    ).encode()
    w.write(response_bytes(200, body, [("Content-Length", str(len(body))),
                                        ("Content-Type", "application/json")]))


class Backend:
    """A loopback HTTP/1.1 server; `handler` may write anything (return True to close)."""

    def __init__(self, handler: Handler = echo_handler, name: str = "") -> None:
        self.handler = handler
        self.name = name
        self.connections = 0
        self.requests: list[Req] = []
        self.server: asyncio.Server | None = None
        self.port = 0
        self.writers: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> Backend:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for w in list(self.writers):
            w.close()

    def spec(self, deployment_id: str = "", state: str = "active") -> dict[str, Any]:
        return {"address": "127.0.0.1", "port": self.port, "deployment_id": deployment_id,
                "state": state}

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.add(writer)
        try:
            while (req := await read_request(reader)) is not None:
                self.requests.append(req)
                close = await self.handler(req, reader, writer)
                await writer.drain()
                if close or req.version == "HTTP/1.0":
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.writers.discard(writer)
            writer.close()


class Client:
    """A raw keep-alive HTTP client connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int, ssl: Any = None, server_hostname: str | None = None) -> Client:
        r, w = await asyncio.open_connection(
            "127.0.0.1", port, ssl=ssl, server_hostname=server_hostname
        )
        return cls(r, w)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def request(
        self, method: str = "GET", path: str = "/", host: str = "app.test",
        headers: list[tuple[str, str]] | None = None, body: bytes | None = None,
        version: str = "HTTP/1.1",
    ) -> Resp:
        hdrs = [("Host", host), *(headers or [])]
        if body is not None:
            hdrs.append(("Content-Length", str(len(body))))
        head = f"{method} {path} {version}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs)
        await self.send(head.encode() + b"\r\n" + (body or b""))
        return await read_response(self.reader, method)

    async def response(self, method: str = "GET") -> Resp:
        return await read_response(self.reader, method)

    async def closed(self) -> bool:
        """True when the proxy closed the connection (EOF) without sending more."""
        try:
            data = await asyncio.wait_for(self.reader.read(1), 10)
        except ConnectionError:
            return True
        return data == b""

    def close(self) -> None:
        self.writer.close()


def snapshot(*routes: dict[str, Any], generation: int = 1, **extra: Any) -> dict[str, Any]:
    return {"schema_version": 1, "generation": generation, "routes": list(routes), **extra}


def route(domain: str, *backends: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"app": domain.split(".")[0], "domain": domain, "backends": list(backends), **extra}
