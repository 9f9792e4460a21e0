"""Render the images of the Apple Wallet pass (members/wallet_images/*.png) from the SVG below with
Debian's Chromium (there is no ImageMagick or Pillow here). Run once after changing the artwork:
    .venv/bin/python scripts/render_wallet_images.py
Sizes are Apple's: icon 29 pt, logo at most 160 x 50 pt, at 1x/2x(/3x)."""

from pathlib import Path

from playwright.sync_api import sync_playwright

OUT = Path(__file__).resolve().parent.parent / "members" / "wallet_images"
ICON = """<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 100 100' width='{w}' height='{h}'>
<rect width='100' height='100' rx='22' fill='#0b5d4b'/>
<circle cx='50' cy='50' r='30' fill='none' stroke='#f2a900' stroke-width='9'/>
<circle cx='50' cy='50' r='11' fill='#ffffff'/></svg>"""
LOGO = """<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 160 50' width='{w}' height='{h}'>
<circle cx='25' cy='25' r='15' fill='none' stroke='#f2a900' stroke-width='4.5'/>
<circle cx='25' cy='25' r='5.5' fill='#ffffff'/>
<text x='47' y='32' font-family='DejaVu Sans, sans-serif' font-weight='bold' font-size='19'
 fill='#ffffff'>Treuepunkt</text></svg>"""
IMAGES = [("icon.png", ICON, 29, 29), ("icon@2x.png", ICON, 58, 58), ("icon@3x.png", ICON, 87, 87),
          ("logo.png", LOGO, 160, 50), ("logo@2x.png", LOGO, 320, 100)]

with sync_playwright() as playwright:
    browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
    page = browser.new_page()
    for name, svg, width, height in IMAGES:
        page.set_viewport_size({"width": width, "height": height})
        page.set_content(f"<html><body style='margin:0;background:transparent'>{svg.format(w=width, h=height)}"
                         "</body></html>")
        page.locator("svg").screenshot(path=str(OUT / name), omit_background=True)
    browser.close()
