/**
 * Evaluation helpers shared by the examples: greedy answers for generation
 * tasks, log-likelihood scoring of choices (HellaSwag), and mean validation
 * loss over batches.
 * @module
 */
import { scope } from "../core/scope.ts";
import { logSoftmax } from "../core/ops/nn.ts";
import { tensor } from "../core/ops/creation.ts";
import type { Tensor } from "../core/tensor.ts";
import type { LlamaConfig } from "../llama/config.ts";
import { generate } from "../llama/generate.ts";
import { forward, type LlamaParams } from "../llama/llama.ts";
import type { Tokenizer } from "../io/tokenizer.ts";

/** Options of {@link generateAnswers}. */
export interface AnswerOptions {
  /** Most new tokens per answer. */
  maxTokens: number;
  /** Stop when the decoded answer contains one of these (the stop text is cut off). */
  stop?: readonly string[];
  /** Longest prompt kept (tokens, from the right, BOS kept); default the model's context − maxTokens. */
  maxPromptTokens?: number;
}

/** Greedy completions of `prompts`, decoded and trimmed at the first stop string. */
export async function generateAnswers(
  params: LlamaParams,
  config: LlamaConfig,
  tok: Tokenizer,
  prompts: readonly string[],
  opts: AnswerOptions,
): Promise<string[]> {
  const out: string[] = [];
  const limit = opts.maxPromptTokens ?? config.maxPositionEmbeddings - opts.maxTokens;
  for (const p of prompts) {
    let ids = tok.encode(p);
    if (ids.length > limit) ids = [ids[0], ...ids.slice(ids.length - limit + 1)];
    const gen: number[] = [];
    let text = "";
    for await (const id of generate(params, config, ids, { maxTokens: opts.maxTokens })) {
      gen.push(id);
      text = tok.decode(gen);
      const cut = firstStop(text, opts.stop ?? []);
      if (cut >= 0) {
        text = text.slice(0, cut);
        break;
      }
    }
    out.push(text.trim());
  }
  return out;
}

function firstStop(text: string, stops: readonly string[]): number {
  let best = -1;
  for (const s of stops) {
    const i = text.indexOf(s);
    if (i >= 0 && (best < 0 || i < best)) best = i;
  }
  return best;
}

/**
 * Log-likelihood of each ending after a prompt: the sum of the ending tokens'
 * log-probabilities and the number of ending tokens (for length normalisation).
 */
export async function scoreEndings(
  params: LlamaParams,
  config: LlamaConfig,
  tok: Tokenizer,
  prompt: string,
  endings: readonly string[],
): Promise<{ logLikelihood: number; tokens: number }[]> {
  const promptIds = tok.encode(prompt);
  const results: { logLikelihood: number; tokens: number }[] = [];
  for (const ending of endings) {
    const endIds = tok.encode(ending, { addBos: false });
    let ids = [...promptIds, ...endIds];
    const max = config.maxPositionEmbeddings;
    if (ids.length > max) ids = ids.slice(ids.length - max);
    const n = Math.min(endIds.length, ids.length - 1);
    const lp = await scope(async () => {
      const logits = forward(params, tensor(Int32Array.from(ids), [ids.length], "int32"), config);
      const logp = (await logSoftmax(logits, -1).data()) as Float32Array;
      const V = config.vocabSize;
      let s = 0;
      for (let k = ids.length - n; k < ids.length; k++) s += logp[(k - 1) * V + ids[k]];
      return s;
    });
    results.push({ logLikelihood: lp, tokens: n });
  }
  return results;
}

/** Mean of `lossFn(batch)` over batches (each computed and freed in its own scope). */
export async function meanLoss<B>(lossFn: (batch: B) => Tensor, batches: readonly B[]): Promise<number> {
  let total = 0;
  for (const b of batches) total += await scope(async () => await lossFn(b).item());
  return total / Math.max(1, batches.length);
}
