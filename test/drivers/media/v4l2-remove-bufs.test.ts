/**
 * VIDIOC_REMOVE_BUFS and CREATE_BUFS over random operation sequences, against a plain
 * bitmap of which indices hold a buffer: the model's videobuf2 must give Linux 6.12's
 * answers (videobuf2-core.c vb2_core_remove_bufs, __vb2_queue_alloc's first fit with
 * bitmap_find_next_zero_area, vb2_ioctl_create_bufs' index for count 0), and the mmap
 * cookie of every buffer must follow its index.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { MAP_SHARED, PROT_READ } from "../../../src/include/uapi/fcntl.js";
import {
  V4L2_BUF_TYPE_VIDEO_CAPTURE,
  V4L2_MEMORY_MMAP,
} from "../../../src/include/uapi/videodev2.js";
import {
  vidiocCreateBufs,
  vidiocQbuf,
  vidiocQuerybuf,
  vidiocRemoveBufs,
} from "../../../src/uapi/v4l2.js";
import { errnoOf, rig } from "./helpers.js";

const CAP = V4L2_BUF_TYPE_VIDEO_CAPTURE;
const MMAP = V4L2_MEMORY_MMAP;
/** vivid's capture queue: max_num_buffers 64 (MAX_VID_CAP_BUFFERS). */
const MAX = 64;
const PLANE_INDEX_SHIFT = 15;

type Op =
  | { kind: "create"; count: number }
  | { kind: "remove"; index: number; count: number }
  | { kind: "queue"; index: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant("create" as const), count: fc.integer({ min: 0, max: 12 }) }),
  fc.record({
    kind: fc.constant("remove" as const),
    index: fc.integer({ min: 0, max: 70 }),
    count: fc.integer({ min: 0, max: 10 }),
  }),
  fc.record({ kind: fc.constant("queue" as const), index: fc.integer({ min: 0, max: 40 }) }),
);

/** The reference: first index of `n` free slots in a row (bitmap_find_next_zero_area), or -1. */
function firstFit(used: boolean[], n: number): number {
  let run = 0;
  for (let i = 0; i < MAX; i++) {
    run = used[i] ? 0 : run + 1;
    if (run === n) return i - n + 1;
  }
  return -1;
}

test("REMOVE_BUFS/CREATE_BUFS: Linux 6.12's errnos and first-fit indices over random sequences; cookies follow indices", () => {
  fc.assert(
    fc.property(fc.array(op, { minLength: 1, maxLength: 25 }), (ops) => {
      const r = rig("x86-64", { allocator: "dma-contig" });
      const small = { width: 320, height: 180, pixelformat: r.fmt.pixelformat };
      const used: boolean[] = new Array(MAX).fill(false);
      const queued = new Set<number>();
      const num = (): number => used.filter(Boolean).length;
      for (const o of ops) {
        if (o.kind === "create") {
          if (o.count === 0) {
            const c = vidiocCreateBufs(r.app, r.cap, {
              count: 0,
              memory: MMAP,
              type: CAP,
              fmt: small,
            });
            assert.equal(c.index, num(), "count 0 reports vb2_get_num_buffers");
            continue;
          }
          if (num() === MAX) {
            assert.equal(
              errnoOf(() =>
                vidiocCreateBufs(r.app, r.cap, {
                  count: o.count,
                  memory: MMAP,
                  type: CAP,
                  fmt: small,
                }),
              ),
              "ENOBUFS",
            );
            continue;
          }
          let n = Math.min(o.count, MAX - num());
          let first = firstFit(used, n);
          while (first < 0) first = firstFit(used, --n);
          const c = vidiocCreateBufs(r.app, r.cap, {
            count: o.count,
            memory: MMAP,
            type: CAP,
            fmt: small,
          });
          assert.deepEqual([c.index, c.count], [first, n]);
          for (let i = first; i < first + n; i++) used[i] = true;
        } else if (o.kind === "remove") {
          let want = "ok";
          if (o.count === 0) want = "ok";
          else if (o.count > num() || o.index > MAX - o.count) want = "EINVAL";
          else {
            for (let i = o.index; i < o.index + o.count; i++) {
              if (!used[i]) {
                want = "EINVAL";
                break;
              }
              if (queued.has(i)) {
                want = "EBUSY";
                break;
              }
            }
          }
          const got = errnoOf(() =>
            vidiocRemoveBufs(r.app, r.cap, { index: o.index, count: o.count, type: CAP }),
          );
          assert.equal(got, want, `REMOVE_BUFS ${o.index}+${o.count}`);
          if (got === "ok") for (let i = o.index; i < o.index + o.count; i++) used[i] = false;
        } else {
          const want = used[o.index] && !queued.has(o.index) ? "ok" : "EINVAL";
          assert.equal(
            errnoOf(() => vidiocQbuf(r.app, r.cap, { index: o.index, type: CAP, memory: MMAP })),
            want,
          );
          if (want === "ok") queued.add(o.index);
        }
        // When the last buffer goes, the queue forgets its memory type and owner.
        if (num() === 0) queued.clear();
      }
      for (let i = 0; i < MAX; i++) {
        if (!used[i]) {
          assert.equal(
            errnoOf(() => vidiocQuerybuf(r.app, r.cap, CAP, MMAP, i)),
            "EINVAL",
          );
          continue;
        }
        const b = vidiocQuerybuf(r.app, r.cap, CAP, MMAP, i);
        assert.deepEqual([b.index, b.offset], [i, i << PLANE_INDEX_SHIFT]);
        r.app.munmap(r.app.mmap(4096, PROT_READ, MAP_SHARED, r.cap, b.offset));
      }
    }),
    { numRuns: 60, seed: 12 },
  );
});
