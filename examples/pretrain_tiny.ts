/**
 * Builds knot's built-in tiny base model from nothing: a synthetic world of
 * people and their facts, a corpus about it, a BPE tokenizer learned from the
 * corpus, and a small Llama pretrained on it with knot itself (full-parameter
 * AdamW). Writes `examples/tiny/` in Hugging Face layout plus the downstream
 * question-answering data `examples/tiny/task/{train,eval}.jsonl` (see
 * train/tasks/builtin.ts). Everything is a function of `--seed`.
 *
 *   deno run -A examples/pretrain_tiny.ts            # about 21 min on 2 CPU cores
 *   deno run -A examples/pretrain_tiny.ts --help
 * @module
 */
import { intFlag, parseFlags, positiveFlag, runMain } from "./cli.ts";
import { crossEntropy } from "../core/nn.ts";
import { forward, randomLlama } from "../llama/mod.ts";
import { loadTokenizer } from "../io/mod.ts";
import { reshape, scope, slice, type Tensor, tensor } from "../mod.ts";
import { adamw, chain, clipByGlobalNorm, schedules } from "../optim/mod.ts";
import type { LlamaConfig, LlamaParams } from "../llama/mod.ts";
import { saveLlama, Tokenizer } from "../io/mod.ts";
import { trainStep } from "../train/mod.ts";
import { builtin } from "../apps/tasks/index.ts";

const { ATTRIBUTES, builtinTask, corpusDigest, FACT_FORMS, makeCorpus, makeQa, makeWorld, rng, sha256hex, shuffle } =
  builtin;
type Attribute = builtin.Attribute;
type World = builtin.World;

/** Default seed of the world, the corpus, the initialisation and the data order. */
export const DEFAULT_SEED = 20261123;

/** The model shape (vocabSize is filled in from the tokenizer). */
export const MODEL_SHAPE = {
  hiddenSize: 128,
  numLayers: 4,
  numHeads: 4,
  numKvHeads: 2,
  intermediateSize: 344,
  maxPositionEmbeddings: 128,
  tieWordEmbeddings: true,
  bosTokenId: 1,
  eosTokenId: 2,
} as const;

const SPECIALS = ["<unk>", "<s>", "</s>"];
const META = "\u2581"; // "▁", SentencePiece's word-boundary mark

/** Learns byte-pair merges over the words of `docs` ("▁" + word) until the vocabulary has `vocabSize` entries. */
export function learnBpe(docs: readonly string[], vocabSize: number): { vocab: string[]; merges: [string, string][] } {
  const counts = new Map<string, number>();
  for (const d of docs) for (const w of d.split(" ")) counts.set(META + w, (counts.get(META + w) ?? 0) + 1);
  const words = [...counts].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([w, c]) => ({ s: [...w], c }));
  const chars = [...new Set(words.flatMap((w) => w.s))].sort();
  const vocab = [...SPECIALS, ...chars];
  const merges: [string, string][] = [];
  while (vocab.length < vocabSize) {
    const pairs = new Map<string, number>();
    for (const w of words) {
      for (let i = 0; i + 1 < w.s.length; i++) {
        const k = w.s[i] + " " + w.s[i + 1];
        pairs.set(k, (pairs.get(k) ?? 0) + w.c);
      }
    }
    let best = "", bestCount = 1;
    for (const [k, c] of pairs) if (c > bestCount || (c === bestCount && best && k < best)) [best, bestCount] = [k, c];
    if (!best) break; // every word is one token
    const [x, y] = best.split(" ");
    merges.push([x, y]);
    vocab.push(x + y);
    for (const w of words) {
      const s: string[] = [];
      for (let i = 0; i < w.s.length; i++) {
        if (i + 1 < w.s.length && w.s[i] === x && w.s[i + 1] === y) s.push(x + w.s[++i]);
        else s.push(w.s[i]);
      }
      w.s = s;
    }
  }
  return { vocab, merges };
}

/** `tokenizer.json` (Llama-style BPE with a Metaspace pre-tokenizer) and `tokenizer_config.json` objects. */
export function tokenizerFiles(bpe: { vocab: string[]; merges: [string, string][] }): { json: object; config: object } {
  const flags = { single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
  const special = (content: string, id: number) => ({ id, content, ...flags });
  const json = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: SPECIALS.map(special),
    normalizer: null,
    pre_tokenizer: { type: "Metaspace", replacement: META, prepend_scheme: "first", split: true },
    post_processor: null,
    decoder: { type: "Metaspace", replacement: META, prepend_scheme: "first", split: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: "<unk>",
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: false,
      ignore_merges: false,
      vocab: Object.fromEntries(bpe.vocab.map((t, i) => [t, i])),
      merges: bpe.merges.map(([a, b]) => `${a} ${b}`),
    },
  };
  const config = {
    add_bos_token: true,
    add_eos_token: false,
    bos_token: "<s>",
    eos_token: "</s>",
    unk_token: "<unk>",
    pad_token: null,
    clean_up_tokenization_spaces: false,
    model_max_length: MODEL_SHAPE.maxPositionEmbeddings,
    tokenizer_class: "PreTrainedTokenizerFast",
  };
  return { json, config };
}

/** The token stream of the corpus: BOS doc EOS BOS doc EOS … */
export function tokenStream(tok: Tokenizer, docs: readonly string[]): Int32Array {
  const out: number[] = [];
  for (const d of docs) out.push(...tok.encode(d, { addBos: true, addEos: true }));
  return Int32Array.from(out);
}

/** Probe prompts: the first pretraining form of each fact, cut before the value ("alice lives in" → "paris"). */
export function probes(world: World): { attribute: Attribute; prompt: string; answer: string }[] {
  const cut = (a: Attribute) => FACT_FORMS[a][0].slice(0, FACT_FORMS[a][0].indexOf(" {v}"));
  return ATTRIBUTES.flatMap((a) =>
    world.people.map((p) => ({ attribute: a, prompt: cut(a).replace("{n}", p.name), answer: p[a] }))
  );
}

/** Fraction of probes whose greedy next token is the fact's value, per attribute and overall. */
export async function probeAccuracy(
  params: LlamaParams,
  config: LlamaConfig,
  tok: Tokenizer,
  world: World,
): Promise<Record<string, number>> {
  const groups = new Map<string, { ids: number[]; answer: number; attribute: string }[]>();
  for (const p of probes(world)) {
    const ids = tok.encode(p.prompt);
    const g = groups.get(`${p.attribute}/${ids.length}`) ?? [];
    g.push({ ids, answer: tok.encode(p.answer, { addBos: false })[0], attribute: p.attribute });
    groups.set(`${p.attribute}/${ids.length}`, g);
  }
  const hits: Record<string, [number, number]> = {};
  for (const g of groups.values()) {
    const T = g[0].ids.length, V = config.vocabSize;
    const last = await scope(async () => {
      const logits = forward(params, tensor(Int32Array.from(g.flatMap((x) => x.ids)), [g.length, T], "int32"), config);
      return (await reshape(slice(logits, [0, T - 1], [g.length, T]), [g.length, V]).data()) as Float32Array;
    });
    g.forEach((x, b) => {
      let best = 0;
      for (let v = 1; v < V; v++) if (last[b * V + v] > last[b * V + best]) best = v;
      for (const k of [x.attribute, "all"]) {
        const h = hits[k] ??= [0, 0];
        h[0] += best === x.answer ? 1 : 0;
        h[1]++;
      }
    });
  }
  return Object.fromEntries(Object.entries(hits).map(([k, [c, n]]) => [k, c / n]));
}

/** Options of {@link pretrain}. */
export interface PretrainOptions {
  seed: number;
  steps: number;
  batch: number;
  seqLen: number;
  lr: number;
  /** Called every `logEvery` steps with progress. */
  log?: (msg: string) => void;
  logEvery?: number;
  /** Probe accuracy every `probeEvery` steps (0: never). */
  probeEvery?: number;
  world?: World;
}

/**
 * Full-parameter pretraining of a fresh `randomLlama` on the token stream:
 * next-token cross-entropy on packed windows of `seqLen` + 1 tokens,
 * AdamW with warm-up and cosine decay, gradients clipped at norm 1.
 */
export async function pretrain(
  stream: Int32Array,
  vocabSize: number,
  tok: Tokenizer,
  o: PretrainOptions,
): Promise<{ params: LlamaParams; config: LlamaConfig; finalLoss: number; seconds: number }> {
  const { config, params } = randomLlama({ ...MODEL_SHAPE, vocabSize, seed: o.seed });
  const { batch: B, seqLen: T, steps } = o;
  const lossFn = (p: LlamaParams, tokens: Tensor, targets: Tensor) =>
    crossEntropy(reshape(forward(p, tokens, config), [B * T, vocabSize]), targets);
  const optimizer = chain(
    clipByGlobalNorm(1),
    adamw(schedules.cosineWithWarmup(o.lr, Math.min(100, steps >> 3), steps, o.lr / 10)),
  );
  const step = trainStep(lossFn, optimizer);
  let state = { trainable: params, opt: optimizer.init(params) };
  const windows = Math.floor((stream.length - 1) / T);
  const r = rng(o.seed ^ 0xda7a);
  let order: number[] = [], cursor = 0, epoch = 0, offset = 0;
  const t0 = performance.now();
  let recent = 0, recentN = 0, finalLoss = NaN;
  for (let s = 0; s < steps; s++) {
    const ids = new Int32Array(B * T), tgt = new Int32Array(B * T);
    for (let b = 0; b < B; b++) {
      if (cursor >= order.length) {
        // A new epoch: shift window boundaries and reshuffle the windows.
        offset = Math.floor(r() * T);
        order = shuffle(r, Array.from({ length: windows - 1 }, (_, i) => offset + i * T));
        cursor = 0;
        epoch++;
      }
      const start = order[cursor++];
      ids.set(stream.subarray(start, start + T), b * T);
      tgt.set(stream.subarray(start + 1, start + T + 1), b * T);
    }
    const out = step(state, tensor(ids, [B, T], "int32"), tensor(tgt, [B * T], "int32"));
    state = out.state;
    const loss = await out.loss.item();
    out.loss.dispose();
    if (!Number.isFinite(loss)) throw new Error(`pretrain: loss became ${loss} at step ${s + 1}`);
    recent += loss;
    recentN++;
    const done = s + 1;
    if (done % (o.logEvery ?? 25) === 0 || done === steps) {
      const sec = (performance.now() - t0) / 1000;
      finalLoss = recent / recentN;
      o.log?.(
        `step ${done}/${steps} epoch ${epoch} loss ${finalLoss.toFixed(4)} ` +
          `${((done * B * T) / sec).toFixed(0)} tok/s elapsed ${sec.toFixed(0)}s eta ${
            ((sec / done) * (steps - done)).toFixed(0)
          }s`,
      );
      recent = recentN = 0;
    }
    if (o.world && o.probeEvery && (done % o.probeEvery === 0 || done === steps)) {
      const acc = await probeAccuracy(state.trainable, config, tok, o.world);
      o.log?.(`  probe ${Object.entries(acc).map(([k, v]) => `${k} ${(100 * v).toFixed(1)}%`).join(" ")}`);
    }
  }
  return { params: state.trainable, config, finalLoss, seconds: (performance.now() - t0) / 1000 };
}

const HELP = `Usage: deno run -A examples/pretrain_tiny.ts [options]

Generates a synthetic world, its corpus and a BPE tokenizer, pretrains a small Llama on it with knot
(full-parameter AdamW) and writes it in Hugging Face layout, with the built-in QA task's data.

  --seed N      seed of everything (default ${DEFAULT_SEED})
  --steps N     pretraining steps (default 1600)
  --batch N     sequences per step (default 8)
  --seq N       tokens per sequence (default 128)
  --lr X        peak learning rate (default 3e-3; warm-up, cosine decay to lr/10)
  --out DIR     output directory (default examples/tiny/)
  --dry-run     build the world, corpus and tokenizer, check them, print the corpus sha256; write nothing
  -h, --help    show this help`;

/** Checks that the tokenizer encodes and decodes every document and QA string exactly, with no <unk>. */
export function checkTokenizer(tok: Tokenizer, texts: readonly string[]): void {
  for (const t of texts) {
    const ids = tok.encode(t, { addBos: false });
    if (ids.includes(0)) throw new Error(`tokenizer: <unk> in ${JSON.stringify(t)}`);
    if (tok.decode(ids) !== t.trim()) {
      throw new Error(`tokenizer: ${JSON.stringify(t)} decodes to ${JSON.stringify(tok.decode(ids))}`);
    }
  }
}

async function main(args: string[]): Promise<number> {
  const f = parseFlags(args, {
    seed: { type: "string", default: String(DEFAULT_SEED) },
    steps: { type: "string", default: "1600" },
    batch: { type: "string", default: "8" },
    seq: { type: "string", default: "128" },
    lr: { type: "string", default: "3e-3" },
    out: { type: "string", default: new URL("./tiny/", import.meta.url).pathname },
    "dry-run": { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  });
  if (f.help) {
    console.log(HELP);
    return 0;
  }
  const seed = intFlag("seed", f.seed), steps = intFlag("steps", f.steps), batch = intFlag("batch", f.batch, 1);
  const seqLen = intFlag("seq", f.seq, 1), lr = positiveFlag("lr", f.lr);
  const out = f.out.replace(/\/+$/, "");
  const log = (m: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${m}`);

  const world = makeWorld(seed);
  const docs = makeCorpus(world, seed);
  const { text, sha256 } = await corpusDigest(docs);
  const bpe = learnBpe(docs, 1000);
  const files = tokenizerFiles(bpe);
  const tok = new Tokenizer(files.json, files.config as Record<string, unknown>);
  const qa = makeQa(world);
  const qaTexts = [...qa.train, ...qa.eval].flatMap((e) => Object.values(builtinTask.format(e)));
  checkTokenizer(tok, [...docs, ...qaTexts]);
  const stream = tokenStream(tok, docs);
  log(
    `world: ${world.people.length} people; corpus: ${docs.length} documents, ${text.length} chars, ` +
      `${stream.length} tokens, sha256 ${sha256}; vocab ${bpe.vocab.length} (${bpe.merges.length} merges)`,
  );
  if (f["dry-run"]) return 0;

  await Deno.mkdir(`${out}/task`, { recursive: true });
  const json = (x: unknown) => JSON.stringify(x, null, 2) + "\n";
  await Deno.writeTextFile(`${out}/tokenizer.json`, json(files.json));
  await Deno.writeTextFile(`${out}/tokenizer_config.json`, json(files.config));
  const reread = await loadTokenizer(out);
  checkTokenizer(reread, [...docs.slice(0, 500), ...qaTexts]);
  for (const split of ["train", "eval"] as const) {
    await Deno.writeTextFile(`${out}/task/${split}.jsonl`, qa[split].map((e) => JSON.stringify(e)).join("\n") + "\n");
  }

  const opts = { seed, steps, batch, seqLen, lr, log, world, probeEvery: 200 };
  const res = await pretrain(stream, bpe.vocab.length, tok, opts);
  await saveLlama(out, res.params, res.config);
  const gen = { bos_token_id: 1, eos_token_id: 2, do_sample: false };
  await Deno.writeTextFile(`${out}/generation_config.json`, json(gen));
  const acc = await probeAccuracy(res.params, res.config, tok, world);
  const bytes = await Deno.readFile(`${out}/model.safetensors`);
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
  const cpu = cpuinfo.match(/model name\s*:\s*(.*)/)?.[1] ?? Deno.build.arch;
  const flags = `--seed ${seed} --steps ${steps} --batch ${batch} --seq ${seqLen} --lr ${lr}`;
  const readme = `# tiny: knot's built-in base model

A ${res.config.numLayers}-layer Llama (d=${res.config.hiddenSize}, ${res.config.numHeads} heads over ${res.config.numKvHeads} KV heads,
MLP ${res.config.intermediateSize}, vocab ${res.config.vocabSize}, ${res.config.maxPositionEmbeddings} positions, tied embeddings)
pretrained from scratch with knot on a synthetic corpus about ${world.people.length} people (city, job, pet, favourite
colour, sport), generated by \`examples/pretrain_tiny.ts\`. \`task/\` holds the built-in question-answering task
(\`train/tasks/builtin.ts\`): ${qa.train.length} train questions about ${world.trainPeople.length} people, ${qa.eval.length} eval
questions about ${world.evalPeople.length} others. The corpus states every fact but never in the task's question format.

- command: \`deno run -A examples/pretrain_tiny.ts ${flags}\`
- seed: ${seed}
- steps: ${steps} (batch ${batch} × ${seqLen} tokens, AdamW peak lr ${lr}, warm-up, cosine to lr/10, clip 1)
- final pretraining loss: ${res.finalLoss.toFixed(4)} (mean of the last 25 steps)
- pretraining time: ${(res.seconds / 60).toFixed(1)} min
- fact completion ("alice lives in" → "paris", all people): ${
    Object.entries(acc).map(([k, v]) => `${k} ${(100 * v).toFixed(1)}%`).join(", ")
  }
- date: ${new Date().toISOString().slice(0, 10)}
- machine: ${cpu}, ${navigator.hardwareConcurrency} cores, Deno ${Deno.version.deno}
- corpus: ${docs.length} documents, ${stream.length} tokens
- corpus sha256: \`${sha256}\`
- model.safetensors sha256: \`${await sha256hex(bytes)}\` (${bytes.length} bytes)
`;
  await Deno.writeTextFile(`${out}/README.md`, readme);
  log(`wrote ${out}: final loss ${res.finalLoss.toFixed(4)}, probe ${JSON.stringify(acc)}`);
  return 0;
}

if (import.meta.main) runMain(main);
