/**
 * The fine-tuning loss: next-token cross-entropy on answer tokens, with the
 * LM head applied only at those positions (for small models the head over
 * the vocabulary dominates the cost otherwise), fused with the cross-entropy
 * and run in chunks of positions where the head is a plain matrix
 * (`nn.linearCrossEntropy`: the [positions × vocab] logits never exist whole).
 * @module
 */
import type { Tensor } from "../core/tensor.ts";
import { reshape, take } from "../core/ops/movement.ts";
import { crossEntropy } from "../core/ops/nn.ts";
import { linearCrossEntropy } from "../core/ops/linear_cross_entropy.ts";
import type { LlamaConfig } from "../llama/config.ts";
import { forward, type LlamaParams, lmHead } from "../llama/llama.ts";
import type { Plan, PlanTree } from "../peft/plan.ts";
import type { LmBatch } from "./batch.ts";

/** Mean cross-entropy of `params` (a full model tree) on a batch's answer tokens. */
export function lmLoss(params: LlamaParams, config: LlamaConfig, batch: LmBatch): Tensor {
  const hidden = forward(params, batch.tokens, config, { returnHidden: true }); // [B, T, d]
  const [B, T, d] = hidden.shape;
  const picked = take(reshape(hidden, [B * T, d]), batch.positions, 0); // [N, d]
  const head = plainHead(params, config);
  return head
    ? linearCrossEntropy(picked, head, batch.targets)
    : crossEntropy(lmHead(params, config, picked), batch.targets);
}

/** The LM head's matrix [V, d] when it is a plain one (tied embeddings, or a head without a low-rank update). */
function plainHead(params: LlamaParams, config: LlamaConfig): Tensor | null {
  if (config.tieWordEmbeddings || !params.lmHead) return config.tieWordEmbeddings ? params.embed.weight : null;
  const { A, B } = params.lmHead;
  return A || B ? null : params.lmHead.weight;
}

/** The loss as a function of a plan's trainable tree (what `trainStep` differentiates). */
export function planLoss(
  plan: Plan,
  config: LlamaConfig,
): (trainable: PlanTree<LlamaParams>, frozen: PlanTree<LlamaParams>, batch: LmBatch) => Tensor {
  return (trainable, frozen, batch) => lmLoss(plan.build(trainable, frozen), config, batch);
}
