/** Shared benchmark helpers: timing by median and Markdown tables. @module */
import { cpuModel } from "./kernels/cpu_matmul.ts";

export { cpuModel };

/** Median wall time in ms of `fn` over at least `minReps` runs and `minMs` ms, after one warm-up. */
export async function timeMedian(fn: () => unknown | Promise<unknown>, minReps = 5, minMs = 300): Promise<number> {
  await fn();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < minReps || performance.now() - start < minMs) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

/** A Markdown table; numeric-looking cells are right-aligned. */
export function table(head: string[], rows: (string | number)[][]): string {
  const cells = rows.map((r) => r.map(String));
  const w = head.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i].length)));
  const line = (r: string[]) =>
    "| " + r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join(" | ") + " |";
  const sep = "| " + w.map((x, i) => (i === 0 ? "-".repeat(x) : "-".repeat(x - 1) + ":")).join(" | ") + " |";
  return [line(head), sep, ...cells.map(line)].join("\n");
}

/** One line naming the machine and runtime, for the top of every bench report. */
export function machineLine(): string {
  let cores = "?";
  try {
    cores = String(navigator.hardwareConcurrency);
  } catch { /* ignore */ }
  return `${
    new Date().toISOString().slice(0, 10)
  } · CPU: ${cpuModel()} · ${cores} cores · Deno ${Deno.version.deno} (V8 ${Deno.version.v8})`;
}

/** stories260K in the shared material beside the project (absent on users' machines). */
export const STORIES = new URL("../../shared/models/stories260K", import.meta.url).pathname;

/** True if `path` exists. */
export function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}
