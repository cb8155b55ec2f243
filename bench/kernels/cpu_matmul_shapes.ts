/**
 * The matmuls of one 15M TL6 training step (dim 288, 6 layers, hidden 768, vocab 32000; batch 4 × seq 256,
 * r = 8) on the cpu backend with its worker pool: each distinct shape as the step calls it (listed from a
 * traced step: batch, M, K, N, transposes, whether B is shared by the batch), its ms per call and GFLOP/s, and
 * its ms per step (calls × ms), and the CPU time of all threads per call (robust where other processes share the
 * machine). The LM head's two shapes, [256 × 288]·[288 × 32000] and [256 × 32000]·[32000 × 288] per 256-row
 * chunk of linearCrossEntropy, are more than half of the step's 67 GFLOP.
 *
 *   deno run -A bench/kernels/cpu_matmul_shapes.ts [--threads 2] [--ms 300]
 * @module
 */
import { parseArgs } from "node:util";
import process from "node:process";
import { dispose, matmul, setBackend } from "../../mod.ts";
import { key, normal, split } from "../../core/random.ts";
import { cpuWorkersReady, setCpuThreads } from "../../backends/cpu/mod.ts";
import { machineLine, table, timeMedian } from "../util.ts";

/** One matmul shape of the step: batch × op(A)[M,K]·op(B)[K,N], `shared`: B has no batch axis (a weight). */
export interface StepMatmul {
  name: string;
  batch: number;
  M: number;
  K: number;
  N: number;
  transA: boolean;
  transB: boolean;
  shared: boolean;
  /** Calls per training step. */
  calls: number;
}

const s = (
  name: string,
  batch: number,
  M: number,
  K: number,
  N: number,
  transA: boolean,
  transB: boolean,
  shared: boolean,
  calls: number,
): StepMatmul => ({ name, batch, M, K, N, transA, transB, shared, calls });

/** The step's matmuls, most flops first (listed from a traced TL6 step at the shape above). */
export const TL6_STEP_MATMULS: readonly StepMatmul[] = [
  s("head fwd", 1, 256, 288, 32000, false, true, true, 4),
  s("head dx", 1, 256, 32000, 288, false, false, true, 4),
  s("w1/w3 fwd", 4, 256, 288, 768, false, true, true, 12),
  s("w1/w3 dx", 4, 256, 768, 288, false, false, true, 12),
  s("qkvo fwd", 4, 256, 288, 288, false, true, true, 24),
  s("qkvo dx", 4, 256, 288, 288, false, false, true, 21),
  s("w2 fwd", 4, 256, 768, 288, false, true, true, 6),
  s("w2 dx", 4, 256, 288, 768, false, false, true, 6),
  s("scores", 24, 256, 48, 256, false, true, false, 12),
  s("attn·v / dq", 24, 256, 256, 48, false, false, false, 12),
  s("dk / dv", 24, 256, 256, 48, true, false, false, 12),
  s("adapter up", 4, 256, 8, 864, false, true, true, 6),
  s("adapter up dx", 4, 256, 864, 8, false, false, true, 6),
  s("adapter up dB", 4, 864, 256, 8, true, false, false, 6),
  s("adapter down", 4, 256, 288, 8, false, true, true, 6),
  s("adapter down dA", 4, 8, 256, 288, true, false, false, 6),
  s("adapter down dx", 4, 256, 8, 288, false, false, true, 5),
];

/** Operand shape as stored: [rows, cols] of op(X) before the transpose, with the batch axis in front. */
function stored(batch: number | null, r: number, c: number, trans: boolean): number[] {
  const m = trans ? [c, r] : [r, c];
  return batch === null ? m : [batch, ...m];
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { threads: { type: "string" }, ms: { type: "string", default: "300" } } });
  await setBackend("cpu");
  if (values.threads) setCpuThreads(Number(values.threads));
  await cpuWorkersReady();
  console.log(machineLine());
  const rows: (string | number)[][] = [];
  let total = 0, cpuTotal = 0, flops = 0;
  for (const [i, m] of TL6_STEP_MATMULS.entries()) {
    const [ka, kb] = split(key(i));
    const a = normal(ka, stored(m.batch, m.M, m.K, m.transA));
    const b = normal(kb, stored(m.shared ? null : m.batch, m.K, m.N, m.transB));
    const cpu0 = process.cpuUsage();
    let runs = 0;
    const ms = await timeMedian(
      () => (runs++, matmul(a, b, { transA: m.transA, transB: m.transB }).dispose()),
      5,
      +values.ms,
    );
    const used = process.cpuUsage(cpu0), cpuMs = (used.user + used.system) / 1000 / runs;
    dispose([a, b]);
    const f = 2 * m.batch * m.M * m.K * m.N;
    total += ms * m.calls;
    cpuTotal += cpuMs * m.calls;
    flops += f * m.calls;
    rows.push([
      m.name,
      `${m.batch}×${m.M}×${m.K}×${m.N}${m.transA ? " Aᵀ" : ""}${m.transB ? " Bᵀ" : ""}`,
      m.calls,
      ms.toFixed(3),
      (f / ms / 1e6).toFixed(1),
      (ms * m.calls).toFixed(1),
      cpuMs.toFixed(3),
    ]);
  }
  console.log(table(["matmul", "batch×M×K×N", "calls", "ms", "GFLOP/s", "ms/step", "cpu ms"], rows));
  console.log(
    `\nall: ${total.toFixed(1)} ms per step, ${(flops / total / 1e6).toFixed(1)} GFLOP/s; ` +
      `cpu (all threads, median wall's runs) ${cpuTotal.toFixed(1)} ms per step`,
  );
}
