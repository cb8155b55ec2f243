/**
 * HellaSwag commonsense completion, scored by log-likelihood: the context is
 * the prompt, each of the four endings a continuation, and the prediction is
 * the ending with the highest mean token log-probability (see
 * `train/metrics/hellaswag.ts`).
 *
 * Data (`../shared/data/hellaswag/hellaswag_val.jsonl`): all 10042 official
 * validation tasks, already cleaned of WikiHow markup, with `val_index`,
 * `activity_label`, `ctx`, `label` and `endings`. There is no train split, so
 * the file is split by `val_index`: "train" is `val_index < 8000` (8000 tasks),
 * "eval" is the rest (2042), "all" is everything. The split applies to a file
 * `path` too.
 *
 * @module
 */
import { accuracy, pickEnding } from "../metrics/hellaswag.ts";
import { applyLimit, dataFile, readJsonl, splitEntry } from "./data.ts";
import type { Choices, ChoiceTask, Example, Formatted } from "./types.ts";

/** A HellaSwag task: context, four endings and the index of the right one. */
export interface HellaswagExample extends Example {
  /** Index in the validation file. */
  valIndex: number;
  /** ActivityNet or WikiHow activity label. */
  activityLabel: string;
  /** The context to continue. */
  ctx: string;
  /** The four candidate endings. */
  endings: string[];
  /** Index of the right ending. */
  label: number;
}

/** Where the validation file is split into train and eval. */
export const HELLASWAG_TRAIN_SIZE = 8000;

const SPLITS: Record<string, (i: number) => boolean> = {
  train: (i) => i < HELLASWAG_TRAIN_SIZE,
  eval: (i) => i >= HELLASWAG_TRAIN_SIZE,
  all: () => true,
};

function parse(file: string, line: number, v: unknown): HellaswagExample {
  const r = v as Record<string, unknown>;
  const bad = (what: string) => new Error(`${file}:${line}: ${what}`);
  if (typeof r !== "object" || r === null) throw bad("expected a JSON object");
  if (!Number.isInteger(r.val_index)) throw bad(`missing or non-integer field "val_index"`);
  if (typeof r.ctx !== "string") throw bad(`missing field "ctx"`);
  if (typeof r.activity_label !== "string") throw bad(`missing field "activity_label"`);
  const endings = r.endings;
  if (!Array.isArray(endings) || endings.length < 2 || !endings.every((e) => typeof e === "string")) {
    throw bad(`field "endings" must be a list of at least two strings`);
  }
  const label = r.label as number;
  if (!Number.isInteger(label) || label < 0 || label >= endings.length) throw bad(`label ${r.label} out of range`);
  return {
    id: `hellaswag:${r.val_index}`,
    valIndex: r.val_index as number,
    activityLabel: r.activity_label,
    ctx: r.ctx,
    endings: endings as string[],
    label,
  };
}

/** Parses a prediction: an ending index ("2") or the text of an ending (compared trimmed); -1 when neither. */
function predictedIndex(prediction: string, ex: HellaswagExample): number {
  const t = prediction.trim();
  if (/^\d+$/.test(t)) return Number(t);
  return ex.endings.findIndex((e) => e.trim() === t);
}

/**
 * The HellaSwag task. The prompt is `<activity label>: <ctx>` (as
 * lm-eval-harness and llama.cpp build it) and each ending is a continuation
 * with a leading space. `format` gives the prompt and the correct ending (for
 * training); `choices` gives the prompt and all endings (for scoring).
 * `metric` takes predicted indices ("0".."3") or ending texts;
 * `metricFromLogLikelihoods` takes per-token log-probabilities (or their sums
 * and token counts, as `train/evaluate.ts`'s `scoreEndings` gives) and reports
 * the per-token-normalised accuracy as `value`, plus lm-eval-harness's `acc`
 * (unnormalised) and `acc_norm` (per character) as `accUnnormalized` and
 * `accCharNorm`, all percentages.
 */
export const hellaswag: ChoiceTask<HellaswagExample> = {
  name: "hellaswag",
  splits: Object.keys(SPLITS),
  decoding: { maxTokens: 48, stop: ["\n"] },
  async load({ path, split, limit }) {
    const keep = splitEntry("hellaswag", SPLITS, split);
    const file = await dataFile("hellaswag", path, "hellaswag", "hellaswag_val.jsonl");
    const rows = (await readJsonl(file)).map((r) => parse(file, r.line, r.value)).filter((e) => keep(e.valIndex));
    return applyLimit(rows, limit);
  },
  choices(ex: HellaswagExample): Choices {
    return { prompt: `${ex.activityLabel}: ${ex.ctx}`, endings: ex.endings.map((e) => ` ${e}`) };
  },
  format(ex: HellaswagExample): Formatted {
    const c = hellaswag.choices(ex);
    return { prompt: c.prompt, answer: c.endings[ex.label] };
  },
  metric(predictions, examples) {
    if (predictions.length !== examples.length) {
      throw new Error(`hellaswag metric: ${predictions.length} predictions for ${examples.length} examples`);
    }
    const picks = examples.map((ex, i) => predictedIndex(predictions[i], ex));
    const acc = accuracy(picks, examples.map((e) => e.label));
    return { name: "accuracy", value: 100 * acc, unparsed: picks.filter((p) => p < 0).length, count: examples.length };
  },
  metricFromLogLikelihoods(scores, examples) {
    if (scores.length !== examples.length) {
      throw new Error(`hellaswag metric: scores for ${scores.length} examples, ${examples.length} examples given`);
    }
    const labels = examples.map((e) => e.label);
    const pick = (lengths: (ex: HellaswagExample, tokens: number[]) => number[]) =>
      scores.map((endings, i) => {
        const sums = endings.map((s) => "logLikelihood" in s ? s.logLikelihood : s.reduce((a, b) => a + b, 0));
        const tokens = endings.map((s) => "tokens" in s ? s.tokens : s.length);
        return pickEnding(sums, lengths(examples[i], tokens));
      });
    const acc = (p: number[]) => 100 * accuracy(p, labels);
    return {
      name: "accuracy",
      value: acc(pick((_, tokens) => tokens)),
      accUnnormalized: acc(pick((_, tokens) => tokens.map(() => 1))),
      accCharNorm: acc(pick((ex) => hellaswag.choices(ex).endings.map((e) => e.length))),
      count: examples.length,
    };
  },
};
