"""Browser test: a media upload shows its real progress (the XHR's upload events, through htmx), a
file over its kind's limit is refused before anything is sent, a very large image is warned about,
and at phone width the sticky action bar never covers the field being filled in."""

import os

import pytest
from PIL import Image

from tests.browser.conftest import NEEDS_CHROMIUM, screenshot_path
from tests.browser.test_campaign_flow import sign_in, world  # noqa: F401 (a fixture)

pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), NEEDS_CHROMIUM]

RECORD_PROGRESS = """() => {
  window.progressSeen = [];
  document.addEventListener("htmx:xhr:progress", () => {
    const bar = document.querySelector("#slot-media .upload-progress");
    if (bar && !bar.hidden) window.progressSeen.push(bar.querySelector("progress").value);
  });
}"""


def noise_png(path, size):
    """A PNG that does not compress (a few MB), larger than phones need."""
    Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3)).save(path, "PNG")
    return path


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_upload_progress_refusal_and_warning(browser, live_server, world, tmp_path, lang):  # noqa: F811
    page = sign_in(browser, live_server, "browser-marketer", lang)
    page.goto(f"{live_server.url}/campaigns/new/")
    page.click("label.kind-tab:has(input[value=media])")
    page.evaluate(RECORD_PROGRESS)
    uploads = []
    page.on("request", lambda request: uploads.append(request.url) if "/compose/media/" in request.url else None)

    # Over the image limit: refused in the browser at once, nothing sent.
    big = tmp_path / "poster.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * (11 * 1024 * 1024))
    page.set_input_files("[name='media.upload']", str(big))
    refusal = page.locator("#slot-media .upload-refused")
    refusal.wait_for(state="visible")
    assert "11" in refusal.inner_text() and "10" in refusal.inner_text()
    page.wait_for_timeout(300)
    assert uploads == []

    # A real upload: the progress bar fills from the XHR's upload events, then the slot is swapped.
    photo = noise_png(tmp_path / "photo.png", (1000, 2200))
    page.set_input_files("[name='media.upload']", str(photo))
    page.wait_for_function("document.querySelector(\"[name='media.url']\").value.includes('/media/')")
    seen = page.evaluate("window.progressSeen")
    assert seen and seen[-1] == 100 and seen == sorted(seen), seen
    assert len(uploads) == 1
    warning = page.locator("#slot-media .warnlist").inner_text()
    assert "1,000×2,200" in warning
    page.screenshot(path=screenshot_path(f"composer-upload-{lang}"))


def test_the_sticky_action_bar_never_covers_the_field_being_filled_in(browser, live_server, world):  # noqa: F811
    page = sign_in(browser, live_server, "browser-marketer", "ja")
    page.set_viewport_size({"width": 390, "height": 700})
    page.goto(f"{live_server.url}/campaigns/new/")
    for selector in ("[name=sms_text]", "[name=ttl_seconds]", "[name=audience_lists]"):
        covered = page.evaluate(
            """(selector) => {
                 window.scrollTo(0, 0);
                 const field = document.querySelector(selector);
                 field.focus({preventScroll: true});
                 field.scrollIntoView({block: "nearest"});  // what keyboard and find-in-page scrolling do
                 const bar = document.querySelector(".composer-actions").getBoundingClientRect();
                 return field.getBoundingClientRect().bottom - bar.top;
               }""",
            selector,
        )
        assert covered <= 0, (selector, covered)
    page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
    last_card = page.evaluate(
        "document.querySelector('.composer-main > section.card:last-of-type').getBoundingClientRect().bottom")
    bar_top = page.evaluate("document.querySelector('.composer-actions').getBoundingClientRect().top")
    assert last_card <= bar_top
    page.screenshot(path=screenshot_path("composer-action-bar-390"))
