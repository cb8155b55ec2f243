/**
 * CPU backend benchmarks: matmul GFLOP/s (the kernel ladder, with the naive
 * loop measured in the same run, and the `matmul` op end to end) and a
 * two-layer MLP forward+backward step.
 * @module
 */
import { add, dispose, matmul, scope, setBackend, tanh, tensor, valueAndGrad, zeros } from "../mod.ts";
import { crossEntropy } from "../core/nn.ts";
import { key, normal, split } from "../core/random.ts";
import { benchCpuMatmul } from "./kernels/cpu_matmul.ts";
import { table, timeMedian } from "./util.ts";

/** Runs the CPU section and returns its Markdown report. */
export async function benchCpu(log: (s: string) => void = console.log): Promise<void> {
  await setBackend("cpu");
  log("\n## CPU matmul kernels (GFLOP/s, square n×n×n, single thread)\n");
  const rows = benchCpuMatmul({ sizes: [128, 256, 512, 1024] });
  const versions = [...new Set(rows.map((r) => r.version))];
  const sizes = [...new Set(rows.map((r) => r.size))];
  const cell = (v: string, s: number) => rows.find((r) => r.version === v && r.size === s)?.gflops;
  log(
    table(
      ["kernel", ...sizes.map(String)],
      versions.map((v) => [v, ...sizes.map((s) => cell(v, s)?.toFixed(2) ?? "-")]),
    ),
  );
  const naive = versions[0], best = versions.at(-1)!;
  const ratios = sizes.flatMap((s) => {
    const a = cell(best, s), b = cell(naive, s);
    return a && b ? [`${s}: ${(a / b).toFixed(1)}×`] : [];
  });
  log(`\nproduction kernel (${best}) vs naive (${naive}), same run: ${ratios.join(", ")}`);

  log("\n## `matmul` op end to end (allocation and dispatch included)\n");
  const opRows: (string | number)[][] = [];
  for (const n of [128, 256, 512, 1024]) {
    const [ka, kb] = split(key(n));
    const a = normal(ka, [n, n]), b = normal(kb, [n, n]);
    const ms = await timeMedian(() => matmul(a, b).dispose(), 3, 400);
    opRows.push([`${n}×${n}×${n}`, ms.toFixed(2), ((2 * n ** 3) / ms / 1e6).toFixed(2)]);
    dispose([a, b]);
  }
  log(table(["shape", "ms", "GFLOP/s"], opRows));

  log("\n## Two-layer MLP step (forward + backward), batch 64, 256 → 512 → 10\n");
  const [k1, k2, k3] = split(key(7), 3);
  const params = {
    w1: normal(k1, [256, 512], { std: 0.05 }),
    b1: zeros([512]),
    w2: normal(k2, [512, 10], { std: 0.05 }),
    b2: zeros([10]),
  };
  const x = normal(k3, [64, 256]);
  const y = tensor(Array.from({ length: 64 }, (_, i) => i % 10), undefined, "int32");
  const loss = (p: typeof params) => crossEntropy(add(matmul(tanh(add(matmul(x, p.w1), p.b1)), p.w2), p.b2), y);
  const step = valueAndGrad(loss);
  const fwd = await timeMedian(() => scope(() => void loss(params)), 5, 400);
  const both = await timeMedian(() => dispose(scope(() => step(params))), 5, 400);
  const flops = 2 * 64 * (256 * 512 + 512 * 10);
  log(table(["pass", "ms", "GFLOP/s (matmuls)"], [
    ["forward", fwd.toFixed(2), (flops / fwd / 1e6).toFixed(2)],
    ["forward + backward", both.toFixed(2), ((3 * flops) / both / 1e6).toFixed(2)],
  ]));
  dispose([params, x, y]);
}
