/**
 * DialogSum dialogue summarisation: prompt `Dialogue:\n<dialogue>\nSummary:`,
 * answer ` <summary>`, metric ROUGE-L F (rouge-score, no stemming), the
 * maximum over the references of each dialogue, averaged.
 *
 * Data (`../shared/data/dialogsum/`): `dialogsum.{train,dev,test}.jsonl`
 * with `fname`, `dialogue` (turns `#Person1#: …` separated by `\n`) and
 * `summary`/`topic`; the test file has three references, `summary1..3` (and
 * `topic1..3`). Split "eval" is the test split (three references).
 *
 * @module
 */
import { corpusRougeL } from "../metrics/rouge.ts";
import { applyLimit, dataFile, field, oneLine, readJsonl, splitEntry } from "./data.ts";
import type { Example, Formatted, Task } from "./types.ts";

/** A dialogue and its reference summaries. */
export interface DialogsumExample extends Example {
  /** The dialogue, speakers marked `#Person1#:` … */
  dialogue: string;
  /** One reference (train, dev) or three (test), as in the file. */
  summaries: string[];
  /** The dialogue's topic. */
  topic: string;
}

const SPLITS = {
  train: "dialogsum.train.jsonl",
  dev: "dialogsum.dev.jsonl",
  validation: "dialogsum.dev.jsonl",
  test: "dialogsum.test.jsonl",
  eval: "dialogsum.test.jsonl",
} as const;

/**
 * The DialogSum task. The training answer is the first reference with its
 * whitespace collapsed to single spaces (13 train summaries and 1 dev summary
 * contain stray line breaks, which would otherwise teach the model to emit the
 * stop string). Decoding: 128 tokens, stop at a newline. Metric: `value` is
 * 100 × mean ROUGE-L F, with mean precision and recall as details.
 */
export const dialogsum: Task<DialogsumExample> = {
  name: "dialogsum",
  splits: Object.keys(SPLITS),
  decoding: { maxTokens: 128, stop: ["\n"] },
  async load({ path, split, limit }) {
    const file = await dataFile("dialogsum", path, "dialogsum", splitEntry("dialogsum", SPLITS, split));
    const rows = applyLimit(await readJsonl(file), limit);
    return rows.map((row) => {
      const v = row.value as Record<string, unknown>;
      const multi = typeof v === "object" && v !== null && "summary1" in v;
      const summaries = multi
        ? ["summary1", "summary2", "summary3"].filter((k) => k in v).map((k) => field(file, row, k))
        : [field(file, row, "summary")];
      return {
        id: field(file, row, "fname"),
        dialogue: field(file, row, "dialogue"),
        summaries,
        topic: field(file, row, multi ? "topic1" : "topic"),
      };
    });
  },
  format(ex: DialogsumExample): Formatted {
    return { prompt: `Dialogue:\n${ex.dialogue.trim()}\nSummary:`, answer: ` ${oneLine(ex.summaries[0])}` };
  },
  metric(predictions, examples) {
    const s = corpusRougeL(predictions, examples.map((e) => e.summaries));
    return { name: "rougeL", value: 100 * s.f, precision: 100 * s.precision, recall: 100 * s.recall, count: s.count };
  },
};
