"""The explorer page in a real browser: Debian's Chromium, headless, driven by Playwright.

Skips (never fails) where /usr/bin/chromium or the playwright package is missing; CI installs
both (see .ci/run). The page must work offline: every request it makes goes to our own server.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tastespace.serve.background import serving
from tests.serve.movies import CLUSTERS

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists() and shutil.which("chromium") is None:
        pytest.skip(f"{CHROMIUM} not found (apt-get install -y chromium)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright not installed (pip install playwright)"
    )
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM) if CHROMIUM.exists() else shutil.which("chromium"),
            args=LAUNCH_ARGS,
        )
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def site(movie_bundles):
    from tastespace.serve.app import create_app

    with serving(create_app(movie_bundles)) as url:
        yield url


@pytest.fixture
def page(browser, site):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.requests = []
    page.errors = []
    page.on("request", lambda request: page.requests.append(request.url))
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.on("console", lambda msg: page.errors.append(msg.text) if msg.type == "error" else None)
    yield page
    context.close()


def coloured_pixels(page) -> int:
    """Canvas pixels that differ from the map background (i.e. drawn points)."""
    return page.evaluate(
        """() => {
            const canvas = document.getElementById('map');
            const context = canvas.getContext('2d');
            const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
            let n = 0;
            for (let k = 0; k < data.length; k += 4) {
                if (data[k] !== 17 || data[k + 1] !== 20 || data[k + 2] !== 24) n++;
            }
            return n;
        }"""
    )


def pick(page, text: str, title: str) -> None:
    """Type into the search box and click the suggestion with exactly ``title``."""
    page.fill("#search", "")
    page.type("#search", text, delay=20)
    option = page.locator("#suggestions li", has_text=title).first
    option.wait_for()
    option.click()
    page.wait_for_function(
        "(title) => document.getElementById('selected').textContent.includes(title)", arg=title
    )


def texts(page, selector: str) -> list[str]:
    return page.locator(f"{selector} li .link").all_inner_texts()


def test_explorer_map_search_neighbours_and_recommendations(page, site):
    page.goto(site)
    page.wait_for_selector("body[data-map-ready='1']")
    page.wait_for_function("() => Number(document.getElementById('map').dataset.drawn) > 0")
    assert coloured_pixels(page) > 24 * 4  # every one of the 24 movies is at least a 2×2 dot
    assert page.locator("#legend li").count() >= 5
    assert page.locator("#model option").all_inner_texts() == ["ease (ease)", "ease-strong (ease)"]

    pick(page, "Toy Story", "Toy Story (1995)")
    page.wait_for_selector("#neighbours li")
    neighbours = texts(page, "#neighbours")
    family = {"Aladdin (1992)", "Lion King, The (1994)", "Jumanji (1995)", "Babe (1995)"}
    assert len(neighbours) >= 5 and family <= set(neighbours[:5]), neighbours

    page.click("#add-selected")
    page.wait_for_selector("#watchlist li")
    pick(page, "heat", "Heat (1995)")
    page.click("#add-selected")
    page.wait_for_function("() => document.querySelectorAll('#watchlist li').length === 2")
    page.wait_for_function(  # the ranking for both titles, not the one for Toy Story alone
        "() => document.getElementById('recommend-status').textContent.includes('list of 2')"
    )
    recommended = texts(page, "#recommendations")
    assert "Toy Story (1995)" not in recommended and "Heat (1995)" not in recommended
    assert {"Aladdin (1992)", "Casino (1995)"} <= set(recommended[:10]), recommended
    because = page.locator("#recommendations li .because").all_inner_texts()
    assert because and all(b.startswith("because you watched") for b in because)
    assert any("Toy Story (1995)" in b or "Heat (1995)" in b for b in because), because
    scores = [float(s) for s in page.locator("#recommendations .score").all_inner_texts()]
    assert scores == sorted(scores, reverse=True) and scores[0] > 0

    # removing one title re-ranks for the other alone
    page.click("#watchlist li:has-text('Heat (1995)') button[aria-label^='Remove']")
    page.wait_for_function("() => document.querySelectorAll('#watchlist li').length === 1")
    page.wait_for_function(
        "() => !document.getElementById('recommendations').textContent.includes('Aladdin')"
        " || document.getElementById('recommend-status').textContent.includes('of 1')"
    )
    assert page.errors == []
    assert all(url.startswith(site) or url.startswith("data:") for url in page.requests), [
        u for u in page.requests if not u.startswith(site)
    ]


def test_compare_mode_shows_both_neighbourhoods(page, site):
    page.goto(site)
    page.wait_for_selector("body[data-map-ready='1']")
    pick(page, "Toy Story", "Toy Story (1995)")
    page.select_option("#compare-model", "ease-strong")
    page.wait_for_selector("#compare-neighbours li")
    assert page.locator("#compare-column").is_visible()
    assert "Aladdin (1992)" in texts(page, "#compare-neighbours")
    assert page.locator("#neighbours li.shared").count() >= 3  # same family in both models
    shared = page.locator("#neighbours li.shared").count()
    overlap = page.locator("#compare-overlap").inner_text()
    assert overlap.startswith("overlap@") and f": {shared}/" in overlap, overlap

    page.select_option("#model", "ease-strong")
    page.wait_for_function(
        "() => document.getElementById('map-status').textContent.includes('ease-strong')"
    )
    page.wait_for_function(
        "() => document.getElementById('neighbours-model').textContent === 'ease-strong'"
    )
    assert page.errors == []


def test_clicking_a_dot_selects_it(page, site):
    page.goto(site)
    page.wait_for_selector("body[data-map-ready='1']")
    x, y = page.evaluate(
        """async () => {
            const r = await fetch('/api/map').then(r => r.json());
            const canvas = document.getElementById('map');
            const box = canvas.getBoundingClientRect();
            const w = canvas.clientWidth, h = canvas.clientHeight;
            const scale = Math.min(w, h) / 2 * 0.92;
            const i = r.titles.indexOf('Heat (1995)');
            return [box.left + w / 2 + r.x[i] * scale, box.top + h / 2 - r.y[i] * scale];
        }"""
    )
    page.mouse.move(x, y)
    page.wait_for_selector("#tooltip:not([hidden])")
    page.mouse.click(x, y)
    page.wait_for_selector("#neighbours li")
    crime = {title for title, _ in CLUSTERS["crime"]}
    selected = page.inner_text("#selected strong")
    assert selected in crime  # the dot under the pointer (a cluster-mate may overlap Heat's)
    assert len(crime & set(texts(page, "#neighbours")[:5])) >= 4


TOKEN = "browser-test-token"


@pytest.fixture(scope="module")
def locked_site(movie_bundles):
    from tastespace.serve.app import create_app

    with serving(create_app(movie_bundles, token=TOKEN)) as url:
        yield url


def test_a_locked_server_takes_the_token_from_the_address_once(page, locked_site):
    page.goto(f"{locked_site}/?token={TOKEN}")
    page.wait_for_selector("body[data-map-ready='1']")
    assert "token" not in page.url  # out of the address bar, history and bookmarks
    pick(page, "Toy Story", "Toy Story (1995)")
    page.wait_for_selector("#neighbours li")
    page.reload()  # the tab keeps it
    page.wait_for_selector("body[data-map-ready='1']")
    assert page.errors == []
    assert page.evaluate("() => sessionStorage.getItem('tastespace-token')") == TOKEN


@pytest.mark.fault("serve", "explorer opened without the token", "page says to open /?token=")
def test_a_locked_server_without_the_token_says_what_to_do(page, locked_site):
    page.goto(locked_site)
    page.wait_for_function(
        "() => document.getElementById('map-status').textContent.includes('?token=')"
    )
    status = page.inner_text("#map-status")
    assert status.startswith("Could not start: missing bearer token"), status


@pytest.mark.parametrize(("path", "drawn"), [("/docs", ".swagger-ui .info"), ("/redoc", "h1")])
def test_the_api_reference_draws_offline(page, site, path, drawn):
    """Everything the pages need comes from this server; what they would fetch from elsewhere
    (ReDoc's "powered by" logo) the content policy refuses before a byte leaves."""
    loaded = []
    page.on("requestfinished", lambda request: loaded.append(request.url))
    page.goto(f"{site}{path}")
    page.wait_for_selector(drawn)
    assert "tastespace" in page.inner_text(drawn)
    page.get_by_text("/api/recommend").first.wait_for()
    local = (site, f"blob:{site}", "data:")
    assert [u for u in loaded if not u.startswith(local)] == []
    assert f"{site}/openapi.json" in loaded
    refused = [e for e in page.errors if "Content Security Policy" in e]
    outside = [u for u in page.requests if not u.startswith(local)]
    assert len(refused) >= len(outside), (outside, page.errors)
