"""Inline SVG images of the loyalty card and vouchers: a QR code (segno) for phones and scanners
that read 2D codes, and a Code 128 barcode (python-barcode) that every till scanner reads.

Both are drawn server-side from digits and voucher codes we generated ourselves, so the SVG
text is safe to insert into the page; scalable (viewBox, no fixed size), so CSS sizes them.
"""

from __future__ import annotations

import segno
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe


def qr_svg(data: str, *, label: str) -> SafeString:
    qr = segno.make(data, error="m", micro=False)
    svg = qr.svg_inline(scale=1, border=2, omitsize=True, dark="#111", light="#fff", svgclass="qr",
                        title=label)
    # segno writes no role; a screen reader should announce it as one image with its label.
    return mark_safe(svg.replace("<svg ", f'<svg role="img" aria-label="{escape(label)}" ', 1))  # noqa: S308


def code128_svg(data: str, *, label: str, height: int = 40) -> SafeString:
    """Code 128 from python-barcode's encoder; bars drawn as merged runs in module units."""
    import barcode  # imported here: at import it logs that Pillow (not needed for SVG) is missing

    modules = barcode.get("code128", data).build()[0]
    quiet = 10  # the quiet zone scanners need on each side, in modules
    width = len(modules) + 2 * quiet
    bars, index = [], 0
    while index < len(modules):
        if modules[index] == "1":
            start = index
            while index < len(modules) and modules[index] == "1":
                index += 1
            bars.append(f'<rect x="{start + quiet}" y="0" width="{index - start}" height="{height}"/>')
        else:
            index += 1
    return mark_safe(  # noqa: S308 - built from our own digits and fixed markup
        f'<svg class="barcode" role="img" aria-label="{escape(label)}" viewBox="0 0 {width} {height}" '
        f'preserveAspectRatio="none" xmlns="http://www.w3.org/2000/svg">'
        f'<rect width="{width}" height="{height}" fill="#fff"/><g fill="#111">{"".join(bars)}</g></svg>'
    )
