import assert from "node:assert/strict";
import { test } from "node:test";
import { ScratchBuffer, ScratchPool } from "../../src/lib/scratch.js";

const MiB = 1024 * 1024;

test("a scratch buffer grows within the memory it already has: sizes 64 KiB .. 32 MiB share one store", () => {
  const b = new ScratchBuffer();
  const first = b.get(64 * 1024);
  first[0] = 7;
  first[65535] = 9;
  for (let size = 128 * 1024; size <= 32 * MiB; size *= 2) {
    const v = b.get(size);
    assert.equal(v.length, size);
    assert.equal(v.buffer, first.buffer, `${size} bytes: the same host memory`);
  }
  // Left over from the first use: nothing was copied or cleared.
  const last = b.get(32 * MiB);
  assert.equal(last[0], 7);
  assert.equal(last[65535], 9);
  assert.ok(b.capacity >= 32 * MiB);
});

test("a scratch buffer asked for more than it has grows to it; peek refuses more than it has", () => {
  const b = new ScratchBuffer();
  const small = b.get(16);
  const big = b.get(b.capacity + 1);
  assert.notEqual(big.buffer, small.buffer);
  assert.equal(big.length, b.capacity);
  assert.throws(() => b.peek(b.capacity + 1), /scratch/);
});

test("a pool hands back the buffer given under a name, else any free one, else a new one", () => {
  const pool = new ScratchPool(2);
  const a = pool.take("a");
  const b = pool.take("b");
  pool.give("a", a);
  pool.give("b", b);
  assert.equal(pool.take("b"), b);
  assert.equal(pool.take("zzz"), a);
  assert.notEqual(pool.take("a"), a);
});
