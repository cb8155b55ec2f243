/**
 * The built-in task: question answering about the synthetic world of
 * knot's tiny base model (`examples/tiny/`, made by examples/pretrain_tiny.ts).
 * The base model was pretrained on statements of the facts ("alice lives in
 * paris .", "the city of alice is paris .", stories) but never on questions in
 * this format; the train and eval splits ask about different people, so the
 * eval measures a learned format applied to pretrained knowledge, not
 * memorised question-answer pairs.
 *
 *   prompt  "question : where does alice live ? answer :"
 *   answer  " paris ."          (metric: exact match of the word before the ".")
 *
 * The rows follow knot's one JSONL convention (see train/tasks/jsonl.ts):
 * `prompt` is what the model reads, `answer` the exact continuation it is
 * trained on; `id`, `person` and `attribute` are extra fields. So the files are
 * also a valid `--task jsonl` dataset and web-page upload.
 *
 * Data: `examples/tiny/task/{train,eval}.jsonl` (600 and 200 rows), resolved
 * relative to this module, so it works from any directory. The world itself
 * (people, facts, the pretraining corpus, the QA rows) is generated from a
 * seed by {@link makeWorld}, {@link makeCorpus} and {@link makeQa} below.
 *
 * @example
 * ```ts
 * import { builtinTask } from "./builtin.ts";
 * const rows = await builtinTask.load({ split: "eval", limit: 2 });
 * const { prompt, answer } = builtinTask.format(rows[0]);
 * const m = builtinTask.metric([rows[0].answer, "no"], rows); // { name: "exactMatch", value: 50, ... }
 * ```
 * @module
 */
import type { Example, LoadOptions, MetricResult, Task } from "./types.ts";

/** The facts each person has. */
export const ATTRIBUTES = ["city", "job", "pet", "colour", "sport"] as const;
/** One of {@link ATTRIBUTES}. */
export type Attribute = typeof ATTRIBUTES[number];

/** The question for each attribute ({n}: the person's name). */
export const QUESTIONS: Readonly<Record<Attribute, string>> = {
  city: "where does {n} live ?",
  job: "what is the job of {n} ?",
  pet: "what pet does {n} have ?",
  colour: "what is the favourite colour of {n} ?",
  sport: "what sport does {n} play ?",
};

/** One row of the JSONL files. */
export interface BuiltinExample extends Example {
  /** `<person>/<attribute>`. */
  id: string;
  /** The person asked about. */
  person: string;
  /** The fact asked for. */
  attribute: Attribute;
  /** What the model reads, e.g. "question : where does alice live ? answer :". */
  prompt: string;
  /** The continuation it is trained on, e.g. " paris ." (the gold word is {@link normalizeAnswer} of it). */
  answer: string;
}

/** The metric's result: exact match in percent, with counts and per-attribute scores. */
export interface BuiltinMetric extends MetricResult {
  /** Always "exactMatch". */
  name: "exactMatch";
  /** Exact match in percent. */
  value: number;
  /** Answers right. */
  correct: number;
  /** Answers scored. */
  count: number;
  /** Exact match in percent per attribute. */
  byAttribute: Record<string, number>;
}

const DEFAULT_DIR = new URL("../../examples/tiny/task/", import.meta.url);

/** The prediction's answer: text before the first "." or newline, trimmed, inner whitespace collapsed. */
export function normalizeAnswer(text: string): string {
  return text.split(/[.\n]/)[0].trim().replace(/\s+/g, " ");
}

function splitName(split: string): "train" | "eval" {
  if (split === "train") return "train";
  if (split === "eval" || split === "validation" || split === "test") return "eval";
  throw new Error(`builtin: unknown split "${split}" (known: train, eval)`);
}

function parseRow(line: string, where: string): BuiltinExample {
  let row: BuiltinExample;
  try {
    row = JSON.parse(line);
  } catch (e) {
    throw new Error(`${where}: invalid JSON (${(e as Error).message})`);
  }
  for (const k of ["id", "person", "attribute", "prompt", "answer"] as const) {
    if (typeof row[k] !== "string") throw new Error(`${where}: field "${k}" must be a string`);
  }
  if (!ATTRIBUTES.includes(row.attribute)) throw new Error(`${where}: unknown attribute "${row.attribute}"`);
  return row;
}

/**
 * The built-in QA task over the tiny model's world. `load` reads
 * `<split>.jsonl` from `path` (a directory, or one `.jsonl` file; default
 * examples/tiny/task/); splits "train" and "eval" ("validation" and "test"
 * read "eval"). Decoding is greedy, one answer word and its ".", cut at ".".
 */
export const builtinTask: Task<BuiltinExample> & {
  metric: (p: readonly string[], e: readonly BuiltinExample[]) => BuiltinMetric;
} = {
  name: "builtin",
  splits: ["train", "eval", "validation", "test"],
  decoding: { maxTokens: 4, stop: ["."] },

  /** Reads a split (JSONL, one {@link BuiltinExample} per line). */
  async load(opts: LoadOptions): Promise<BuiltinExample[]> {
    const split = splitName(opts.split);
    const file = opts.path === undefined
      ? new URL(`${split}.jsonl`, DEFAULT_DIR).pathname
      : opts.path.endsWith(".jsonl")
      ? opts.path
      : `${opts.path.replace(/\/+$/, "")}/${split}.jsonl`;
    let text: string;
    try {
      text = await Deno.readTextFile(file);
    } catch (e) {
      throw new Error(
        `builtin: cannot read ${file} (${
          (e as Error).message
        }); regenerate it with deno run -A examples/pretrain_tiny.ts`,
      );
    }
    const rows = text.split("\n").filter((l) => l.trim()).map((l, i) => parseRow(l, `${file}:${i + 1}`));
    return opts.limit === undefined ? rows : rows.slice(0, opts.limit);
  },

  /** The prompt and the target continuation (the loss is taken on the answer). */
  format(ex: BuiltinExample): { prompt: string; answer: string } {
    return { prompt: ex.prompt, answer: ex.answer };
  },

  /** Exact match (percent) of normalised predictions against the gold words. */
  metric(predictions: readonly string[], examples: readonly BuiltinExample[]): BuiltinMetric {
    if (predictions.length !== examples.length) {
      throw new Error(`builtin.metric: ${predictions.length} predictions for ${examples.length} examples`);
    }
    if (!examples.length) throw new Error("builtin.metric: no examples to score");
    const hits: Record<string, [number, number]> = {};
    let correct = 0;
    examples.forEach((ex, i) => {
      const ok = normalizeAnswer(predictions[i]) === normalizeAnswer(ex.answer) ? 1 : 0;
      correct += ok;
      const h = hits[ex.attribute] ??= [0, 0];
      h[0] += ok;
      h[1]++;
    });
    const byAttribute = Object.fromEntries(Object.entries(hits).map(([a, [c, n]]) => [a, (100 * c) / n]));
    return {
      name: "exactMatch",
      value: (100 * correct) / examples.length,
      correct,
      count: examples.length,
      byAttribute,
    };
  },
};

/** The row asking about `person`'s `attribute`, whose gold answer is the word `value`. */
export function qaExample(person: string, attribute: Attribute, value: string): BuiltinExample {
  const question = QUESTIONS[attribute].replace("{n}", person);
  return {
    id: `${person}/${attribute}`,
    person,
    attribute,
    prompt: `question : ${question} answer :`,
    answer: ` ${value} .`,
  };
}

// ---------------------------------------------------------------- the world and its corpus

/** A deterministic PRNG (mulberry32): floats in [0, 1). */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
/** Shuffles `xs` in place (Fisher–Yates) with `r`, and returns it. */
export function shuffle<T>(r: () => number, xs: T[]): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [xs[i], xs[j]] = [xs[j], xs[i]];
  }
  return xs;
}

const NAMES = (
  "alice bob carol dave emma frank grace henry iris jack kate leo mia noah olive paul quinn ruby sam tara uma " +
  "victor wendy xavier yara zack anna ben clara dan ella fred gina hugo ivy james kim liam maya nina oscar penny " +
  "ray sara tom una vera wyatt zoe adam beth chris diana eric fiona george hannah ian julia kevin laura mark nora " +
  "owen peter rita steve tina ursula vince wanda yusuf zara amir bella colin daisy eli freya gavin holly isaac jade " +
  "karl lucy max molly nick orla pete rosa seth tess umar val wade yvonne zane abby bruno cora dex edith felix gwen " +
  "harry ida joel kara luke mona ned opal pia reed sofia theo ulla walt yuki zeke ada blake cleo drew esme finn " +
  "greta hank ines jon kira lars mila nate odin perry rhea saul tilly uri vivi wes yan zina alma boris chloe dylan " +
  "elsa flora gus hazel ike joy kurt lena milo nell otto"
).split(" ");

/** The values each attribute takes. */
export const VALUES: Readonly<Record<Attribute, readonly string[]>> = {
  city:
    "paris rome london berlin madrid vienna prague dublin oslo lisbon athens warsaw cairo tokyo lima sydney toronto boston denver milan"
      .split(" "),
  job:
    "doctor teacher baker farmer pilot nurse painter singer driver lawyer writer cook dancer judge tailor miner sailor banker barber potter"
      .split(" "),
  pet: "cat dog fish horse rabbit parrot turtle snake mouse goat".split(" "),
  colour: "red blue green yellow purple orange black white pink brown".split(" "),
  sport: "tennis football golf hockey rugby cricket chess baseball volleyball badminton".split(" "),
};

/** One person of the world. */
export type Person = { name: string } & Record<Attribute, string>;

/** The world: people with facts, split into people whose questions train the adapter and people kept for eval. */
export interface World {
  /** Everyone, with their facts. */
  people: Person[];
  /** Names whose questions are trained on. */
  trainPeople: string[];
  /** Names whose questions are held out for evaluation. */
  evalPeople: string[];
}

/** The world of a seed: 160 people (120 train, 40 eval), each attribute drawn uniformly. */
export function makeWorld(seed: number): World {
  const r = rng(seed);
  const people = NAMES.map((name) => {
    const p = { name } as Person;
    for (const a of ATTRIBUTES) p[a] = pick(r, VALUES[a]);
    return p;
  });
  const order = shuffle(r, people.map((p) => p.name));
  return { people, trainPeople: order.slice(0, 120).sort(), evalPeople: order.slice(120).sort() };
}

/** Surface forms of each fact in the pretraining text ({n}: name, {v}: value). Never the task's QA format. */
export const FACT_FORMS: Readonly<Record<Attribute, readonly string[]>> = {
  city:
    "{n} lives in {v} .|the city of {n} is {v} .|{n} is from {v} .|{n} has a home in {v} .|{v} is the home town of {n} ."
      .split("|"),
  job: "{n} works as a {v} .|the job of {n} is {v} .|{n} is a {v} .|{n} earns money as a {v} .|{v} is the job of {n} ."
    .split("|"),
  pet:
    "{n} owns a {v} .|the pet of {n} is a {v} .|{n} takes care of a {v} .|{n} has a pet {v} .|{v} is the pet that {n} has ."
      .split("|"),
  colour:
    "the favourite colour of {n} is {v} .|{n} likes the colour {v} .|{n} loves the colour {v} best .|{v} is the favourite colour of {n} ."
      .split("|"),
  sport: "{n} plays {v} .|the sport of {n} is {v} .|{n} enjoys playing {v} .|{v} is the sport that {n} plays .".split(
    "|",
  ),
};

/** Stories about two people ({a}, {b}; {city.a}: a's city …), consistent with their facts. */
const STORIES: readonly string[] = [
  "one day {a} went to {city.b} to visit {b} . {b} , the {job.b} , was happy . they played {sport.b} together .",
  "{a} met a {job.b} named {b} . {b} wore a {colour.b} hat and walked a {pet.b} .",
  "{a} the {job.a} lives in {city.a} with a {pet.a} . {a} wrote a letter to {b} in {city.b} .",
  "{a} asked {b} a question about the weather in {city.b} , and {b} gave a short answer .",
  "{a} asked {b} : is it cold in {city.b} today ? {b} said it was warm and sunny .",
  "{a} does not know where {b} keeps the {colour.b} ball . {a} and {b} have lunch together .",
  "note : {a} and {b} play {sport.a} on sunday . {a} likes to play , and {b} does too .",
  "{b} painted a {colour.a} picture for {a} . what a nice gift ! {a} wants to live near the sea .",
];

function fill(template: string, vars: Record<string, string>): string {
  return template.replace(/\{([a-z.]+)\}/g, (_, k) => vars[k]);
}

function factSentence(r: () => number, p: Person, a: Attribute): string {
  return fill(pick(r, FACT_FORMS[a]), { n: p.name, v: p[a] });
}

/** Options of {@link makeCorpus}. */
export interface CorpusOptions {
  /** Biographies per person (each states all facts, in random order and forms). Default 48. */
  bios?: number;
  /** Stories (two random people each). Default 4000. */
  stories?: number;
}

/** The pretraining documents (one line of plain text each), shuffled. */
export function makeCorpus(world: World, seed: number, opts: CorpusOptions = {}): string[] {
  const { bios = 48, stories = 4000 } = opts;
  const r = rng(seed ^ 0x5eed);
  const docs: string[] = [];
  for (const p of world.people) {
    for (let i = 0; i < bios; i++) {
      docs.push(shuffle(r, [...ATTRIBUTES]).map((a) => factSentence(r, p, a)).join(" "));
    }
  }
  for (let i = 0; i < stories; i++) {
    const a = pick(r, world.people);
    let b = pick(r, world.people);
    while (b === a) b = pick(r, world.people);
    const vars: Record<string, string> = { a: a.name, b: b.name };
    for (const at of ATTRIBUTES) [vars[`${at}.a`], vars[`${at}.b`]] = [a[at], b[at]];
    docs.push(fill(pick(r, STORIES), vars));
  }
  return shuffle(r, docs);
}

/** The corpus as one text (a document per line) and its sha256 in hex. */
export async function corpusDigest(docs: readonly string[]): Promise<{ text: string; sha256: string }> {
  const text = docs.join("\n") + "\n";
  return { text, sha256: await sha256hex(new TextEncoder().encode(text)) };
}

/** The sha256 of bytes, in hex. */
export async function sha256hex(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return [...hash].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The question-answer examples of the world, one per (person, attribute), in the task's JSONL shape. */
export function makeQa(world: World): { train: BuiltinExample[]; eval: BuiltinExample[] } {
  const byName = new Map(world.people.map((p) => [p.name, p]));
  const rows = (names: string[]) => names.flatMap((n) => ATTRIBUTES.map((a) => qaExample(n, a, byName.get(n)![a])));
  return { train: rows(world.trainPeople), eval: rows(world.evalPeople) };
}
