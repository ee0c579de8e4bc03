"""The loopback DNS server lives in the package (mcplookup dev-dns uses it too)."""

from mcplookup_mcp.probe.devdns import LoopbackDnsServer, ThreadedDnsServer

__all__ = ["LoopbackDnsServer", "ThreadedDnsServer"]
