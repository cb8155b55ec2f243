// bench/peers' llama2.c build: run.c with its timer read in microseconds (the peers never run in tests).
import assert from "node:assert/strict";
import { currentCpu, LLAMA2C_DIR, microsecondTimer } from "../bench/peers/llama2c.ts";

const RUN_C = `${LLAMA2C_DIR}/run.c`;
let source: string | null = null;
try {
  source = Deno.readTextFileSync(RUN_C);
} catch {
  // ../shared is absent: the test below says so
}

Deno.test({
  name: source === null
    ? `llama2.c's timer in microseconds (skipped: ${RUN_C} absent)`
    : "llama2.c's timer in microseconds",
  ignore: source === null,
  fn() {
    const out = microsecondTimer(source!);
    const changed = out.split("\n").filter((line, i) => line !== source!.split("\n")[i]);
    assert.deepEqual(changed.map((l) => l.trim()), [
      "return time.tv_sec * 1000000 + time.tv_nsec / 1000;",
      'fprintf(stderr, "achieved tok/s: %f\\n", (pos-1) / (double)(end-start)*1000000);',
    ]);
  },
});

Deno.test("llama2.c's timer: a run.c without the expected lines is an error naming them", () => {
  assert.throws(() => microsecondTimer("int main() { return 0; }"), /run\.c no longer has `return time\.tv_sec/);
});

Deno.test("the CPU this thread runs on: one of the machine's, on Linux (llama2.c's single thread is pinned there)", () => {
  const cpu = currentCpu();
  if (Deno.build.os !== "linux") return assert.equal(cpu, null);
  assert.ok(Number.isInteger(cpu) && cpu! >= 0, `got ${cpu}`);
  // The affinity mask of this process lists it.
  const allowed = Deno.readTextFileSync("/proc/self/status").match(/Cpus_allowed_list:\s*(\S+)/)![1];
  const inList = allowed.split(",").some((r) => {
    const [a, b = a] = r.split("-").map(Number);
    return cpu! >= a && cpu! <= b;
  });
  assert.ok(inList, `cpu ${cpu} not in ${allowed}`);
});
