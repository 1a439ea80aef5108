/// <reference lib="dom" />
/**
 * The demos' front page: which backend this browser gives (WebGPU or WebAssembly), and links to
 * the pages (carrying the `?backend=` the switch chose).
 *
 * @module
 */

import { requestedBackend, showError, startBackend } from "./_backend.ts";

startBackend().then((b) => {
  const asked = requestedBackend();
  if (asked) {
    for (const a of document.querySelectorAll<HTMLAnchorElement>('a[href$=".html"]')) {
      a.href = `${a.getAttribute("href")}?backend=${asked}`;
    }
  }
  document.body.dataset.state = b ? "ready" : "no-backend";
  b?.rt.destroy();
}).catch(showError);
