import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { main } from "../../src/cli/main.js";
import { captureIo } from "./fixtures.js";

async function sweep(argv: string[], cwd: string): Promise<{ code: number; out: string }> {
  const io = captureIo(cwd);
  const code = await main(["sweep", ...argv], io);
  return { code, out: io.stdout + io.stderr };
}

test("dmabuf sweep --dry-run checks the whole grid and the outputs, counts the runs, runs nothing", async () => {
  const cwd = mkdtempSync(join(tmpdir(), "dmabuf-dry-"));
  try {
    const grid = ["camera-gpu-display", "--vary", "buffers.bufferBytes=64KiB..1MiB*2"];
    const ok = await sweep([...grid, "--html", "r.html", "--dry-run"], cwd);
    assert.equal(ok.code, 0, ok.out);
    assert.match(ok.out, /^dmabuf sweep: 5 runs: .* nothing was run \(--dry-run\)\n$/);
    assert.ok(!existsSync(join(cwd, "out", "r.html")), "a dry run wrote the report");
    const shard = await sweep([...grid, "--shard", "2/2", "--dry-run"], cwd);
    assert.match(shard.out, /2 runs \(shard 2\/2 of 5\)/);
    // What a real sweep refuses before its first run, a dry run refuses the same way.
    const bad = await sweep([...grid, "--vary", "pipeline.frames=0,1", "--dry-run"], cwd);
    assert.equal(bad.code, 2);
    assert.match(bad.out, /pipeline\.frames/);
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
});
