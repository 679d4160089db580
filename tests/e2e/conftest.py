"""A real Chromium (Debian's, never one Playwright downloads) driving the live server."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

# Playwright's sync API runs an event loop in the test thread, which makes Django refuse
# database access from that thread (the fixtures' setup and teardown) unless allowed.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    executable = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
    if not Path(executable).is_file():
        reason = (
            f"Chromium is not at {executable}: install it (`apt-get install chromium`) "
            "or point CHROMIUM_PATH at it"
        )
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail(f"{reason} (REQUIRE_SERVICES=1)")
        pytest.skip(reason)
    playwright = sync_playwright().start()
    try:
        launched = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()
    finally:
        playwright.stop()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (no cookies) per test."""
    context = browser.new_context()
    try:
        yield context.new_page()
    finally:
        context.close()


# Runs in every document before its own scripts (Playwright injects it past the CSP) and
# records each violation the page reports.
WATCH_CSP = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} blocked ${event.blockedURI}`);
});
"""


@pytest.fixture
def base_url(live_server, settings) -> str:
    """The live server's origin, authorized so the session token's `azp` is accepted."""
    settings.CLERK_AUTHORIZED_PARTIES = [*settings.CLERK_AUTHORIZED_PARTIES, live_server.url]
    return live_server.url
