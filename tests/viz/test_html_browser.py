"""The standalone page in headless Chromium: draws, searches, lists neighbours, stays offline."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

CHROMIUM = "/usr/bin/chromium"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"{CHROMIUM} not installed (apt-get install -y chromium)")
    with playwright.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


def test_page_works_offline(browser, neural2d, tmp_path):
    from tastespace.viz.catalog import MapCatalog
    from tastespace.viz.maps import write_item_map

    (page_path,) = write_item_map(neural2d, html=tmp_path / "map.html", method="pca")
    catalog = MapCatalog.from_model(neural2d)
    target = int(np.argmax(catalog.popularity))
    title = catalog.titles[target]

    page = browser.new_page(viewport={"width": 1200, "height": 800})
    errors: list[str] = []
    remote: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.on(
        "request", lambda req: remote.append(req.url) if not req.url.startswith("file:") else None
    )
    page.goto(page_path.resolve().as_uri())

    painted = page.evaluate(
        """() => {
        const c = document.getElementById('canvas');
        const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < px.length; i += 4) if (px[i] > 0) n++;
        return n; }"""
    )
    assert painted > 500, "the map was not drawn"

    page.fill("#search", title[:8])
    assert title in page.locator("#suggest li").all_inner_texts()
    page.locator("#suggest li", has_text=title).first.click()
    assert page.locator("#chosen-title").inner_text() == title
    expected, _ = neural2d.similar_items(target, k=10)
    listed = page.locator("#nbrs li").all_inner_texts()
    assert listed == [catalog.titles[i] for i in expected]
    assert errors == [] and remote == []
