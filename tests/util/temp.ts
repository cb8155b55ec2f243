/**
 * Temporary directories that remove themselves: `await using _ = removeWhenDone(dir)` deletes `dir` (recursively)
 * when the enclosing block ends, passed or failed, so a test run leaves nothing in the temp directory
 * (checked by scripts/test.ts).
 * @module
 */

/** An AsyncDisposable that removes `paths` (recursively; already-missing paths are fine) on disposal. */
export function removeWhenDone(...paths: string[]): AsyncDisposable {
  return {
    async [Symbol.asyncDispose]() {
      await Promise.all(paths.map((p) =>
        Deno.remove(p, { recursive: true }).catch((e) => {
          if (!(e instanceof Deno.errors.NotFound)) throw e;
        })
      ));
    },
  };
}
