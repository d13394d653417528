"""The page at ``/`` in headless Chromium: the entities come out highlighted in the schema's colours.

``conflict-ie serve`` runs as a process on 127.0.0.1; Chromium opens ``/?text=...`` (the
page posts the text to ``/predict`` on load), dumps the DOM and takes a screenshot. The
PNG is checked for the light tint the page paints behind each entity (the legend uses
only the solid colours, so the tint proves a highlight), and kept for a person to look
at (its path is printed). Skipped when no Chromium is installed (``make chromium``, which
``make test-slow`` runs, installs Debian's), except under CI, where it fails.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import urllib.parse

import pytest

from conflict_ie.predictor import Predictor

from .serve_process import ServeProcess

pytestmark = pytest.mark.slow

TEXT = ("Wagner Group fighters killed 12 villagers in Bakhmut with drones. Governor Ivan Petrov of Belgorod said "
        "Russian forces repelled an attack.")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--window-size=1200,800", "--virtual-time-budget=20000"]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        if path := shutil.which(name):
            return path
    message = "no Chromium to load the page in (make chromium, or Debian: apt-get install chromium)"
    if os.environ.get("CI"):  # as with the Label Studio tests: CI must not pass by skipping this one
        pytest.fail(f"CI is set, so the page test may not be skipped: {message}", pytrace=False)
    pytest.skip(message)


def tint(hex_colour: str, alpha: float = 0x33 / 255) -> tuple[int, int, int]:
    """The colour ``#rrggbb`` + ``33`` (the page's highlight) painted over white."""
    rgb = [int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)]
    return tuple(round(255 + (c - 255) * alpha) for c in rgb)


def test_the_page_highlights_entities(world, tmp_path, schema):
    from PIL import Image

    browser = chromium()
    run = world[0] / "run"
    expected = Predictor.from_pretrained(run, progress=False).predict(TEXT)
    assert expected.entities, "the tiny model finds entities in its training text"
    serve = ServeProcess(run, tmp_path / "serve.log")
    try:
        serve.wait_healthy()
        url = serve.url + "/?" + urllib.parse.urlencode({"text": TEXT})

        def browse(*args, timeout=120):
            profile = tmp_path / f"profile-{len(os.listdir(tmp_path))}"
            profile.mkdir()
            return subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}", *args, url], capture_output=True,
                                  timeout=timeout, text=True)

        dom = browse("--dump-dom").stdout
        png = tmp_path / "page.png"
        shot = browse(f"--screenshot={png}")
        assert png.exists(), shot.stderr[-2000:]
    finally:
        serve.stop()
    marks = re.findall(r'<mark class="ent" data-label="([A-Z_]+)"[^>]*>([^<]*)<span class="tag"', dom)
    assert marks == [(e.label, e.text) for e in expected.entities], dom[-3000:]
    assert 'data-done="1"' in dom
    image = Image.open(png).convert("RGB")
    assert image.size == (1200, 800)
    pixels = list(image.getdata())
    colours = {e.color for e in schema.entities if e.label in {x.label for x in expected.entities}}
    for colour in colours:
        want = tint(colour)
        near = sum(1 for p in pixels if all(abs(a - b) <= 3 for a, b in zip(p, want)))
        assert near > 150, f"no highlight tinted {colour} in {png} ({near} pixels)"
    print(f"\nscreenshot of the page: {png}")
