/**
 * End to end in a real browser: builds the bundle (scripts/bundle.ts),
 * serves the repository (scripts/serve.ts), opens examples/web/ in headless
 * Chromium, and checks that the page loads the built-in tiny model (by URL,
 * then as chosen files), generates text, fine-tunes it with TL6 for 10 steps
 * with a falling loss, generates again, and downloads an adapter that parses. Runs on WebGPU where Chromium
 * offers an adapter, else on the CPU fallback the page announces; it prints
 * which. Screenshot: out/browser/web.png.
 *
 * Needs /usr/bin/chromium (or $CHROMIUM); without it the test is ignored with
 * one line saying so. `KNOT_WEB_MODEL=<url relative to the page>` points the
 * page at another model directory under the repository;
 * `KNOT_WEB_REQUIRE_WEBGPU=1` fails the test unless WebGPU ran.
 */
import assert from "node:assert/strict";
import { ROOT, runBundle } from "../../scripts/run_bundle.ts";
import { serve } from "../../scripts/serve.ts";
import { parseSafetensors } from "../../io/safetensors.ts";
import { type Browser, launch } from "./cdp.ts";

const CHROMIUM = Deno.env.get("CHROMIUM") ?? "/usr/bin/chromium";
const STEPS = 10;
const OUT = `${ROOT}/out/browser`;

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

const haveChromium = isFile(CHROMIUM);
if (!haveChromium) {
  console.log(`tests/browser: ${CHROMIUM} not found, so the browser test is ignored (apt-get install -y chromium)`);
}

interface DemoState {
  status: string;
  model: string;
  backend: string;
  fallback: string;
  losses: number[];
  base: string;
  tuned: string;
  error: string;
  trainSeconds: number;
}

Deno.test({
  name: "browser: examples/web fine-tunes TL6 in headless Chromium (WebGPU or the announced CPU fallback)",
  ignore: !haveChromium,
  async fn() {
    const t0 = performance.now();
    const built = await runBundle();
    const knot = built.find((b) => b.path.endsWith("knot.js"))!;
    console.log(`bundle: dist/knot.js ${knot.bytes} bytes (gzip ${knot.gzipBytes})`);

    const server = serve({ port: 0 });
    let browser: Browser | null = null;
    const consoleLines: string[] = [];
    try {
      browser = await launch(CHROMIUM);
      const { cdp } = browser;
      await Deno.mkdir(`${OUT}/downloads`, { recursive: true });
      for (const f of ["adapter.safetensors", "adapter.json"]) {
        await Deno.remove(`${OUT}/downloads/${f}`).catch(() => {});
      }
      await cdp.send("Browser.setDownloadBehavior", { behavior: "allow", downloadPath: `${OUT}/downloads` });
      const { targetId } = await cdp.send<{ targetId: string }>("Target.createTarget", { url: "about:blank" });
      const { sessionId } = await cdp.send<{ sessionId: string }>("Target.attachToTarget", { targetId, flatten: true });
      const page = <T = Record<string, unknown>>(method: string, params: Record<string, unknown> = {}) =>
        cdp.send<T>(method, params, sessionId);
      cdp.on((m) => {
        if (m.sessionId !== sessionId) return;
        if (m.method === "Runtime.consoleAPICalled") {
          const args = (m.params!.args as { value?: unknown; description?: string }[])
            .map((a) => a.value ?? a.description ?? "").join(" ");
          consoleLines.push(`console.${m.params!.type}: ${args}`);
        } else if (m.method === "Runtime.exceptionThrown") {
          const d = m.params!.exceptionDetails as { text: string; exception?: { description?: string } };
          consoleLines.push(`exception: ${d.exception?.description ?? d.text}`);
        }
      });
      await page("Runtime.enable");
      await page("Page.enable");
      await page("Emulation.setDeviceMetricsOverride", {
        width: 1200,
        height: 1500,
        deviceScaleFactor: 1,
        mobile: false,
      });

      const evaluate = async <T>(expression: string): Promise<T> => {
        const r = await page<{ result: { value: T }; exceptionDetails?: { text: string } }>("Runtime.evaluate", {
          expression,
          returnByValue: true,
          awaitPromise: true,
        });
        if (r.exceptionDetails) throw new Error(`page: ${expression}: ${r.exceptionDetails.text}`);
        return r.result.value;
      };
      const state = () => evaluate<DemoState | undefined>("globalThis.knotDemo");
      const waitFor = async (what: string, ok: (s: DemoState) => boolean, timeoutMs: number): Promise<DemoState> => {
        const deadline = Date.now() + timeoutMs;
        let s: DemoState | undefined;
        while (Date.now() < deadline) {
          s = await state();
          if (s?.error) throw new Error(`the page shows an error while ${what}: ${s.error}`);
          if (s && ok(s)) return s;
          await new Promise((r) => setTimeout(r, 200));
        }
        throw new Error(`timed out after ${timeoutMs} ms ${what}; page state ${JSON.stringify(s)}`);
      };
      /** A real mouse click in the middle of the element. */
      const click = async (id: string) => {
        const box = await evaluate<{ x: number; y: number; disabled: boolean } | null>(`(() => {
          const el = document.getElementById(${JSON.stringify(id)});
          if (!el) return null;
          el.scrollIntoView({ block: "center" });
          const r = el.getBoundingClientRect();
          return { x: r.left + r.width / 2, y: r.top + r.height / 2, disabled: !!el.disabled };
        })()`);
        assert(box, `no #${id} on the page`);
        assert(!box.disabled, `#${id} is disabled`);
        for (const type of ["mousePressed", "mouseReleased"]) {
          await page("Input.dispatchMouseEvent", { type, x: box.x, y: box.y, button: "left", clickCount: 1 });
        }
      };

      const model = Deno.env.get("KNOT_WEB_MODEL");
      const query = `?steps=${STEPS}${model ? `&model=${encodeURIComponent(model)}` : ""}`;
      await page("Page.navigate", { url: `http://127.0.0.1:${server.addr.port}/examples/web/${query}` });

      // 1. The page picks a backend and loads the built-in model.
      let s = await waitFor("loading the model", (s) => s.status === "ready" && s.backend !== "", 60_000);
      assert(
        s.model,
        `the page loaded no model: ${await evaluate<string>("document.getElementById('model-info').textContent")}`,
      );
      const bannerText = await evaluate<string>("document.getElementById('backend').textContent");
      if (s.backend === "webgpu") {
        assert(/WebGPU is available/.test(bannerText), bannerText);
      } else {
        assert.equal(s.backend, "cpu");
        assert(/WebGPU is not available/.test(bannerText), `the CPU fallback is not announced: "${bannerText}"`);
        assert(await evaluate<boolean>("!document.getElementById('backend').hidden"));
      }

      if (Deno.env.get("KNOT_WEB_REQUIRE_WEBGPU") === "1") {
        assert.equal(s.backend, "webgpu", `KNOT_WEB_REQUIRE_WEBGPU=1 but the page fell back to the CPU: ${s.fallback}`);
      }

      // 1b. The same model again, as files chosen with <input type=file multiple> (train.jsonl included).
      if (!model) {
        const dir = `${ROOT}/examples/tiny`;
        const files = [
          "config.json",
          "model.safetensors",
          "tokenizer.json",
          "tokenizer_config.json",
          "task/train.jsonl",
        ]
          .map((f) => `${dir}/${f}`);
        const { result } = await page<{ result: { objectId: string } }>("Runtime.evaluate", {
          expression: "document.getElementById('files')",
        });
        await page("DOM.setFileInputFiles", { files, objectId: result.objectId });
        s = await waitFor(
          "loading the chosen files",
          (s) => s.status === "ready" && /chosen files/.test(s.model),
          60_000,
        );
        const info = await evaluate<string>("document.getElementById('data-info').textContent");
        assert(/600 examples from train\.jsonl/.test(info), info);
      }

      // 2. Generate with the base model.
      await click("generate");
      s = await waitFor("generating with the base model", (s) => s.status === "ready" && s.base !== "", 30_000);
      const baseText = s.base;

      // 3. Train; the loss curve is drawn as it goes.
      await click("train");
      s = await waitFor(
        "training",
        (s) => s.status === "ready" && s.losses.length === STEPS && s.tuned !== "",
        240_000,
      ); // ~25 s on a quiet 2-core machine; under load it took over 90 s
      const { losses } = s;
      assert(losses.every(Number.isFinite), `non-finite loss: ${losses}`);
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
      const first = mean(losses.slice(0, 3)), last = mean(losses.slice(-3));
      assert(last < first, `the loss did not fall: first steps ${first.toFixed(4)}, last steps ${last.toFixed(4)}`);
      assert(
        await evaluate<boolean>("!!document.querySelector('#chart svg polyline, #chart svg path')"),
        "no loss curve",
      );
      const summaryText = await evaluate<string>("document.getElementById('summary').textContent");
      assert(/trainable/i.test(summaryText), `no parameter summary: ${summaryText}`);
      const tunedShown = await evaluate<string>("document.getElementById('out-tuned').textContent");
      assert(tunedShown.trim() && tunedShown !== "(train first)", `no text after training: "${tunedShown}"`);

      // 4. Download the adapter: two files that parse.
      await click("download");
      const deadline = Date.now() + 15_000;
      const done = () => ["adapter.safetensors", "adapter.json"].every((f) => isFile(`${OUT}/downloads/${f}`));
      while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      assert(done(), "the adapter was not downloaded");
      const json = JSON.parse(await Deno.readTextFile(`${OUT}/downloads/adapter.json`));
      assert.equal(json.format, "knot-adapter");
      assert.equal(json.meta.preset, "tl6");
      const st = parseSafetensors(await Deno.readFile(`${OUT}/downloads/adapter.safetensors`));
      assert.deepEqual(Object.keys(st.tensors).sort(), json.stored);

      // 5. Screenshot (after a last paint), and what ran.
      await evaluate("new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))");
      await evaluate("window.scrollTo(0, 0)");
      const height = await evaluate<number>("Math.ceil(document.body.getBoundingClientRect().bottom + scrollY + 8)");
      const shot = await page<{ data: string }>("Page.captureScreenshot", {
        format: "png",
        captureBeyondViewport: true,
        clip: { x: 0, y: 0, width: 1200, height, scale: 1 },
      });
      await Deno.writeFile(`${OUT}/web.png`, Uint8Array.from(atob(shot.data), (c) => c.charCodeAt(0)));
      const why = s.fallback.split("\n").slice(0, 2).join(" | ");
      const how = s.backend === "webgpu" ? "webgpu" : `cpu (the page announced the fallback: ${why})`;
      console.log(
        `backend: ${how}\n` +
          `loss ${losses[0].toFixed(3)} → ${losses.at(-1)!.toFixed(3)} in ${STEPS} steps (${
            s.trainSeconds.toFixed(1)
          } s in the page)\n` +
          `base:  ${JSON.stringify(baseText)}\ntuned: ${JSON.stringify(s.tuned)}\n` +
          `screenshot: out/browser/web.png · total ${((performance.now() - t0) / 1000).toFixed(1)} s`,
      );
    } catch (e) {
      if (consoleLines.length) console.log(`page console:\n  ${consoleLines.slice(-30).join("\n  ")}`);
      if (browser) console.log(`chromium stderr (tail):\n${browser.stderr().slice(-2000)}`);
      throw e;
    } finally {
      await browser?.close();
      await server.shutdown();
    }
  },
});
