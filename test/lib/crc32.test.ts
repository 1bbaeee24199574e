/** CRC-32: the native path (zlib.crc32) and the JavaScript fallback agree everywhere. */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { crc32, crc32Combine, crc32Le, crc32LeJs, crc32Rows } from "../../src/lib/crc32.js";

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

describe("crc32Rows", () => {
  test("equals the CRC of the packed rows, with and without repeated rows and padding", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 0, max: 5 }),
        fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 12 }),
        fc.integer({ min: 0, max: 0xffff }),
        fc.array(fc.boolean(), { maxLength: 14 }),
        (rowBytes, pad, pattern, seed, tell) => {
          // Rows drawn from four distinct ones, so neighbours are often equal.
          const stride = rowBytes + pad;
          const rows = pattern.length;
          const bytes = new Uint8Array(stride * rows);
          let x = seed | 1;
          for (let i = 0; i < bytes.length; i++) {
            x = (x * 1103515245 + 12345) & 0x7fffffff;
            bytes[i] = x >>> 16; // padding bytes differ row to row
          }
          const distinct = [0, 1, 2, 3].map((k) =>
            Uint8Array.from({ length: rowBytes }, (_, i) => (i * 31 + k * 7 + seed) & 0xff),
          );
          for (const [y, k] of pattern.entries()) bytes.set(distinct[k]!, y * stride);
          const packed = new Uint8Array(rowBytes * rows);
          for (let y = 0; y < rows; y++)
            packed.set(bytes.subarray(y * stride, y * stride + rowBytes), y * rowBytes);
          assert.equal(crc32Rows(bytes, rowBytes, stride, rows), crc32(packed));
          // Told which rows equal the one above (some, by `tell`; past its length, none).
          const same = Uint8Array.from(tell, (t, y) =>
            t && y > 0 && y < rows && pattern[y] === pattern[y - 1] ? 1 : 0,
          );
          assert.equal(crc32Rows(bytes, rowBytes, stride, rows, same), crc32(packed));
        },
      ),
    );
    // A frame whose last row has no padding after it.
    const f = new Uint8Array(3 * 8 - 2).fill(9);
    assert.equal(crc32Rows(f, 6, 8, 3), crc32(new Uint8Array(18).fill(9)));
    // Cut short: the rows there are, as subarray cuts them.
    assert.equal(crc32Rows(f, 6, 8, 4), crc32(new Uint8Array(18).fill(9)));
    assert.equal(crc32Rows(f.subarray(0, 20), 6, 8, 3), crc32(new Uint8Array(16).fill(9)));
  });
});

describe("crc32Combine", () => {
  test("the CRC of A then B from the CRCs of A and B and B's length (zlib's crc32_combine)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ maxLength: 200 }), (a, b) => {
        const ab = new Uint8Array(a.length + b.length);
        ab.set(a);
        ab.set(b, a.length);
        assert.equal(crc32Combine(crc32(a), crc32(b), b.length), crc32(ab));
      }),
    );
  });
});
