/**
 * Turning tokenized (prompt, answer) pairs into training batches: inputs
 * [B, T] right-padded, and the flat positions and targets of the answer
 * tokens only (prompt tokens are masked out of the loss), so the LM head is
 * evaluated only where the loss needs it. The positions are padded to a
 * bucket with ignored targets (−100), so batches of one size share a few
 * shapes, and a jitted step a few traces, whatever their answer counts.
 * @module
 */
import { tensor } from "../core/ops/creation.ts";
import type { Tensor } from "../core/tensor.ts";
import { bitsToUniform, threefry2x32 } from "../core/threefry.ts";
import type { Tokenizer } from "../io/tokenizer.ts";

/** A tokenized example: the loss is taken on `answer` tokens only. */
export interface TokenizedExample {
  /** Token ids the model reads (no loss on them). */
  prompt: number[];
  /** Token ids it should continue with (the loss is taken on these). */
  answer: number[];
}

/**
 * A batch for next-token training. Its tensors are its only enumerable fields: the host counts
 * are not, so a batch passed to a jitted step is a tree of three tensors (a host number in the
 * arguments would retrace on every new value).
 */
export interface LmBatch {
  /** Input ids [B, T] (int32), right-padded. */
  tokens: Tensor;
  /** Flat indices b·T + t of the positions whose next token is an answer token, then padding (int32 [P], P ≥ N). */
  positions: Tensor;
  /** The next token at each of those positions, −100 (ignored by the loss) at the padding (int32 [P]). */
  targets: Tensor;
  /** Number of answer tokens N (for tokens/s; not enumerable). */
  readonly count: number;
  /** Total non-pad tokens (for tokens/s; not enumerable). */
  readonly tokensSeen: number;
}

/**
 * How many loss positions a batch holds for N answer tokens out of at most B·T: "pow2" pads to
 * the next power of two (at most B·T; a few shapes per batch size, under 2× the head's work),
 * "full" to B·T (one shape), "none" not at all (a shape per answer count).
 */
export type PositionsPadding = "pow2" | "full" | "none";

/** The target of padded loss positions: the loss's ignoreIndex. */
export const IGNORED_TARGET = -100;

/**
 * Packs examples into a batch of length `seqLen`. A sequence longer than
 * `seqLen` + 1 loses prompt tokens from the left (after the first, e.g. BOS),
 * then answer tokens from the right.
 */
export function makeBatch(
  examples: readonly TokenizedExample[],
  seqLen: number,
  padId = 0,
  padPositions: PositionsPadding = "pow2",
): LmBatch {
  if (!examples.length) throw new Error("makeBatch: no examples");
  if (!(seqLen >= 2)) throw new Error(`makeBatch: seqLen must be at least 2, got ${seqLen}`);
  if (!["pow2", "full", "none"].includes(padPositions)) {
    throw new Error(`makeBatch: padPositions must be "pow2", "full" or "none", got ${JSON.stringify(padPositions)}`);
  }
  const B = examples.length;
  const ids = new Int32Array(B * seqLen).fill(padId);
  const positions: number[] = [], targets: number[] = [];
  let tokensSeen = 0;
  examples.forEach((ex, b) => {
    if (!ex.answer.length) throw new Error(`makeBatch: example ${b} has an empty answer (nothing to learn)`);
    let prompt = ex.prompt, answer = ex.answer;
    const budget = seqLen + 1; // inputs are seq[0..T-1], targets seq[1..T]
    if (prompt.length + answer.length > budget) {
      const keepPrompt = Math.max(1, budget - answer.length);
      prompt = prompt.length > keepPrompt ? [prompt[0], ...prompt.slice(prompt.length - keepPrompt + 1)] : prompt;
      answer = answer.slice(0, budget - prompt.length);
    }
    const seq = [...prompt, ...answer];
    const n = Math.min(seq.length, seqLen);
    for (let t = 0; t < n; t++) ids[b * seqLen + t] = seq[t];
    tokensSeen += n;
    // Position t predicts seq[t+1]; count it when seq[t+1] is an answer token.
    for (let t = Math.max(0, prompt.length - 1); t < seq.length - 1 && t < seqLen; t++) {
      positions.push(b * seqLen + t);
      targets.push(seq[t + 1]);
    }
  });
  const count = targets.length;
  let P = padPositions === "none" ? count : padPositions === "full" ? B * seqLen : 1;
  while (P < count) P = Math.min(2 * P, B * seqLen);
  // Padding reads position 0 (any valid row) with an ignored target: the loss and its gradient get exact zeros.
  const pos = new Int32Array(P), tgt = new Int32Array(P).fill(IGNORED_TARGET);
  pos.set(positions), tgt.set(targets);
  const batch = {
    tokens: tensor(ids, [B, seqLen], "int32"),
    positions: tensor(pos, [P], "int32"),
    targets: tensor(tgt, [P], "int32"),
  };
  return Object.defineProperties(batch, { count: { value: count }, tokensSeen: { value: tokensSeen } }) as LmBatch;
}

/** Prompt and answer ids, the answer tokenised in context (as the model sees it) and ended by EOS. */
export function tokenizePair(tok: Tokenizer, prompt: string, answer: string): TokenizedExample {
  const p = tok.encode(prompt);
  const full = tok.encode(prompt + answer);
  const inContext = full.length > p.length && p.every((id, i) => full[i] === id)
    ? full.slice(p.length)
    : tok.encode(answer, { addBos: false });
  return { prompt: p, answer: tok.eosId === null ? inContext : [...inContext, tok.eosId] };
}

/** The order of `n` examples in `epoch`: a Fisher–Yates shuffle driven by threefry(seed, epoch). */
export function epochOrder(n: number, seed: number, epoch: number): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(bitsToUniform(threefry2x32(seed >>> 0, epoch >>> 0, 3, i)[0]) * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}
