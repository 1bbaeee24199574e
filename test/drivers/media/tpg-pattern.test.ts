/**
 * vivid's test pattern (YUYV and XBGR32, the formats drawn line by line) against its
 * definition pixel by pixel, as vivid-tpg.ts documents it: eight 75% bars, a band of
 * height/8 lines of 32 blocks white for each set bit of the sequence number, BT.601
 * limited-range Y'CbCr with each YUYV pair taking the chroma of its first pixel,
 * padding 0.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { vividTestPattern } from "../../../src/drivers/media/test-drivers/vivid/vivid-tpg.js";
import { V4L2_PIX_FMT_XBGR32, V4L2_PIX_FMT_YUYV } from "../../../src/include/uapi/videodev2.js";

const BARS = [
  [191, 191, 191],
  [191, 191, 0],
  [0, 191, 191],
  [0, 191, 0],
  [191, 0, 191],
  [191, 0, 0],
  [0, 0, 191],
  [0, 0, 0],
];

function ycbcr([r, g, b]: number[]): number[] {
  return [
    ((66 * r! + 129 * g! + 25 * b! + 128) >> 8) + 16,
    ((-38 * r! - 74 * g! + 112 * b! + 128) >> 8) + 128,
    ((112 * r! - 94 * g! - 18 * b! + 128) >> 8) + 128,
  ];
}

test("the pattern is its definition, pixel by pixel", () => {
  fc.assert(
    fc.property(
      fc.constantFrom(V4L2_PIX_FMT_YUYV, V4L2_PIX_FMT_XBGR32),
      fc.integer({ min: 1, max: 70 }),
      fc.integer({ min: 1, max: 20 }),
      fc.nat(9),
      fc.nat(),
      (pixelformat, width, height, pad, sequence) => {
        const bpp = pixelformat === V4L2_PIX_FMT_YUYV ? 2 : 4;
        const fmt = { width, height, bytesperline: width * bpp + pad, pixelformat };
        const band = Math.max(1, Math.floor(height / 8));
        const rgb = (x: number, y: number): number[] =>
          y < band
            ? (sequence >>> (31 - Math.min(31, Math.floor((x * 32) / width)))) & 1
              ? [235, 235, 235]
              : [16, 16, 16]
            : BARS[Math.min(7, Math.floor((x * 8) / width))]!;
        const want = new Uint8Array(fmt.bytesperline * height);
        for (let y = 0; y < height; y++)
          for (let x = 0; x < width; x++) {
            const o = y * fmt.bytesperline + x * bpp;
            const [r, g, b] = rgb(x, y);
            if (pixelformat === V4L2_PIX_FMT_XBGR32) want.set([b!, g!, r!, 0], o);
            else {
              const first = x & ~1;
              const [, cb, cr] = ycbcr(rgb(first, y));
              want[o] = ycbcr([r!, g!, b!])[0]!;
              want[o + 1] = x === first ? cb! : cr!;
            }
          }
        assert.deepEqual(vividTestPattern(fmt, sequence), want);
      },
    ),
  );
});
