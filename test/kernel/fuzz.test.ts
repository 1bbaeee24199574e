/**
 * Random multi-process uAPI sequences (fuzz/uapi-fuzz.ts), including blocking calls and
 * the display: no internal error, no wait without progress, and nothing left allocated
 * once every process has exited. `npm run fuzz -- --ops N` runs the same for longer.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { fuzzSequence, runSequence } from "../../fuzz/uapi-fuzz.js";

test("random uAPI sequences: no internal error, no hang, no leak after exit", () => {
  fc.assert(
    fc.property(fuzzSequence(60), (ops) => {
      const r = runSequence(ops);
      assert.equal(r.failure, undefined, `${r.failure?.kind}: ${r.failure?.message}`);
    }),
    { numRuns: 60, seed: 11 },
  );
});

test("the fuzzer sees blocking calls end and leaks when they happen", () => {
  // poll(-1) on a card fd while another process shows a frame with the CRC file open.
  const r = runSequence([
    { k: "show", p: 0 },
    { k: "crc", p: 0 },
    { k: "spawn" },
    { k: "show", p: 1 },
    { k: "poll", p: 1, i: 0, timeout: -1 },
  ]);
  assert.equal(r.failure, undefined);
  assert.equal(r.blockedForever, 1);
});
