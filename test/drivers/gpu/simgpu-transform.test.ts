/**
 * simgpu's transform on whole rows (32-bit words, BT.601 by table) against the per-pixel
 * definition, for aligned and unaligned rows, with and without a reused output buffer.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { bt601ToXrgb, simgpuTransform } from "../../../src/drivers/gpu/drm/simgpu/simgpu.js";
import {
  SIMGPU_OP_COPY,
  SIMGPU_OP_INVERT,
  SIMGPU_OP_YUYV_TO_XRGB8888,
} from "../../../src/include/uapi/simgpu-drm.js";

/** The definition, pixel by pixel: what the driver documents. */
function reference(
  op: number,
  src: Uint8Array,
  w: number,
  h: number,
  srcPitch: number,
  dstPitch: number,
): Uint8Array {
  const dst = new Uint8Array(dstPitch * (h - 1) + w * 4);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const d = y * dstPitch + x * 4;
      if (op === SIMGPU_OP_YUYV_TO_XRGB8888) {
        const s = y * srcPitch + (x & ~1) * 2;
        const v = bt601ToXrgb(src[s + (x & 1) * 2]!, src[s + 1]!, src[s + 3]!);
        for (let k = 0; k < 4; k++) dst[d + k] = (v >>> (8 * k)) & 0xff;
      } else {
        for (let k = 0; k < 4; k++) {
          const b = src[y * srcPitch + x * 4 + k]!;
          dst[d + k] = op === SIMGPU_OP_INVERT ? 255 - b : b;
        }
      }
    }
  }
  return dst;
}

describe("simgpuTransform", () => {
  test("whole-row kernels equal the per-pixel definition", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(SIMGPU_OP_COPY, SIMGPU_OP_INVERT, SIMGPU_OP_YUYV_TO_XRGB8888),
        fc.integer({ min: 1, max: 12 }).map((n) => n * 2),
        fc.integer({ min: 1, max: 6 }),
        fc.nat(5),
        fc.nat(5),
        fc.nat(3),
        fc.boolean(),
        fc.integer({ min: 0, max: 0xffff }),
        (op, w, h, srcPad, dstPad, shift, reuse, seed) => {
          const srcCpp = op === SIMGPU_OP_YUYV_TO_XRGB8888 ? 2 : 4;
          const srcPitch = w * srcCpp + srcPad;
          const dstPitch = w * 4 + dstPad;
          const backing = new Uint8Array(srcPitch * h + 8);
          let x = seed | 1;
          for (let i = 0; i < backing.length; i++) {
            x = (x * 1103515245 + 12345) >>> 0;
            backing[i] = x >>> 24;
          }
          // `shift` makes the source view unaligned.
          const src = backing.subarray(shift, shift + srcPitch * (h - 1) + w * srcCpp);
          const want = reference(op, src, w, h, srcPitch, dstPitch);
          const out = reuse ? new Uint8Array(want.length + 16).fill(0xee) : undefined;
          const got = simgpuTransform(op, src, { width: w, height: h, srcPitch, dstPitch }, out);
          assert.deepEqual(got, want);
        },
      ),
      { numRuns: 400 },
    );
  });
});

describe("simgpuTransform on frames of repeated rows", () => {
  test("a row equal to the one above gives the same result as converting it", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(SIMGPU_OP_COPY, SIMGPU_OP_INVERT, SIMGPU_OP_YUYV_TO_XRGB8888),
        fc.integer({ min: 1, max: 12 }).map((n) => n * 2),
        fc.array(fc.nat(1), { minLength: 1, maxLength: 8 }),
        fc.nat(5),
        fc.nat(5),
        fc.integer({ min: 0, max: 0xffff }),
        (op, w, rowsOf, srcPad, dstPad, seed) => {
          const srcCpp = op === SIMGPU_OP_YUYV_TO_XRGB8888 ? 2 : 4;
          const h = rowsOf.length;
          const srcPitch = w * srcCpp + srcPad;
          const dstPitch = w * 4 + dstPad;
          // Two distinct rows, drawn in the order rowsOf says; the padding differs per row.
          const src = new Uint8Array(srcPitch * h);
          let x = seed | 1;
          for (let i = 0; i < src.length; i++) {
            x = (x * 1103515245 + 12345) >>> 0;
            src[i] = x >>> 24;
          }
          const rows = [0, 1].map((k) =>
            Uint8Array.from({ length: w * srcCpp }, (_, i) => (i * 13 + k * 101 + seed) & 0xff),
          );
          for (const [y, k] of rowsOf.entries()) src.set(rows[k]!, y * srcPitch);
          const want = reference(op, src, w, h, srcPitch, dstPitch);
          const out = new Uint8Array(want.length).fill(0xee);
          assert.deepEqual(
            simgpuTransform(op, src, { width: w, height: h, srcPitch, dstPitch }, out),
            want,
          );
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("simgpuTransform told which rows equal the one above", () => {
  test("source rows known equal and an earlier result's equal rows give the plain transform's bytes", () => {
    // Rows are variants of one base row that differ in a few bytes, so a result row
    // differs from an earlier one in part of the row: what `was` writes is a span.
    const row = fc.record({ kind: fc.nat(3), drop: fc.boolean() });
    fc.assert(
      fc.property(
        fc.constantFrom(SIMGPU_OP_COPY, SIMGPU_OP_INVERT, SIMGPU_OP_YUYV_TO_XRGB8888),
        fc.integer({ min: 1, max: 12 }).map((n) => n * 2),
        fc.array(fc.tuple(row, row), { minLength: 1, maxLength: 10 }),
        fc.nat(5),
        fc.nat(5),
        fc.integer({ min: 0, max: 0xffff }),
        (op, w, pairs, srcPad, dstPad, seed) => {
          const srcCpp = op === SIMGPU_OP_YUYV_TO_XRGB8888 ? 2 : 4;
          const h = pairs.length;
          const srcPitch = w * srcCpp + srcPad;
          const dstPitch = w * 4 + dstPad;
          const rowBytes = w * srcCpp;
          const base = Uint8Array.from({ length: rowBytes }, (_, i) => (i * 29 + seed) & 0xff);
          const variant = (k: number): Uint8Array => {
            const r = base.slice();
            for (let j = 0; j < k; j++) r[(seed * (j + 3) + j * 7) % rowBytes] ^= 0x5a + j;
            return r;
          };
          const frame = (pick: (p: (typeof pairs)[number]) => { kind: number }): Uint8Array => {
            const src = new Uint8Array(srcPitch * h).fill(seed & 0xff);
            for (const [y, p] of pairs.entries()) src.set(variant(pick(p).kind), y * srcPitch);
            return src;
          };
          // Which rows of `b` (rows of `n` bytes at `pitch`) equal the row above, some claims left out.
          const sameOf = (
            b: Uint8Array,
            pitch: number,
            n: number,
            drop: (y: number) => boolean,
          ): Uint8Array =>
            Uint8Array.from({ length: h }, (_, y) =>
              y > 0 &&
              !drop(y) &&
              b.subarray(y * pitch, y * pitch + n).every((v, i) => v === b[(y - 1) * pitch + i])
                ? 1
                : 0,
            );
          const p = { width: w, height: h, srcPitch, dstPitch };
          const before = frame(([a]) => a);
          const after = frame(([, b]) => b);
          const out = new Uint8Array(dstPitch * h + 8).fill(0xee);
          simgpuTransform(op, before, p, out);
          const was = sameOf(out, dstPitch, w * 4, (y) => pairs[y]![0].drop);
          const src = sameOf(after, srcPitch, rowBytes, (y) => pairs[y]![1].drop);
          const want = reference(op, after, w, h, srcPitch, dstPitch);
          assert.deepEqual(simgpuTransform(op, after, p, out, { src, was }), want);
          // Told nothing of dst's rows (a fresh array), the source claims alone.
          assert.deepEqual(simgpuTransform(op, after, p, undefined, { src }), want);
        },
      ),
      { numRuns: 400 },
    );
  });
});
