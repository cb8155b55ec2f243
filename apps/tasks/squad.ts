/**
 * SQuAD v1.1 extractive question answering, generated as text: the prompt is
 * a window of the context around the first gold answer plus the question, the
 * answer is the first gold answer, and the metric is the official exact match
 * and token F1 (maximum over the gold answers).
 *
 * Data (`../shared/data/squad/`): only the official dev set exists here, split
 * by article into `squad-v1.1-dev_part1.json` (24 articles, 4961 questions;
 * split "train") and `_part2.json` (24 articles, 5609 questions; split
 * "eval"), in the official JSON format; `squad-v1.1-dev.flat.jsonl` (10570
 * rows, part1 then part2) is the same data one question per line. A `path`
 * naming a file is read whole (either format); a directory is read by split.
 *
 * @module
 */
import { squadScores } from "../metrics/squad.ts";
import { applyLimit, dataFile, field, fnv1a, readJsonl, splitEntry } from "./data.ts";
import type { Example, Formatted, Task } from "./types.ts";

/** A SQuAD question with its context and gold answers. */
export interface SquadExample extends Example {
  /** Title of the Wikipedia article. */
  title: string;
  /** The paragraph the answer is in. */
  context: string;
  /** The question. */
  question: string;
  /** Gold answer texts (usually 3, possibly repeated). */
  answers: string[];
  /** Character offsets of the answers in `context` (UTF-16 code units; checked on load). */
  answerStarts: number[];
}

/** Options of {@link squadTask}. */
export interface SquadOptions {
  /**
   * Largest context window in the prompt, in UTF-16 code units (default 400);
   * `Infinity` keeps whole contexts.
   */
  contextChars?: number;
}

const SPLITS = {
  train: "squad-v1.1-dev_part1.json",
  eval: "squad-v1.1-dev_part2.json",
  part1: "squad-v1.1-dev_part1.json",
  part2: "squad-v1.1-dev_part2.json",
  all: "squad-v1.1-dev.flat.jsonl",
} as const;

/**
 * A window of `context` of at most `maxChars` code units that contains the
 * words the span `[start, start + length)` touches and begins and ends on word
 * boundaries (words are runs of non-whitespace). The amount of text before the
 * answer is `seed mod (slack + 1)` characters as nearly as whole words allow,
 * where slack is what the budget leaves beside the answer's words; the rest of
 * the budget goes after the answer, and any remainder (at the end of the
 * context) back before it. Contexts within the budget are returned whole; an
 * answer whose own words exceed the budget is returned alone.
 */
export function contextWindow(context: string, start: number, length: number, maxChars: number, seed: number): string {
  if (context.length <= maxChars) return context;
  const words = [...context.matchAll(/\S+/g)].map((m) => ({ s: m.index!, e: m.index! + m[0].length }));
  const end = start + Math.max(length, 1);
  let i = words.findIndex((w) => w.e > start);
  let j = words.findLastIndex((w) => w.s < end);
  if (i < 0 || j < 0 || j < i) return context.slice(start, start + length);
  if (words[j].e - words[i].s > maxChars) return context.slice(start, start + length);
  const slack = maxChars - (words[j].e - words[i].s);
  const before = seed % (slack + 1);
  const core = words[i].s;
  const fits = (a: number, b: number) => words[b].e - words[a].s <= maxChars;
  while (i > 0 && core - words[i - 1].s <= before && fits(i - 1, j)) i--;
  while (j < words.length - 1 && fits(i, j + 1)) j++;
  while (i > 0 && fits(i - 1, j)) i--;
  return context.slice(words[i].s, words[j].e);
}

function fromOfficial(json: unknown, file: string): SquadExample[] {
  const data = (json as { data?: unknown }).data;
  if (!Array.isArray(data)) throw new Error(`${file}: not SQuAD JSON (no "data" array)`);
  const out: SquadExample[] = [];
  for (const article of data) {
    for (const p of article.paragraphs) {
      for (const qa of p.qas) {
        out.push(checked({
          id: qa.id,
          title: article.title,
          context: p.context,
          question: qa.question,
          answers: qa.answers.map((a: { text: string }) => a.text),
          answerStarts: qa.answers.map((a: { answer_start: number }) => a.answer_start),
        }, file));
      }
    }
  }
  return out;
}

/** Validates an example; an `answer_start` that does not point at its text is re-found (first occurrence) or an Error. */
function checked(ex: SquadExample, file: string): SquadExample {
  if (ex.answers.length === 0) throw new Error(`${file}: question ${ex.id} has no answers`);
  ex.answerStarts = ex.answers.map((a, k) => {
    const s = ex.answerStarts[k];
    if (ex.context.slice(s, s + a.length) === a) return s;
    const found = ex.context.indexOf(a);
    if (found < 0) throw new Error(`${file}: question ${ex.id}: answer ${JSON.stringify(a)} is not in its context`);
    return found;
  });
  return ex;
}

async function fromFlat(file: string): Promise<SquadExample[]> {
  return (await readJsonl(file)).map((row) => {
    const answers = (row.value as { answers?: unknown }).answers;
    if (!Array.isArray(answers)) throw new Error(`${file}:${row.line}: missing field "answers"`);
    return checked({
      id: field(file, row, "id"),
      title: field(file, row, "title"),
      context: field(file, row, "context"),
      question: field(file, row, "question"),
      answers: answers.map((a) => a.text),
      answerStarts: answers.map((a) => a.answer_start),
    }, `${file}:${row.line}`);
  });
}

/**
 * The SQuAD task. `format` gives
 * `Context: <window>\nQuestion: <question>\nAnswer:` and the answer
 * ` <first gold answer>`, where the window is {@link contextWindow} of the
 * context around the first gold answer, seeded by the FNV-1a hash of the
 * question id (so the same question always gets the same window, and the
 * answer is not always centred). Decoding: 32 tokens, stop at a newline. Metric:
 * `value` is F1 (percent), with `exactMatch` and `f1` as details.
 */
export function squadTask(opts: SquadOptions = {}): Task<SquadExample> {
  const contextChars = opts.contextChars ?? 400;
  if (!(contextChars > 0)) throw new Error(`squad: contextChars must be positive, got ${contextChars}`);
  return {
    name: "squad",
    splits: Object.keys(SPLITS),
    decoding: { maxTokens: 32, stop: ["\n"] },
    async load({ path, split, limit }) {
      const file = await dataFile("squad", path, "squad", splitEntry("squad", SPLITS, split));
      const rows = file.endsWith(".jsonl")
        ? await fromFlat(file)
        : fromOfficial(JSON.parse(await Deno.readTextFile(file)), file);
      return applyLimit(rows, limit);
    },
    format(ex: SquadExample): Formatted {
      const window = contextWindow(ex.context, ex.answerStarts[0], ex.answers[0].length, contextChars, fnv1a(ex.id));
      return { prompt: `Context: ${window}\nQuestion: ${ex.question.trim()}\nAnswer:`, answer: ` ${ex.answers[0]}` };
    },
    metric(predictions, examples) {
      const s = squadScores(predictions, examples.map((e) => e.answers));
      return { name: "f1", value: s.f1, exactMatch: s.exactMatch, f1: s.f1, count: s.count };
    },
  };
}

/** The SQuAD task with the default 400-character context window. */
export const squad: Task<SquadExample> = squadTask();
