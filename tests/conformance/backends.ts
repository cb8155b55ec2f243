/**
 * The backends the conformance suite runs on, and the one place for
 * per-backend exclusions. Every case runs on every backend listed here
 * through {@link forEachBackend}; nothing else in the suite names a backend.
 * @module
 */
import { setBackend } from "../../mod.ts"; // registers "cpu"
// A backend that mod.ts does not register needs its registration module imported here.
import "../../backends/webgpu/mod.ts"; // registers "webgpu" (touches navigator.gpu only in setBackend)

/** Backends to run, in order. To add one, add its name here (one line). */
export const BACKENDS: readonly string[] = [
  "cpu",
  "webgpu",
];

/**
 * Cases a backend cannot run yet: backend → full test name without the
 * `[backend] ` prefix (e.g. "forward: cast NaN to bool") → reason. An
 * excluded case is registered as an ignored test with its reason in the name;
 * an entry naming no registered case fails the exclusions test.
 */
export const EXCLUSIONS: Record<string, Record<string, string>> = {
  cpu: {},
  webgpu: {
    // take/scatterAdd index errors do run on webgpu: the kernels record the first bad index and the next
    // read-back throws it. takeLast is different: core checks its indices against the last axis by a
    // synchronous read-back (Backend.readSync), then flattens them, so the gather the GPU sees is in range.
    "error: takeLast index beyond the last axis":
      "needs a synchronous read-back (readSync) to validate indices before they are flattened; the GPU has none",
  },
};

/** Backends whose initialisation failed, with the reason. */
const initFailures = new Map<string, string>();
for (const b of BACKENDS) {
  try {
    await setBackend(b);
  } catch (e) {
    initFailures.set(b, e instanceof Error ? e.message : String(e));
  }
}

const skipRegistered = new Set<string>();
const registered = new Map<string, Set<string>>();

/**
 * Registers `Deno.test("[backend] name")` for every backend in
 * {@link BACKENDS}; each test first makes its backend current. A backend that
 * failed to initialise gets one ignored `[backend] SKIPPED: …` test instead of
 * its cases; an excluded case is registered as ignored, with the reason.
 */
export function forEachBackend(name: string, fn: (backend: string) => void | Promise<void>): void {
  for (const backend of BACKENDS) {
    const failure = initFailures.get(backend);
    if (failure !== undefined) {
      if (!skipRegistered.has(backend)) {
        skipRegistered.add(backend);
        Deno.test({ name: `[${backend}] SKIPPED: backend did not initialise (${failure})`, ignore: true, fn() {} });
      }
      continue;
    }
    if (!registered.has(backend)) registered.set(backend, new Set());
    const names = registered.get(backend)!;
    if (names.has(name)) throw new Error(`conformance: duplicate test name "${name}"`);
    names.add(name);
    const reason = EXCLUSIONS[backend]?.[name];
    Deno.test({
      name: `[${backend}] ${name}${reason === undefined ? "" : ` (EXCLUDED: ${reason})`}`,
      ignore: reason !== undefined,
      async fn() {
        await setBackend(backend);
        await fn(backend);
      },
    });
  }
}

/** Registers one test per backend checking that every exclusion names a registered case. Call after all cases. */
export function checkExclusions(): void {
  forEachBackend("exclusions name existing cases", (backend) => {
    const names = registered.get(backend) ?? new Set();
    const stale = Object.keys(EXCLUSIONS[backend] ?? {}).filter((n) => !names.has(n));
    if (stale.length) throw new Error(`EXCLUSIONS.${backend} names no registered case: ${stale.join("; ")}`);
  });
}
