/**
 * The WebGPU test modules' shared start: the backend switched to webgpu once, at import, and `Deno.test` over
 * it — a test that needs an adapter is ignored, with the reason in its name, where there is none.
 */
import { setBackend } from "../../mod.ts";
import "../../backends/webgpu/mod.ts"; // registers "webgpu"
import type { WebGpuBackend } from "../../backends/webgpu/mod.ts";

/** A test that gets the WebGPU backend; its name is prefixed by the module's `prefix`. */
export type GpuTest = (name: string, fn: (b: WebGpuBackend) => void | Promise<void>) => void;

/** Switches to webgpu (once per module) and returns its test function. */
export async function webgpuTests(prefix: string): Promise<GpuTest> {
  let gpu: WebGpuBackend | null = null;
  let why = "";
  try {
    gpu = (await setBackend("webgpu")) as WebGpuBackend;
  } catch (e) {
    why = e instanceof Error ? e.message : String(e);
  }
  return (name, fn) =>
    Deno.test({
      name: gpu ? `${prefix}: ${name}` : `${prefix}: ${name} (SKIPPED: ${why})`,
      ignore: !gpu,
      async fn() {
        await setBackend("webgpu");
        await fn(gpu!);
      },
    });
}
