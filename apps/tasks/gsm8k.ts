/**
 * GSM8K grade-school maths: prompt `Question: <question>\nAnswer:`, answer
 * ` <worked solution>` ending in `#### <number>` with the `<<a*b=c>>`
 * calculator annotations removed, metric exact match of the final number
 * (see `train/metrics/gsm8k.ts`).
 *
 * Data (`../shared/data/gsm8k/`): `train.jsonl` (7473) and `test.jsonl`
 * (1319) with `question` and `answer`, verbatim from openai/grade-school-math.
 * Split "eval" is the test split.
 *
 * @module
 */
import { basename } from "node:path";
import { extractAnswer, goldNumber } from "../metrics/gsm8k.ts";
import { applyLimit, dataFile, field, readJsonl, splitEntry } from "./data.ts";
import type { Example, Formatted, Task } from "./types.ts";

/** A GSM8K problem. */
export interface Gsm8kExample extends Example {
  /** The word problem. */
  question: string;
  /** The worked solution as in the file (with calculator annotations and the `####` line). */
  solution: string;
  /** The gold number in canonical form (commas removed). */
  gold: string;
}

const SPLITS = { train: "train.jsonl", test: "test.jsonl", eval: "test.jsonl" } as const;

/**
 * The solution as a training target: calculator annotations `<<…>>` removed,
 * and blank lines collapsed (6 solutions contain a "\n\n", which is a stop
 * string).
 */
export function cleanSolution(solution: string): string {
  return solution.replace(/<<[^>]*>>/g, "").replace(/\n{2,}/g, "\n").trim();
}

/**
 * The GSM8K task. Decoding: 256 tokens, stop at a blank line or at the start
 * of a new "Question:". Metric: `value` is 100 × the fraction of outputs whose
 * answer (the number after `####`, else the last number) equals the gold
 * number.
 */
export const gsm8k: Task<Gsm8kExample> = {
  name: "gsm8k",
  splits: Object.keys(SPLITS),
  decoding: { maxTokens: 256, stop: ["\n\n", "Question:"] },
  async load({ path, split, limit }) {
    const file = await dataFile("gsm8k", path, "gsm8k", splitEntry("gsm8k", SPLITS, split));
    return applyLimit(await readJsonl(file), limit).map((row) => {
      const solution = field(file, row, "answer");
      return {
        id: `${basename(file)}:${row.line}`,
        question: field(file, row, "question"),
        solution,
        gold: goldNumber(solution),
      };
    });
  },
  format(ex: Gsm8kExample): Formatted {
    return { prompt: `Question: ${ex.question.trim()}\nAnswer:`, answer: ` ${cleanSolution(ex.solution)}` };
  },
  metric(predictions, examples) {
    if (predictions.length !== examples.length) {
      throw new Error(`gsm8k metric: ${predictions.length} predictions for ${examples.length} examples`);
    }
    if (predictions.length === 0) throw new Error("gsm8k metric: no examples to score");
    let correct = 0, noAnswer = 0;
    predictions.forEach((p, i) => {
      const a = extractAnswer(p);
      if (a === null) noAnswer++;
      if (a === examples[i].gold) correct++;
    });
    return {
      name: "accuracy",
      value: (100 * correct) / predictions.length,
      correct,
      noAnswer,
      count: predictions.length,
    };
  },
};
