// scripts/test.ts, the runner behind `deno task test`: how it reads one `deno test` process's output and exit.
import assert from "node:assert/strict";
import { judge } from "../scripts/test.ts";

const OK =
  "running 3 tests from ./tests/x_test.ts\na ... ok (1ms)\n\nok | 3 passed (2 steps) | 0 failed | 1 ignored (5s)\n\n";
const EXITED = { code: 0, signal: null };
const ABORTED = { code: 134, signal: "SIGABRT" as const };

Deno.test("runner: a passing process is counted from its summary", () => {
  assert.deepEqual(judge(OK, EXITED, false), { passed: 3, failed: 0, ignored: 1, problem: "", note: "" });
  assert.deepEqual(judge("ok | 7 passed | 0 failed (1s)\n", EXITED, false), {
    passed: 7,
    failed: 0,
    ignored: 0,
    problem: "",
    note: "",
  });
});

Deno.test("runner: failed tests are counted as failed", () => {
  const out = "FAILED | 10 passed | 2 failed (3s)\n\nerror: Test failed\n";
  const r = judge(out, { code: 1, signal: null }, true);
  assert.equal(r.passed, 10);
  assert.equal(r.failed, 2);
  assert.equal(r.problem, "");
});

Deno.test("runner: an exit-time crash after a passing summary is accepted only where allowed", () => {
  for (const msg of ["corrupted size vs. prev_size in fastbins", "double free or corruption (out)"]) {
    const accepted = judge(OK + msg + "\n", ABORTED, true);
    assert.equal(accepted.passed, 3);
    assert.equal(accepted.problem, "");
    assert.match(
      accepted.note,
      new RegExp(`crashed at exit after its passing summary .*${msg.replace(/[()]/g, "\\$&")}`),
    );
    const refused = judge(OK + msg + "\n", ABORTED, false);
    assert.match(refused.problem, /exited with signal SIGABRT after its summary: corrupted|double free/);
  }
  const segv = judge(OK, { code: 139, signal: "SIGSEGV" }, true);
  assert.equal(segv.problem, "");
  assert.match(segv.note, /crashed at exit after its passing summary \(SIGSEGV\)/);
  assert.match(judge(OK, { code: 139, signal: "SIGSEGV" }, false).problem, /signal SIGSEGV/);
});

Deno.test("runner: any other crash counts as a failure", () => {
  // an abort before the summary: nothing to count, a problem
  assert.match(judge("a ... ok (1ms)\ndouble free or corruption (out)\n", ABORTED, true).problem, /no test summary/);
  // an abort after a summary followed by other output (a panic, a second message)
  assert.match(judge(OK + "thread 'main' panicked\nfree(): invalid pointer\n", ABORTED, true).problem, /panicked/);
  // an abort with no glibc heap message, a segfault that printed something, a non-zero exit after a passing summary
  assert.match(judge(OK, ABORTED, true).problem, /signal SIGABRT/);
  assert.match(judge(OK + "Segmentation fault\n", { code: 139, signal: "SIGSEGV" }, true).problem, /signal SIGSEGV/);
  assert.match(judge(OK, { code: 134, signal: null }, true).problem, /code 134/);
  assert.match(judge(OK, { code: 1, signal: null }, true).problem, /code 1/);
  // a process killed with no output at all
  assert.match(judge("", { code: 137, signal: "SIGKILL" }, true).problem, /no test summary \(exit signal SIGKILL\)/);
  // the summary is taken from the end: a failing summary after a passing one counts
  assert.equal(judge(OK + "FAILED | 1 passed | 1 failed (1s)\n", { code: 1, signal: null }, true).failed, 1);
});
