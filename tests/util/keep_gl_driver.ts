/**
 * `deno test --preload` module for the WebGPU test processes (scripts/test.ts): keeps Mesa's GL driver loaded until
 * the process exits.
 *
 * Why: `deno test` runs each module in a worker of its own. When a module ends, Deno drops that worker's wgpu
 * instance, EGL is terminated and Mesa dlcloses its driver (`swrast_dri.so`: llvmpipe with its LLVM JIT) while
 * `libLLVM` stays loaded; the next WebGPU module loads the driver again. Such processes occasionally crashed in
 * `exit()` after every test had passed (glibc heap corruption, or SIGSEGV). Opening the loaded driver once more with
 * RTLD_NODELETE before the instance goes away means it is never unloaded. See README, Development.
 * @module
 */

const RTLD_NOW = 0x2, RTLD_NOLOAD = 0x4, RTLD_NODELETE = 0x1000;
/** Mesa's driver files: the DRI megadriver (swrast_dri.so, iris_dri.so, …) and, in newer Mesa, libgallium. */
const DRIVER = /\/(?:dri\/[^/]+_dri\.so|libgallium[^/]*\.so)$/;

/** Marks every loaded Mesa driver RTLD_NODELETE; returns their paths. Linux (glibc) only. */
export function keepLoadedGlDrivers(): string[] {
  const paths = new Set<string>();
  for (const line of Deno.readTextFileSync("/proc/self/maps").split("\n")) {
    const path = line.split(/\s+/)[5];
    if (path && DRIVER.test(path)) paths.add(path);
  }
  if (paths.size === 0) return [];
  const libc = Deno.dlopen("libc.so.6", { dlopen: { parameters: ["buffer", "i32"], result: "pointer" } });
  const kept: string[] = [];
  for (const p of paths) {
    // RTLD_NOLOAD: only pins what is already loaded. The handle is never closed, on purpose.
    if (libc.symbols.dlopen(new TextEncoder().encode(p + "\0"), RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE)) kept.push(p);
  }
  return kept;
}

if (Deno.build.os === "linux") {
  // "unload" runs before the worker's runtime, and with it the wgpu instance, is torn down.
  globalThis.addEventListener("unload", () => {
    try {
      const kept = keepLoadedGlDrivers();
      if (Deno.env.get("KNOT_DEBUG_GL_DRIVER")) console.error(`kept loaded: ${kept.join(", ") || "none"}`);
    } catch (e) {
      // Without --allow-ffi/--allow-read or without glibc there is nothing to do; the tests do not depend on it.
      if (Deno.env.get("KNOT_DEBUG_GL_DRIVER")) console.error(`keepLoadedGlDrivers: ${e}`);
    }
  });
}
