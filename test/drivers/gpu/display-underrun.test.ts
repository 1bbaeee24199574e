/**
 * simdisplay when a frame takes longer to fetch than a refresh period (4K XRGB on the
 * cortex-a9 profile's 0.8 B/ns device: about 2.5 periods at 60 Hz), here with a small
 * frame on a device slowed to the same ratio: the vblanks during a fetch start none
 * (crc/data's frame numbers have gaps, see display.test.ts), and the pipeline's display
 * reads the CRC of the first frame after each flip within a few periods, however many
 * frames it shows. Also: after the ring overflowed, the overflow is named.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import { DRM_CRC_ENTRIES_NR } from "../../../src/drivers/gpu/drm/drm-crc.js";
import { crc32 } from "../../../src/lib/crc32.js";
import type { ResolvedSpec } from "../../../src/pipelines/spec.js";
import { DisplayStage } from "../../../src/pipelines/stages.js";
import { boot, mapDumb, pattern, visible } from "./helpers.js";

const W = 64;
const H = 48;
/** Bytes per ns that make one 64x48 XRGB fetch last about 2.5 periods of 60 Hz. */
const SLOW = (W * H * 4) / (2.5 * (1e9 / 60));

test("a fetch longer than a refresh period: no queue of scanouts, gaps in crc/data, show() keeps up", () => {
  const { k, u, disp } = boot("cortex-a9", { display: { device: { bandwidthBytesPerNs: SLOW } } });
  assert.ok(disp.dev.transferTime(W * H * 4) > 2 * disp.periodNs);
  const stage = new DisplayStage(u, k, { width: W, height: H } as ResolvedSpec, disp);
  const bufs = [1, 2].map((seed, i) => {
    const s = stage.createScanout(`out${i}`);
    const size = s.pitch * H;
    const map = mapDumb(u, stage.fd, s.handle, size);
    const frame = pattern(W, H, s.pitch, seed);
    map.write(0, frame);
    return { fb: s.fb, crc: crc32(visible(frame, W, H, s.pitch)) };
  });
  let last = -1;
  for (let i = 0; i < 24; i++) {
    const b = bufs[i % 2]!;
    const t0 = k.machine.now;
    const got = stage.show(b.fb);
    assert.equal(got.crc, b.crc, `show ${i}: the CRC is of the buffer flipped to`);
    assert.ok(got.sequence > last, `show ${i}: a later frame`);
    last = got.sequence;
    // Old code queued a fetch per vblank, each show waited for the whole backlog: the
    // wait grew by 2.5x per frame and gave up after 1000 stale entries.
    assert.ok(
      k.machine.now - t0 <= 6 * disp.periodNs,
      `show ${i} took ${(k.machine.now - t0) / disp.periodNs} periods`,
    );
  }
  assert.ok(disp.underruns > 0, "vblanks during a fetch start none");
  stage.stop();
  stage.release();
  assert.equal(k.machine.violations.count, 0);
});

test("show() after the CRC ring overflowed: the overflow is named, the flip's CRC still found by frame number", () => {
  const { k, u, disp } = boot();
  const stage = new DisplayStage(u, k, { width: W, height: H } as ResolvedSpec, disp);
  const a = stage.createScanout("a");
  const b = stage.createScanout("b");
  stage.show(a.fb);
  // 200 vblanks unread: drm_crtc_add_crc_entry drops the newest once the ring is full.
  k.machine.clock.runUntil(k.machine.now + 200 * disp.periodNs);
  assert.equal(disp.crc.pending, DRM_CRC_ENTRIES_NR - 1);
  const got = stage.show(b.fb);
  assert.ok(got.sequence > 200, "not a stale entry from before the flip");
  const v = k.machine.violations.list.map((x) => x.message);
  assert.deepEqual(v, ["Overflow of CRC buffer, userspace reads too slow."]);
});
