/** CRC-32: the native path (zlib.crc32) and the JavaScript fallback agree everywhere. */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { crc32, crc32Le, crc32LeJs } from "../../src/lib/crc32.js";

describe("crc32", () => {
  test("the check value of CRC-32/ISO-HDLC", () => {
    const s = new TextEncoder().encode("123456789");
    assert.equal(crc32(s), 0xcbf43926);
    assert.equal(~crc32LeJs(0xffffffff, s) >>> 0, 0xcbf43926);
    assert.equal(crc32(new Uint8Array(0)), 0);
  });

  test("native and JavaScript crc32_le agree for any seed, bytes and offset; chaining works", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 300 }),
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.nat(7),
        (bytes, seed, skip) => {
          const view = bytes.subarray(Math.min(skip, bytes.length));
          assert.equal(crc32Le(seed, view), crc32LeJs(seed, view));
          const cut = view.length >>> 1;
          assert.equal(
            crc32Le(crc32Le(seed, view.subarray(0, cut)), view.subarray(cut)),
            crc32Le(seed, view),
          );
          assert.equal(crc32(view), ~crc32LeJs(0xffffffff, view) >>> 0);
        },
      ),
    );
  });
});
