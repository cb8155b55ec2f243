// The PEFT property tests of presets_test.ts, unchanged, with the model and every leaf on webgpu.
import { setBackend } from "../../mod.ts";
import "../../backends/webgpu/mod.ts";

const unavailable = await setBackend("webgpu").then(() => null, (e: Error) => e.message);
if (unavailable) {
  Deno.test({ name: `[webgpu] PEFT preset property tests (skipped: ${unavailable})`, ignore: true, fn() {} });
} else {
  // Loaded after the backend switch, so its model and tensors are created on webgpu.
  await import("./presets_test.ts");
}
