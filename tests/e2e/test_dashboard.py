"""The dashboard in a real browser: sign-in, role-dependent navigation, staff pages, CSP."""

import re
from urllib.parse import quote

import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from staff.models import StaffMember
from staff.roles import Role
from tenants.context import tenant_context
from tests.e2e.conftest import WATCH_CSP

pytestmark = pytest.mark.django_db(transaction=True)

ROLES = [role.value for role in Role]
FLOOR = ["Overview", "Kitchen", "Orders", "Menus", "Sold out", "Publish"]
OWNER_NAV = [*FLOOR, "Customers", "Promotions", "Payments", "Payouts", "Disputes", "Staff"]
OWNER_NAV += ["Audit log", "Exports", "API keys", "Webhooks", "Settings"]
ADMIN_NAV = [*FLOOR, "Customers", "Promotions", "Payments", "Disputes", "Staff", "Audit log"]
ADMIN_NAV += ["Exports", "API keys", "Webhooks", "Settings"]
MANAGER_NAV = [*FLOOR, "Customers", "Promotions", "Staff", "Settings"]
FLOOR_NAV = [*FLOOR, "Settings"]
EXPECTED_NAV = {
    Role.OWNER: OWNER_NAV,
    Role.ADMIN: ADMIN_NAV,
    Role.MANAGER: MANAGER_NAV,
    Role.CASHIER: FLOOR_NAV,
    Role.KITCHEN: FLOOR_NAV,
}
PHONE_SCREENSHOT = "/tmp/e2e-staff-phone.png"  # noqa: S108 (for a human to look at)
API_KEYS_SCREENSHOT = "/tmp/apikeys-page.png"  # noqa: S108 (for a human to look at)
API_KEYS_LIST_SCREENSHOT = "/tmp/apikeys-list.png"  # noqa: S108 (for a human to look at)
API_KEY_SCREENSHOT = "/tmp/apikeys-key.png"  # noqa: S108 (for a human to look at)


def sign_in(page: Page, base_url: str, role: str, *, slug: str = "ours") -> None:
    page.goto(f"{base_url}/dev/sign-in")
    page.get_by_test_id(f"sign-in-{slug}-{role}").click()
    expect(page).to_have_url(f"{base_url}/dashboard/")


def nav_links(page: Page) -> list[str]:
    return page.get_by_test_id("nav").get_by_role("link").all_inner_texts()


def staff_row(page: Page, email: str):
    return page.get_by_test_id("staff-table").get_by_role("row").filter(has_text=email)


@pytest.mark.parametrize("role", ROLES)
def test_each_role_signs_in_and_sees_its_navigation(page, base_url, roster, role):
    sign_in(page, base_url, role)

    expect(page.get_by_test_id("restaurant-name")).to_have_text("Ours")
    expect(page.get_by_test_id("role")).to_have_text(Role(role).label)
    expect(page.get_by_role("heading", level=1)).to_have_text(
        f"Welcome, {roster[('ours', role)].label}"
    )
    assert nav_links(page) == EXPECTED_NAV[Role(role)]


def test_anonymous_dashboard_redirects_to_sign_in_and_back(page, base_url, roster):
    response = page.goto(f"{base_url}/dashboard/staff")

    assert response is not None and response.request.redirected_from is not None
    assert response.request.redirected_from.url == f"{base_url}/dashboard/staff"
    expect(page).to_have_url(f"{base_url}/dev/sign-in?next={quote('/dashboard/staff', safe='')}")
    page.get_by_test_id("sign-in-ours-owner").click()
    expect(page).to_have_url(f"{base_url}/dashboard/staff")
    expect(page.get_by_test_id("staff-table")).to_be_visible()


@pytest.mark.parametrize("role", [Role.CASHIER.value, Role.KITCHEN.value])
def test_staff_page_is_forbidden_below_manager(page, base_url, roster, role):
    sign_in(page, base_url, role)

    response = page.goto(f"{base_url}/dashboard/staff")

    assert response is not None and response.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("403")
    expect(page.get_by_text("Your role does not give access to this page.")).to_be_visible()
    expect(page.get_by_test_id("staff-table")).to_have_count(0)


def test_manager_sees_own_staff_but_cannot_invite_or_change_anyone(page, base_url, roster):
    sign_in(page, base_url, Role.MANAGER)

    page.get_by_test_id("nav").get_by_role("link", name="Staff").click()

    expect(page).to_have_url(f"{base_url}/dashboard/staff")
    for role in ROLES:
        expect(staff_row(page, roster[("ours", role)].email)).to_have_count(1)
        expect(staff_row(page, roster[("theirs", role)].email)).to_have_count(0)
    expect(page.get_by_role("heading", name="Invite someone")).to_have_count(0)
    expect(page.get_by_role("button", name="Send invitation")).to_have_count(0)
    expect(page.get_by_role("button", name="Deactivate")).to_have_count(0)


def test_owner_invites_someone_who_is_then_listed_as_invited(page, base_url, roster):
    email = "new.cook@ours.example.com"
    sign_in(page, base_url, Role.OWNER)
    page.get_by_test_id("nav").get_by_role("link", name="Staff").click()
    invite = page.locator("form").filter(has=page.get_by_role("button", name="Send invitation"))

    invite.get_by_label("Email").fill(email)
    invite.get_by_label("Name").fill("New Cook")
    invite.get_by_label("Role").select_option(label="Kitchen")
    invite.get_by_role("button", name="Send invitation").click()

    expect(page).to_have_url(f"{base_url}/dashboard/staff")
    expect(page.get_by_role("status")).to_contain_text(f"Invited {email}.")
    cells = staff_row(page, email).get_by_role("cell")
    expect(cells.nth(0)).to_have_text("New Cook")
    expect(cells.nth(2)).to_have_text("Kitchen")
    expect(cells.nth(3)).to_have_text("Invited")
    with tenant_context(roster[("ours", Role.OWNER)].restaurant):
        invited = StaffMember.objects.get(email=email)
    assert invited.is_pending and invited.role == Role.KITCHEN


@pytest.mark.parametrize("role", [Role.OWNER.value, Role.CASHIER.value])
def test_dashboard_pages_have_no_console_errors_or_csp_violations(page, base_url, roster, role):
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.add_init_script(WATCH_CSP)
    violations: list[str] = []

    sign_in(page, base_url, role)
    violations += page.evaluate("window.__cspViolations")
    visited = [page.url]
    for label in nav_links(page):
        page.get_by_test_id("nav").get_by_role("link", name=label).click()
        expect(page.get_by_test_id("nav").locator("[aria-current=page]")).to_have_text(label)
        visited.append(page.url)
        violations += page.evaluate("window.__cspViolations")

    assert len(visited) == len(EXPECTED_NAV[Role(role)]) + 1
    assert violations == []
    assert errors == []


def test_the_csp_is_enforced_so_a_violation_would_be_seen(page, base_url, roster):
    """Proves the check above can fail: an inline script without the nonce is refused."""
    errors: list[ConsoleMessage] = []
    page.on("console", lambda m: errors.append(m) if m.type == "error" else None)
    page.add_init_script(WATCH_CSP)
    sign_in(page, base_url, Role.OWNER)

    ran = page.evaluate(
        """() => {
          const script = document.createElement("script");
          script.textContent = "window.__injected = true";
          document.head.append(script);
          return window.__injected === true;
        }"""
    )

    assert ran is False
    expect(page.locator("body")).to_be_visible()
    assert any("script-src" in v for v in page.evaluate("window.__cspViolations"))
    assert any("Content Security Policy" in m.text for m in errors)


def test_owner_staff_page_on_a_phone(browser, base_url, roster):
    """Leaves a screenshot for a human to look at; the pixels are not asserted."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        page = context.new_page()
        sign_in(page, base_url, Role.OWNER)
        page.goto(f"{base_url}/dashboard/staff")
        expect(page.get_by_role("button", name="Send invitation")).to_be_visible()
        page.screenshot(path=PHONE_SCREENSHOT, full_page=True)
    finally:
        context.close()


def test_owner_creates_an_api_key_on_a_phone_and_copies_it(browser, base_url, roster):
    """The secret is shown once, fits a phone's width, and its button copies it. Leaves a
    screenshot for a human to look at."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base_url)
    errors: list[str] = []
    try:
        page = context.new_page()
        # The site has no favicon: the browser's own request for one is not the page's error.
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
        page.get_by_test_id("nav").get_by_role("link", name="API keys").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("API keys")
        form = page.get_by_test_id("create-key-form")
        form.get_by_label("Name").fill("Kitchen display")
        form.get_by_label("Orders").select_option("write")
        form.get_by_label("Menus").select_option("read")
        form.get_by_role("button", name="Create key").click()

        secret = page.get_by_test_id("api-key-secret")
        expect(secret).to_have_text(re.compile(r"^nk_test_[0-9A-Za-z]{32}_[0-9A-Za-z]{6}$"))
        expect(page.get_by_text("it will not be shown again")).to_be_visible()
        copy = page.get_by_test_id("copy-secret")
        expect(copy).to_be_visible()
        copy.click()
        expect(copy).to_have_text("Copied")
        assert page.evaluate("navigator.clipboard.readText()") == secret.inner_text()
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), (
            "the page scrolls sideways on a phone"
        )
        page.screenshot(path=API_KEYS_SCREENSHOT, full_page=True)

        page.get_by_role("link", name="All API keys").click()
        expect(page.get_by_test_id("api-key-row")).to_have_count(1)
        expect(page.get_by_test_id("api-key-secret")).to_have_count(0)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        page.screenshot(path=API_KEYS_LIST_SCREENSHOT, full_page=True)
        page.get_by_role("link", name="Kitchen display").click()
        expect(page.get_by_role("button", name="Roll secret")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        page.screenshot(path=API_KEY_SCREENSHOT, full_page=True)
        assert page.evaluate("window.__cspViolations") == []
        assert errors == []
    finally:
        context.close()


def test_api_docs_render_with_local_assets_and_no_csp_violations(page, base_url):
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    outside: list[str] = []
    page.on(
        "request",
        lambda r: outside.append(r.url) if not r.url.startswith((base_url, "data:")) else None,
    )
    page.add_init_script(WATCH_CSP)
    page.goto(f"{base_url}/api/v1/docs/")
    expect(page.get_by_role("heading", name="Nordkestrel API")).to_be_visible()
    expect(page.get_by_text("/api/v1/staff/{id}/deactivate")).to_be_visible()
    assert page.evaluate("window.__cspViolations") == []
    assert errors == []
    assert outside == []
