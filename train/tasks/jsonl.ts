/**
 * A generic JSONL task: each line is `{"prompt": string, "completion": string}`
 * (other fields are ignored); the model reads the prompt and should produce
 * the completion; the metric is exact match after trimming (the trainer
 * reports the loss as well). There is no default data: `path` is a `.jsonl`
 * file (read whole, whatever the split), or a directory holding `<split>.jsonl`
 * (any split name).
 *
 * @module
 */
import { basename, join } from "node:path";
import { meanExactMatch } from "../metrics/exact.ts";
import { resolve } from "node:path";
import { applyLimit, field, readJsonl } from "./data.ts";
import type { Example, Formatted, Task } from "./types.ts";

/** A prompt and its completion. */
export interface JsonlExample extends Example {
  prompt: string;
  completion: string;
}

/**
 * The generic JSONL task. Malformed JSON, a line that is not an object, or a
 * missing or non-string `prompt`/`completion` is an Error naming the file and
 * the line. Blank lines are skipped. Decoding: 256 tokens, no stop strings
 * (the end-of-sequence token ends a completion).
 */
export const jsonl: Task<JsonlExample> = {
  name: "jsonl",
  splits: ["train", "eval"],
  decoding: { maxTokens: 256 },
  async load({ path, split, limit }) {
    if (path === undefined) {
      throw new Error(`jsonl: no path given; pass a .jsonl file or a directory holding ${split}.jsonl`);
    }
    let file = path;
    try {
      if ((await Deno.stat(path)).isDirectory) file = join(path, `${split}.jsonl`);
      await Deno.stat(file);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new Error(`jsonl: JSONL file not found at "${file}" (${resolve(file)})`);
      }
      throw e;
    }
    return applyLimit(await readJsonl(file), limit).map((row) => ({
      id: `${basename(file)}:${row.line}`,
      prompt: field(file, row, "prompt"),
      completion: field(file, row, "completion"),
    }));
  },
  format(ex: JsonlExample): Formatted {
    return { prompt: ex.prompt, answer: ex.completion };
  },
  metric(predictions, examples) {
    const value = meanExactMatch(predictions, examples.map((e) => e.completion));
    return { name: "exactMatch", value, count: examples.length };
  },
};
