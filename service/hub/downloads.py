"""Which result URLs the service may download, and turning a downloaded image into a result."""

from dataclasses import dataclass
from urllib.parse import urlsplit

from service.errors import UpstreamError


@dataclass(frozen=True)
class ImageLink:
    """An image a provider left at a URL instead of sending it."""

    url: str
    provider: str


def check_download_url(url: str, allowed: tuple) -> None:
    """Refuse any URL but https to a host the provider's configuration allows.

    An entry is a host name (`v3.fal.media`), a wildcard (`*.fal.media`), or an explicit
    origin (`http://127.0.0.1:8080`) for a self-hosted or test provider.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UpstreamError("the provider returned a malformed result URL") from None
    host = (parts.hostname or "").lower()
    if not host or parts.username or parts.password:
        raise UpstreamError("the provider returned a result URL without a plain host")
    origin = f"{parts.scheme}://{host}" + (f":{port}" if port else "")
    if origin in allowed:
        return
    if parts.scheme == "https" and port in (None, 443) and any(_host_matches(host, entry) for entry in allowed):
        return
    raise UpstreamError(f"refused to download the result from {parts.scheme}://{host}: not an allowed https host for this provider")


def _host_matches(host: str, entry: str) -> bool:
    """Match a host against a plain or `*.`-wildcard entry."""
    entry = entry.lower()
    if "://" in entry:
        return False
    if entry.startswith("*."):
        return host.endswith(entry[1:])
    return host == entry
