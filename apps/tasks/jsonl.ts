/**
 * A generic JSONL task in knot's one JSONL convention, shared by `--task
 * jsonl`, the built-in task's files (examples/tiny/task/) and the web page:
 *
 *   {"prompt": "question : where does abby live ? answer :", "answer": " denver ."}
 *
 * `prompt` is what the model reads and `answer` the exact continuation it is
 * trained on (the loss is taken on the answer's tokens only, so mind its
 * leading space); other fields are ignored. The metric is exact match after
 * trimming (the trainer reports the loss as well).
 *
 * Data: `path` is a directory holding `train.jsonl` and `eval.jsonl` (any
 * `<split>.jsonl`), or one `.jsonl` file. One file — or a directory with
 * `train.jsonl` but no `eval.jsonl` — is split, never read twice: a row goes
 * to eval when the FNV-1a hash of its prompt is 0 mod 10 (about 10%, the same
 * rows whatever the file order, duplicates of a prompt on one side), and
 * {@link jsonl}'s `splitNote` says so.
 *
 * @module
 */
import { basename, join } from "node:path";
import { meanExactMatch } from "../metrics/exact.ts";
import { resolve } from "node:path";
import { applyLimit, field, fnv1a, type JsonlRow, readJsonl } from "./data.ts";
import type { Example, Formatted, Task } from "./types.ts";

/** A prompt and its answer. */
export interface JsonlExample extends Example {
  /** What the model reads. */
  prompt: string;
  /** What it should continue with. */
  answer: string;
}

/** Whether a row of a file that is split goes to eval (see the module docs). */
export function isHeldOut(prompt: string): boolean {
  return fnv1a(prompt) % 10 === 0;
}

async function stat(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/** The file to read for `split`, and whether it must be split (one file holds both splits). */
async function source(path: string, split: string): Promise<{ file: string; shared: boolean }> {
  const info = await stat(path);
  if (info === null) throw new Error(`jsonl: JSONL file not found at "${path}" (${resolve(path)})`);
  if (info.isFile) return { file: path, shared: true };
  const file = join(path, `${split}.jsonl`), train = join(path, "train.jsonl");
  // train.jsonl without eval.jsonl: both splits come from train.jsonl.
  if ((split === "train" || split === "eval") && !await stat(join(path, "eval.jsonl")) && await stat(train)) {
    return { file: train, shared: true };
  }
  if (await stat(file)) return { file, shared: false };
  throw new Error(`jsonl: JSONL file not found at "${file}" (${resolve(file)})`);
}

function parse(file: string, row: JsonlRow): JsonlExample {
  const v = row.value as Record<string, unknown> | null;
  if (v && typeof v === "object" && !Array.isArray(v) && "completion" in v && !("answer" in v)) {
    throw new Error(
      `${file}:${row.line}: field "completion" is not read: knot's JSONL rows are {"prompt": ..., "answer": ...}; ` +
        `rename "completion" to "answer"`,
    );
  }
  return {
    id: `${basename(file)}:${row.line}`,
    prompt: field(file, row, "prompt"),
    answer: field(file, row, "answer"),
  };
}

/**
 * The generic JSONL task. Malformed JSON, a line that is not an object, or a
 * missing or non-string `prompt`/`answer` is an Error naming the file and the
 * line. Blank lines are skipped. Decoding: 256 tokens, no stop strings (the
 * end-of-sequence token ends an answer).
 */
export const jsonl: Task<JsonlExample> = {
  name: "jsonl",
  splits: ["train", "eval"],
  decoding: { maxTokens: 256 },
  async load({ path, split, limit }) {
    if (path === undefined) {
      throw new Error(`jsonl: no path given; pass a .jsonl file or a directory holding ${split}.jsonl`);
    }
    const { file, shared } = await source(path, split);
    let rows = (await readJsonl(file)).map((r) => parse(file, r));
    if (shared) {
      if (split !== "train" && split !== "eval") {
        throw new Error(`jsonl: ${file} is one file; only the splits "train" and "eval" can be made from it`);
      }
      const held = rows.filter((r) => isHeldOut(r.prompt));
      if (!held.length || held.length === rows.length) {
        throw new Error(
          `jsonl: ${file} holds ${rows.length} rows, of which ${held.length} fall in the held-out tenth; ` +
            `too few to split into train and eval: pass a directory with train.jsonl and eval.jsonl`,
        );
      }
      rows = split === "eval" ? held : rows.filter((r) => !isHeldOut(r.prompt));
    }
    return applyLimit(rows, limit);
  },
  format(ex: JsonlExample): Formatted {
    return { prompt: ex.prompt, answer: ex.answer };
  },
  metric(predictions, examples) {
    const value = meanExactMatch(predictions, examples.map((e) => e.answer));
    return { name: "exactMatch", value, count: examples.length };
  },
  async splitNote(path) {
    if (path === undefined) return null;
    const { file, shared } = await source(path, "eval");
    if (!shared) return null;
    const [train, ev] = [await this.load({ path, split: "train" }), await this.load({ path, split: "eval" })];
    return `jsonl: ${file} holds both splits (no separate eval.jsonl): ${train.length} rows train, ` +
      `${ev.length} rows eval, held out by a hash of the prompt (~10%); pass a directory with train.jsonl ` +
      `and eval.jsonl to choose the eval rows`;
  },
};
