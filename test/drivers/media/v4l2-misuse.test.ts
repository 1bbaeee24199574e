/**
 * The errno of every V4L2/vb2 misuse the model implements, queue ownership, poll,
 * STREAMOFF and orphaned buffers, and the output device.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { vividTestPattern } from "../../../src/drivers/media/test-drivers/vivid/vivid.js";
import {
  MAP_PRIVATE,
  MAP_SHARED,
  O_NONBLOCK,
  O_RDWR,
  POLLERR,
  POLLIN,
  PROT_READ,
  PROT_WRITE,
} from "../../../src/include/uapi/fcntl.js";
import {
  SIZEOF_V4L2_BUFFER,
  V4L2_BUF_FLAG_MAPPED,
  V4L2_BUF_FLAG_NO_CACHE_CLEAN,
  V4L2_BUF_FLAG_PREPARED,
  V4L2_BUF_FLAG_QUEUED,
  V4L2_BUF_TYPE_VIDEO_CAPTURE,
  V4L2_BUF_TYPE_VIDEO_OUTPUT,
  V4L2_BUFFER,
  V4L2_MEMORY_DMABUF,
  V4L2_MEMORY_FLAG_NON_COHERENT,
  V4L2_MEMORY_MMAP,
  V4L2_MEMORY_USERPTR,
  V4L2_PIX_FMT_YUYV,
  VIDIOC_PREPARE_BUF,
  VIDIOC_QUERYBUF,
} from "../../../src/include/uapi/videodev2.js";
import { crc32 } from "../../../src/lib/crc32.js";
import { withUserStruct } from "../../../src/uapi/lib.js";
import {
  vidiocDqbuf,
  vidiocExpbuf,
  vidiocQbuf,
  vidiocQuerybuf,
  vidiocReqbufs,
  vidiocSFmt,
  vidiocSParm,
  vidiocStreamoff,
  vidiocStreamon,
} from "../../../src/uapi/v4l2.js";
import { errnoOf, rig } from "./helpers.js";

const CAP = V4L2_BUF_TYPE_VIDEO_CAPTURE;
const OUT = V4L2_BUF_TYPE_VIDEO_OUTPUT;
const MMAP = V4L2_MEMORY_MMAP;

describe("V4L2 misuse errnos", () => {
  test("REQBUFS: bad memory or type EINVAL, EBUSY while streaming, EBUSY for another file handle", () => {
    const r = rig("arm64");
    assert.equal(
      errnoOf(() => vidiocReqbufs(r.app, r.cap, { count: 2, type: CAP, memory: 7 })),
      "EINVAL",
    );
    assert.equal(
      errnoOf(() => vidiocReqbufs(r.app, r.cap, { count: 2, type: OUT, memory: MMAP })),
      "EINVAL",
    );
    vidiocReqbufs(r.app, r.cap, { count: 2, type: CAP, memory: MMAP });
    const other = r.app.open("/dev/video0", O_RDWR);
    assert.equal(
      errnoOf(() => vidiocReqbufs(r.app, other, { count: 2, type: CAP, memory: MMAP })),
      "EBUSY",
    );
    assert.equal(
      errnoOf(() => vidiocQbuf(r.app, other, { index: 0, type: CAP, memory: MMAP })),
      "EBUSY",
    );
    assert.equal(vidiocQuerybuf(r.app, other, CAP, MMAP, 0).index, 0, "anyone may QUERYBUF");
    vidiocQbuf(r.app, r.cap, { index: 0, type: CAP, memory: MMAP });
    vidiocStreamon(r.app, r.cap, CAP);
    assert.equal(
      errnoOf(() => vidiocReqbufs(r.app, r.cap, { count: 0, type: CAP, memory: MMAP })),
      "EBUSY",
    );
    vidiocStreamoff(r.app, r.cap, CAP);
    assert.equal(vidiocReqbufs(r.app, r.cap, { count: 0, type: CAP, memory: MMAP }).count, 0);
    // Freed: the other handle may take the queue now (vivid's min_reqbufs_allocation is 2).
    assert.equal(vidiocReqbufs(r.app, other, { count: 1, type: CAP, memory: MMAP }).count, 2);
  });

  test("QBUF: twice EINVAL, bad index EINVAL, wrong memory EINVAL, wrong type EINVAL", () => {
    const r = rig("arm64");
    vidiocReqbufs(r.app, r.cap, { count: 2, type: CAP, memory: MMAP });
    vidiocQbuf(r.app, r.cap, { index: 0, type: CAP, memory: MMAP });
    assert.equal(
      errnoOf(() => vidiocQbuf(r.app, r.cap, { index: 0, type: CAP, memory: MMAP })),
      "EINVAL",
    );
    assert.equal(
      errnoOf(() => vidiocQbuf(r.app, r.cap, { index: 2, type: CAP, memory: MMAP })),
      "EINVAL",
    );
    assert.equal(
      errnoOf(() => vidiocQbuf(r.app, r.cap, { index: 1, type: CAP, memory: V4L2_MEMORY_USERPTR })),
      "EINVAL",
    );
    assert.equal(
      errnoOf(() => vidiocQbuf(r.app, r.cap, { index: 1, type: OUT, memory: MMAP })),
      "EINVAL",
    );
    assert.equal(
      errnoOf(() => vidiocQuerybuf(r.app, r.cap, CAP, MMAP, 9)),
      "EINVAL",
    );
    assert.ok(vidiocQuerybuf(r.app, r.cap, CAP, MMAP, 0).flags & V4L2_BUF_FLAG_QUEUED);
  });

  test("DQBUF: EINVAL when not streaming, EAGAIN when non-blocking and nothing is done", () => {
    const r = rig("arm64", {}, O_RDWR | O_NONBLOCK);
    vidiocReqbufs(r.app, r.cap, { count: 2, type: CAP, memory: MMAP });
    assert.equal(
      errnoOf(() => vidiocDqbuf(r.app, r.cap, CAP, MMAP)),
      "EINVAL",
    );
    vidiocQbuf(r.app, r.cap, { index: 0, type: CAP, memory: MMAP });
    vidiocStreamon(r.app, r.cap, CAP);
    assert.equal(
      errnoOf(() => vidiocDqbuf(r.app, r.cap, CAP, MMAP)),
      "EAGAIN",
    );
    // poll waits on the virtual clock for the frame, then DQBUF succeeds without blocking.
    assert.equal(r.app.poll([{ fd: r.cap, events: POLLIN }], -1)[0]! & POLLIN, POLLIN);
    assert.equal(vidiocDqbuf(r.app, r.cap, CAP, MMAP).index, 0);
    assert.equal(
      errnoOf(() => vidiocDqbuf(r.app, r.cap, OUT, MMAP)),
      "EINVAL",
    );
  });

  test("STREAMON: EINVAL without buffers or with the wrong type; min_queued_buffers delays start_streaming", () => {
    const r = rig("arm64", { minQueuedBuffers: 2 });
    assert.equal(
      errnoOf(() => vidiocStreamon(r.app, r.cap, CAP)),
      "EINVAL",
    );
    vidiocReqbufs(r.app, r.cap, { count: 1, type: CAP, memory: MMAP }).count;
    const got = vidiocQuerybuf(r.app, r.cap, CAP, MMAP, 2).index;
    assert.equal(got, 2, "REQBUFS(1) gives min_queued_buffers + 1 buffers");
    assert.equal(
      errnoOf(() => vidiocStreamon(r.app, r.cap, OUT)),
      "EINVAL",
    );
    vidiocQbuf(r.app, r.cap, { index: 0, type: CAP, memory: MMAP });
    vidiocStreamon(r.app, r.cap, CAP);
    r.kernel.machine.clock.advance(200e6);
    assert.equal(r.vivid.capture.framesCaptured, 0, "one queued buffer is not enough to start");
    vidiocQbuf(r.app, r.cap, { index: 1, type: CAP, memory: MMAP });
    assert.equal(vidiocDqbuf(r.app, r.cap, CAP, MMAP).sequence, 0);
    vidiocStreamoff(r.app, r.cap, CAP);
  });

  test("EXPBUF: EINVAL for USERPTR/DMABUF queues, bad flags, bad index", () => {
    const r = rig("arm64");
    vidiocReqbufs(r.app, r.cap, { count: 1, type: CAP, memory: V4L2_MEMORY_USERPTR });
    assert.equal(
      errnoOf(() => vidiocExpbuf(r.app, r.cap, { type: CAP, index: 0 })),
      "EINVAL",
    );
    vidiocReqbufs(r.app, r.cap, { count: 1, type: CAP, memory: MMAP });
    assert.equal(
      errnoOf(() => vidiocExpbuf(r.app, r.cap, { type: CAP, index: 0, flags: O_NONBLOCK })),
      "EINVAL",
    );
    assert.equal(
      errnoOf(() => vidiocExpbuf(r.app, r.cap, { type: CAP, index: 2 })),
      "EINVAL",
    );
    assert.equal(
      errnoOf(() => vidiocExpbuf(r.app, r.cap, { type: CAP, index: 0, plane: 1 })),
      "EINVAL",
    );
    assert.ok(vidiocExpbuf(r.app, r.cap, { type: CAP, index: 0, flags: O_RDWR }) >= 0);
  });

  test("mmap: EINVAL without MAP_SHARED, without PROT_READ on capture, for an unknown offset or too long a length", () => {
    const r = rig("arm64");
    vidiocReqbufs(r.app, r.cap, { count: 2, type: CAP, memory: MMAP });
    const b = vidiocQuerybuf(r.app, r.cap, CAP, MMAP, 1);
    assert.equal(
      errnoOf(() => r.app.mmap(b.length, PROT_READ, MAP_PRIVATE, r.cap, b.offset)),
      "EINVAL",
    );
    assert.equal(
      errnoOf(() => r.app.mmap(b.length, PROT_WRITE, MAP_SHARED, r.cap, b.offset)),
      "EINVAL",
    );
    assert.equal(
      errnoOf(() => r.app.mmap(b.length, PROT_READ, MAP_SHARED, r.cap, b.offset + 4096)),
      "EINVAL",
    );
    assert.equal(
      errnoOf(() => r.app.mmap(b.length + 8192, PROT_READ, MAP_SHARED, r.cap, b.offset)),
      "EINVAL",
    );
    const m = r.app.mmap(b.length, PROT_READ, MAP_SHARED, r.cap, b.offset);
    assert.ok(vidiocQuerybuf(r.app, r.cap, CAP, MMAP, 1).flags & V4L2_BUF_FLAG_MAPPED);
    // REQBUFS(0) orphans the mapped buffer: the mapping stays readable, memory goes at munmap.
    vidiocReqbufs(r.app, r.cap, { count: 0, type: CAP, memory: MMAP });
    assert.equal(m.read(0, 4).length, 4);
    r.app.munmap(m);
  });

  test("poll: POLLERR before streaming and before the first QBUF (waiting_for_buffers)", () => {
    const r = rig("arm64");
    vidiocReqbufs(r.app, r.cap, { count: 1, type: CAP, memory: MMAP });
    assert.equal(r.app.poll([{ fd: r.cap, events: POLLIN }], 0)[0], POLLERR);
    vidiocStreamon(r.app, r.cap, CAP);
    assert.equal(r.app.poll([{ fd: r.cap, events: POLLIN }], 0)[0], POLLERR);
    vidiocQbuf(r.app, r.cap, { index: 0, type: CAP, memory: MMAP });
    assert.equal(r.app.poll([{ fd: r.cap, events: POLLIN }], 0)[0], 0);
    vidiocStreamoff(r.app, r.cap, CAP);
  });

  test("poll(POLLIN) on a capture queue without buffers starts read() (vb2_core_poll → __vb2_init_fileio): nothing to read yet, and the streaming ioctls are EBUSY", () => {
    const r = rig("arm64");
    assert.equal(r.app.poll([{ fd: r.cap, events: POLLIN }], 0)[0], 0);
    assert.equal(r.vivid.capture.queue.numBuffers, 2, "min_reqbufs_allocation buffers, all queued");
    assert.throws(
      () => vidiocReqbufs(r.app, r.cap, { count: 1, type: CAP, memory: MMAP }),
      /EBUSY/,
    );
    const frame = r.app.read(r.cap, 1 << 30);
    assert.equal(frame.length, r.vivid.capture.fmt.sizeimage, "a whole frame, no more");
  });

  test("STREAMOFF returns every buffer to userspace (no QUEUED flag), even without STREAMON", () => {
    const r = rig("arm64");
    vidiocReqbufs(r.app, r.cap, { count: 2, type: CAP, memory: MMAP });
    vidiocQbuf(r.app, r.cap, { index: 0, type: CAP, memory: MMAP });
    vidiocQbuf(r.app, r.cap, { index: 1, type: CAP, memory: MMAP });
    vidiocStreamoff(r.app, r.cap, CAP);
    for (const i of [0, 1])
      assert.equal(vidiocQuerybuf(r.app, r.cap, CAP, MMAP, i).flags & V4L2_BUF_FLAG_QUEUED, 0);
    vidiocQbuf(r.app, r.cap, { index: 0, type: CAP, memory: MMAP });
    vidiocStreamon(r.app, r.cap, CAP);
    r.kernel.machine.clock.advance(10e6);
    vidiocStreamoff(r.app, r.cap, CAP);
    assert.equal(r.vivid.capture.queue.ownedByDrvCount, 0);
    assert.equal(r.vivid.capture.active.list.length, 0);
  });

  test("PREPARE_BUF: the buffer is prepared (synced) but not queued; preparing twice is EINVAL", () => {
    const r = rig("arm64");
    vidiocReqbufs(r.app, r.cap, { count: 1, type: CAP, memory: MMAP });
    const prep = (): void =>
      withUserStruct(r.app, SIZEOF_V4L2_BUFFER, (s, addr) => {
        s.setU32(V4L2_BUFFER.index, 0)
          .setU32(V4L2_BUFFER.type, CAP)
          .setU32(V4L2_BUFFER.memory, MMAP);
        r.app.ioctl(r.cap, VIDIOC_PREPARE_BUF, addr);
      });
    prep();
    const b = vidiocQuerybuf(r.app, r.cap, CAP, MMAP, 0);
    assert.ok(b.flags & V4L2_BUF_FLAG_PREPARED);
    assert.equal(b.flags & V4L2_BUF_FLAG_QUEUED, 0);
    assert.equal(errnoOf(prep), "EINVAL");
    void VIDIOC_QUERYBUF;
  });

  test("closing the owner's fd releases the queue and its memory", () => {
    const r = rig("arm64", { allocator: "dma-sg" });
    const free0 = r.kernel.machine.pages.freePages;
    vidiocReqbufs(r.app, r.cap, { count: 3, type: CAP, memory: MMAP });
    assert.ok(r.kernel.machine.pages.freePages < free0);
    vidiocQbuf(r.app, r.cap, { index: 0, type: CAP, memory: MMAP });
    vidiocStreamon(r.app, r.cap, CAP);
    r.app.close(r.cap);
    assert.equal(r.kernel.machine.pages.freePages, free0);
    assert.equal(r.vivid.capture.queue.numBuffers, 0);
  });
});

describe("vivid output", () => {
  function outputRig(profile: string, allowCacheHints = false) {
    const r = rig(profile, { allowCacheHints });
    const out = r.app.open("/dev/video1", O_RDWR);
    const fmt = vidiocSFmt(r.app, out, OUT, {
      width: 320,
      height: 180,
      pixelformat: V4L2_PIX_FMT_YUYV,
    });
    return { ...r, out, ofmt: fmt };
  }

  test("the device reads what the CPU wrote into MMAP output buffers; S_PARM on the output is ENOTTY as in vivid", () => {
    const r = outputRig("arm64");
    assert.equal(
      errnoOf(() => vidiocSParm(r.app, r.out, OUT, { numerator: 1, denominator: 60 })),
      "ENOTTY",
    );
    const rb = vidiocReqbufs(r.app, r.out, { count: 2, type: OUT, memory: MMAP });
    const maps = [0, 1].map((i) => {
      const b = vidiocQuerybuf(r.app, r.out, OUT, MMAP, i);
      return r.app.mmap(b.length, PROT_READ | PROT_WRITE, MAP_SHARED, r.out, b.offset);
    });
    assert.equal(rb.count, 2);
    const sent: number[] = [];
    let streaming = false;
    for (let n = 0; n < 4; n++) {
      const index = n < 2 ? n : vidiocDqbuf(r.app, r.out, OUT, MMAP).index;
      const frame = vividTestPattern(r.ofmt, 100 + n);
      maps[index]!.write(0, frame);
      vidiocQbuf(r.app, r.out, { index, type: OUT, memory: MMAP, bytesused: frame.length });
      sent.push(crc32(frame));
      if (!streaming) {
        vidiocStreamon(r.app, r.out, OUT);
        streaming = true;
      }
      const got = r.vivid.output.waitForFrame(n);
      assert.equal(crc32(got), sent[n], `frame ${n}`);
    }
    assert.deepEqual(
      r.vivid.output.frames.map((f) => f.crc32),
      sent,
    );
    vidiocStreamoff(r.app, r.out, OUT);
    assert.equal(
      r.kernel.machine.violations.count,
      0,
      r.kernel.machine.violations.list.map((v) => v.message).join("\n"),
    );
  });

  test("arm64 non-coherent: a lying NO_CACHE_CLEAN lets the device read stale memory, reported with the flag", () => {
    const r = outputRig("arm64", true);
    vidiocReqbufs(r.app, r.out, {
      count: 1,
      type: OUT,
      memory: MMAP,
      flags: V4L2_MEMORY_FLAG_NON_COHERENT,
    });
    const b = vidiocQuerybuf(r.app, r.out, OUT, MMAP, 0);
    const map = r.app.mmap(b.length, PROT_READ | PROT_WRITE, MAP_SHARED, r.out, b.offset);
    const frame = vividTestPattern(r.ofmt, 7);
    map.write(0, frame);
    vidiocQbuf(r.app, r.out, {
      index: 0,
      type: OUT,
      memory: MMAP,
      bytesused: frame.length,
      flags: V4L2_BUF_FLAG_NO_CACHE_CLEAN,
    });
    vidiocStreamon(r.app, r.out, OUT);
    const got = r.vivid.output.waitForFrame(0);
    assert.notEqual(crc32(got), crc32(frame));
    const v = r.kernel.machine.violations.ofKind("stale-device-read")[0];
    assert.ok(v !== undefined);
    assert.match(v.hint, /V4L2_BUF_FLAG_NO_CACHE_CLEAN/);
    vidiocStreamoff(r.app, r.out, OUT);
    void V4L2_MEMORY_DMABUF;
  });
});
