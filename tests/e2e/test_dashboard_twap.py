"""A twap order placed from the dashboard in a real browser (headless Debian Chromium through
Playwright, never a downloaded browser) against the whole engine: its slices go out as market
orders and the detail panel follows the parent's own stream to the end, with its progress."""

from __future__ import annotations

from playwright.async_api import expect

from oee.api_bootstrap import bootstrap
from oee.settings import Settings
from tests.e2e.live_harness import serving
from tests.e2e.test_dashboard import CONFIRMED_WITHIN_MS, browser, engine, submit


async def test_a_twap_placed_in_the_dashboard_shows_its_slices_and_progress(
    provisioned: Settings,
) -> None:
    with engine(provisioned):
        async with serving(bootstrap(provisioned)) as api, browser() as chromium:
            page = await chromium.new_page(viewport={"width": 1440, "height": 1100})
            await page.goto(f"{api.http}/")
            await expect(page.locator("#feed-state")).to_have_text("live")
            await expect(page.locator("#schedule-fields")).to_be_hidden()

            await page.select_option("#order-type", "twap")
            await expect(page.locator("#schedule-fields")).to_be_visible()
            await expect(page.locator("#per-slice-label")).to_be_hidden()
            await page.fill("#slices", "2")
            await page.fill("#interval-s", "1")
            await submit(page, "SOL", "USDC", "0.2", 100)

            await expect(page.locator("#form-message")).to_contain_text("Accepted: order")
            await expect(page.locator("#detail-status")).to_have_text(
                "confirmed", timeout=CONFIRMED_WITHIN_MS)
            types = page.locator("#timeline li .type")
            await expect(types.first).to_contain_text("ParentAccepted")
            await expect(types.filter(has_text="SliceReleased")).to_have_count(2)
            await expect(types.last).to_contain_text("ParentCompleted")
            progress = page.locator("#detail-progress")
            await expect(progress).to_contain_text("2 released, 0 skipped, 0 remaining of 2")
            await expect(progress).to_contain_text("2 filled")
