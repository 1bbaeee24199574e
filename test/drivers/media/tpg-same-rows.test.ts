/**
 * vivid's claim of which lines of its test pattern are the line above again
 * (tpgSameRows, which it tells DRAM with each frame it writes) against the pattern's
 * bytes: every claimed line equals the line above, for random geometries, paddings and
 * sequence numbers of YUYV and XBGR32; nothing is claimed of the other formats.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import {
  tpgSameRows,
  vividTestPattern,
} from "../../../src/drivers/media/test-drivers/vivid/vivid-tpg.js";
import {
  V4L2_PIX_FMT_RGB24,
  V4L2_PIX_FMT_XBGR32,
  V4L2_PIX_FMT_YUYV,
} from "../../../src/include/uapi/videodev2.js";

test("tpgSameRows claims only lines equal to the line above", () => {
  fc.assert(
    fc.property(
      fc.constantFrom(V4L2_PIX_FMT_YUYV, V4L2_PIX_FMT_XBGR32),
      fc.integer({ min: 1, max: 40 }),
      fc.integer({ min: 1, max: 40 }),
      fc.nat(16),
      fc.nat(),
      (pixelformat, w, height, pad, sequence) => {
        const width = pixelformat === V4L2_PIX_FMT_YUYV ? w * 2 : w;
        const bpp = pixelformat === V4L2_PIX_FMT_YUYV ? 2 : 4;
        const fmt = { width, height, bytesperline: width * bpp + pad, pixelformat };
        const frame = vividTestPattern(fmt, sequence);
        const same = tpgSameRows(fmt)!;
        assert.equal(same.length, height);
        assert.equal(same[0], 0);
        const R = fmt.bytesperline;
        let claimed = 0;
        for (let y = 1; y < height; y++) {
          if (same[y] === 0) continue;
          claimed++;
          assert.deepEqual(frame.subarray(y * R, (y + 1) * R), frame.subarray((y - 1) * R, y * R));
        }
        // All but the first line of the band and of the bars.
        assert.equal(claimed, height - (height > Math.max(1, Math.floor(height / 8)) ? 2 : 1));
      },
    ),
    { numRuns: 200 },
  );
  const rgb = { width: 8, height: 8, bytesperline: 24, pixelformat: V4L2_PIX_FMT_RGB24 };
  assert.equal(tpgSameRows(rgb), undefined);
});
