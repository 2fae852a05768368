"""The webhook URL guard: only http(s), no credentials, no private addresses unless allowed."""

from __future__ import annotations

import pytest

from service.domain.webhook_urls import check_webhook_url, is_public_address


@pytest.mark.parametrize(
    "url", ["https://hooks.example.com/simconfig", "http://8.8.8.8:8080/in", "HTTPS://EXAMPLE.COM"]
)
def test_public_http_urls_are_accepted(url):
    assert check_webhook_url(url, allow_private=False) == []


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("", "is required"),
        ("ftp://example.com/x", "http or https"),
        ("file:///etc/passwd", "http or https"),
        ("https://user:pw@example.com/", "credentials"),
        ("https:///path-only", "must name a host"),
        ("https://example.com:99999/", "not a valid URL"),
        ("https://example.com/a b", "spaces"),
        ("http://127.0.0.1:8080/", "loopback"),
        ("http://localhost/", "loopback"),
        ("http://[::1]/", "loopback"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://10.0.0.5/", "private"),
        ("http://192.168.1.1/", "private"),
        ("http://[::ffff:10.0.0.1]/", "private"),
        ("http://0.0.0.0/", "private"),
        ("https://" + "a" * 2000 + ".com/", "at most"),
    ],
)
def test_bad_urls_are_refused_with_the_reason(url, problem):
    violations = check_webhook_url(url, allow_private=False)
    assert [v.field for v in violations] == ["url"]
    assert problem in violations[0].description


def test_private_addresses_are_accepted_when_the_operator_allows_them():
    assert check_webhook_url("http://127.0.0.1:8080/hook", allow_private=True) == []
    # The scheme and credential rules still hold.
    assert check_webhook_url("ftp://127.0.0.1/", allow_private=True)


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2001:4860:4860::8888", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("100.64.0.1", False),  # carrier-grade NAT
        ("169.254.1.1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("224.0.0.1", False),
        ("::ffff:127.0.0.1", False),
    ],
)
def test_public_addresses_are_told_from_the_others(address, public):
    assert is_public_address(address) is public
