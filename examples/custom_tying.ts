/**
 * A custom tying scheme from the same transforms the presets are made of:
 * on each layer's fused Q|K|V map, A is tied within blocks of 4 layers, B is
 * per layer, and u is per layer — all trainable. Prints the plan's summary,
 * then trains a few steps of next-token cross-entropy on a short built-in
 * text with `optim.adamw` and `train.trainStep`, and prints the loss falling.
 *
 *   deno run -A examples/custom_tying.ts [--model DIR] [--steps N] [--rank R] [--lr LR] [--seed S]
 *
 * Without --model the base is a tiny random Llama built in code (6 layers,
 * byte-level vocabulary of 256); with --model (e.g. ../shared/models/stories260K)
 * a Hugging Face Llama directory and its tokenizer.json.
 * @module
 */
import { intFlag, parseFlags, positiveFlag, runMain } from "./cli.ts";
import { llama, nn, optim, peft, random, scope, type Tensor, tensor } from "../mod.ts";
import { loadLlama, loadTokenizer } from "../io/mod.ts";
import { trainStep } from "../train/mod.ts";

const { adapt, compose, initializers, tie } = peft;

/** The group of a leaf path `layers.<i>.…`: its block of `size` consecutive layers. */
export function blockOf(size: number): (path: string) => string {
  return function block(path: string): string {
    return `blk${Math.floor(Number(path.split(".")[1]) / size)}`;
  };
}

/** A tied within blocks of `blockSize` layers, B and u per layer; all trainable; ΔW = 0 at init. */
export function blockTiedPlan(rank: number, blockSize = 4): peft.Plan {
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
  let config: llama.LlamaConfig, params: llama.LlamaParams, ids: number[];
  if (values.model) {
    ({ config, params } = await loadLlama(values.model));
    ids = (await loadTokenizer(values.model)).encode(TEXT);
    console.log(`model: ${values.model} (${config.numLayers} layers, d=${config.hiddenSize}), ${ids.length} tokens`);
  } else {
    ({ config, params } = llama.randomLlama({ seed, numLayers: 6 }));
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
  const { trainable, frozen } = plan.init(params, random.key(seed));
  console.log(peft.summary(plan, trainable, frozen).toString());

  // Training: AdamW (no weight decay: plain Adam) over the trainable tree only; the tied A of a block
  // gets the sum of its layers' gradients. The frozen tree and the data go in as arguments: never
  // differentiated, and the jitted step (trainStep's default) sees every tensor it uses as an input.
  type Tree = peft.PlanTree<llama.LlamaParams>;
  const lossOf = (tr: Tree, fr: Tree, x: Tensor, y: Tensor) =>
    nn.crossEntropy(llama.forward(plan.build(tr, fr), x, config), y);
  const optimizer = optim.adamw(lr, { weightDecay: 0 });
  const step = trainStep(lossOf, optimizer);
  let state = { trainable, opt: optimizer.init(trainable) };
  const t0 = performance.now();
  const losses: number[] = [];
  const report = async (i: number, loss: { item(): Promise<number>; dispose(): void }) => {
    losses.push(await loss.item());
    loss.dispose();
    console.log(`step ${String(i).padStart(3)}  loss ${losses.at(-1)!.toFixed(4)}`);
  };
  for (let i = 0; i < steps; i++) {
    const out = step(state, frozen, inputs, targets);
    state = out.state;
    await report(i, out.loss);
  }
  await report(steps, scope(() => lossOf(state.trainable, frozen, inputs, targets))); // the loss after `steps` updates
  const secs = (performance.now() - t0) / 1000;
  console.log(`loss ${losses[0].toFixed(4)} → ${losses.at(-1)!.toFixed(4)} in ${steps} steps (${secs.toFixed(2)} s)`);
  return 0;
}

if (import.meta.main) runMain(main);
