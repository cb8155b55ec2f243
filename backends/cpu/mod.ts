/**
 * Registers the CPU backend under the name "cpu", and the controls of its engine's threads:
 * {@link setCpuThreads} (or the KNOT_CPU_THREADS environment variable; default
 * navigator.hardwareConcurrency). Results do not depend on the thread count.
 * @module
 */
import { registerBackend } from "../../core/runtime.ts";
import { CpuBackend } from "./backend.ts";
import { engine } from "./wasm/engine.ts";
import { cpuThreads, poolFor, setCpuThreads } from "./wasm/pool.ts";

export { CpuBackend, cpuThreads, setCpuThreads };
registerBackend("cpu", () => new CpuBackend());

/**
 * Starts the cpu engine's workers for the current thread count and resolves, with how many run, once they
 * all do (0 where the engine has no pool: one thread, no shared memory or no WebAssembly SIMD). Kernels
 * never wait for workers (they split only between ready ones); benchmarks and tests call this to measure
 * or check the threaded engine from its first kernel on.
 */
export async function cpuWorkersReady(): Promise<number> {
  const e = engine();
  const pool = e && poolFor(e);
  return pool ? await pool.ready() : 0;
}

/** Kernel parts the cpu engine's workers have run in this process (for tests: did kernels split?). */
export function cpuWorkerJobs(): number {
  const e = engine();
  return (e && poolFor(e)?.workerJobs) ?? 0;
}
