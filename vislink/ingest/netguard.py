"""Which addresses a download may reach: no loopback, private, link-local, metadata, multicast or reserved address
unless the user names it (``VISLINK_FETCH_ALLOW_HOSTS``), checked where the connection is made.

A document vislink fetches (a IIIF collection, a URL list, a redirect) is written by someone else; without this
guard it could point vislink at services only this machine can reach (``http://127.0.0.1:6333/`` the Qdrant
server, ``http://169.254.169.254/`` a cloud's credentials). The check is made on the *resolved* address, in the
HTTP client's connect step (``GuardedBackend.connect_tcp``): the name is resolved once, every address it resolves
to is checked, and the socket is opened to a checked address, so a DNS answer that changes between a check and a
connect (DNS rebinding) cannot slip through. Redirects are followed by the Fetcher one hop at a time, and each hop
connects through the same check.

Allowed by name: ``AddressPolicy("iiif.museum.local, 10.20.0.0/16, 127.0.0.1")``: a host name (exact, or
``.museum.local`` / ``*.museum.local`` for every name under it) allows whatever it resolves to; an address or a
CIDR network allows those addresses whatever name led there. Connections go direct: ``HTTP(S)_PROXY`` is not
used, since a proxy would resolve the name itself, out of reach of the check."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from typing import Any

import httpcore
import httpx

from vislink.errors import ConfigError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[..., list]  # socket.getaddrinfo's signature

ALLOW_SETTING = "VISLINK_FETCH_ALLOW_HOSTS"
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


class AddressRefused(Exception):
    """A host resolves to an address downloads may not reach. ``host``, ``address``, ``why``."""

    def __init__(self, host: str, address: str, why: str):
        self.host, self.address, self.why = host, address, why
        where = f"{address} is" if host == address else f"{host} resolves to {address},"
        super().__init__(f"{where} {why}; name it in {ALLOW_SETTING} to allow it")


def refusal(address: IPAddress) -> str | None:
    """Why a download may not reach ``address`` by default, or None for a public unicast address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return refusal(address.ipv4_mapped)
        if address in _NAT64:  # a NAT64 gateway would reach the embedded IPv4 address
            return refusal(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    if address in _METADATA:
        return "a cloud metadata address (link-local)"
    for test, why in (("is_unspecified", "unspecified"), ("is_loopback", "a loopback address"),
                      ("is_link_local", "a link-local address"), ("is_multicast", "a multicast address")):
        if getattr(address, test):
            return why
    if isinstance(address, ipaddress.IPv6Address) and address in ipaddress.ip_network("fc00::/7"):
        return "a private address (unique local)"
    if address.is_reserved:
        return "a reserved address"
    if address.is_private:
        return "a private address"
    if not address.is_global:
        return "not a public address"
    return None


class AddressPolicy:
    """The addresses downloads may reach: public unicast ones, plus those ``allow`` names (a comma-separated
    string or a list of host names, addresses and CIDR networks). ``resolve``: the name lookup
    (``socket.getaddrinfo``)."""

    def __init__(self, allow: str | Iterable[str] | None = "", resolve: Resolver | None = None):
        entries = allow.split(",") if isinstance(allow, str) else list(allow or ())
        self.entries = [e.strip() for e in entries if e and e.strip()]
        self.resolve = resolve or socket.getaddrinfo
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        self.names: set[str] = set()
        self.suffixes: list[str] = []
        for entry in self.entries:
            text = entry.strip("[]")
            try:
                self.networks.append(ipaddress.ip_network(text, strict=False))
                continue
            except ValueError:
                if "/" in text or ":" in text or text.replace(".", "").isdigit():
                    raise ConfigError(f"{ALLOW_SETTING}: {entry!r} is neither a host name nor an address or "
                                      "network (10.0.0.5, 10.20.0.0/16, fd00::/8)") from None
            name = text.lower().rstrip(".")
            if name.startswith("*."):
                name = name[1:]
            (self.suffixes.append(name) if name.startswith(".") else self.names.add(name))

    def host_allowed(self, host: str) -> bool:
        """Whether ``host`` is allowed by name, whatever it resolves to."""
        name = host.lower().rstrip(".")
        return name in self.names or any(name.endswith(s) for s in self.suffixes)

    def check(self, host: str, address: str) -> None:
        """Raise ``AddressRefused`` unless a connection to ``address`` (which ``host`` resolved to) is allowed."""
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # fe80::1%eth0: the zone is not part of the address
        if self.host_allowed(host) or any(ip in net for net in self.networks if net.version == ip.version):
            return
        why = refusal(ip)
        if why is not None:
            raise AddressRefused(host, str(ip), why)

    def addresses(self, host: str, port: int) -> list[tuple[Any, ...]]:
        """``getaddrinfo`` entries for ``host``, each checked: one refused address refuses the host (a name that
        resolves to a public and a private address could be answered either way)."""
        try:
            infos = self.resolve(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
        infos = [i for i in infos if i[0] in (socket.AF_INET, socket.AF_INET6)]
        if not infos:
            raise httpcore.ConnectError(f"cannot resolve {host}: no IPv4 or IPv6 address")
        for info in infos:
            self.check(host, info[4][0])
        return infos

    def __repr__(self) -> str:
        return f"AddressPolicy({','.join(self.entries)!r})"


class GuardedBackend(httpcore.SyncBackend):
    """httpcore's socket backend, opening connections only to addresses the policy allows, and to the very
    address it checked (no second lookup)."""

    def __init__(self, policy: AddressPolicy):
        self.policy = policy

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options=None):
        last: Exception | None = None
        for info in self.policy.addresses(host, port):
            try:
                return super().connect_tcp(info[4][0], port, timeout=timeout, local_address=local_address,
                                           socket_options=socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:  # try the host's next address
                last = exc
        raise last  # type: ignore[misc]

    def connect_unix_socket(self, *args, **kwargs):  # pragma: no cover - never configured by vislink
        raise httpcore.ConnectError("unix sockets are not used for downloads")


def guarded_transport(policy: AddressPolicy, limits: httpx.Limits | None = None) -> httpx.HTTPTransport:
    """An httpx transport whose connections go through ``GuardedBackend``: TLS still verifies the URL's host name
    (httpcore sends the origin's name for SNI and the certificate check, whatever address the socket reached)."""
    limits = limits or httpx.Limits()
    transport = httpx.HTTPTransport(limits=limits)
    # httpx builds its pool without a way to pass a network backend; this is the pool it would build, plus ours.
    # (httpx's handle_request uses ``_pool``, in 0.27 and 0.28; tests/test_fetch_ssrf.py checks that it is ours.)
    transport._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(),
        max_connections=limits.max_connections, max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry, network_backend=GuardedBackend(policy))
    return transport
