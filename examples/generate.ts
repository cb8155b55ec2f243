/**
 * Text generation with a Llama checkpoint in Hugging Face layout, streamed as
 * it is produced, with prefill and decode speeds.
 *
 *   deno run -A examples/generate.ts --model ../shared/models/stories260K --prompt "Once upon a time"
 *   deno run -A examples/generate.ts --model DIR --prompt-ids 1,403,407 --json
 *   deno run -A examples/generate.ts --model examples/tiny --adapter out/train_tl6/tl6 --prompt "question : …"
 *
 * Run with --help for every flag.
 * @module
 */
import { llama, random, setBackend } from "../mod.ts";
import { loadLlama, loadTokenizer, type Tokenizer } from "../io/mod.ts";
import { adapterFlag, parseFlags, runMain, UsageError } from "./cli.ts";

const HELP = `Usage: deno run -A examples/generate.ts --model DIR [options]

Generates text with a Llama model in Hugging Face layout and streams it to stdout.

  --model DIR         model directory: config.json, model.safetensors (or a sharded
                      model.safetensors.index.json) and tokenizer.json (+ tokenizer_config.json)
  --adapter DIR       apply a trained adapter: a knot adapter (adapter.json), a Hugging Face PEFT
                      LoRA adapter (adapter_config.json), or a run directory of train_tl6.ts/sweep.ts
  --prompt TEXT       prompt text (default "Once upon a time"); BOS is added as tokenizer_config says
  --prompt-ids IDS    comma-separated prompt token ids instead of text, e.g. 1,403,407
                      (then tokenizer.json is optional: without it, ids are printed instead of text)
  --max-tokens N      most tokens to generate (default 64)
  --temperature T     0 = greedy (default); higher samples more freely
  --top-k K           sample only from the K most likely tokens (default 0 = off)
  --top-p P           sample from the smallest set of tokens with probability >= P (default 1 = off)
  --seed S            seed of the sampling key, an integer in [0, 2^32) (default 0)
  --ignore-eos        keep generating after the end-of-sequence token
  --backend NAME      tensor backend: cpu (default) or webgpu
  --json              print one JSON object and nothing else on stdout:
                      {"prompt_ids": [...], "generated_ids": [...], "text": "...", "last_logits": [...]}
                      (last_logits: the logits at the last prompt position)
  -h, --help          show this help

Speeds (prompt tokens/s for the prefill, generated tokens/s for decoding with the KV cache)
are reported on stderr.`;

const enc = new TextEncoder();
function write(stream: { writeSync(p: Uint8Array): number }, s: string) {
  const bytes = enc.encode(s);
  for (let off = 0; off < bytes.length;) off += stream.writeSync(bytes.subarray(off));
}
const out = (s: string) => write(Deno.stdout, s);
const err = (s: string) => write(Deno.stderr, s);

function parse(args: string[]) {
  return parseFlags(args, {
    model: { type: "string" },
    adapter: { type: "string" },
    prompt: { type: "string" },
    "prompt-ids": { type: "string" },
    "max-tokens": { type: "string", default: "64" },
    temperature: { type: "string", default: "0" },
    "top-k": { type: "string", default: "0" },
    "top-p": { type: "string", default: "1" },
    seed: { type: "string", default: "0" },
    "ignore-eos": { type: "boolean", default: false },
    backend: { type: "string", default: "cpu" },
    json: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  });
}

function number(name: string, text: string, ok: (v: number) => boolean, what: string): number {
  const v = Number(text);
  if (text.trim() === "" || !Number.isFinite(v) || !ok(v)) {
    throw new UsageError(`--${name} must be ${what}, got ${JSON.stringify(text)}`);
  }
  return v;
}

/** `to` relative to the current directory (for a copy-pasteable suggestion). */
function relativeToCwd(to: string): string {
  const a = Deno.cwd().split("/").filter(Boolean), b = to.split("/").filter(Boolean);
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return [...a.slice(i).map(() => ".."), ...b.slice(i)].join("/") || ".";
}

function noModelMessage(): string {
  const shared = new URL("../../shared/models/stories260K", import.meta.url).pathname;
  let suggestion = "";
  try {
    if (Deno.statSync(`${shared}/config.json`).isFile) {
      suggestion = "\n\nA small model is available; try:\n" +
        `  deno run -A examples/generate.ts --model ${relativeToCwd(shared)} --prompt "Once upon a time"`;
    }
  } catch { /* no shared models */ }
  return "no --model given. Pass a Hugging Face Llama directory containing:\n" +
    '  config.json          (model_type "llama")\n' +
    "  model.safetensors    (or model.safetensors.index.json with its shards)\n" +
    "  tokenizer.json       (and optionally tokenizer_config.json)" + suggestion;
}

async function main(args: string[]): Promise<number> {
  const flags = parse(args);
  if (flags.help) {
    out(HELP + "\n");
    return 0;
  }
  if (!flags.model) throw new UsageError(noModelMessage());
  if (flags.prompt !== undefined && flags["prompt-ids"] !== undefined) {
    throw new UsageError("give either --prompt or --prompt-ids, not both");
  }
  const maxTokens = number(
    "max-tokens",
    flags["max-tokens"],
    (v) => Number.isInteger(v) && v > 0,
    "a positive integer",
  );
  const temperature = number("temperature", flags.temperature, (v) => v >= 0, "a number >= 0");
  const topK = number("top-k", flags["top-k"], (v) => Number.isInteger(v) && v >= 0, "an integer >= 0");
  const topP = number("top-p", flags["top-p"], (v) => v > 0 && v <= 1, "a number in (0, 1]");
  const seed = number(
    "seed",
    flags.seed,
    (v) => Number.isInteger(v) && v >= 0 && v < 2 ** 32,
    "an integer in [0, 2^32)",
  );

  await setBackend(flags.backend);
  const dir = flags.model.replace(/\/+$/, "") || "/";
  const { config, params: base } = await loadLlama(dir);
  const adapted = flags.adapter !== undefined ? await adapterFlag(flags.adapter, base) : null;
  if (adapted && !flags.json) err(`${adapted.description}\n`);
  const params = adapted?.params ?? base;
  let tok: Tokenizer | null = null;
  try {
    tok = await loadTokenizer(dir);
  } catch (e) {
    if (flags["prompt-ids"] === undefined) throw e;
    if (!flags.json) err(`note: ${(e as Error).message}; printing token ids instead of text\n`);
  }

  let promptIds: number[];
  if (flags["prompt-ids"] !== undefined) {
    promptIds = flags["prompt-ids"].split(",").map((s) =>
      number("prompt-ids", s.trim(), (v) => Number.isInteger(v) && v >= 0, "comma-separated non-negative integers")
    );
  } else {
    promptIds = tok!.encode(flags.prompt ?? "Once upon a time");
  }
  const bad = promptIds.find((t) => t >= config.vocabSize);
  if (bad !== undefined) {
    throw new UsageError(`--prompt-ids: token ${bad} is outside the vocabulary [0, ${config.vocabSize})`);
  }

  // Streaming: decode everything so far and print only what is new; hold back
  // while the text ends in an incomplete UTF-8 sequence (byte-fallback tokens).
  const render = (ids: number[]) => tok ? tok.decode(ids) : ids.join(" ");
  const promptText = render(promptIds);
  let shown = promptText;
  if (!flags.json) out(promptText);

  const generated: number[] = [];
  let lastLogits: number[] = [];
  let prefillMs = 0, decodeMs = 0, decodeSteps = 0, t = 0;
  const onLogits = (logits: Float32Array, step: number) => {
    const now = performance.now();
    if (step === 0) {
      prefillMs = now - t;
      lastLogits = Array.from(logits);
    } else {
      decodeMs += now - t;
      decodeSteps++;
    }
  };
  const stop = flags["ignore-eos"] ? [] : undefined;
  const stream = llama.generate(params, config, promptIds, {
    maxTokens,
    temperature,
    topK,
    topP,
    key: random.key(seed),
    stop,
    onLogits,
  });
  for (;;) {
    t = performance.now();
    const next = await stream.next();
    if (next.done) break;
    generated.push(next.value);
    if (flags.json) continue;
    const text = tok ? render([...promptIds, ...generated]) : `${promptText} ${generated.join(" ")}`;
    if (text.endsWith("\uFFFD")) continue;
    out(text.startsWith(shown) ? text.slice(shown.length) : text.slice(commonPrefix(text, shown)));
    shown = text;
  }

  const full = tok ? render([...promptIds, ...generated]) : generated.join(" ");
  const completion = tok ? (full.startsWith(promptText) ? full.slice(promptText.length) : full) : full;
  if (flags.json) {
    out(
      JSON.stringify({ prompt_ids: promptIds, generated_ids: generated, text: completion, last_logits: lastLogits }) +
        "\n",
    );
  } else {
    if (full !== shown) out(full.slice(commonPrefix(full, shown)));
    out("\n");
  }
  err(stats(config, promptIds.length, prefillMs, decodeSteps, decodeMs, generated.length, flags.backend));
  return 0;
}

function commonPrefix(a: string, b: string): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

function stats(
  c: llama.LlamaConfig,
  promptLen: number,
  prefillMs: number,
  steps: number,
  decodeMs: number,
  n: number,
  backend: string,
) {
  const rate = (k: number, ms: number) => (ms > 0 ? (k / (ms / 1000)).toFixed(1) : "-");
  return `\n[${backend}] ${c.numLayers} layers, d=${c.hiddenSize}, vocab ${c.vocabSize} · ` +
    `prefill: ${promptLen} tokens in ${prefillMs.toFixed(1)} ms (${rate(promptLen, prefillMs)} tokens/s) · ` +
    `decode: ${steps} steps in ${decodeMs.toFixed(1)} ms (${rate(steps, decodeMs)} tokens/s) · ${n} tokens generated\n`;
}

if (import.meta.main) runMain(main);
