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

test("the fuzzer drives V4L2 capture: frames are dequeued, DQBUF with nothing queued ends", () => {
  const r = runSequence([
    { k: "video", p: 0, width: 64 },
    { k: "reqbufs", p: 0, count: 2, dmabuf: false },
    { k: "qbuf", p: 0, i: 0, j: 0 },
    { k: "qbuf", p: 0, i: 1, j: 0 },
    { k: "stream", p: 0, on: true },
    { k: "dqbuf", p: 0 },
    { k: "dqbuf", p: 0 },
    // Streaming with no buffer queued: vivid's frame clock keeps ticking, no frame can come.
    { k: "dqbuf", p: 0 },
    { k: "expbuf", p: 0, i: 0 },
    { k: "mmap", p: 0, i: 1 },
    { k: "touch", p: 0, i: 0, write: true },
    // A 4 GiB buffer on a 4 GiB machine: ENOMEM, at once.
    { k: "createbufs", p: 0, count: 1, size: 2 ** 32 - 4096 },
    { k: "createbufs", p: 0, count: 1, size: 0 },
    { k: "spawn" },
    { k: "send", p: 0, i: 1, to: 1 },
    { k: "exit", p: 0 },
  ]);
  assert.equal(r.failure, undefined, r.failure?.message);
  assert.equal(r.blockedForever, 1);
  assert.equal(r.errnos, 1);
});
