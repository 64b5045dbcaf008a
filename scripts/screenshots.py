"""Screenshots of the main pages for the README, taken from a running demo (`make run`).

Usage: .venv/bin/python scripts/screenshots.py [http://127.0.0.1:8000] [docs/screenshots]
Signs in as the demo owner and saves one PNG per page, in Japanese (the default language).
"""

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

BASE = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000"
OUT = Path(sys.argv[2] if len(sys.argv) > 2 else "docs/screenshots")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]

PAGES = [
    ("dashboard", "/"),
    ("official-accounts", "/accounts/official/"),
    ("campaigns", "/campaigns/"),
    ("contacts", "/campaigns/contacts/"),
    ("inbox", "/messaging/inbox/"),
    ("audit-log", "/audit/"),
    ("api-keys", "/accounts/api-keys/"),
]


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1360, "height": 900}, locale="ja-JP")
        page.goto(f"{BASE}/login/")
        page.fill("input[name=username]", "demo")
        page.fill("input[name=password]", "plusmessage-demo")
        page.click("form:has(input[name=password]) button[type=submit]")
        page.wait_for_url(f"{BASE}/")
        for name, path in PAGES:
            page.goto(f"{BASE}{path}")
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(OUT / f"{name}.png"), full_page=False)
        # The pages reached from a list: the first official account (with its fixed-menu editor),
        # the demo campaign's composer and its monitor.
        for name, list_path, link in (
            ("official-account", "/accounts/official/", "a[href*='/accounts/official/'][href$='/']"),
            ("campaign", "/campaigns/", "a[href^='/campaigns/'][href$='/']"),
        ):
            page.goto(f"{BASE}{list_path}")
            hrefs = [a.get_attribute("href") for a in page.query_selector_all(link)]
            target = next((h for h in hrefs if any(ch.isdigit() for ch in h)), None)
            if target:
                page.goto(f"{BASE}{target}")
                page.wait_for_load_state("networkidle")
                page.screenshot(path=str(OUT / f"{name}.png"), full_page=False)
                if name == "campaign":
                    for suffix in ("edit/", "monitor/"):
                        page.goto(f"{BASE}{target}{suffix}")
                        page.wait_for_load_state("networkidle")
                        page.screenshot(path=str(OUT / f"campaign-{suffix.rstrip('/')}.png"), full_page=False)
        browser.close()


if __name__ == "__main__":
    main()
