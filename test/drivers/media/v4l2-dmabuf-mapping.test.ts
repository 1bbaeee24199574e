/**
 * How long videobuf2 keeps an imported dma-buf mapped, as Linux 6.12 does
 * (drivers/media/common/videobuf2/videobuf2-core.c): `__prepare_dmabuf` maps a plane's
 * dma-buf at the QBUF that attaches it, `__vb2_dqbuf` leaves it mapped, and only
 * `__vb2_plane_dmabuf_put` unmaps it (another dma-buf queued on the buffer, REQBUFS,
 * the queue's release at close). With vb2 doing no cache maintenance for DMABUF, an
 * importer that reads a frame without DMA_BUF_IOCTL_SYNC on a non-coherent machine reads
 * stale lines, and the checker names the missing sync.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { DmaBuf } from "../../../src/dma-buf/dma-buf.js";
import { vividTestPattern } from "../../../src/drivers/media/test-drivers/vivid/vivid.js";
import {
  DMA_BUF_SYNC_END,
  DMA_BUF_SYNC_READ,
  DMA_BUF_SYNC_START,
} from "../../../src/include/uapi/dma-buf.js";
import { MAP_SHARED, O_RDWR, PROT_READ } from "../../../src/include/uapi/fcntl.js";
import {
  V4L2_BUF_TYPE_VIDEO_CAPTURE,
  V4L2_MEMORY_DMABUF,
} from "../../../src/include/uapi/videodev2.js";
import { dmaBufSync, dmaHeapAlloc } from "../../../src/uapi/lib.js";
import type { Mapping } from "../../../src/uapi/uapi.js";
import {
  vidiocDqbuf,
  vidiocQbuf,
  vidiocReqbufs,
  vidiocStreamoff,
  vidiocStreamon,
} from "../../../src/uapi/v4l2.js";
import { firstDiff, type Rig, rig } from "./helpers.js";

const CAP = V4L2_BUF_TYPE_VIDEO_CAPTURE;
const DMABUF = V4L2_MEMORY_DMABUF;

/** Counts dma_buf_map_attachment / dma_buf_unmap_attachment calls on one dma-buf. */
interface Counted {
  readonly fd: number;
  readonly dbuf: DmaBuf;
  readonly map: Mapping;
  maps: number;
  unmaps: number;
}

/** A kernel with vivid (dma-sg) and `n` system-heap dma-bufs sized for one frame each. */
function setup(profile: string, n: number): { r: Rig; bufs: Counted[] } {
  const r = rig(profile, { allocator: "dma-sg" });
  const heap = r.app.open("/dev/dma_heap/system", O_RDWR);
  const size = Math.ceil(r.fmt.sizeimage / 4096) * 4096;
  const bufs: Counted[] = [];
  for (let i = 0; i < n; i++) {
    const fd = dmaHeapAlloc(r.app, heap, size);
    const dbuf = r.kernel.dmaBuf.buffers.at(-1)!;
    const c: Counted = {
      fd,
      dbuf,
      map: r.app.mmap(size, PROT_READ, MAP_SHARED, fd, 0),
      maps: 0,
      unmaps: 0,
    };
    const map = dbuf.mapAttachment.bind(dbuf);
    const unmap = dbuf.unmapAttachment.bind(dbuf);
    dbuf.mapAttachment = (a, dir) => {
      c.maps++;
      return map(a, dir);
    };
    dbuf.unmapAttachment = (a, sgt, dir) => {
      c.unmaps++;
      unmap(a, sgt, dir);
    };
    bufs.push(c);
  }
  return { r, bufs };
}

/** The frame in `c`, read inside a DMA_BUF_IOCTL_SYNC(START) … SYNC(END) bracket. */
function readSynced(r: Rig, c: Counted): Uint8Array {
  dmaBufSync(r.app, c.fd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ);
  const got = c.map.read(0, r.fmt.sizeimage);
  dmaBufSync(r.app, c.fd, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ);
  return got;
}

const vividAttached = (c: Counted): number =>
  c.dbuf.attachments.filter((a) => a.dev.name === "vivid-cap").length;

describe("videobuf2 DMABUF: the attachment stays mapped across DQBUF (Linux 6.12 __vb2_dqbuf)", () => {
  test("the same dma-buf queued again on its buffer is not mapped again: one map over six frames, no unmap", () => {
    const { r, bufs } = setup("arm64", 2);
    vidiocReqbufs(r.app, r.cap, { count: 2, type: CAP, memory: DMABUF });
    for (let i = 0; i < 2; i++)
      vidiocQbuf(r.app, r.cap, { index: i, type: CAP, memory: DMABUF, fd: bufs[i]!.fd });
    vidiocStreamon(r.app, r.cap, CAP);
    for (let n = 0; n < 6; n++) {
      const b = vidiocDqbuf(r.app, r.cap, CAP, DMABUF);
      const c = bufs[b.index]!;
      assert.equal(c.unmaps, 0, "DQBUF does not unmap");
      assert.equal(vividAttached(c), 1, "still attached after DQBUF");
      assert.equal(
        firstDiff(readSynced(r, c), vividTestPattern(r.fmt, n)),
        -1,
        `frame ${n} read inside the SYNC bracket`,
      );
      vidiocQbuf(r.app, r.cap, { index: b.index, type: CAP, memory: DMABUF, fd: c.fd });
    }
    assert.deepEqual(
      bufs.map((c) => [c.maps, c.unmaps]),
      [
        [1, 0],
        [1, 0],
      ],
    );
    assert.equal(r.kernel.machine.violations.count, 0);
  });

  test("another dma-buf queued on the buffer unmaps and detaches the one it held", () => {
    const { r, bufs } = setup("arm64", 3);
    const [a, b, c] = bufs as [Counted, Counted, Counted];
    vidiocReqbufs(r.app, r.cap, { count: 2, type: CAP, memory: DMABUF });
    vidiocQbuf(r.app, r.cap, { index: 0, type: CAP, memory: DMABUF, fd: a.fd });
    vidiocQbuf(r.app, r.cap, { index: 1, type: CAP, memory: DMABUF, fd: b.fd });
    vidiocStreamon(r.app, r.cap, CAP);
    const d = vidiocDqbuf(r.app, r.cap, CAP, DMABUF);
    assert.equal(d.index, 0);
    assert.deepEqual([a.maps, a.unmaps, vividAttached(a)], [1, 0, 1]);
    vidiocQbuf(r.app, r.cap, { index: 0, type: CAP, memory: DMABUF, fd: c.fd });
    assert.deepEqual([a.maps, a.unmaps, vividAttached(a)], [1, 1, 0], "a let go");
    assert.deepEqual([c.maps, c.unmaps, vividAttached(c)], [1, 0, 1], "c mapped");
    const e = vidiocDqbuf(r.app, r.cap, CAP, DMABUF);
    assert.equal(e.index, 1);
    const f = vidiocDqbuf(r.app, r.cap, CAP, DMABUF);
    assert.equal(f.index, 0);
    assert.equal(f.fd, c.fd);
    assert.equal(firstDiff(readSynced(r, c), vividTestPattern(r.fmt, f.sequence)), -1);
    assert.equal(r.kernel.machine.violations.count, 0);
  });

  test("REQBUFS(0) unmaps and detaches every dma-buf the queue held", () => {
    const { r, bufs } = setup("arm64", 2);
    vidiocReqbufs(r.app, r.cap, { count: 2, type: CAP, memory: DMABUF });
    for (let i = 0; i < 2; i++)
      vidiocQbuf(r.app, r.cap, { index: i, type: CAP, memory: DMABUF, fd: bufs[i]!.fd });
    vidiocStreamon(r.app, r.cap, CAP);
    vidiocDqbuf(r.app, r.cap, CAP, DMABUF);
    vidiocStreamoff(r.app, r.cap, CAP);
    assert.deepEqual(
      bufs.map((c) => [c.maps, c.unmaps, vividAttached(c)]),
      [
        [1, 0, 1],
        [1, 0, 1],
      ],
      "STREAMOFF takes the buffers back but keeps their dma-bufs",
    );
    vidiocReqbufs(r.app, r.cap, { count: 0, type: CAP, memory: DMABUF });
    assert.deepEqual(
      bufs.map((c) => [c.maps, c.unmaps, vividAttached(c)]),
      [
        [1, 1, 0],
        [1, 1, 0],
      ],
    );
  });

  test("closing the video node (the queue's release) unmaps and detaches", () => {
    const { r, bufs } = setup("arm64", 2);
    vidiocReqbufs(r.app, r.cap, { count: 2, type: CAP, memory: DMABUF });
    for (let i = 0; i < 2; i++)
      vidiocQbuf(r.app, r.cap, { index: i, type: CAP, memory: DMABUF, fd: bufs[i]!.fd });
    vidiocStreamon(r.app, r.cap, CAP);
    vidiocDqbuf(r.app, r.cap, CAP, DMABUF);
    r.app.close(r.cap);
    assert.deepEqual(
      bufs.map((c) => [c.maps, c.unmaps, vividAttached(c)]),
      [
        [1, 1, 0],
        [1, 1, 0],
      ],
    );
  });

  test("arm64: an importer that reads a frame without DMA_BUF_IOCTL_SYNC gets the previous frame's cached lines, and the checker names the missing sync", () => {
    const { r, bufs } = setup("arm64", 2);
    vidiocReqbufs(r.app, r.cap, { count: 2, type: CAP, memory: DMABUF });
    for (let i = 0; i < 2; i++)
      vidiocQbuf(r.app, r.cap, { index: i, type: CAP, memory: DMABUF, fd: bufs[i]!.fd });
    vidiocStreamon(r.app, r.cap, CAP);
    // Frames 0 and 1, read correctly: the CPU now caches both buffers' lines.
    for (let n = 0; n < 2; n++) {
      const b = vidiocDqbuf(r.app, r.cap, CAP, DMABUF);
      const c = bufs[b.index]!;
      assert.equal(firstDiff(readSynced(r, c), vividTestPattern(r.fmt, n)), -1);
      vidiocQbuf(r.app, r.cap, { index: b.index, type: CAP, memory: DMABUF, fd: c.fd });
    }
    assert.equal(r.kernel.machine.violations.count, 0);
    // Frame 2 lands in buffer 0; read it with no bracket. Nothing invalidated the lines
    // frame 0 left in the cache: vb2 no longer unmaps at DQBUF.
    const b = vidiocDqbuf(r.app, r.cap, CAP, DMABUF);
    assert.equal(b.sequence, 2);
    const got = bufs[b.index]!.map.read(0, r.fmt.sizeimage);
    assert.equal(firstDiff(got, vividTestPattern(r.fmt, 0)), -1, "the bytes are frame 0's");
    assert.notEqual(firstDiff(got, vividTestPattern(r.fmt, 2)), -1, "not frame 2's");
    const kinds = new Set(r.kernel.machine.violations.list.map((v) => v.kind));
    assert.ok(kinds.has("stale-cpu-read"), [...kinds].join(", "));
    assert.ok(kinds.has("cpu-access-device-owned"), [...kinds].join(", "));
    for (const v of r.kernel.machine.violations.list)
      assert.match(v.hint, /DMA_BUF_IOCTL_SYNC/, `${v.kind}: ${v.hint}`);
  });

  test("x86-64 (coherent): the same unbracketed read gets the right bytes", () => {
    const { r, bufs } = setup("x86-64", 2);
    vidiocReqbufs(r.app, r.cap, { count: 2, type: CAP, memory: DMABUF });
    for (let i = 0; i < 2; i++)
      vidiocQbuf(r.app, r.cap, { index: i, type: CAP, memory: DMABUF, fd: bufs[i]!.fd });
    vidiocStreamon(r.app, r.cap, CAP);
    for (let n = 0; n < 4; n++) {
      const b = vidiocDqbuf(r.app, r.cap, CAP, DMABUF);
      const got = bufs[b.index]!.map.read(0, r.fmt.sizeimage);
      assert.equal(firstDiff(got, vividTestPattern(r.fmt, n)), -1, `frame ${n}`);
      vidiocQbuf(r.app, r.cap, { index: b.index, type: CAP, memory: DMABUF, fd: b.fd });
    }
    assert.equal(r.kernel.machine.violations.ofKind("stale-cpu-read").length, 0);
  });
});
