/** Registers the CPU backend under the name "cpu". @module */
import { registerBackend } from "../../core/runtime.ts";
import { CpuBackend } from "./backend.ts";

export { CpuBackend };
registerBackend("cpu", () => new CpuBackend());
