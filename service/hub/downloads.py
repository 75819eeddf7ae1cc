"""Which result URLs the service may download, and the one address it then connects to.

A provider answers some images with a URL. The URL is parsed once, by the parser the HTTP
stack itself uses (urllib3's), and refused when another parser could read it differently
(backslashes, userinfo, control characters, spaces, percent signs or brackets in the host).
Its host must be one the provider's configuration allows, and every address it resolves to
must be a public one, unless an explicit origin (`http://10.0.0.5:8080`) allows that server.
The download then connects to the very address that was checked: a second DNS answer
(rebinding) can never send it elsewhere.
"""

import ipaddress
import re
import socket
from dataclasses import dataclass

from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from service.errors import UpstreamError

MAX_URL_CHARS = 2048
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Host names only: letters, digits, hyphens and dots. No `%`, `[`, `_`, `@` or anything else.
_HOST_NAME = re.compile(
    r"(?=.{1,253}\.?$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*\.?"
)
# A last label of digits (or 0x...) makes the C resolver read the whole host as an IPv4
# address in one of its old forms (2130706433, 0x7f000001, 127.1, 0177.0.0.1).
_NUMERIC_LABEL = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)")
# What may stand between `scheme://` and the path, as sent: a host name and a port, nothing else.
_RAW_AUTHORITY = re.compile(r"[A-Za-z]+://([A-Za-z0-9.-]+)(?::[0-9]{1,5})?(?:[/?#]|$)")


@dataclass(frozen=True)
class ImageLink:
    """An image a provider left at a URL instead of sending it."""

    url: str
    provider: str
    # The hosts it may come from, when the answering app says so (its own); else the provider's.
    hosts: tuple = ()


@dataclass(frozen=True)
class CheckedDownload:
    """A result URL that passed every check, and the address the connection must go to."""

    url: str
    host: str
    port: int
    address: str

    @property
    def host_header(self) -> str:
        """Return the Host header: the name that was checked, with its port when not the default."""
        default = _DEFAULT_PORTS[self.url.split(":", 1)[0]]
        return self.host if self.port == default else f"{self.host}:{self.port}"


def check_download(url, allowed: tuple, resolve=socket.getaddrinfo) -> CheckedDownload:
    """Return where to fetch `url` from, or raise upstream_error saying why it is refused.

    `allowed` holds host names (`v3.fal.media`), wildcards (`*.fal.media`) for https on
    port 443, and explicit origins (`http://127.0.0.1:8080`) for one server that may be private.
    """
    parsed = _parse(url)
    scheme, host = parsed.scheme, parsed.host.lower()
    port = parsed.port if parsed.port is not None else _DEFAULT_PORTS[scheme]
    origin = f"{scheme}://{host}" + (f":{parsed.port}" if parsed.port is not None else "")
    explicit = origin in allowed
    if not explicit and not (scheme == "https" and port == 443 and _is_name(host) and _name_allowed(host, allowed)):
        raise UpstreamError(
            f"refused to download the result from {origin}: not an allowed https host for this provider"
        )
    address = _checked_address(host, port, resolve, public_only=not explicit)
    rebuilt = origin + parsed.request_uri
    return CheckedDownload(url=rebuilt, host=host, port=port, address=address)


def _parse(url) -> object:
    """Parse a URL that every parser reads the same way, or refuse it."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_CHARS:
        raise UpstreamError("the provider returned a result URL that is empty or too long")
    if any(not "!" <= character <= "~" for character in url) or "\\" in url:
        raise UpstreamError("the provider returned a result URL with spaces, control characters or backslashes")
    raw = _RAW_AUTHORITY.match(url)
    if raw is None:
        raise UpstreamError("the provider returned a result URL whose host is not a plain host name")
    try:
        parsed = parse_url(url)
    except (LocationParseError, ValueError):
        raise UpstreamError("the provider returned a malformed result URL") from None
    if parsed.scheme not in _DEFAULT_PORTS or not parsed.host:
        raise UpstreamError("the provider returned a result URL that is not http(s) with a host")
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise UpstreamError("the provider returned a result URL with an impossible port")
    if parsed.auth is not None or "@" in (parsed.netloc or ""):
        raise UpstreamError("the provider returned a result URL with a user name or password")
    if parsed.host != raw.group(1).lower() or not _HOST_NAME.fullmatch(parsed.host):
        raise UpstreamError("the provider returned a result URL whose host is not a plain host name")
    return parsed


def _is_name(host: str) -> bool:
    """Tell a host name from an IPv4 address written in any of its forms."""
    return not _NUMERIC_LABEL.fullmatch(host.rstrip(".").rsplit(".", 1)[-1])


def _name_allowed(host: str, allowed: tuple) -> bool:
    """Match a host name against the plain and `*.`-wildcard entries."""
    host = host.rstrip(".")
    for entry in allowed:
        entry = entry.lower()
        if "://" in entry:
            continue
        if entry.startswith("*.") and host.endswith(entry[1:]) and len(host) > len(entry) - 1:
            return True
        if host == entry:
            return True
    return False


def _checked_address(host: str, port: int, resolve, public_only: bool) -> str:
    """Resolve the host once; refuse it when any address it has is not a public one."""
    try:
        answers = resolve(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise UpstreamError(
            f"could not resolve the result host {host} ({type(exc).__name__})", retryable=True
        ) from None
    addresses = [answer[4][0] for answer in answers]
    if not addresses:
        raise UpstreamError(f"the result host {host} has no address")
    if public_only:
        for address in addresses:
            if not is_public_address(address):
                raise UpstreamError(
                    f"refused to download the result from {host}: it resolves to a private or special address"
                )
    return addresses[0]


def is_public_address(address: str) -> bool:
    """Tell whether an address is globally routable: not loopback, private, link-local, reserved..."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast
