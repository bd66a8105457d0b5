"""WCAG contrast of the text a browser shows, from computed styles: for browser tests."""

from __future__ import annotations

from typing import Any

AA = 4.5  # WCAG 2 level AA for normal-size text

# For each visible element under the roots (shadow roots included) that holds text of its own: the contrast
# between its colour and the background behind it, compositing every ancestor's background colour and opacity.
# Colours go through a canvas, which reads any CSS colour syntax as sRGB bytes.
_MEASURE = """(selector) => {
  const ctx = Object.assign(document.createElement("canvas"), { width: 1, height: 1 })
    .getContext("2d", { willReadFrequently: true });
  const rgba = (css) => {
    ctx.clearRect(0, 0, 1, 1);
    ctx.fillStyle = "rgba(0, 0, 0, 0)";
    ctx.fillStyle = css;
    ctx.fillRect(0, 0, 1, 1);
    const d = ctx.getImageData(0, 0, 1, 1).data;
    return [d[0], d[1], d[2], d[3] / 255];
  };
  const over = (top, under) => [0, 1, 2].map((i) => top[i] * top[3] + under[i] * (1 - top[3])).concat([1]);
  const luminance = (c) => {
    const [r, g, b] = c.slice(0, 3).map((v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const ancestors = (node) => {
    const chain = [];
    for (let n = node; n; n = n.parentElement || n.getRootNode().host || null) chain.push(n);
    return chain;
  };
  const ratio = (node) => {
    const chain = ancestors(node);
    const bg = chain.reverse().reduce((under, n) => over(rgba(getComputedStyle(n).backgroundColor), under),
                                      [255, 255, 255, 1]);
    const fg = rgba(getComputedStyle(node).color);
    fg[3] *= chain.reduce((o, n) => o * parseFloat(getComputedStyle(n).opacity), 1);
    const [a, b] = [luminance(over(fg, bg)), luminance(bg)];
    return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  };
  const found = [];
  const visit = (root) => {
    for (const node of root.querySelectorAll("*")) {
      if (node.shadowRoot) visit(node.shadowRoot);
      const own = Array.from(node.childNodes).filter((c) => c.nodeType === 3 && c.textContent.trim())
        .map((c) => c.textContent.trim()).join(" ");
      const box = node.getBoundingClientRect();
      if (!own || !box.width || !box.height || getComputedStyle(node).visibility !== "visible") continue;
      const classes = typeof node.className === "string" ? node.className : "";
      found.push({ text: own.slice(0, 60), tag: node.tagName.toLowerCase(), classes: classes,
                   ratio: Math.round(ratio(node) * 100) / 100 });
    }
  };
  for (const root of document.querySelectorAll(selector)) {
    visit(root);
    if (root.shadowRoot) visit(root.shadowRoot);
  }
  return found;
}"""


def text_contrasts(page: Any, selector: str) -> list[dict[str, Any]]:
    """``{text, tag, classes, ratio}`` for every visible text element under the elements ``selector`` matches."""
    return list(page.evaluate(_MEASURE, selector))
