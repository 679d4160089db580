"""The request itself: to the address checked, with the endpoint's host name in the Host
header and for TLS, and what comes back (2 KB of it, whatever bytes they are)."""

from __future__ import annotations

import datetime as dt
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.events import ping
from tests.support.webhook_receiver import Receiver, Reply
from tests.webhooks.conftest import (
    attempt,
    attempts,
    deliveries,
    make_endpoint,
    publish,
    send_due,
)
from webhooks import transport


def test_the_request_goes_to_the_address_checked_with_the_name_as_host(receiver, dns):
    dns["hooks.example.test"] = ["127.0.0.1"]

    answer = attempt(f"http://hooks.example.test:{receiver.port}/in?x=1")

    assert answer.status == 200
    (request,) = receiver.received
    assert request.headers["host"] == f"hooks.example.test:{receiver.port}"
    assert request.path == "/in?x=1"
    assert request.headers["webhook-id"] == "msg_1"
    assert request.headers["user-agent"] == transport.USER_AGENT


def test_an_answer_is_read_to_2_kb(receiver):
    receiver.answer(Reply(200, b"x" * 10_000))

    answer = attempt(receiver.url)

    assert answer.status == 200
    assert answer.body == "x" * transport.MAX_ANSWER_BYTES


def test_no_answer_within_the_total_time_is_a_timeout(receiver, monkeypatch):
    monkeypatch.setattr(transport, "TOTAL_TIMEOUT", 0.3)
    receiver.answer(Reply(delay=30))

    answer = attempt(receiver.url)

    assert (answer.status, answer.error) == (None, "no answer within 0.3 s")
    assert len(receiver.received) == 1


def test_a_dropped_connection_and_a_closed_port_are_errors(receiver):
    receiver.answer(Reply(drop=True))
    dropped = attempt(receiver.url)
    assert dropped.status is None and dropped.error
    closed = Receiver().start()
    url = closed.url
    closed.stop()
    assert attempt(url).error == "connection refused"


@pytest.mark.usefixtures("transactional_db")
def test_any_bytes_of_an_answer_are_logged_and_a_dropped_connection_is_retried(roster, receiver):
    owner = roster[("ours", "owner")]
    ours = owner.restaurant
    make_endpoint(owner, receiver.url)
    make_endpoint(owner, receiver.url.replace("/hooks", "/dropped"))
    receiver.default = Reply(200, b"ok\x00\xff\xfe binary")
    publish(ours, ping(ours.pk))
    receiver.answer(Reply(drop=True))

    assert send_due() == 2

    by_status = {a.status_code: a for a in attempts(ours)}
    assert by_status[200].response_body == "ok\ufffd\ufffd\ufffd binary"
    assert by_status[None].error
    assert sorted(d.status for d in deliveries(ours)) == ["pending", "succeeded"]


# --- TLS ------------------------------------------------------------------------------------


def _certificates(directory: Path, name: str) -> tuple[Path, ssl.SSLContext]:
    """A throwaway CA (its certificate written to ``directory``) and a server context with a
    certificate it issued for ``name``."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file, key_file = directory / "server.pem", directory / "server.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return ca_file, context


@pytest.fixture
def tls_receiver(tmp_path, settings, private_targets, dns, request):
    """An https receiver on loopback for the certificate's name; the sender trusts its CA
    (a path of this test's own: the sender keeps one TLS context per CA file)."""
    ca_file, context = _certificates(tmp_path, request.param)
    settings.WEBHOOK_CA_FILE = str(ca_file)
    dns["hooks.example.test"] = ["127.0.0.1"]
    server = Receiver(tls=context).start()
    yield server
    server.stop()


@pytest.mark.parametrize("tls_receiver", ["hooks.example.test"], indirect=True)
def test_tls_verifies_the_certificate_against_the_endpoints_host_name(tls_receiver):
    answer = attempt(f"https://hooks.example.test:{tls_receiver.port}/in")

    assert (answer.status, answer.error) == (200, "")
    (request,) = tls_receiver.received
    assert request.headers["host"] == f"hooks.example.test:{tls_receiver.port}"


@pytest.mark.parametrize("tls_receiver", ["elsewhere.example.test"], indirect=True)
def test_tls_refuses_a_certificate_for_another_name(tls_receiver):
    answer = attempt(f"https://hooks.example.test:{tls_receiver.port}/in")

    assert answer.status is None
    assert answer.error.startswith("TLS certificate not accepted")
    assert "mismatch" in answer.error or "match" in answer.error
    assert tls_receiver.received == []
