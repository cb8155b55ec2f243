import { cpuThreads, cpuWorkersReady, setCpuThreads } from "../../backends/cpu/mod.ts";

/** Runs `body` on each thread count in turn (the pool's workers ready), restoring the thread count after. */
export async function onThreads(counts: number[], body: (threads: number) => void | Promise<void>): Promise<void> {
  const saved = cpuThreads();
  try {
    for (const threads of counts) {
      setCpuThreads(threads);
      await cpuWorkersReady();
      await body(threads);
    }
  } finally {
    setCpuThreads(saved);
  }
}
