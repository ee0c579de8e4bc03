"""A small authoritative DNS server on loopback (UDP and TCP on one port).

For tests and local development only: it answers every name from records set at run time, so domain
verification can be exercised without publishing anything on the internet (`mcplookup dev-dns`).
"""

from __future__ import annotations

import asyncio
import errno
import threading
from types import TracebackType
from typing import cast

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import dns.rrset

RdataTypeLike = dns.rdatatype.RdataType | str
TxtValue = str | bytes | tuple[str | bytes, ...]

_IN = dns.rdataclass.IN
# Zero TTL so records changed at runtime are never served stale by any cache in between.
_TTL = 0
_BIND_ATTEMPTS = 20


def _name(name: str | dns.name.Name) -> dns.name.Name:
    if isinstance(name, dns.name.Name):
        return name.canonicalize()
    return dns.name.from_text(name).canonicalize()


class _Zone:
    """Records and behaviours, guarded by a lock so any thread may change them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.records: dict[dns.name.Name, dict[dns.rdatatype.RdataType, list[dns.rdata.Rdata]]] = {}
        self.timeouts: set[dns.name.Name] = set()
        self.servfails: set[dns.name.Name] = set()
        self.queries: list[tuple[str, str]] = []
        self.tcp_queries: list[tuple[str, str]] = []

    def set(self, name: str, rdtype: dns.rdatatype.RdataType, rdatas: list[dns.rdata.Rdata]) -> None:
        key = _name(name)
        with self.lock:
            types = self.records.setdefault(key, {})
            if rdatas:
                types[rdtype] = rdatas
            else:
                types.pop(rdtype, None)
                if not types:
                    del self.records[key]

    def remove(self, name: str, rdtype: RdataTypeLike | None) -> None:
        key = _name(name)
        with self.lock:
            if rdtype is None:
                self.records.pop(key, None)
                self.timeouts.discard(key)
                self.servfails.discard(key)
                return
            types = self.records.get(key)
            if types is not None:
                types.pop(dns.rdatatype.RdataType.make(rdtype), None)
                if not types:
                    del self.records[key]

    def reset(self) -> None:
        with self.lock:
            self.records.clear()
            self.timeouts.clear()
            self.servfails.clear()
            self.queries.clear()
            self.tcp_queries.clear()

    def answer(self, query: dns.message.Message, tcp: bool) -> dns.message.Message | None:
        """The response to `query`, or None to stay silent."""
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if query.opcode() != dns.opcode.QUERY:
            response.set_rcode(dns.rcode.NOTIMP)
            return response
        if len(query.question) != 1:
            response.set_rcode(dns.rcode.FORMERR)
            return response
        question = query.question[0]
        qname = question.name.canonicalize()
        entry = (qname.to_text(omit_final_dot=True), dns.rdatatype.to_text(question.rdtype))
        with self.lock:
            self.queries.append(entry)
            if tcp:
                self.tcp_queries.append(entry)
            if qname in self.timeouts:
                return None
            if qname in self.servfails:
                response.set_rcode(dns.rcode.SERVFAIL)
                return response
            types = self.records.get(qname)
            # A name with records below it exists (an empty non-terminal), as on a real server.
            exists = types is not None or any(known.is_subdomain(qname) for known in self.records)
            rdatas = list(types.get(question.rdtype, [])) if types else []
        if not exists:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif rdatas and question.rdclass == _IN:
            response.answer.append(dns.rrset.from_rdata_list(question.name, _TTL, rdatas))
        return response


class _Records:
    """Record mutation methods shared by the async server and its threaded wrapper."""

    _zone: _Zone

    def set_txt(self, name: str, *values: TxtValue) -> None:
        """Replace TXT records; a str (or bytes) is one character-string, a tuple one record of several."""
        rdatas: list[dns.rdata.Rdata] = []
        for value in values:
            strings = value if isinstance(value, tuple) else (value,)
            raw = [s.encode("utf-8") if isinstance(s, str) else s for s in strings]
            rdatas.append(dns.rdtypes.ANY.TXT.TXT(_IN, dns.rdatatype.TXT, raw))
        self._zone.set(name, dns.rdatatype.TXT, rdatas)

    def set_a(self, name: str, *ips: str) -> None:
        self._zone.set(name, dns.rdatatype.A, [dns.rdata.from_text(_IN, dns.rdatatype.A, ip) for ip in ips])

    def set_aaaa(self, name: str, *ips: str) -> None:
        rdatas = [dns.rdata.from_text(_IN, dns.rdatatype.AAAA, ip) for ip in ips]
        self._zone.set(name, dns.rdatatype.AAAA, rdatas)

    def remove(self, name: str, rdtype: RdataTypeLike | None = None) -> None:
        """Remove one type at `name`, or with no type the name and its timeout/SERVFAIL behaviour."""
        self._zone.remove(name, rdtype)

    def set_timeout(self, name: str) -> None:
        """Never answer queries for `name`."""
        with self._zone.lock:
            self._zone.timeouts.add(_name(name))

    def set_servfail(self, name: str) -> None:
        with self._zone.lock:
            self._zone.servfails.add(_name(name))

    def reset(self) -> None:
        """Forget all records, behaviours and logged queries."""
        self._zone.reset()

    @property
    def queries(self) -> list[tuple[str, str]]:
        """(name, type) of every query received, names lower-case without the final dot."""
        with self._zone.lock:
            return list(self._zone.queries)

    @property
    def tcp_queries(self) -> list[tuple[str, str]]:
        with self._zone.lock:
            return list(self._zone.tcp_queries)


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, zone: _Zone) -> None:
        self._zone = zone
        self._transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio's selector UDP transport does not subclass DatagramTransport, so no isinstance check.
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, int]) -> None:
        try:
            query = dns.message.from_wire(data)
        except dns.exception.DNSException:
            return
        response = self._zone.answer(query, tcp=False)
        if response is None or self._transport is None:
            return
        # Without EDNS a UDP answer is limited to 512 bytes; past that the client must retry over TCP.
        limit = query.payload if query.edns >= 0 else 512
        self._transport.sendto(response.to_wire(max_size=limit, prefer_truncation=True), addr)


class LoopbackDnsServer(_Records):
    """Authoritative for every name; unknown names get NXDOMAIN."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._zone = _Zone()
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._connections: dict[asyncio.StreamWriter, asyncio.Task[None]] = {}

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        # With a fixed port there is nothing to retry; with port 0 the TCP bind may collide.
        for _ in range(1 if self.port else _BIND_ATTEMPTS):
            udp, _protocol = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self._zone), local_addr=(self.host, self.port)
            )
            port: int = udp.get_extra_info("sockname")[1]
            try:
                self._tcp = await asyncio.start_server(self._serve_tcp, self.host, port)
            except OSError as exc:
                udp.close()
                if exc.errno != errno.EADDRINUSE:
                    raise
                continue
            self._udp = udp
            self.port = port
            return
        raise OSError(errno.EADDRINUSE, "no port free for both UDP and TCP")

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
            # Open client connections would otherwise outlive the server and keep wait_closed() waiting.
            # Closing the transport ends the handler's read with EOF; cancelling the task instead makes
            # Python 3.11's stream callback log a spurious CancelledError.
            connections = list(self._connections.items())
            for writer, _task in connections:
                writer.close()
            if connections:
                await asyncio.wait([task for _, task in connections], timeout=5)
            await self._tcp.wait_closed()
            self._tcp = None

    async def __aenter__(self) -> LoopbackDnsServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections[writer] = task
        try:
            while True:
                length = int.from_bytes(await reader.readexactly(2), "big")
                data = await reader.readexactly(length)
                try:
                    query = dns.message.from_wire(data)
                except dns.exception.DNSException:
                    return
                response = self._zone.answer(query, tcp=True)
                if response is not None:
                    writer.write(
                        response.to_wire(max_size=65535, prefer_truncation=True, prepend_length=True)
                    )
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            self._connections.pop(writer, None)
            writer.close()


class ThreadedDnsServer(_Records):
    """LoopbackDnsServer on its own event loop in a daemon thread, for synchronous fixtures."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._server = LoopbackDnsServer(host)
        self._zone = self._server._zone
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return self._server.host

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def nameservers(self) -> list[tuple[str, int]]:
        """The server as a `make_resolver` nameserver list."""
        return [(self.host, self.port)]

    def start(self, timeout: float = 10.0) -> None:
        if self._thread is not None:
            raise RuntimeError("server already started")
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="loopback-dns", daemon=True)
        thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._server.start(), loop).result(timeout)
        except BaseException:
            self._shutdown(loop, thread)
            raise
        self._loop, self._thread = loop, thread

    def stop(self, timeout: float = 10.0) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        self._loop = self._thread = None
        try:
            asyncio.run_coroutine_threadsafe(self._server.stop(), loop).result(timeout)
        finally:
            self._shutdown(loop, thread)

    @staticmethod
    def _shutdown(loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()

    def __enter__(self) -> ThreadedDnsServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
