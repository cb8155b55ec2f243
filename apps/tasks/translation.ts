/**
 * German→English translation: prompt `German: <de>\nEnglish:`, answer
 * ` <en>`, metric corpus BLEU with sacreBLEU's defaults (13a tokenizer, exp
 * smoothing, mixed case; `train/metrics/bleu.ts`).
 *
 * Two tasks share this code:
 * - `multi30k`: `../shared/data/multi30k_de_en/{train,val,test_2016_flickr}.jsonl`
 *   (29000 / 1014 / 1000 image captions, fields `de`, `en`); "eval" is
 *   `test_2016_flickr`.
 * - `iwslt`: `../shared/data/iwslt2017_de_en/{tst2016,tst2017}.jsonl`
 *   (1133 / 1138 TED segments, fields `talkid`, `seg_id`, `de`, `en`). The
 *   IWSLT2017 training data is not available, so "train" is tst2016 and "eval"
 *   is tst2017.
 *
 * @module
 */
import { basename } from "node:path";
import { corpusBleu } from "../metrics/bleu.ts";
import { applyLimit, dataFile, field, oneLine, readJsonl, splitEntry } from "./data.ts";
import type { Example, Formatted, Task } from "./types.ts";

/** A sentence pair. */
export interface TranslationExample extends Example {
  /** German source, as in the file. */
  source: string;
  /** English reference(s), as in the file. */
  references: string[];
}

const MULTI30K = {
  train: "train.jsonl",
  val: "val.jsonl",
  validation: "val.jsonl",
  test: "test_2016_flickr.jsonl",
  test_2016_flickr: "test_2016_flickr.jsonl",
  eval: "test_2016_flickr.jsonl",
} as const;

const IWSLT = {
  train: "tst2016.jsonl",
  eval: "tst2017.jsonl",
  tst2016: "tst2016.jsonl",
  tst2017: "tst2017.jsonl",
} as const;

function translationTask(name: string, dir: string, splits: Record<string, string>): Task<TranslationExample> {
  return {
    name,
    splits: Object.keys(splits),
    decoding: { maxTokens: 128, stop: ["\n"] },
    async load({ path, split, limit }) {
      const file = await dataFile(name, path, dir, splitEntry(name, splits, split));
      return applyLimit(await readJsonl(file), limit).map((row) => {
        const v = row.value as Record<string, unknown>;
        const id = typeof v?.talkid === "string" && v.seg_id !== undefined
          ? `${v.talkid}:${v.seg_id}`
          : `${basename(file)}:${row.line}`;
        return { id, source: field(file, row, "de"), references: [field(file, row, "en")] };
      });
    },
    format(ex: TranslationExample): Formatted {
      return { prompt: `German: ${oneLine(ex.source)}\nEnglish:`, answer: ` ${oneLine(ex.references[0])}` };
    },
    metric(predictions, examples) {
      const s = corpusBleu(predictions, examples.map((e) => e.references));
      return {
        name: "bleu",
        value: s.score,
        precisions: s.precisions,
        bp: s.bp,
        sysLen: s.sysLen,
        refLen: s.refLen,
        count: examples.length,
      };
    },
  };
}

/**
 * Multi30k (task 1) German→English. Source and reference are whitespace-
 * normalised in the prompt and training answer (40 training pairs carry
 * leading or trailing spaces); BLEU uses the references as in the file.
 * Decoding: 128 tokens, stop at a newline.
 */
export const multi30k: Task<TranslationExample> = translationTask("multi30k", "multi30k_de_en", MULTI30K);

/**
 * IWSLT 2017 TED German→English (test sets only: "train" = tst2016, "eval" =
 * tst2017). 600 of the tst2017 references contain double spaces (segment
 * joins); they are collapsed in the training answer and do not affect BLEU.
 */
export const iwslt: Task<TranslationExample> = translationTask("iwslt", "iwslt2017_de_en", IWSLT);
