/**
 * Expected frames made incrementally (a buffer that knows what it holds redraws only the
 * rows that differ) are byte for byte the frames made from nothing, and so are their
 * CRCs, whatever the buffer held before: random sequences of formats, sequence numbers,
 * stamps in place and other uses of the same buffers.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { simgpuTransform } from "../../src/drivers/gpu/drm/simgpu/simgpu.js";
import {
  type TpgFormat,
  vividTestPattern,
  vividTestPatternCached,
} from "../../src/drivers/media/test-drivers/vivid/vivid-tpg.js";
import {
  SIMGPU_OP_COPY,
  SIMGPU_OP_INVERT,
  SIMGPU_OP_YUYV_TO_XRGB8888,
} from "../../src/include/uapi/simgpu-drm.js";
import {
  V4L2_PIX_FMT_RGB24,
  V4L2_PIX_FMT_XBGR32,
  V4L2_PIX_FMT_YUYV,
} from "../../src/include/uapi/videodev2.js";
import { crc32Rows } from "../../src/lib/crc32.js";
import { ScratchBuffer } from "../../src/lib/scratch.js";
import {
  applyStamp,
  expectedGpuOutput,
  expectedTestPattern,
  type FrameGeometry,
  visibleCrc,
} from "../../src/pipelines/expected.js";

const FORMATS: readonly TpgFormat[] = [
  { width: 16, height: 24, bytesperline: 64, pixelformat: V4L2_PIX_FMT_XBGR32 },
  { width: 16, height: 24, bytesperline: 72, pixelformat: V4L2_PIX_FMT_XBGR32 },
  { width: 24, height: 9, bytesperline: 96, pixelformat: V4L2_PIX_FMT_XBGR32 },
  { width: 16, height: 24, bytesperline: 32, pixelformat: V4L2_PIX_FMT_YUYV },
  { width: 18, height: 17, bytesperline: 40, pixelformat: V4L2_PIX_FMT_YUYV },
  { width: 16, height: 1, bytesperline: 64, pixelformat: V4L2_PIX_FMT_XBGR32 },
  // Bands of 12 lines, deeper than most stamps: a band changed in part.
  { width: 40, height: 96, bytesperline: 168, pixelformat: V4L2_PIX_FMT_XBGR32 },
  { width: 20, height: 96, bytesperline: 44, pixelformat: V4L2_PIX_FMT_YUYV },
  { width: 16, height: 16, bytesperline: 52, pixelformat: V4L2_PIX_FMT_RGB24 },
];

type Step =
  | { kind: "pattern"; fmt: number; seq: number }
  | { kind: "stamp"; frameNo: number; top: number; lines: number; touch: boolean }
  | { kind: "other"; len: number; fill: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("pattern" as const),
      fmt: fc.nat(FORMATS.length - 1),
      seq: fc.nat(5),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("stamp" as const),
      frameNo: fc.nat(9),
      top: fc.oneof(fc.constant(0), fc.nat(30)),
      lines: fc.oneof(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 30 })),
      touch: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("other" as const),
      len: fc.nat(8192),
      fill: fc.nat(255),
    }),
  },
);

/**
 * A CPU stage's stamp of rows `top` to `top + lines` (cut to the frame) in place, said
 * as graph-run says it (touchRows: which rows changed) or by forgetting the content.
 */
function stampRows(
  frame: Uint8Array,
  g: FrameGeometry,
  buf: ScratchBuffer,
  s: { frameNo: number; top: number; lines: number; touch: boolean },
): void {
  const top = s.top % g.height;
  const lines = Math.min(s.lines, g.height - top);
  applyStamp(frame.subarray(top * g.stride), { ...g, height: lines }, s.frameNo, true, true);
  // A change in place may touch a line's padding too.
  const pad = top * g.stride + g.width * g.bpp;
  if (g.stride > g.width * g.bpp && pad < frame.length) frame[pad] = s.frameNo + 1;
  if (s.touch) buf.touchRows(top + lines);
  else buf.forget();
}

const geometryOf = (fmt: TpgFormat): FrameGeometry => ({
  width: fmt.width,
  height: fmt.height,
  stride: fmt.bytesperline,
  bpp: fmt.pixelformat === V4L2_PIX_FMT_XBGR32 ? 4 : 2,
});

describe("incremental expected frames", () => {
  test("vividTestPatternCached gives vividTestPattern's bytes whatever the buffer held", () => {
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 30 }), (steps) => {
        const buf = new ScratchBuffer();
        let last: { frame: Uint8Array; fmt: TpgFormat } | undefined;
        for (const s of steps) {
          if (s.kind === "pattern") {
            const fmt = FORMATS[s.fmt]!;
            const frame = vividTestPatternCached(fmt, s.seq, buf);
            assert.deepEqual(frame, vividTestPattern(fmt, s.seq));
            last = { frame, fmt };
          } else if (
            s.kind === "stamp" &&
            last !== undefined &&
            last.fmt.pixelformat !== V4L2_PIX_FMT_RGB24
          ) {
            // A CPU stage stamps the expected frame in place, and says so.
            stampRows(last.frame, geometryOf(last.fmt), buf, s);
          } else if (s.kind === "other") {
            buf.get(s.len).fill(s.fill);
            last = undefined;
          }
        }
      }),
      // Enough histories that a band changed in part (a shallow stamp over a deep band)
      // comes up every time.
      { numRuns: 400 },
    );
  });

  test("expectedGpuOutput brought up to date equals the transform of the frame; visibleCrc with content equals crc32Rows", () => {
    const ops = [SIMGPU_OP_INVERT, SIMGPU_OP_COPY, SIMGPU_OP_YUYV_TO_XRGB8888];
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            fmt: fc.nat(FORMATS.length - 2),
            seq: fc.nat(5),
            op: fc.nat(2),
            pad: fc.nat(2),
            stamp: fc.option(
              fc.record({
                frameNo: fc.nat(9),
                top: fc.nat(30),
                lines: fc.integer({ min: 1, max: 30 }),
                touch: fc.boolean(),
              }),
              { nil: undefined },
            ),
          }),
          { minLength: 1, maxLength: 25 },
        ),
        (steps) => {
          const cam = new ScratchBuffer();
          const gpu = new ScratchBuffer();
          for (const s of steps) {
            const fmt = FORMATS[s.fmt]!;
            const yuyv = fmt.pixelformat === V4L2_PIX_FMT_YUYV;
            const op = yuyv ? SIMGPU_OP_YUYV_TO_XRGB8888 : ops[s.op % 2]!;
            const src = expectedTestPattern(fmt, s.seq, cam);
            assert.deepEqual(src, vividTestPattern(fmt, s.seq));
            if (s.stamp !== undefined) stampRows(src, geometryOf(fmt), cam, s.stamp);
            const p = {
              width: fmt.width,
              height: fmt.height,
              srcPitch: fmt.bytesperline,
              dstPitch: fmt.width * 4 + s.pad * 4,
            };
            const out = expectedGpuOutput(op, src, p, gpu, cam.content);
            const want = simgpuTransform(op, src, p);
            assert.deepEqual(out, want);
            const g: FrameGeometry = {
              width: fmt.width,
              height: fmt.height,
              stride: p.dstPitch,
              bpp: 4,
            };
            const full = new Uint8Array(p.dstPitch * p.height);
            full.set(want);
            const rows = crc32Rows(full, fmt.width * 4, p.dstPitch, fmt.height);
            assert.equal(visibleCrc(full, g, gpu.content), rows);
            assert.equal(visibleCrc(out, g, gpu.content), rows);
            const sg = geometryOf(fmt);
            assert.equal(
              visibleCrc(src, sg, cam.content),
              crc32Rows(src, sg.width * sg.bpp, sg.stride, sg.height),
            );
          }
        },
      ),
    );
  });

  test("expectedGpuOutput told which source rows equal the one above gives the transform's bytes and CRC", () => {
    // Frames of one key whose top `rows` rows vary by seq and whose rows are variants of
    // one row (so neighbours are often equal, and differ in part of the row): the
    // source's claims (some left out) let the update skip comparisons and rewrite spans.
    const ops = [SIMGPU_OP_INVERT, SIMGPU_OP_COPY, SIMGPU_OP_YUYV_TO_XRGB8888];
    fc.assert(
      fc.property(
        fc.nat(2),
        fc.integer({ min: 1, max: 8 }).map((n) => n * 2),
        fc.integer({ min: 1, max: 10 }),
        fc.nat(3),
        fc.nat(2),
        fc.array(fc.nat(3), { minLength: 10, maxLength: 10 }),
        fc.array(fc.record({ seq: fc.nat(4), drop: fc.array(fc.boolean(), { maxLength: 10 }) }), {
          minLength: 1,
          maxLength: 8,
        }),
        fc.integer({ min: 0, max: 0xffff }),
        (opIx, width, height, topRows, pad, below, frames, seed) => {
          const op = ops[opIx]!;
          const cpp = op === SIMGPU_OP_YUYV_TO_XRGB8888 ? 2 : 4;
          const rowBytes = width * cpp;
          const srcPitch = rowBytes + pad;
          const rows = Math.min(height, topRows);
          const variant = (k: number): Uint8Array => {
            const r = Uint8Array.from({ length: rowBytes }, (_, i) => (i * 29 + seed) & 0xff);
            for (let j = 0; j < k; j++) r[(seed * (j + 3) + j * 7) % rowBytes] ^= 0x5a + j;
            return r;
          };
          const p = { width, height, srcPitch, dstPitch: width * 4 + pad * 4 };
          const cam = new ScratchBuffer();
          const gpu = new ScratchBuffer();
          for (const f of frames) {
            const src = cam.get(srcPitch * height).fill(0);
            // The varying rows by seq, the rest the key's.
            for (let y = 0; y < height; y++)
              src.set(variant(y < rows ? (f.seq * 7 + y * 3 + seed) % 4 : below[y]!), y * srcPitch);
            const same = Uint8Array.from({ length: height }, (_, y) =>
              y > 0 &&
              f.drop[y] !== true &&
              src
                .subarray(y * srcPitch, y * srcPitch + rowBytes)
                .every((v, i) => v === src[(y - 1) * srcPitch + i])
                ? 1
                : 0,
            );
            cam.content = {
              key: `rows ${seed}`,
              seq: f.seq,
              rows,
              same: { pitch: srcPitch, rowBytes, same },
            };
            const out = expectedGpuOutput(op, src, p, gpu, cam.content);
            const want = simgpuTransform(op, src, p);
            assert.deepEqual(out, want);
            const g: FrameGeometry = { width, height, stride: p.dstPitch, bpp: 4 };
            assert.equal(
              visibleCrc(out, g, gpu.content),
              crc32Rows(want, width * 4, p.dstPitch, height),
            );
          }
        },
      ),
    );
  });
});
