/**
 * A custom tying scheme from the same transforms the presets are made of:
 * on each layer's fused Q|K|V map, A is tied within blocks of 4 layers, B is
 * per layer, and u is per layer — all trainable. Prints the plan's summary,
 * then trains a few steps of next-token cross-entropy on a short built-in
 * text (Adam written inline) and prints the loss falling.
 *
 *   deno run -A examples/custom_tying.ts [--model DIR] [--steps N] [--rank R] [--lr LR] [--seed S]
 *
 * Without --model the base is a tiny random Llama built in code (6 layers,
 * byte-level vocabulary of 256); with --model (e.g. ../shared/models/stories260K)
 * a Hugging Face Llama directory and its tokenizer.json.
 * @module
 */
import { intFlag, parseFlags, positiveFlag, runMain } from "./cli.ts";
import {
  adapt,
  add,
  compose,
  crossEntropy,
  dispose,
  div,
  forward,
  initializers,
  key,
  type LlamaConfig,
  type LlamaParams,
  loadLlama,
  loadTokenizer,
  mul,
  type Plan,
  type PlanTree,
  randomLlama,
  scope,
  sqrt,
  sub,
  summary,
  tensor,
  tie,
  tree,
  valueAndGrad,
  zerosLike,
} from "../mod.ts";

/** The group of a leaf path `layers.<i>.…`: its block of `size` consecutive layers. */
export function blockOf(size: number): (path: string) => string {
  return function block(path: string): string {
    return `blk${Math.floor(Number(path.split(".")[1]) / size)}`;
  };
}

/** A tied within blocks of `blockSize` layers, B and u per layer; all trainable; ΔW = 0 at init. */
export function blockTiedPlan(rank: number, blockSize = 4): Plan {
  return compose(
    adapt({
      where: "layers.*.attn.qkv",
      rank,
      parts: ["A", "B", "u"],
      init: { A: initializers.kaimingUniform(), B: initializers.zeros, u: initializers.ones },
    }),
    tie({ where: "layers.*.attn.qkv.A", groupBy: blockOf(blockSize) }),
  );
}

const TEXT = "Once upon a time, a little robot lived in a quiet town. Every morning it counted the birds, " +
  "and every evening it told the cat how many there had been. The cat never believed it.";

const USAGE = "usage: deno run -A examples/custom_tying.ts [--model DIR] [--steps N] [--rank R] [--lr LR] [--seed S]";

async function main(args: string[]): Promise<number> {
  const values = parseFlags(args, {
    model: { type: "string" },
    steps: { type: "string", default: "20" },
    rank: { type: "string", default: "4" },
    lr: { type: "string", default: "0.01" },
    seed: { type: "string", default: "0" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const steps = intFlag("steps", values.steps, 0), rank = intFlag("rank", values.rank, 1);
  const lr = positiveFlag("lr", values.lr), seed = intFlag("seed", values.seed);

  // The base model and the token sequence.
  let config: LlamaConfig, params: LlamaParams, ids: number[];
  if (values.model) {
    ({ config, params } = await loadLlama(values.model));
    ids = (await loadTokenizer(values.model)).encode(TEXT);
    console.log(`model: ${values.model} (${config.numLayers} layers, d=${config.hiddenSize}), ${ids.length} tokens`);
  } else {
    ({ config, params } = randomLlama({ seed, numLayers: 6 }));
    ids = [...new TextEncoder().encode(TEXT)].map((b) => b % config.vocabSize);
    console.log(
      `model: random tiny Llama (${config.numLayers} layers, d=${config.hiddenSize}), ${ids.length} byte tokens`,
    );
  }
  ids = ids.slice(0, config.maxPositionEmbeddings + 1);
  const inputs = tensor(ids.slice(0, -1), [ids.length - 1], "int32");
  const targets = tensor(ids.slice(1), [ids.length - 1], "int32");

  // The plan: materialise, summarise.
  const plan = blockTiedPlan(rank);
  const init = plan.init(params, key(seed));
  const frozen = init.frozen;
  let trainable = init.trainable;
  console.log(summary(plan, trainable, frozen).toString());

  // Training: Adam over the trainable tree only; the tied A of a block gets the sum of its layers' gradients.
  const lossOf = (tr: PlanTree) => crossEntropy(forward(plan.build(tr, frozen), inputs, config), targets);
  const lossAndGrad = valueAndGrad(lossOf);
  const [b1, b2, eps] = [0.9, 0.999, 1e-8];
  let m = tree.map(trainable, zerosLike);
  let v = tree.map(trainable, zerosLike);
  const t0 = performance.now();
  const losses: number[] = [];
  for (let step = 1; step <= steps + 1; step++) {
    const [l, next] = scope(() => {
      const [l, g] = lossAndGrad(trainable);
      const m2 = tree.zipMap(([mi, gi]) => add(mul(mi, b1), mul(gi, 1 - b1)), m, g);
      const v2 = tree.zipMap(([vi, gi]) => add(mul(vi, b2), mul(mul(gi, gi), 1 - b2)), v, g);
      const c1 = 1 - b1 ** step, c2 = 1 - b2 ** step;
      const w2 = tree.zipMap(
        ([w, mi, vi]) => sub(w, mul(div(mi, add(sqrt(div(vi, c2)), eps)), lr / c1)),
        trainable,
        m2,
        v2,
      );
      return [l, { w: w2, m: m2, v: v2 }] as const;
    });
    losses.push(await l.item());
    l.dispose();
    console.log(`step ${String(step - 1).padStart(3)}  loss ${losses.at(-1)!.toFixed(4)}`);
    if (step === steps + 1) {
      dispose(next); // the loss after `steps` updates is printed; its update is not needed
      break;
    }
    dispose([trainable, m, v]);
    ({ w: trainable, m, v } = next);
  }
  const secs = (performance.now() - t0) / 1000;
  console.log(`loss ${losses[0].toFixed(4)} → ${losses.at(-1)!.toFixed(4)} in ${steps} steps (${secs.toFixed(2)} s)`);
  return 0;
}

if (import.meta.main) runMain(main);
