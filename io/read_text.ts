/**
 * Reading a small untrusted text file with a size cap checked before any
 * byte is read (Deno only; kept apart from io/json.ts, which browsers use).
 * @module
 */

/** Reads a text file of at most `maxBytes` bytes as UTF-8 (Deno only; errors through `fail`). */
export async function readTextLimited(path: string, maxBytes: number, fail: (msg: string) => Error): Promise<string> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (e) {
    throw fail(`cannot read: ${e instanceof Error ? e.message : e}`);
  }
  try {
    const { size, isFile } = await file.stat();
    if (!isFile) throw fail("not a regular file");
    if (size > maxBytes) throw fail(`file is ${size} bytes, over the limit of ${maxBytes}`);
    const buf = new Uint8Array(size);
    for (let off = 0; off < size;) {
      const got = await file.read(buf.subarray(off));
      if (got === null) break;
      off += got;
    }
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(buf);
    } catch {
      throw fail("not valid UTF-8");
    }
  } finally {
    file.close();
  }
}
