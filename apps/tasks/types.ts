/**
 * The shape of a task: text in, text out. A task loads examples from files,
 * formats each as a prompt and the answer a model should produce, says how to
 * decode, and scores a list of predictions.
 *
 * @module
 */

/** One example; every task's examples carry an id (stable across loads) plus what the task's metric needs. */
export interface Example {
  /** Stable identifier (a dataset id, or the file name and line/row number). */
  id: string;
}

/** Options of {@link Task.load}. */
export interface LoadOptions {
  /**
   * A data file, or a directory holding the task's files (the split then picks
   * the file). Default: the task's folder under `../shared/data/`, relative to
   * the current working directory.
   */
  path?: string;
  /** Which split to load; each task lists its names in {@link Task.splits} ("train" and "eval" always work). */
  split: string;
  /** Keep only the first `limit` examples (in file order). */
  limit?: number;
}

/** A formatted example: the model reads `prompt` and should continue with `answer`. */
export interface Formatted {
  /** What the model reads. */
  prompt: string;
  /** What it should continue with. */
  answer: string;
}

/** How to generate for a task. */
export interface Decoding {
  /** Maximum number of new tokens. */
  maxTokens: number;
  /** Cut the generated text at the first of these strings (the string itself is dropped). */
  stop?: string[];
}

/** A corpus score: `value` is the headline number (a percentage unless stated), the rest are details. */
export interface MetricResult {
  /** Metric name. */
  name: string;
  /** The headline number. */
  value: number;
  /** Details (counts, sub-scores). */
  [detail: string]: unknown;
}

/** A task. Predictions passed to `metric` are the generated texts, already cut at the stop strings. */
export interface Task<E extends Example = Example> {
  /** Task name, as {@link getTask} takes it. */
  readonly name: string;
  /** Split names accepted by `load`. */
  readonly splits: readonly string[];
  /** Loads a split's examples. */
  load(opts: LoadOptions): Promise<E[]>;
  /** The prompt and answer of an example. */
  format(example: E): Formatted;
  /** How to generate answers for the metric. */
  readonly decoding: Decoding;
  /** Scores generated texts against the examples. */
  metric(predictions: readonly string[], examples: readonly E[]): MetricResult;
  /** How `load` makes the train and eval splits from `path`, when that is worth telling (null otherwise). */
  splitNote?(path?: string): Promise<string | null>;
}

/** A multiple-choice prompt: score `prompt + endings[j]` for each j. */
export interface Choices {
  /** The shared context. */
  prompt: string;
  /** The candidate continuations. */
  endings: string[];
}

/** A task scored by choosing among endings by log-likelihood (HellaSwag). */
export interface ChoiceTask<E extends Example = Example> extends Task<E> {
  /** The prompt and endings to score for an example. */
  choices(example: E): Choices;
  /**
   * Accuracy from log-likelihoods: `scores[i][j]` is ending j of example i
   * given its prompt, as its per-token log-probabilities or as
   * `{logLikelihood, tokens}` (their sum and count).
   */
  metricFromLogLikelihoods(scores: readonly (readonly EndingScore[])[], examples: readonly E[]): MetricResult;
}

/** The log-likelihood of one ending: per-token log-probabilities, or their sum and the number of tokens. */
export type EndingScore = readonly number[] | { readonly logLikelihood: number; readonly tokens: number };

/** Whether a task is scored by log-likelihood over choices. */
export function isChoiceTask<E extends Example>(task: Task<E>): task is ChoiceTask<E> {
  return typeof (task as Partial<ChoiceTask<E>>).choices === "function";
}

/** Cut `text` at the earliest occurrence of any stop string (what a generator does with {@link Decoding.stop}). */
export function applyStop(text: string, stop: readonly string[] | undefined): string {
  let end = text.length;
  for (const s of stop ?? []) {
    if (s === "") continue;
    const i = text.indexOf(s);
    if (i >= 0 && i < end) end = i;
  }
  return text.slice(0, end);
}
