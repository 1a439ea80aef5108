/**
 * One self-contained HTML page: sections of text, tables, SVG charts and PNG images (as data
 * URIs), nothing fetched at view time.
 *
 * @module
 */

import { classPalette } from "./colors.ts";

/** Escapes text for HTML. */
export function escapeHtml(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!,
  );
}

/** A block of the page. */
export type Block =
  | { kind: "heading"; text: string }
  | { kind: "text"; text: string }
  | { kind: "table"; header: string[]; rows: (string | number)[][]; caption?: string }
  | { kind: "svg"; svg: string; caption?: string }
  | { kind: "png"; uri: string; caption?: string; width?: number }
  | { kind: "legend"; classNames: readonly string[] }
  | { kind: "row"; blocks: Block[] }
  /** A collapsible section, closed unless `open`. */
  | { kind: "details"; summary: string; blocks: Block[]; open?: boolean };

function cell(v: string | number): string {
  if (typeof v === "number") {
    return Number.isFinite(v) ? (Number.isInteger(v) ? String(v) : v.toPrecision(4)) : String(v);
  }
  return escapeHtml(v);
}

function render(b: Block): string {
  switch (b.kind) {
    case "heading":
      return `<h2>${escapeHtml(b.text)}</h2>`;
    case "text":
      return `<p>${escapeHtml(b.text)}</p>`;
    case "table":
      return `<div class="scroll"><table>${
        b.caption ? `<caption>${escapeHtml(b.caption)}</caption>` : ""
      }<thead><tr>${b.header.map((h) => `<th>${escapeHtml(h)}</th>`).join("")}</tr></thead><tbody>${
        b.rows.map((r) => `<tr>${r.map((c) => `<td>${cell(c)}</td>`).join("")}</tr>`).join("")
      }</tbody></table></div>`;
    case "svg":
      // Vega's SVG is self-contained; strip an XML prolog if any.
      return `<figure>${b.svg.replace(/^<\?xml[^>]*>/, "")}${
        b.caption ? `<figcaption>${escapeHtml(b.caption)}</figcaption>` : ""
      }</figure>`;
    case "png":
      return `<figure><img src="${b.uri}" ${
        b.width ? `width="${b.width}"` : ""
      } style="image-rendering:pixelated" alt="${escapeHtml(b.caption ?? "")}">${
        b.caption ? `<figcaption>${escapeHtml(b.caption)}</figcaption>` : ""
      }</figure>`;
    case "legend": {
      const pal = classPalette(b.classNames.length);
      return `<div class="legend">${
        b.classNames.map((n, i) =>
          `<span><i style="background:${pal[i]}"></i>${escapeHtml(String(n))}</span>`
        ).join("")
      }</div>`;
    }
    case "row":
      return `<div class="row">${b.blocks.map(render).join("")}</div>`;
    case "details":
      return `<details${b.open ? " open" : ""}><summary>${escapeHtml(b.summary)}</summary>${
        b.blocks.map(render).join("\n")
      }</details>`;
  }
}

const STYLE = `body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}td{white-space:nowrap}.scroll{overflow-x:auto}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}caption{text-align:left;color:#555}
figure{display:inline-block;margin:.5em;vertical-align:top}figcaption{font-size:.85em;color:#555;max-width:300px}
.row{display:flex;flex-wrap:wrap;align-items:flex-start}
details{margin:.3em 0 .8em 1.5em}summary{cursor:pointer;color:#555}
.legend span{display:inline-block;margin:0 .8em .3em 0;font-size:.9em}
.legend i{display:inline-block;width:.9em;height:.9em;margin-right:.3em;vertical-align:-.1em;border:1px solid #0003}`;

/**
 * The whole page.
 * @param title page title
 * @param blocks content
 * @returns HTML text (UTF-8)
 */
export function htmlPage(title: string, blocks: Block[]): string {
  return `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>${
    escapeHtml(title)
  }</title><style>${STYLE}</style></head><body><h1>${escapeHtml(title)}</h1>\n${
    blocks.map(render).join("\n")
  }\n</body></html>\n`;
}
