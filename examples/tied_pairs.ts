/**
 * A tying scheme of one's own, for `examples/sweep.ts --method ./examples/tied_pairs.ts`:
 * on each layer's fused Q|K|V map, A is tied within blocks of two consecutive
 * layers (layers 0–1 share one A, 2–3 another, …) and B is per layer; both are
 * trained, with no scaling vectors. A starts Kaiming-uniform, as LoRA's does,
 * and B at zero, so ΔW = 0 at step 0. Trainable parameters: ⌈L/2⌉·r·d + L·m·r.
 *
 * A sweep module exports its plan factory as `plan` (or default),
 * `(opts: { rank: number }) => Plan`, and may export the `name` shown in the table.
 * @module
 */
import { peft } from "../mod.ts";

/** The name in the sweep's table. */
export const name = "pairA";

/** The group of `layers.<i>.…`: its block of two layers. */
export function pairOf(path: string): string {
  return `A${Math.floor(Number(path.split(".")[1]) / 2)}`;
}

/** A tied in blocks of two layers, B per layer, both trainable. */
export function plan(opts: { rank: number }): peft.Plan {
  return peft.compose(
    peft.adapt({
      where: "layers.*.attn.qkv",
      rank: opts.rank,
      parts: ["A", "B"],
      init: { A: peft.initializers.kaimingUniform(), B: peft.initializers.zeros },
    }),
    peft.tie({ where: "layers.*.attn.qkv.A", groupBy: pairOf }),
  );
}
