/**
 * Quickstart: fit a two-layer MLP to y = sin(3x) with `valueAndGrad` and a
 * hand-written SGD loop, printing the loss as it falls.
 *
 *   deno run -A examples/quickstart.ts [--steps 2000] [--lr 0.05]
 */
import { intFlag, parseFlags, positiveFlag, runMain } from "./cli.ts";
import {
  add,
  dispose,
  matmul,
  mean,
  mul,
  random,
  scope,
  sin,
  square,
  sub,
  tanh,
  type Tensor,
  tensor,
  tree,
  valueAndGrad,
  zeros,
} from "../mod.ts";

type Params = { w1: Tensor; b1: Tensor; w2: Tensor; b2: Tensor };

async function main(args: string[]): Promise<number> {
  const values = parseFlags(args, {
    steps: { type: "string", default: "2000" },
    lr: { type: "string", default: "0.1" },
    hidden: { type: "string", default: "32" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log("usage: deno run -A examples/quickstart.ts [--steps N] [--lr LR] [--hidden H]");
    return 0;
  }
  const steps = intFlag("steps", values.steps, 0), lr = positiveFlag("lr", values.lr);
  const hidden = intFlag("hidden", values.hidden, 1);

  // Data: 128 points of y = sin(3x) on [-1, 1].
  const x = tensor(Array.from({ length: 128 }, (_, i) => [-1 + (2 * i) / 127])); // [128, 1]
  const y = sin(mul(x, 3));

  const [k1, k2] = random.split(random.key(0));
  let params: Params = {
    w1: random.normal(k1, [1, hidden], { std: 1 }),
    b1: zeros([hidden]),
    w2: random.normal(k2, [hidden, 1], { std: 1 / Math.sqrt(hidden) }),
    b2: zeros([1]),
  };

  function predict(p: Params, x: Tensor): Tensor {
    const h = tanh(add(matmul(x, p.w1), p.b1));
    return add(matmul(h, p.w2), p.b2);
  }

  const loss = (p: Params) => mean(square(sub(predict(p, x), y)));
  const lossAndGrad = valueAndGrad(loss);

  const t0 = performance.now();
  for (let step = 0; step <= steps; step++) {
    // One scope per step: everything the step creates is freed except the new params.
    const [value, next] = scope(() => {
      const [l, g] = lossAndGrad(params);
      return [l, tree.zipMap(([w, gw]) => sub(w, mul(gw, lr)), params, g)] as const;
    });
    dispose(params);
    params = next;
    if (step % 200 === 0) console.log(`step ${String(step).padStart(4)}  loss ${(await value.item()).toFixed(5)}`);
    value.dispose();
  }
  console.log(`done in ${((performance.now() - t0) / 1000).toFixed(2)} s`);
  return 0;
}

if (import.meta.main) runMain(main);
