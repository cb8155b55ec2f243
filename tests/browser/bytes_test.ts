/**
 * The browser path without a browser: `llamaFromBytes` and `adapterToBytes`
 * agree with their file-system twins, the bundle builds, is free of `Deno.`
 * and works when imported, and the demo server serves the right types and
 * nothing outside its root.
 */
import assert from "node:assert/strict";
import { randomLlama } from "../../llama/mod.ts";
import { tl6 } from "../../peft/mod.ts";
import { tree } from "../../mod.ts";
import { key } from "../../core/random.ts";
import { llamaFromBytes, loadLlama, saveLlama } from "../../io/hf.ts";
import { adapterToBytes, saveAdapter } from "../../io/adapter.ts";
import { runBundle } from "../../scripts/run_bundle.ts";
import { handler } from "../../scripts/serve.ts";

async function leavesEqual(a: unknown, b: unknown): Promise<void> {
  const ea = tree.entries(a), eb = tree.entries(b);
  assert.deepEqual(ea.map(([p]) => p), eb.map(([p]) => p));
  for (let i = 0; i < ea.length; i++) {
    assert.deepEqual(ea[i][1].shape, eb[i][1].shape, ea[i][0]);
    assert.deepEqual(await ea[i][1].data(), await eb[i][1].data(), ea[i][0]);
  }
}

Deno.test("llamaFromBytes: the same model as loadLlama; config as object or text; mismatches named", async () => {
  const dir = await Deno.makeTempDir({ prefix: "knot-bytes-" });
  try {
    const { config, params } = randomLlama({ seed: 3, numLayers: 2, tieWordEmbeddings: false });
    await saveLlama(dir, params, config);
    const fromDir = await loadLlama(dir);
    const configText = await Deno.readTextFile(`${dir}/config.json`);
    const bytes = await Deno.readFile(`${dir}/model.safetensors`);
    for (const cfg of [JSON.parse(configText), configText]) {
      const fromBytes = llamaFromBytes(cfg, bytes);
      assert.deepEqual(fromBytes.config, fromDir.config);
      await leavesEqual(fromBytes.params, fromDir.params);
    }
    const smaller = { ...JSON.parse(configText), num_hidden_layers: 1 };
    assert.throws(
      () => llamaFromBytes(smaller, bytes, "m.safetensors"),
      /^Error: llamaFromBytes: m\.safetensors does not match config\.json: unexpected tensors model\.layers\.1\./,
    );
    const wider = { ...JSON.parse(configText), intermediate_size: 7 };
    assert.throws(() => llamaFromBytes(wider, bytes), /model\.layers\.0\.mlp\.gate_proj\.weight has shape/);
    assert.throws(() => llamaFromBytes("{", bytes), /config\.json: invalid JSON/);
    assert.throws(
      () => llamaFromBytes(JSON.parse(configText), bytes.subarray(0, 20)),
      /safetensors: model\.safetensors/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("adapterToBytes: exactly the bytes saveAdapter writes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "knot-adapter-" });
  try {
    const { params } = randomLlama({ seed: 1, numLayers: 3 });
    const plan = tl6({ rank: 4 });
    const { trainable, frozen } = plan.init(params, key(0));
    await saveAdapter(dir, plan, trainable, frozen, { path: "here" });
    const { json, safetensors } = await adapterToBytes(plan, trainable, frozen, { path: "here" });
    assert.equal(json, await Deno.readTextFile(`${dir}/adapter.json`));
    assert.deepEqual(safetensors, await Deno.readFile(`${dir}/adapter.safetensors`));
    assert.equal(JSON.parse(json).base.path, "here");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bundle: builds, mentions no Deno., exports the browser API only, and runs", async () => {
  const out = await Deno.makeTempDir({ prefix: "knot-dist-" });
  try {
    const built = await runBundle({ outdir: out, app: false });
    assert.deepEqual(built.map((b) => b.path.split("/").at(-1)).sort(), [
      "knot.js",
      "knot.js.map",
      "knot_worker.js",
      "knot_worker.js.map",
    ]);
    const text = await Deno.readTextFile(`${out}/knot.js`);
    assert(!text.includes("Deno."));
    const knot = await import(`file://${out}/knot.js`);
    for (const name of ["io.llamaFromBytes", "io.adapterToBytes", "io.parseSafetensors", "io.Tokenizer"]) {
      assert.equal(typeof knot.io[name.slice(3)], "function", name);
    }
    assert.equal(typeof knot.train.trainStep, "function", "train.trainStep");
    assert.equal(typeof knot.peft.tl6, "function", "peft.tl6");
    for (const name of ["loadLlama", "saveAdapter", "SafetensorsFile", "saveSafetensors", "loadTokenizer"]) {
      assert.equal(knot.io[name], undefined, `io.${name} should stay out of the browser entry`);
      assert.equal(knot[name], undefined, `${name} should stay out of the browser entry`);
    }
    for (const name of ["fit", "saveCheckpoint", "loadCheckpoint"]) {
      assert.equal(knot.train[name], undefined, `train.${name} should stay out of the browser entry`);
    }
    assert.equal(await knot.sum(knot.tensor([1, 2, 3])).item(), 6);
    const tok = knot.io.Tokenizer.fromJson(await Deno.readTextFile("examples/tiny/tokenizer.json"));
    assert.equal(tok.decode(tok.encode("abby in denver")), "abby in denver");
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("serve: MIME types, index.html, no escape from the root, read-only", async () => {
  const root = await Deno.makeTempDir({ prefix: "knot-serve-" });
  try {
    await Deno.mkdir(`${root}/site`);
    const files: Record<string, string> = {
      "site/index.html": "text/html; charset=utf-8",
      "a.js": "text/javascript; charset=utf-8",
      "a.js.map": "application/json; charset=utf-8",
      "k.wasm": "application/wasm",
      "c.json": "application/json; charset=utf-8",
      "m.safetensors": "application/octet-stream",
      "s.css": "text/css; charset=utf-8",
    };
    for (const f of Object.keys(files)) await Deno.writeTextFile(`${root}/${f}`, f);
    await Deno.writeTextFile(`${root}/.secret`, "no");
    const h = handler(root);
    const get = (path: string, method = "GET") => h(new Request(`http://localhost${path}`, { method }));
    for (const [f, type] of Object.entries(files)) {
      const r = await get(`/${f}`);
      assert.equal(r.status, 200, f);
      assert.equal(r.headers.get("content-type"), type, f);
      assert.equal(await r.text(), f);
    }
    const index = await get("/site/");
    assert.equal(await index.text(), "site/index.html");
    const redirect = await get("/site");
    await redirect.body?.cancel();
    assert.equal(redirect.status, 301);
    assert.equal(redirect.headers.get("location"), "/site/");
    for (const bad of ["/.secret", "/%2e%2e/etc/passwd", "/site/%2E%2E/%2E%2E/x", "/nope.js", "/a%00.js"]) {
      const r = await get(bad);
      await r.body?.cancel();
      assert.equal(r.status, 404, bad);
    }
    const post = await get("/a.js", "POST");
    await post.body?.cancel();
    assert.equal(post.status, 405);
    const head = await get("/a.js", "HEAD");
    assert.equal(head.status, 200);
    assert.equal(head.headers.get("content-length"), "4");
    assert.equal(await head.text(), "");
    // Cross-origin isolation (threads in browsers) by default; not with isolate = false.
    assert.equal(head.headers.get("cross-origin-opener-policy"), "same-origin");
    assert.equal(head.headers.get("cross-origin-embedder-policy"), "require-corp");
    const plain = await handler(root, false)(new Request("http://localhost/a.js", { method: "HEAD" }));
    assert.equal(plain.headers.get("cross-origin-embedder-policy"), null);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
