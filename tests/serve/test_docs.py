"""/docs and /redoc work offline: their HTML names only this server, which serves the assets."""

from __future__ import annotations

import re

import pytest

from tastespace.serve.app import create_app
from tests.serve.client import local_client

URL_ATTRIBUTE = re.compile(r"""(?:src|href)=["']([^"']+)["']""")


@pytest.fixture(scope="module")
def client(ease_bundle):
    return local_client(create_app([ease_bundle]))


@pytest.mark.parametrize(
    ("page", "assets"),
    [
        ("/docs", {"/docs-assets/swagger-ui.css", "/docs-assets/swagger-ui-bundle.js"}),
        ("/redoc", {"/docs-assets/redoc.standalone.js"}),
    ],
)
def test_reference_pages_load_only_local_assets(client, page, assets):
    html = client.get(page).text
    urls = set(URL_ATTRIBUTE.findall(html))
    assert assets <= urls
    assert all(url.startswith("/") and not url.startswith("//") for url in urls), urls
    assert "cdn" not in html.lower() and "fonts.googleapis" not in html
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        assert len(response.content) > 1000, url  # the real bundle, not a placeholder
    assert "'/openapi.json'" in html or '"/openapi.json"' in html
    assert client.get("/openapi.json").json()["info"]["title"] == "tastespace"
