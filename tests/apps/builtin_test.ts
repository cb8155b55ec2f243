// The built-in base model (examples/tiny/) and its QA task (train/tasks/builtin.ts):
// the committed files load, the tokenizer round-trips, the splits ask about disjoint
// people, the model is small and knows its facts, and the generator is reproducible
// (the recorded seed gives the recorded corpus sha256, tokenizer and task files).
import assert from "node:assert/strict";
import { loadLlama, loadTokenizer } from "../../io/mod.ts";
import { learnBpe, MODEL_SHAPE, probeAccuracy, tokenizerFiles } from "../../examples/pretrain_tiny.ts";
import {
  ATTRIBUTES,
  builtinTask,
  corpusDigest,
  makeCorpus,
  makeQa,
  makeWorld,
  normalizeAnswer,
  qaExample,
} from "../../apps/tasks/builtin.ts";

const DIR = new URL("../../examples/tiny", import.meta.url).pathname;

/** A field of the README's "- key: value" list. */
function recorded(field: string): string {
  const readme = Deno.readTextFileSync(`${DIR}/README.md`);
  const m = readme.match(new RegExp(`^- ${field}: \`?([^\`\\n]+)\`?`, "m"));
  assert.ok(m, `examples/tiny/README.md records no "${field}"`);
  return m[1].trim();
}

const seed = () => Number(recorded("seed"));

Deno.test("builtin model: loads in HF layout with the recorded shape, GQA and tied embeddings", async () => {
  const { config, params } = await loadLlama(DIR);
  for (const [k, v] of Object.entries(MODEL_SHAPE)) assert.equal(config[k as keyof typeof config], v, k);
  assert.ok(config.numKvHeads < config.numHeads, "GQA");
  const tok = await loadTokenizer(DIR);
  assert.equal(config.vocabSize, tok.vocabSize);
  assert.ok(config.vocabSize <= 1000);
  assert.equal(params.layers.length, config.numLayers);
  const gen = JSON.parse(Deno.readTextFileSync(`${DIR}/generation_config.json`));
  assert.equal(gen.bos_token_id, tok.bosId);
  assert.equal(gen.eos_token_id, tok.eosId);
});

Deno.test("builtin model: model.safetensors is at most 10 MB and matches the recorded sha256", async () => {
  const bytes = await Deno.readFile(`${DIR}/model.safetensors`);
  assert.ok(bytes.length <= 10 * 1024 * 1024, `${bytes.length} bytes`);
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const hex = [...hash].map((b) => b.toString(16).padStart(2, "0")).join("");
  assert.equal(hex, recorded("model.safetensors sha256").split(" ")[0]);
});

Deno.test("builtin tokenizer: encodes and decodes corpus and task text exactly, prompt + answer splits cleanly", async () => {
  const tok = await loadTokenizer(DIR);
  assert.equal(tok.bosId, 1);
  assert.equal(tok.eosId, 2);
  const world = makeWorld(seed());
  const docs = makeCorpus(world, seed()).slice(0, 300);
  const rows = [...await builtinTask.load({ split: "train" }), ...await builtinTask.load({ split: "eval" })];
  for (const text of [...docs, ...rows.flatMap((r) => Object.values(builtinTask.format(r)).map((s) => s.trim()))]) {
    const ids = tok.encode(text);
    assert.equal(ids[0], tok.bosId);
    assert.ok(!ids.includes(0), `<unk> in ${JSON.stringify(text)}`);
    assert.equal(tok.decode(ids), text);
  }
  for (const r of rows.slice(0, 50)) {
    const { prompt, answer } = builtinTask.format(r);
    assert.deepEqual(tok.encode(prompt + answer), [...tok.encode(prompt), ...tok.encode(answer, { addBos: false })]);
    assert.deepEqual(tok.encode(answer, { addBos: false }), tok.encode(answer.trim(), { addBos: false }));
    assert.equal(tok.encode(` ${normalizeAnswer(r.answer)}`, { addBos: false }).length, 1, "answers are one token");
  }
  assert.equal(tok.decode(tok.encode("alice lives in paris .", { addEos: true })), "alice lives in paris .");
});

Deno.test("builtin task: both splits load, from any cwd, about disjoint people, every attribute per person", async () => {
  const train = await builtinTask.load({ split: "train" });
  const ev = await builtinTask.load({ split: "eval" });
  assert.equal(train.length, 600);
  assert.equal(ev.length, 200);
  assert.deepEqual(await builtinTask.load({ split: "validation" }), ev);
  assert.equal((await builtinTask.load({ split: "eval", limit: 7 })).length, 7);
  assert.deepEqual(await builtinTask.load({ split: "train", path: `${DIR}/task` }), train);
  const people = (rows: typeof train) => new Set(rows.map((r) => r.person));
  const a = people(train), b = people(ev);
  assert.equal(a.size, 120);
  assert.equal(b.size, 40);
  assert.equal([...a].filter((p) => b.has(p)).length, 0, "the splits share people");
  for (const rows of [train, ev]) {
    for (const at of ATTRIBUTES) assert.equal(rows.filter((r) => r.attribute === at).length, rows.length / 5);
  }
  const { prompt, answer } = builtinTask.format(ev[0]);
  assert.ok(prompt.startsWith("question : ") && prompt.endsWith(" ? answer :"), prompt);
  assert.equal(answer, ev[0].answer);
  assert.match(answer, /^ [a-z]+ \.$/);
  await assert.rejects(() => builtinTask.load({ split: "dev" }), /unknown split "dev"/);
  await assert.rejects(() => builtinTask.load({ split: "train", path: "/nonexistent" }), /cannot read/);
});

Deno.test("builtin task: metric is exact match of the word before the stop, in percent", () => {
  const rows = [
    qaExample("alice", "city", "paris"),
    qaExample("bob", "pet", "cat"),
    qaExample("carol", "job", "doctor"),
    qaExample("dave", "sport", "golf"),
  ];
  assert.equal(normalizeAnswer(" paris . the"), "paris");
  const m = builtinTask.metric(["paris", " cat .", "doctor doctor", "Golf"], rows);
  assert.equal(m.name, "exactMatch");
  assert.equal(m.value, 50);
  assert.equal(m.correct, 2);
  assert.deepEqual(m.byAttribute, { city: 100, pet: 100, job: 0, sport: 0 });
  assert.throws(() => builtinTask.metric(["x"], rows), /1 predictions for 4 examples/);
});

Deno.test("builtin generator: the recorded seed reproduces the corpus sha256, tokenizer and task files", async () => {
  const world = makeWorld(seed());
  const docs = makeCorpus(world, seed());
  assert.equal((await corpusDigest(docs)).sha256, recorded("corpus sha256"));
  for (const text of docs.slice(0, 500)) assert.ok(!/question :|answer :/.test(text), "QA format in the corpus");
  const files = tokenizerFiles(learnBpe(docs, 1000));
  assert.deepEqual(JSON.parse(Deno.readTextFileSync(`${DIR}/tokenizer.json`)), files.json);
  assert.deepEqual(JSON.parse(Deno.readTextFileSync(`${DIR}/tokenizer_config.json`)), files.config);
  const qa = makeQa(world);
  assert.deepEqual(await builtinTask.load({ split: "train" }), qa.train);
  assert.deepEqual(await builtinTask.load({ split: "eval" }), qa.eval);
});

Deno.test("builtin model: knows its facts (greedy 'alice lives in' → her city for most people)", async () => {
  const { config, params } = await loadLlama(DIR);
  const tok = await loadTokenizer(DIR);
  const acc = await probeAccuracy(params, config, tok, makeWorld(seed()));
  assert.ok(acc.all >= 0.8, JSON.stringify(acc));
});

Deno.test("builtin task files follow knot's JSONL convention: --task jsonl reads the same pairs", async () => {
  const { jsonl } = await import("../../apps/tasks/jsonl.ts");
  for (const split of ["train", "eval"]) {
    const asBuiltin = (await builtinTask.load({ split })).map((e) => builtinTask.format(e));
    const asJsonl = (await jsonl.load({ path: `${DIR}/task`, split })).map((e) => jsonl.format(e));
    assert.deepEqual(asJsonl, asBuiltin, split);
  }
});
