"""The Content Security Policy in a real browser: the console (unfold with Alpine.js, htmx and
Chart.js), the portal and the API docs load with the strict policy and the browser reports no
violation; the partner API's JSON gets the tightest policy (loyalty_site/csp.py)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from loyalty_site.dashboard import compute_figures
from members.services import member_link_or_enrol
from rewards.demo import seed_catalogue_basics
from rewards.ledger import points_adjust
from rewards.purchases import LineData, purchase_record
from tests import factories
from transfers.models import ImportJob

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Every violation fires a `securitypolicyviolation` event in the page (and a console error).
COLLECT_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} blocked ${event.blockedURI || "inline"} `
                              + `at ${event.sourceFile}:${event.lineNumber} ${event.sample}`);
});
"""


class ViolationWatcher:
    def __init__(self, page) -> None:
        self.page = page
        self.console: list[str] = []
        page.add_init_script(COLLECT_VIOLATIONS)
        page.on("console", self._on_console)

    def _on_console(self, message) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.console.append(message.text)

    def assert_clean(self, url: str) -> None:
        violations = self.visit(url)
        assert not violations, f"{url}:\n" + "\n".join(violations)

    def assert_clean_so_far(self) -> None:
        self.page.wait_for_load_state("networkidle")
        violations = self.console + self.page.evaluate("window.__cspViolations")
        assert not violations, f"{self.page.url}:\n" + "\n".join(violations)

    def visit(self, url: str) -> list[str]:
        self.console.clear()
        response = self.page.goto(url)
        assert response.status == 200, url
        assert "default-src 'self'" in response.headers["content-security-policy"]
        self.page.wait_for_load_state("networkidle")
        self.page.wait_for_timeout(300)  # Alpine and Chart.js finish after the load event
        return self.console + self.page.evaluate("window.__cspViolations")


@pytest.fixture
def shopper(db):
    factories.tier_ladder()
    partner, stores = seed_catalogue_basics()
    factories.EarningRuleFactory(name_de="1 Punkt pro Euro", effect="base", value=1, priority=1)
    user = factories.UserFactory(email="erika@example.org")
    member = member_link_or_enrol(user=user, email="erika@example.org")
    now = timezone.now()
    for day in range(0, 90, 6):
        at = now - timedelta(days=day)
        purchase_record(member_id=member.pk, partner=partner, order_reference=f"BON-{day}", amount=Decimal(30 + day),
                        occurred_at=at, booked_at=at, store=stores[day % len(stores)],
                        lines=[LineData(amount=Decimal(30 + day), category="Kaffee")])
    points_adjust(member_id=member.pk, points=-5, reason="Kulanz korrigiert", staff_user=None)
    compute_figures()
    return member


def test_console_pages_load_without_csp_violations(page, live_server, shopper, sign_in):
    sign_in(factories.UserFactory(is_staff=True, is_superuser=True))
    watcher = ViolationWatcher(page)
    base = live_server.url

    watcher.assert_clean(base + reverse("admin:index"))
    expect(page.locator("canvas").first).to_be_visible()  # Chart.js drew under the policy
    watcher.assert_clean(base + reverse("admin:members_member_changelist"))
    watcher.assert_clean(base + reverse("admin:members_member_change", args=[shopper.pk]))
    expect(page.get_by_text("Kulanz korrigiert").first).to_be_visible()
    watcher.assert_clean(base + reverse("admin:rewards_earningrule_changelist"))
    watcher.assert_clean(base + reverse("admin:rewards_earningrule_add"))
    # A running import polls its progress from console/import_job.js (was an inline script).
    job = factories.ImportJobFactory(status=ImportJob.Status.IMPORTING, rows_total=10, rows_processed=4)
    with page.expect_request(lambda request: "progress" in request.url, timeout=5000):
        watcher.assert_clean(base + reverse("admin:transfers_importjob_change", args=[job.pk]))
    # Setting up an authenticator app: password again first, then the QR code (a data: image).
    watcher.assert_clean(base + reverse("mfa_activate_totp"))
    page.locator('input[name="password"]').fill("correct-horse-battery")
    page.locator('form button[type="submit"]').last.click()
    expect(page.locator('img[src^="data:image/svg+xml"]')).to_be_visible()
    watcher.assert_clean_so_far()


def test_portal_pages_load_without_csp_violations(page, live_server, shopper, sign_in):
    sign_in(shopper.user)
    watcher = ViolationWatcher(page)
    base = live_server.url
    for name in ("portal:dashboard", "portal:card", "portal:activity", "portal:rewards", "portal:profile",
                 "portal:privacy", "referrals:portal", "feedback:portal",
                 "feedback:complaint_new"):
        watcher.assert_clean(base + reverse(name))


def test_public_pages_load_without_csp_violations(page, live_server, shopper):
    watcher = ViolationWatcher(page)
    for path in ("/", "/en/", reverse("portal:terms"), reverse("account_login"), reverse("account_signup"),
                 reverse("admin:login")):
        watcher.assert_clean(live_server.url + path)


def test_api_docs_load_without_csp_violations(page, live_server, db):
    watcher = ViolationWatcher(page)
    watcher.assert_clean(live_server.url + reverse("api-docs"))
    expect(page.get_by_text("Treuepunkt Partner API").first).to_be_visible()  # Swagger UI rendered the schema
