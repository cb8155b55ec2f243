import { cpuThreads, cpuWorkerJobs, cpuWorkersReady, setCpuThreads } from "../../backends/cpu/mod.ts";

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

/**
 * Calls `run` until a worker has taken part in a kernel (cpuWorkerJobs grew) or `ms` have passed, at least once;
 * whether one did. By time, not by count: where other processes share the cores, a worker may wait a time
 * slice or more before it is scheduled.
 */
export function untilWorkerJob(run: () => void, ms = 3000): boolean {
  const before = cpuWorkerJobs(), t0 = performance.now();
  do run(); while (cpuWorkerJobs() === before && performance.now() - t0 < ms);
  return cpuWorkerJobs() > before;
}
