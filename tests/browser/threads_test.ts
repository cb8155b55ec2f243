/**
 * The cpu engine's threads in a real browser: tests/browser/threads.html runs one computation on the cpu
 * backend, served with the cross-origin isolation headers (scripts/serve.ts's default: SharedArrayBuffer,
 * so worker threads) and without them (one thread). Both must give the same bits, and the isolated page
 * must really have split kernels between threads. Needs /usr/bin/chromium (or $CHROMIUM); ignored without.
 */
import assert from "node:assert/strict";
import { runBundle } from "../../scripts/run_bundle.ts";
import { serve } from "../../scripts/serve.ts";
import { launch } from "./cdp.ts";

const CHROMIUM = Deno.env.get("CHROMIUM") ?? "/usr/bin/chromium";
let haveChromium = false;
try {
  haveChromium = Deno.statSync(CHROMIUM).isFile;
} catch { /* absent */ }

interface ThreadsResult {
  isolated: boolean;
  threads: number;
  workers: number;
  workerJobs: number;
  hash: number;
  error?: string;
}

Deno.test({
  name: "browser: the cpu engine uses worker threads on an isolated page, one thread otherwise, with the same bits",
  ignore: !haveChromium,
  async fn() {
    await runBundle({ app: false });
    const browser = await launch(CHROMIUM);
    const results: Record<string, ThreadsResult> = {};
    try {
      for (const isolate of [true, false]) {
        const server = serve({ port: 0, isolate });
        try {
          const { cdp } = browser;
          const { targetId } = await cdp.send<{ targetId: string }>("Target.createTarget", { url: "about:blank" });
          const { sessionId } = await cdp.send<{ sessionId: string }>("Target.attachToTarget", {
            targetId,
            flatten: true,
          });
          const page = <T>(method: string, params: Record<string, unknown> = {}) =>
            cdp.send<T>(method, params, sessionId);
          await page("Page.enable");
          await page("Page.navigate", { url: `http://127.0.0.1:${server.addr.port}/tests/browser/threads.html` });
          let r: { result: { value?: ThreadsResult } } | null = null;
          for (let i = 0; i < 300 && !r?.result.value; i++) {
            await new Promise((res) => setTimeout(res, 100));
            r = await page<{ result: { value?: ThreadsResult } }>("Runtime.evaluate", {
              expression: "globalThis.knotThreads",
              awaitPromise: true,
              returnByValue: true,
            });
          }
          const v = r?.result.value;
          assert(v, `the page (isolate=${isolate}) never produced a result`);
          assert(!v.error, `the page (isolate=${isolate}) threw: ${v.error}`);
          results[isolate ? "isolated" : "plain"] = v;
          await cdp.send("Target.closeTarget", { targetId });
        } finally {
          await server.shutdown();
        }
      }
    } finally {
      await browser.close();
    }
    const { isolated, plain } = results;
    console.log(`isolated: ${JSON.stringify(isolated)}\nplain:    ${JSON.stringify(plain)}`);
    assert.equal(isolated.isolated, true, "served with COOP/COEP, the page is not cross-origin isolated");
    assert.equal(plain.isolated, false);
    assert.equal(plain.workers, 0, "without isolation there is no shared memory, so no workers");
    if (isolated.threads > 1) {
      assert(isolated.workers >= 1, `isolated page with ${isolated.threads} threads started no workers`);
      assert(isolated.workerJobs > 0, "the isolated page's kernels never ran on a worker");
    } else {
      console.log("the browser reports one hardware thread: nothing to split, only the bits are compared");
    }
    assert.equal(isolated.hash, plain.hash, "the result bits differ between threaded and single-threaded runs");
  },
});
