/**
 * `deno task bench`: every benchmark section, printed as Markdown with the
 * machine named. Ratios are taken within one run; absolute numbers depend on
 * the machine.
 * @module
 */
import { benchCpu } from "./cpu.ts";
import { benchLlama } from "./llama.ts";
import { benchPeers } from "./peers/mod.ts";
import { benchTinyLlama } from "./tinyllama.ts";
import { benchTrain } from "./train.ts";
import { benchWebGpu } from "./webgpu.ts";
import { machineLine } from "./util.ts";

console.log(`# knot bench\n\n${machineLine()}`);
await benchCpu();
await benchWebGpu();
await benchLlama();
await benchTrain(console.log, "cpu");
await benchTrain(console.log, "webgpu", { only260K: true });
await benchPeers();
await benchTinyLlama();
