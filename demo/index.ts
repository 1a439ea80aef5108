/// <reference lib="dom" />
/**
 * The demos' front page: which backend this browser gives, and links to the pages.
 *
 * @module
 */

import { startBackend } from "./_backend.ts";

startBackend().then((b) => {
  document.body.dataset.state = b ? "ready" : "no-backend";
  b?.rt.destroy();
}).catch((e) => {
  const box = document.getElementById("error")!;
  box.textContent = `Error: ${(e as Error).message ?? e}`;
  box.hidden = false;
});
