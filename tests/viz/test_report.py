"""`tastespace report`: the page, its pictures and its numbers, through the CLI and Chromium."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from tastespace.cli import app

runner = CliRunner()
DATA = "synthetic:users=400,items=120,genres=4,noise=0.05,seed=2"
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    assert (
        runner.invoke(
            app, ["fit", "--model", "ease", "--data", DATA, "--out", str(root / "b")]
        ).exit_code
        == 0
    )
    result = runner.invoke(
        app, ["report", str(root / "b"), "--data", DATA, "--out", str(root / "r.html"), "--json"]
    )
    assert result.exit_code == 0, result.output
    return root / "r.html", json.loads(result.stdout)


def test_numbers_and_files(report):
    page, numbers = report
    assert numbers["genre_purity"]["lift"] > 1.5  # planted genres: neighbours share them
    assert 0 <= numbers["recommendations"]["gini"] <= 1
    assert set(numbers["by_item_popularity"]) <= {"head", "torso", "tail"}
    pngs = sorted(p.name for p in (page.parent / "r_files").iterdir())
    assert pngs == [
        "by-item-popularity.png",
        "exposure-lorenz.png",
        "hubness.png",
        "norm-vs-popularity.png",
    ]
    text = page.read_text(encoding="utf-8")
    assert text.count("data:image/png;base64,") == 4 and "http" not in text.split("<body>")[1]


@pytest.mark.browser
def test_page_opens_in_chromium(report):
    playwright = pytest.importorskip("playwright.sync_api")
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"{CHROMIUM} not installed")
    page_path, numbers = report
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.goto(page_path.as_uri())
        headings = page.locator("h2").all_inner_texts()
        widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.naturalWidth)")
        embedded = json.loads(page.locator("#numbers").text_content())
        browser.close()
    assert not errors
    assert "Hubness" in headings and "Popularity bias" in headings
    assert len(widths) == 4 and all(w > 100 for w in widths)
    assert embedded["genre_purity"] == numbers["genre_purity"]
