"""Where a webhook may go: the URL's rules when an endpoint is saved, and at every attempt the
addresses its name resolves to, each globally routable, or no request at all."""

from __future__ import annotations

import pytest

from nordkestrel.errors import InvalidInput
from tests.factories import api_client
from tests.support.events import ping
from tests.webhooks.conftest import attempt, attempts, deliveries, publish, send_due
from webhooks import addresses, transport
from webhooks.addresses import Target


@pytest.fixture
def no_request(monkeypatch):
    """Every request the sender would make, recorded instead of made."""
    made: list[tuple[Target, list]] = []

    async def post(target, found, headers, body):
        made.append((target, found))
        return transport.Answer(200, "ok", "", 1)

    monkeypatch.setattr(transport, "post", post)
    return made


FORBIDDEN = [
    ("127.0.0.1", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.5.4", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "metadata"),
    ("169.254.1.1", "link-local"),
    ("100.64.1.1", "carrier-grade NAT"),
    ("0.0.0.0", "unspecified"),  # noqa: S104 - a target refused, not a bind
    ("224.0.0.1", "multicast"),
    ("240.0.0.1", "reserved"),
    ("::1", "loopback"),
    ("fe80::1", "link-local"),
    ("fc00::1", "private"),
    ("fd00::1", "private"),
    ("::ffff:127.0.0.1", "IPv4-mapped"),
    ("64:ff9b::7f00:1", "NAT64"),
    ("2002:7f00:1::", "6to4"),
]


@pytest.mark.usefixtures("public_only")
@pytest.mark.parametrize(("address", "reason"), FORBIDDEN)
def test_a_name_resolving_to_a_forbidden_address_is_refused_at_delivery(
    dns, no_request, address, reason
):
    dns["hooks.example.test"] = [address]

    answer = attempt("https://hooks.example.test/hooks")

    assert answer.status is None
    assert answer.error.startswith("Address refused: hooks.example.test resolves to ")
    assert reason in answer.error
    assert no_request == []


@pytest.mark.usefixtures("public_only")
def test_public_addresses_are_reached_at_the_address_checked(dns, no_request):
    dns["hooks.example.test"] = ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]

    assert attempt("https://hooks.example.test:8443/in?x=1").succeeded

    ((target, found),) = no_request
    assert (target.host, target.port, target.path) == ("hooks.example.test", 8443, "/in?x=1")
    assert [str(a) for a in found] == ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]


@pytest.mark.usefixtures("public_only")
def test_one_private_address_among_public_ones_refuses_the_name(dns, no_request):
    dns["hooks.example.test"] = ["93.184.216.34", "10.0.0.7"]

    answer = attempt("https://hooks.example.test/hooks")

    assert "10.0.0.7" in answer.error and "private" in answer.error
    assert no_request == []


@pytest.mark.usefixtures("public_only")
def test_an_ip_literal_and_an_unresolved_name_are_refused_at_delivery(dns, no_request):
    assert "loopback" in attempt("https://127.0.0.1/hooks").error
    assert "::1, a loopback address" in attempt("https://[::1]:8443/hooks").error
    assert "could not be resolved" in attempt("https://nowhere.example.test/hooks").error
    assert attempt("http://hooks.example.test/hooks").error.startswith("URL refused")
    assert no_request == []


@pytest.mark.usefixtures("transactional_db", "public_only")
def test_dns_rebinding_after_saving_is_refused_at_delivery(roster, dns, no_request):
    owner = roster[("ours", "owner")]
    ours = owner.restaurant
    dns["hooks.example.test"] = ["93.184.216.34"]
    dns["mixed.example.test"] = ["93.184.216.34"]
    client = api_client(owner)
    for url in ("https://hooks.example.test/in", "https://mixed.example.test/in"):
        created = client.post(
            "/api/v1/webhook-endpoints", {"url": url}, content_type="application/json"
        )
        assert created.status_code == 201, created.content
    dns["hooks.example.test"] = ["127.0.0.1"]
    dns["mixed.example.test"] = ["93.184.216.34", "192.168.0.9"]
    publish(ours, ping(ours.pk))

    assert send_due() == 2

    assert no_request == []
    errors = sorted(a.error for a in attempts(ours))
    assert errors == [
        "Address refused: hooks.example.test resolves to 127.0.0.1, a loopback address.",
        "Address refused: mixed.example.test resolves to 192.168.0.9, a private address.",
    ]
    assert all(a.status_code is None for a in attempts(ours))
    assert {d.status for d in deliveries(ours)} == {"pending"}  # tried again later


# --- The URL's rules --------------------------------------------------------------------------


def refused(url: str) -> str:
    with pytest.raises(InvalidInput) as raised:
        addresses.validate(url)
    return str(raised.value.detail)


@pytest.mark.usefixtures("public_only")
def test_urls_refused_when_saved(dns):
    dns["hooks.example.test"] = ["93.184.216.34"]
    assert "https" in refused("http://hooks.example.test/in")
    assert "credentials" in refused("https://user:pw@hooks.example.test/in")
    assert "credentials" in refused("https://user@hooks.example.test/in")
    assert "fragment" in refused("https://hooks.example.test/in#part")
    assert "no host" in refused("https:///in")
    assert "spaces" in refused("https://hooks.example.test/a b")
    assert "valid URL" in refused("https://hooks.example.test:99999/in")
    assert "Port 0" in refused("https://hooks.example.test:0/in")
    assert "https" in refused("ftp://hooks.example.test/in")
    assert "loopback" in refused("https://127.0.0.1/in")
    assert "private" in refused("https://10.0.0.1/in")
    assert "metadata" in refused("https://169.254.169.254/latest")
    assert "loopback" in refused("https://[::1]/in")


@pytest.mark.usefixtures("public_only")
def test_urls_accepted_when_saved(dns):
    dns["hooks.example.test"] = ["93.184.216.34"]
    for url in (
        "https://hooks.example.test/in",
        "https://93.184.216.34:8443/in?x=1",
        "https://not-yet-in-dns.example.test/in",  # every attempt checks it again
    ):
        assert addresses.validate(url) == url


def test_parse_gives_what_the_request_needs(private_targets):
    target = addresses.parse("https://Bücher.Example.TEST./path?q=1")
    assert target == Target("https", "xn--bcher-kva.example.test", 443, "/path?q=1")
    assert target.host_header == "xn--bcher-kva.example.test"
    assert addresses.parse("http://hooks.example.test:8080").path == "/"
    assert addresses.parse("http://hooks.example.test:8080").host_header == (
        "hooks.example.test:8080"
    )
    assert addresses.parse("https://[2606:2800::1]:8443/x").host_header == "[2606:2800::1]:8443"
    # Private targets allowed (development): http and loopback pass.
    assert addresses.validate("http://127.0.0.1:9/x") == "http://127.0.0.1:9/x"


@pytest.mark.usefixtures("public_only")
def test_the_api_refuses_a_private_ip_literal_and_accepts_a_public_one(roster):
    client = api_client(roster[("ours", "owner")])

    response = client.post(
        "/api/v1/webhook-endpoints",
        {"url": "https://192.168.1.10/hooks"},
        content_type="application/json",
    )
    assert response.status_code == 400, response.content
    (error,) = response.json()["errors"]
    assert (error["code"], error["attr"]) == ("webhook_url_not_public", "url")
    response = client.post(
        "/api/v1/webhook-endpoints",
        {"url": "http://93.184.216.34/hooks"},
        content_type="application/json",
    )
    assert response.status_code == 400, response.content
    assert response.json()["errors"][0]["code"] == "invalid_webhook_url"
    response = client.post(
        "/api/v1/webhook-endpoints",
        {"url": "https://93.184.216.34/hooks"},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
