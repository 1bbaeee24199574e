/** `dmabuf mutate` over several scenarios: each report, then the total. */

import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { examplesDir } from "../../src/cli/list.js";
import { main } from "../../src/cli/main.js";
import { captureIo } from "./fixtures.js";

test("dmabuf mutate A B: both reports and a total line; exit 0 with nothing missed", async () => {
  const ex = examplesDir(process.cwd());
  const io = captureIo(process.cwd());
  const code = await main(
    [
      "mutate",
      join(ex, "camera-display.yaml"),
      join(ex, "swiotlb-bounced-capture.yaml"),
      "--frames",
      "2",
      "--set",
      "buffers.width=64",
      "--set",
      "buffers.height=32",
    ],
    io,
  );
  assert.equal(code, 0, io.stdout + io.stderr);
  assert.match(io.stdout, /^mutate camera-display: /m);
  assert.match(io.stdout, /^mutate swiotlb-bounced-capture: /m);
  const total =
    /^total over 2 scenarios: (\d+) mutants of (\d+) distinct call sites; .*\((\d+) caught, (\d+) caught only by wrong bytes, (\d+) harmless, (\d+) missed\)$/m.exec(
      io.stdout,
    );
  assert.ok(total !== null, io.stdout);
  const [, mutants, , caught, bytes, harmless, missed] = total.map(Number);
  assert.equal(caught! + bytes! + harmless! + missed!, mutants);
  assert.equal(missed, 0);
});
