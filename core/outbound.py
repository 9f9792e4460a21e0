"""Requests to URLs that partners give us (webhooks): only to the public internet, and only to
the address that was checked.

A partner must not make our workers post into our own network (cloud metadata at
169.254.169.254, an admin port on 127.0.0.1, the database host on 10.x). Checking the URL's
text is not enough: a public-looking name can resolve to anything (`127.0.0.1.nip.io`, an
internal DNS name), an address has many spellings (`2130706433`, `0177.0.0.1`, `::ffff:7f00:1`,
`64:ff9b::a00:1`, `2002:a00:1::`), and a name that resolved to a public address when it was
checked can resolve to 127.0.0.1 a second later when the HTTP library looks it up again (DNS
rebinding). So:

- `target_check(url)` parses the URL, refuses odd spellings and internal names, resolves the
  host once (through `resolve`, the one function that asks DNS; tests replace it) and refuses
  the URL if any of its addresses is not public. It returns a `Target` that carries the checked
  addresses.
- `target_post(target, …)` connects to exactly those addresses (no second lookup), with the
  original Host header, and for HTTPS with SNI and certificate verification on the host name.
  It follows no redirects: a 3xx is an answer like any other.
- Callers check again before every attempt: a name's addresses change.

While developing or testing (DEBUG or LOYALTY_WEBHOOK_ALLOW_LOCALHOST) loopback addresses are
allowed, and plain http to them, so a receiver on this machine can be used.
"""

from __future__ import annotations

import functools
import http.client
import ipaddress
import re
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.translation import gettext as _

# Names that only mean something inside a network (RFC 6761, RFC 6762, RFC 8375, ICANN's
# .internal, and the usual private suffixes).
INTERNAL_SUFFIXES = ("localhost", "local", "localdomain", "internal", "intranet", "lan", "home", "corp", "private",
                     "home.arpa", "arpa", "test", "invalid", "example", "onion")
# What inet_aton also reads as an IPv4 address: 2130706433, 0177.0.0.1, 0x7f.1, 127.1.
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}\.?$")
NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")  # the embedded IPv4 address is the real target
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated ::a.b.c.d


class URLRefused(Exception):
    """The URL must not be requested. `str()` is a translated, partner-safe explanation;
    `unresolvable`: only because its host name did not resolve (perhaps for a moment)."""

    def __init__(self, message: str, *, unresolvable: bool = False) -> None:
        super().__init__(message)
        self.unresolvable = unresolvable


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # the name, for the Host header, SNI and the certificate
    port: int
    path: str  # path and query
    addresses: tuple[str, ...]  # the checked addresses: the only ones connected to, in this order


def local_allowed() -> bool:
    return bool(settings.DEBUG or settings.LOYALTY_WEBHOOK_ALLOW_LOCALHOST)


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (IP literals resolve to themselves, without DNS)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, where packets to it end up at that address."""
    if address.ipv4_mapped:
        return address.ipv4_mapped
    if address in NAT64_PREFIX:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour:
        return address.sixtofour
    return None


def address_allowed(text: str, *, loopback_ok: bool = False) -> bool:
    """A public unicast address (or loopback, when `loopback_ok`)."""
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone (fe80::1%eth0)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        if address.teredo:
            return False
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return address_allowed(str(embedded), loopback_ok=loopback_ok)
        if address in IPV4_COMPATIBLE and not address.is_loopback:
            return False
    if address.is_loopback:
        return loopback_ok
    return address.is_global and not (address.is_private or address.is_link_local or address.is_multicast
                                      or address.is_reserved or address.is_unspecified)


def _host_check(host: str) -> None:
    """Refuse spellings and names that are not a public host, before asking DNS."""
    try:
        ipaddress.ip_address(host)
        return  # a literal in its usual form: its address is checked like a name's
    except ValueError:
        pass
    if _NUMERIC_HOST.match(host) or host.rstrip(".").rsplit(".", 1)[-1].isdigit():
        raise URLRefused(_("write an IP address in its usual dotted form"))
    name = host.rstrip(".")
    if host == "localhost" and local_allowed():
        return
    if "." not in name or name.endswith(tuple("." + suffix for suffix in INTERNAL_SUFFIXES)) \
            or name in INTERNAL_SUFFIXES:
        raise URLRefused(_("use a public, fully qualified host name"))


def target_check(url: str) -> Target:
    """Parse, check and resolve `url`; the Target holds the address to connect to."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise URLRefused(_("the URL is not valid")) from None
    host = (parts.hostname or "").lower()
    if not host:
        raise URLRefused(_("the URL has no host"))
    if parts.username or parts.password:
        raise URLRefused(_("credentials in the URL are not allowed"))
    if parts.scheme not in ("https", "http") or (parts.scheme == "http" and not local_allowed()):
        raise URLRefused(_("only HTTPS URLs are accepted"))
    try:
        host = host.encode("idna").decode("ascii")  # bücher.de → xn--bcher-kva.de, as DNS and Host want it
    except UnicodeError:
        raise URLRefused(_("the URL is not valid")) from None
    _host_check(host)
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = resolve(host, port)
    except OSError:
        raise URLRefused(_("the host name could not be resolved"), unresolvable=True) from None
    loopback_ok = local_allowed()
    if not addresses or not all(address_allowed(address, loopback_ok=loopback_ok) for address in addresses):
        # All of them: a name answering with a public and an internal address picks one at random.
        raise URLRefused(_("internal network addresses are not accepted"))
    if parts.scheme == "http" and not all(ipaddress.ip_address(a.split("%", 1)[0]).is_loopback for a in addresses):
        raise URLRefused(_("only HTTPS URLs are accepted"))
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(scheme=parts.scheme, host=host, port=port, path=path, addresses=tuple(addresses))


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The system's trust store, certificate and host name checks on (tests replace it)."""
    return ssl.create_default_context()


class _Pinned:
    """Connects to the checked address instead of looking the host name up again. The host
    name stays what http.client uses for the Host header and, for HTTPS, SNI and the
    certificate check."""

    def __init__(self, host: str, port: int, *, addresses: tuple[str, ...], timeout: float, **kwargs) -> None:
        super().__init__(host, port, timeout=timeout, **kwargs)
        self._create_connection = functools.partial(_connect_to, addresses)


def _connect_to(addresses: tuple[str, ...], host_and_port, timeout, source_address=None):
    """Like socket.create_connection: each address in turn (localhost is ::1 and 127.0.0.1,
    a receiver may listen on one), but only the checked ones, so no second DNS lookup."""
    last_error: OSError | None = None
    for address in addresses:
        try:
            return socket.create_connection((address, host_and_port[1]), timeout, source_address)
        except OSError as error:
            last_error = error
    raise last_error or OSError("no address to connect to")


class _PinnedHTTPConnection(_Pinned, http.client.HTTPConnection):
    pass


class _PinnedHTTPSConnection(_Pinned, http.client.HTTPSConnection):
    pass


def target_post(target: Target, body: bytes, headers: dict[str, str], *, timeout: float) -> tuple[int, str]:
    """POST `body` to the target's checked address; returns the status and its reason phrase.
    Raises OSError (refused, timed out, TLS failure) or http.client.HTTPException."""
    if target.scheme == "https":
        connection = _PinnedHTTPSConnection(target.host, target.port, addresses=target.addresses, timeout=timeout,
                                            context=tls_context())
    else:
        connection = _PinnedHTTPConnection(target.host, target.port, addresses=target.addresses, timeout=timeout)
    try:
        connection.request("POST", target.path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.reason
    finally:
        connection.close()
