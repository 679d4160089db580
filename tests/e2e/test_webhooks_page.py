"""The webhooks page in a real browser: add an endpoint, see its secret once, send a test event
and find it in the delivery log."""

import re

import pytest
from playwright.sync_api import expect

from staff.roles import Role
from tests.e2e.conftest import WATCH_CSP
from tests.e2e.test_dashboard import sign_in
from tests.webhooks.conftest import send_due

pytestmark = pytest.mark.django_db(transaction=True)

# For a human to look at; the pixels are not asserted.
WIDE_SCREENSHOT = "/tmp/webhooks-endpoint-1280.png"  # noqa: S108
PHONE_SCREENSHOT = "/tmp/webhooks-endpoint-390.png"  # noqa: S108
SECRET_SCREENSHOT = "/tmp/webhooks-secret-390.png"  # noqa: S108
LIST_SCREENSHOT = "/tmp/webhooks-list-1280.png"  # noqa: S108


def test_owner_adds_an_endpoint_and_sees_a_test_event_in_the_log(
    browser, base_url, roster, receiver
):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base_url)
    errors: list[str] = []
    try:
        page = context.new_page()
        page.on(
            "console",
            lambda m: (
                errors.append(m.text)
                if m.type == "error" and not m.location["url"].endswith("/favicon.ico")
                else None
            ),
        )
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.add_init_script(WATCH_CSP)
        sign_in(page, base_url, Role.OWNER)
        page.get_by_test_id("nav").get_by_role("link", name="Webhooks").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Webhooks")

        form = page.get_by_test_id("create-endpoint-form")
        form.get_by_label("URL").fill(receiver.url)
        form.get_by_label("Description").fill("Kitchen display")
        form.get_by_label("order.placed").check()
        form.get_by_role("button", name="Add endpoint").click()

        secret = page.get_by_test_id("webhook-secret")
        expect(secret).to_have_text(re.compile(r"^whsec_[A-Za-z0-9+/]{43}=$"))
        expect(page.get_by_text("it is shown only now")).to_be_visible()
        copy = page.get_by_test_id("copy-secret")
        copy.click()
        expect(copy).to_have_text("Copied")
        assert page.evaluate("navigator.clipboard.readText()") == secret.inner_text()
        receiver.secrets.append(secret.inner_text())
        page.set_viewport_size({"width": 390, "height": 844})
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        page.screenshot(path=SECRET_SCREENSHOT, full_page=True)
        page.set_viewport_size({"width": 1280, "height": 900})

        page.get_by_role("link", name="I have copied it: show the endpoint").click()
        expect(page.get_by_test_id("webhook-secret")).to_have_count(0)
        page.get_by_role("button", name="Send test event").click()
        expect(page.get_by_role("status")).to_contain_text("A test message")
        assert send_due() == 1
        page.reload()

        delivery = page.get_by_test_id("delivery")
        expect(delivery).to_have_count(1)
        expect(delivery.locator(".event-type")).to_have_text("webhook.test")
        expect(delivery.get_by_test_id("delivery-status")).to_have_text("Succeeded")
        delivery.get_by_text("Attempts (1)").click()
        expect(delivery.get_by_test_id("attempt")).to_contain_text("HTTP 200")
        expect(delivery.get_by_test_id("attempt-body")).to_have_text("ok")
        [received] = receiver.received
        assert received.verified is not None and received.verified["type"] == "webhook.test"

        page.screenshot(path=WIDE_SCREENSHOT, full_page=True)
        page.set_viewport_size({"width": 390, "height": 844})
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), (
            "the page scrolls sideways on a phone"
        )
        page.screenshot(path=PHONE_SCREENSHOT, full_page=True)
        page.set_viewport_size({"width": 1280, "height": 900})
        page.get_by_role("link", name="← Webhooks").click()
        expect(page.get_by_test_id("endpoint-row")).to_have_count(1)
        page.screenshot(path=LIST_SCREENSHOT, full_page=True)
        assert page.evaluate("window.__cspViolations") == []
        assert errors == []
    finally:
        context.close()
