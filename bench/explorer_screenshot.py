"""Screenshot of the explorer for the README (``docs/img/explorer.png``), from real bundles.

Serves the given bundles on a free loopback port, drives Debian's Chromium headless with
Playwright (search "Toy Story", select it, compare with the second model, add two titles to the
watch list) and saves a PNG. Without bundles it trains a neural model and EASE on
ml-latest-small (``../shared/data/movielens/ml-latest-small.zip``, ratings ≥ 4) first.

Usage::

    python bench/explorer_screenshot.py                        # trains, then shoots
    python bench/explorer_screenshot.py runs/neural runs/ease --out docs/img/explorer.png
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MOVIELENS = ROOT.parent / "shared" / "data" / "movielens" / "ml-latest-small.zip"


def train(folder: Path, epochs: int) -> list[Path]:
    from tastespace.data import load_dataset
    from tastespace.models.baselines import EASE
    from tastespace.models.neural import NeuralRecommender

    if not MOVIELENS.exists():
        raise SystemExit(f"{MOVIELENS} not found; pass bundle directories instead")
    dataset = load_dataset(MOVIELENS, min_rating=4)
    out = []
    for name, model in (("neural", NeuralRecommender(epochs=epochs)), ("ease", EASE(l2=500.0))):
        started = time.perf_counter()
        out.append(model.fit(dataset).save(folder / name))
        print(f"trained {name} in {time.perf_counter() - started:.0f} s", flush=True)
    return out


def shoot(
    bundles: list[Path],
    out: Path,
    watch: list[str],
    size: tuple[int, int],
    method: str,
    zoom: int = 0,
) -> None:
    from playwright.sync_api import sync_playwright

    from tastespace.serve.app import create_app
    from tastespace.serve.background import serving

    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
    with serving(create_app(bundles)) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=args)
        page = browser.new_page(viewport={"width": size[0], "height": size[1]})
        page.set_default_timeout(600_000)
        page.goto(url)
        page.wait_for_selector("body[data-map-ready='1']")
        if method != "pca":
            page.select_option("#method", method)
            page.wait_for_function(
                "(m) => document.getElementById('map-status').textContent.includes(m)",
                arg=method.upper(),
            )
        for title in watch:
            page.fill("#search", "")
            page.type("#search", title.split(" (")[0], delay=10)
            page.locator("#suggestions li", has_text=title).first.click()
            page.wait_for_selector("#neighbours li")
            page.click("#add-selected")
        page.fill("#search", "")
        page.type("#search", watch[0].split(" (")[0], delay=10)
        page.locator("#suggestions li", has_text=watch[0]).first.click()
        if len(bundles) > 1:
            page.select_option("#compare-model", index=1)
            page.wait_for_selector("#compare-neighbours li")
        page.wait_for_selector("#recommendations li")
        for _ in range(zoom):
            page.click("#zoom-in")
        time.sleep(0.5)
        page.screenshot(path=str(out))
        browser.close()
    print(f"saved {out} ({out.stat().st_size / 1024:.0f} KiB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundles", nargs="*", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "explorer.png")
    parser.add_argument("--epochs", type=int, default=60, help="Neural epochs when training.")
    parser.add_argument("--watch", action="append", help="Titles for the watch list.")
    parser.add_argument("--size", default="1440x900", help="Viewport WIDTHxHEIGHT.")
    parser.add_argument("--method", default="pca", choices=("pca", "tsne", "umap"))
    parser.add_argument("--zoom", type=int, default=0, help="Clicks on the map's zoom-in button.")
    args = parser.parse_args()
    watch = args.watch or ["Toy Story (1995)", "Heat (1995)"]
    width, height = (int(x) for x in args.size.split("x"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tastespace-shot-") as scratch:
        bundles = args.bundles or train(Path(scratch), args.epochs)
        shoot(bundles, args.out, watch, (width, height), args.method, args.zoom)


if __name__ == "__main__":
    main()
