"""CSP with nonces, security.txt (RFC 9116) and the trusted-proxy client IP rule."""

import ipaddress
import json
import logging
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.test import override_settings

from nordkestrel.middleware import resolve_client_ip

CLOUDFLARE = [ipaddress.ip_network("173.245.48.0/20"), ipaddress.ip_network("2400:cb00::/32")]


def csp_directives(response):
    header = response["Content-Security-Policy"]
    return {
        part.split()[0]: part.split()[1:] for part in (p.strip() for p in header.split(";")) if part
    }


@pytest.mark.urls("tests.nordkestrel.urls")
def test_html_page_carries_csp_with_the_nonce_it_uses(http):
    first = http.get("/test/nonce")
    second = http.get("/test/nonce")
    nonces = []
    for response in (first, second):
        directives = csp_directives(response)
        match = re.search(r'<script nonce="([^"]+)"', response.content.decode())
        assert match is not None
        nonce = match.group(1)
        assert f"'nonce-{nonce}'" in directives["script-src"]
        assert "'unsafe-inline'" not in directives["script-src"]
        assert directives["default-src"] == ["'self'"]
        assert directives["object-src"] == ["'none'"]
        assert directives["frame-ancestors"] == ["'none'"]
        nonces.append(nonce)
    assert nonces[0] != nonces[1], "a nonce is never reused across responses"


def test_error_pages_carry_csp_too(http):
    response = http.get("/no-such-page")
    assert response["Content-Type"].startswith("text/html")
    assert "'self'" in csp_directives(response)["script-src"]


def test_api_docs_page_loads_only_local_assets(http):
    response = http.get("/api/v1/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Content-Security-Policy" in response
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources, "the docs page loads its assets"
    assert all(not s.startswith(("http:", "https:", "//")) for s in sources), sources


def test_security_txt_follows_rfc_9116(http):
    response = http.get("/.well-known/security.txt")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    fields: dict[str, list[str]] = {}
    for line in response.content.decode().splitlines():
        name, _, value = line.partition(": ")
        fields.setdefault(name, []).append(value)
    assert fields["Contact"] == ["mailto:security@nordkestrel.com"]
    assert fields["Policy"] == ["https://nordkestrel.com/security"]
    assert fields["Preferred-Languages"] == ["en"]
    assert fields["Canonical"] == ["http://testserver/.well-known/security.txt"]
    expires = datetime.strptime(fields["Expires"][0], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    now = datetime.now(UTC)
    assert now < expires < now + timedelta(days=365), "RFC 9116: in the future, under a year"


def test_security_txt_comes_from_settings(http, settings):
    settings.SECURITY_TXT_CONTACT = ["mailto:sec@example.com", "https://example.com/report"]
    settings.SECURITY_TXT_LANGUAGES = "en, fi"
    text = http.get("/.well-known/security.txt").content.decode()
    assert "Contact: mailto:sec@example.com\nContact: https://example.com/report\n" in text
    assert "Preferred-Languages: en, fi\n" in text


class TestClientIp:
    @override_settings(TRUSTED_PROXY_NETWORKS=CLOUDFLARE)
    def test_header_from_a_trusted_proxy_is_believed(self):
        assert resolve_client_ip("173.245.48.7", "203.0.113.9") == ("203.0.113.9", True)
        assert resolve_client_ip("2400:cb00::1", "2001:db8::5") == ("2001:db8::5", True)

    @override_settings(TRUSTED_PROXY_NETWORKS=CLOUDFLARE)
    def test_spoofed_header_from_anyone_else_is_ignored(self):
        assert resolve_client_ip("198.51.100.20", "203.0.113.9") == ("198.51.100.20", False)

    @override_settings(TRUSTED_PROXY_NETWORKS=[])
    def test_no_trusted_proxies_means_the_socket_address(self):
        assert resolve_client_ip("173.245.48.7", "203.0.113.9") == ("173.245.48.7", False)

    @override_settings(TRUSTED_PROXY_NETWORKS=CLOUDFLARE)
    def test_garbage_header_from_a_proxy_falls_back_to_the_peer(self):
        assert resolve_client_ip("173.245.48.7", "not-an-ip") == ("173.245.48.7", True)

    @override_settings(TRUSTED_PROXY_NETWORKS=CLOUDFLARE)
    def test_request_log_records_the_resolved_ip(self, http, caplog):
        with caplog.at_level(logging.INFO, logger="nordkestrel.request"):
            http.get("/healthz", REMOTE_ADDR="198.51.100.20", HTTP_CF_CONNECTING_IP="203.0.113.9")
            http.get("/healthz", REMOTE_ADDR="173.245.48.7", HTTP_CF_CONNECTING_IP="203.0.113.9")
        assert [r.client_ip for r in caplog.records] == ["198.51.100.20", "203.0.113.9"]


def test_request_log_is_one_json_line_with_the_request_id(http, capsys):
    from nordkestrel.logging import JsonFormatter, RequestContextFilter

    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestContextFilter())
    logger = logging.getLogger("nordkestrel.request")
    logger.addHandler(handler)
    try:
        response = http.get("/healthz")
    finally:
        logger.removeHandler(handler)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    entry = json.loads(lines[-1])
    assert entry["request_id"] == response["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", entry["request_id"])
    assert (entry["method"], entry["path"], entry["status"]) == ("GET", "/healthz", 200)
    assert entry["duration_ms"] >= 0
    assert entry["restaurant_id"] is None


def test_upstream_request_id_is_kept_only_from_a_trusted_proxy(http, settings):
    settings.TRUSTED_PROXY_NETWORKS = CLOUDFLARE
    upstream = "cf-ray-8d1f2a3b4c5d"
    spoofed = http.get("/healthz", REMOTE_ADDR="198.51.100.20", HTTP_X_REQUEST_ID=upstream)
    assert spoofed["X-Request-ID"] != upstream
    proxied = http.get("/healthz", REMOTE_ADDR="173.245.48.7", HTTP_X_REQUEST_ID=upstream)
    assert proxied["X-Request-ID"] == upstream
