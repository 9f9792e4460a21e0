/* Used by test_portal_layout.py: page.evaluate(TEXT_COLLISIONS) returns a list of problems. */
() => {
  const runs = [], problems = [];
  // An open modal dialog covers the page: only its own text is on screen.
  const root = document.querySelector('[role="dialog"][aria-modal="true"]:not([hidden])') || document.body;
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const visible = el => { const s = getComputedStyle(el); return s.visibility !== 'hidden' && s.display !== 'none'
                                                                   && el.getClientRects().length > 0; };
  const hiddenOnPurpose = el => el.closest('.visually-hidden, .skip-link, [hidden], [aria-hidden="true"], script, style, template');
  const overflowIs = (el, values) => { for (let e = el; e && e !== document.body; e = e.parentElement) {
      if (values.includes(getComputedStyle(e).overflowX)) return e; } return null; };
  const clipper = el => overflowIs(el, ['hidden', 'clip']);  // a scrolling box (auto, scroll) shows the rest
  const scrolls = el => overflowIs(el, ['auto', 'scroll']);
  const label = el => el.tagName.toLowerCase() + (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\s+/).join('.') : '');
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    if (!node.textContent.trim() || hiddenOnPurpose(el) || !visible(el)) continue;
    const range = document.createRange(); range.selectNodeContents(node);
    const rects = [...range.getClientRects()].filter(r => r.width > 0.5 && r.height > 0.5);
    const box = clipper(el);
    for (const r of rects) {
      if (!scrolls(el) && (r.left < -0.5 || r.right > window.innerWidth + 0.5)) problems.push(`past the screen: ${label(el)} "${node.textContent.trim().slice(0, 40)}"`);
      if (box) { const b = box.getBoundingClientRect();
        if (r.left < b.left - 0.5 || r.right > b.right + 0.5) problems.push(`clipped: ${label(el)} "${node.textContent.trim().slice(0, 40)}"`); }
      runs.push({el, r, text: node.textContent.trim().slice(0, 40)});
    }
  }
  for (let i = 0; i < runs.length; i++) for (let j = i + 1; j < runs.length; j++) {
    const a = runs[i], b = runs[j];
    if (a.el === b.el) continue;
    const w = Math.min(a.r.right, b.r.right) - Math.max(a.r.left, b.r.left);
    const h = Math.min(a.r.bottom, b.r.bottom) - Math.max(a.r.top, b.r.top);
    if (w > 1 && h > 2) problems.push(`overlap: ${label(a.el)} "${a.text}" / ${label(b.el)} "${b.text}"`);
  }
  return [...new Set(problems)];
}
