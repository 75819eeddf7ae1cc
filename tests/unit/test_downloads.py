"""Result downloads: the URL is read once, the host must be allowed and public, and the
connection goes to the address that was checked."""

import http.server
import socket
import threading

import pytest

from service.errors import UpstreamError
from service.hub import transport
from service.hub.deadline import Deadline
from service.hub.downloads import check_download, is_public_address
from service.hub.messages import UpstreamRequest

FAL = ("fal.media", "*.fal.media")


def resolver(table: dict):
    """A getaddrinfo stand-in answering from `table` (name -> addresses)."""

    def resolve(host, port, type=0, **kwargs):
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "unknown name")
        return [
            (socket.AF_INET6 if ":" in address else socket.AF_INET, 1, 6, "", (address, port))
            for address in table[host]
        ]

    return resolve


PUBLIC = resolver(
    {"v3.fal.media": ["93.184.215.14"], "fal.media": ["93.184.215.15"], "cdn.v3.fal.media": ["2606:4700::6810:84e5"]}
)


# Forms on which a checker and a connecting stack are known to disagree, or which only an
# address literal could mean. Every one must be refused before any connection is made.
PARSER_DIFFERENTIALS = [
    "https://127.0.0.1\\.fal.media/x.png",
    "https://127.0.0.1\\@v3.fal.media/x.png",
    "https://v3.fal.media\\@127.0.0.1/x.png",
    "https://user@v3.fal.media/x.png",
    "https://v3.fal.media@127.0.0.1/x.png",
    "https://v3.fal.media:443@127.0.0.1/x.png",
    "https://127.0.0.1#@v3.fal.media/x.png",
    "https://127.0.0.1?@v3.fal.media/x.png",
    "https://127.0.0.1%2f.fal.media/x.png",
    "https://127.0.0.1%23.fal.media/x.png",
    "https://127.0.0.1%40.fal.media/x.png",
    "https://v3.fal.media%2f@127.0.0.1/x.png",
    "https://v3.fal%2emedia/x.png",
    "https://127.0.0.1\t.fal.media/x.png",
    "https://127.0.0.1\n.fal.media/x.png",
    "https://127.0.0.1\r.fal.media/x.png",
    "https://127.0.0.1\x00.fal.media/x.png",
    "https://127.0.0.1 .fal.media/x.png",
    " https://v3.fal.media/x.png",
    "https://v3.fal.media/x.png ",
    "https://127。0。0。1/x.png",
    "https://v3．fal．media/x.png",
    "https://ｖ3.fal.media/x.png",
    "https://[::1]/x.png",
    "https://[::ffff:127.0.0.1]/x.png",
    "https://[v3.fal.media]/x.png",
    "https://127.0.0.1/x.png",
    "https://2130706433/x.png",
    "https://0x7f000001/x.png",
    "https://0177.0.0.1/x.png",
    "https://127.1/x.png",
    "https://169.254.169.254/latest/meta-data",
    "https://v3.fal.media:8443/x.png",
    "https://v3.fal.media:0/x.png",
    "http://v3.fal.media/x.png",
    "ftp://v3.fal.media/x.png",
    "file:///etc/passwd",
    "//v3.fal.media/x.png",
    "https:/v3.fal.media/x.png",
    "https:///v3.fal.media/x.png",
    "https://v3.fal.media_/x.png",
    "https://evil.test/x.png",
    "https://fal.media.evil.test/x.png",
    "https://evilfal.media/x.png",
    "https://.fal.media/x.png",
    "https://" + "a" * 2100 + ".fal.media/x.png",
    "",
    None,
    ["https://v3.fal.media/x.png"],
]


@pytest.mark.parametrize("url", PARSER_DIFFERENTIALS)
def test_ambiguous_or_disallowed_urls_are_refused(url):
    calls = []

    def spy(*args, **kwargs):
        calls.append(args)
        return PUBLIC(*args, **kwargs)

    with pytest.raises(UpstreamError):
        check_download(url, FAL, spy)
    assert all(args[0] in ("v3.fal.media", "fal.media") for args in calls)


@pytest.mark.parametrize(
    "url, host, address",
    [
        ("https://v3.fal.media/files/x.png", "v3.fal.media", "93.184.215.14"),
        ("https://V3.FAL.media/files/x.png?sig=a%2Fb", "v3.fal.media", "93.184.215.14"),
        ("https://fal.media/x.png", "fal.media", "93.184.215.15"),
        ("https://cdn.v3.fal.media/x.png", "cdn.v3.fal.media", "2606:4700::6810:84e5"),
        ("https://v3.fal.media:443/x.png", "v3.fal.media", "93.184.215.14"),
    ],
)
def test_allowed_public_urls_are_pinned_to_their_checked_address(url, host, address):
    checked = check_download(url, FAL, PUBLIC)
    assert (checked.host, checked.address, checked.port) == (host, address, 443)
    assert checked.url.startswith(f"https://{host}") and "#" not in checked.url


@pytest.mark.parametrize(
    "addresses",
    [
        ["127.0.0.1"],
        ["10.1.2.3"],
        ["192.168.0.10"],
        ["172.16.5.4"],
        ["169.254.169.254"],
        ["100.64.0.1"],
        ["0.0.0.0"],
        ["224.0.0.1"],
        ["::1"],
        ["fe80::1"],
        ["fc00::1"],
        ["::ffff:127.0.0.1"],
        ["93.184.215.14", "127.0.0.1"],
    ],
)
def test_a_name_resolving_to_a_private_or_special_address_is_refused(addresses):
    with pytest.raises(UpstreamError, match="private or special"):
        check_download("https://rebind.fal.media/x.png", FAL, resolver({"rebind.fal.media": addresses}))


def test_an_unresolvable_host_is_an_upstream_error():
    with pytest.raises(UpstreamError, match="could not resolve"):
        check_download("https://gone.fal.media/x.png", FAL, PUBLIC)


def test_an_explicit_origin_allows_one_private_server_and_only_it():
    local = resolver({"127.0.0.1": ["127.0.0.1"]})
    checked = check_download("http://127.0.0.1:9000/x.png", ("http://127.0.0.1:9000",), local)
    assert (checked.address, checked.port, checked.host_header) == ("127.0.0.1", 9000, "127.0.0.1:9000")
    for other in ("http://127.0.0.1:9001/x.png", "https://127.0.0.1:9000/x.png", "http://127.0.0.2:9000/x.png"):
        with pytest.raises(UpstreamError):
            check_download(other, ("http://127.0.0.1:9000",), local)


@pytest.mark.parametrize(
    "address, public",
    [
        ("93.184.215.14", True),
        ("2606:4700::1", True),
        ("127.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("nonsense", False),
    ],
)
def test_is_public_address(address, public):
    assert is_public_address(address) is public


class _Image(http.server.BaseHTTPRequestHandler):
    hosts = []

    def do_GET(self):
        type(self).hosts.append(self.headers["Host"])
        body = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_the_connection_goes_to_the_checked_address_not_to_a_new_dns_answer(monkeypatch):
    server = http.server.HTTPServer(("127.0.0.1", 0), _Image)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        checked = check_download(
            f"http://rebind.test:{port}/x.png",
            (f"http://rebind.test:{port}",),
            resolver({"rebind.test": ["127.0.0.1"]}),
        )

        def rebound(host, *args, **kwargs):  # any later lookup of the name would go elsewhere
            if host == "rebind.test":
                return [(socket.AF_INET, 1, 6, "", ("192.0.2.1", port))]
            return real_getaddrinfo(host, *args, **kwargs)

        real_getaddrinfo = socket.getaddrinfo
        monkeypatch.setattr(socket, "getaddrinfo", rebound)
        request = UpstreamRequest(
            url=checked.url,
            payload=None,
            method="GET",
            headers={"Host": checked.host_header},
            wants_image=True,
            to_hub=False,
            connect_to=checked.address,
        )
        session = transport.SessionPool(4).get()
        reply = transport.send(session, request, Deadline(5), 2.0, 1024)
        session.close()
    finally:
        server.shutdown()
        server.server_close()
    assert reply.status == 200 and reply.body.startswith(b"\x89PNG")
    assert _Image.hosts == [f"rebind.test:{port}"]
