/**
 * `deno task bench`: every benchmark section, printed as Markdown with the
 * machine named. Ratios are taken within one run; absolute numbers depend on
 * the machine. Each section runs in a process of its own, so none inherits
 * another's heap, caches or threads (in one process, the peers' 15M-shape
 * rows once read 7× slower after the sections before them).
 *
 *   deno task bench                                  # every section
 *   deno run -A bench/main.ts --section peers        # one of them
 * @module
 */
import { benchCpu } from "./cpu.ts";
import { benchLlama } from "./llama.ts";
import { benchPeers } from "./peers/mod.ts";
import { benchTinyLlama } from "./tinyllama.ts";
import { benchTrain } from "./train.ts";
import { benchWebGpu } from "./webgpu.ts";
import { machineLine } from "./util.ts";

const SECTIONS: Record<string, () => Promise<void>> = {
  cpu: () => benchCpu(),
  webgpu: () => benchWebGpu(),
  llama: () => benchLlama(),
  "train-cpu": () => benchTrain(console.log, "cpu"),
  "train-webgpu": () => benchTrain(console.log, "webgpu", { only260K: true }),
  peers: () => benchPeers(),
  tinyllama: () => benchTinyLlama(),
};

const at = Deno.args.indexOf("--section");
if (at >= 0) {
  const name = Deno.args[at + 1], run = SECTIONS[name];
  if (!run) {
    console.error(`error: --section must be one of ${Object.keys(SECTIONS).join(", ")}, got ${name}`);
    Deno.exit(2);
  }
  await run();
} else {
  console.log(`# knot bench\n\n${machineLine()}`);
  for (const name of Object.keys(SECTIONS)) {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL(import.meta.url).pathname, "--section", name],
      stdout: "inherit",
      stderr: "inherit",
    });
    const { code } = await child.spawn().status;
    if (code !== 0) console.log(`\n(section ${name} exited with status ${code})`);
  }
}
