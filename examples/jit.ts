/**
 * jit: the quickstart's MLP step (forward, backward and the SGD update) as one
 * traced program, run beside the same step called op by op. Both runs start
 * from the same parameters; on cpu their losses and parameters agree bit for
 * bit, and the jitted one traces once.
 *
 *   deno run -A examples/jit.ts [--steps 300] [--hidden 32]
 */
import { intFlag, parseFlags, runMain } from "./cli.ts";
import {
  add,
  dispose,
  jit,
  matmul,
  mean,
  mul,
  random,
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

function predict(p: Params, x: Tensor): Tensor {
  return add(matmul(tanh(add(matmul(x, p.w1), p.b1)), p.w2), p.b2);
}

/** One SGD step: the loss and the new parameters. Pure, so it can be jitted. */
function sgdStep(p: Params, x: Tensor, y: Tensor): { loss: Tensor; params: Params } {
  const [loss, g] = valueAndGrad((q: Params) => mean(square(sub(predict(q, x), y))))(p);
  return { loss, params: tree.zipMap(([w, gw]) => sub(w, mul(gw, 0.1)), p, g) };
}

async function main(args: string[]): Promise<number> {
  const values = parseFlags(args, {
    steps: { type: "string", default: "300" },
    hidden: { type: "string", default: "32" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log("usage: deno run -A examples/jit.ts [--steps N] [--hidden H]");
    return 0;
  }
  const steps = intFlag("steps", values.steps, 1), hidden = intFlag("hidden", values.hidden, 1);
  const x = tensor(Array.from({ length: 128 }, (_, i) => [-1 + (2 * i) / 127])); // [128, 1]
  const y = sin(mul(x, 3));
  const init = (): Params => {
    const [k1, k2] = random.split(random.key(0));
    return {
      w1: random.normal(k1, [1, hidden]),
      b1: zeros([hidden]),
      w2: random.normal(k2, [hidden, 1], { std: 1 / Math.sqrt(hidden) }),
      b2: zeros([1]),
    };
  };
  // The jitted step consumes (donates) the old parameters, as a train state is.
  const jitted = jit(sgdStep, { donate: [0] });
  const results: { name: string; loss: number; ms: number; params: Params }[] = [];
  for (const [name, step] of [["eager", sgdStep], ["jitted", jitted]] as const) {
    let params = init();
    let loss = NaN;
    const t0 = performance.now();
    for (let s = 0; s < steps; s++) {
      const out = step(params, x, y);
      if (step === sgdStep) dispose(params);
      params = out.params;
      if (s === steps - 1) loss = await out.loss.item();
      out.loss.dispose();
    }
    const ms = (performance.now() - t0) / steps;
    results.push({ name, loss, ms, params });
    console.log(`${name.padEnd(6)}  final loss ${loss.toFixed(6)}  ${ms.toFixed(3)} ms/step`);
  }
  const bits = async (p: Params) =>
    (await Promise.all(tree.leaves(p).map(async (t) => Array.from(await t.data()).join(",")))).join(";");
  const same = (await bits(results[0].params)) === (await bits(results[1].params));
  console.log(`traces: ${jitted.traces}; parameters ${same ? "bit-identical" : "DIFFER"} between eager and jitted`);
  jitted.clear();
  dispose([x, y, results.map((r) => r.params)]);
  return same ? 0 : 1;
}

if (import.meta.main) runMain(main);
