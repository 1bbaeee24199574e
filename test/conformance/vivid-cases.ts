/**
 * V4L2 conformance cases on vivid's video capture node (/dev/video0) and output node
 * (/dev/video1): what the real vivid of drivers/media/test-drivers/vivid/ on
 * videobuf2 (drivers/media/common/videobuf2/videobuf2-{core,v4l2,dma-contig}.c) and
 * the model's vivid must agree on — QUERYCAP, the webcam formats, REQBUFS and its
 * capability bits, the errnos of QBUF/DQBUF/EXPBUF/REQBUFS misuse, a short MMAP capture,
 * STREAMOFF and REQBUFS(0), EXPBUF and DMABUF import.
 *
 * The VM of scripts/kernel-conformance.mjs loads vivid with `n_devs=1 allocators=1`
 * (dma-contig, no USERPTR) and the default `cache_hints=0`; the simulator backend probes
 * the model's vivid the same way (./sim-backend.ts). Image content is never asserted (the
 * real test pattern generator draws other pictures than the model's): only sizes,
 * flags, errnos and sequence numbers.
 */

import assert from "node:assert/strict";
import {
  DMA_BUF_IOCTL_SYNC,
  DMA_BUF_SYNC_END,
  DMA_BUF_SYNC_READ,
  DMA_BUF_SYNC_START,
} from "../../src/include/uapi/dma-buf.js";
import {
  MAP_SHARED,
  MFD_ALLOW_SEALING,
  O_CLOEXEC,
  O_NONBLOCK,
  O_RDWR,
  POLLERR,
  POLLIN,
  PROT_READ,
  SEEK_END,
} from "../../src/include/uapi/fcntl.js";
import { _IOW, _IOWR } from "../../src/include/uapi/ioctl.js";
import {
  SIZEOF_V4L2_STREAMPARM,
  V4L2_BUF_CAP_SUPPORTS_DMABUF,
  V4L2_BUF_CAP_SUPPORTS_MAX_NUM_BUFFERS,
  V4L2_BUF_CAP_SUPPORTS_MMAP,
  V4L2_BUF_CAP_SUPPORTS_MMAP_CACHE_HINTS,
  V4L2_BUF_CAP_SUPPORTS_ORPHANED_BUFS,
  V4L2_BUF_CAP_SUPPORTS_REMOVE_BUFS,
  V4L2_BUF_CAP_SUPPORTS_USERPTR,
  V4L2_BUF_FLAG_DONE,
  V4L2_BUF_FLAG_ERROR,
  V4L2_BUF_FLAG_MAPPED,
  V4L2_BUF_FLAG_QUEUED,
  V4L2_BUF_FLAG_TIMESTAMP_MASK,
  V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC,
  V4L2_BUF_TYPE_VIDEO_CAPTURE,
  V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE,
  V4L2_BUF_TYPE_VIDEO_OUTPUT,
  V4L2_CAP_DEVICE_CAPS,
  V4L2_CAP_STREAMING,
  V4L2_CAP_VIDEO_CAPTURE,
  V4L2_CAP_VIDEO_CAPTURE_MPLANE,
  V4L2_CAP_VIDEO_OUTPUT,
  V4L2_FIELD_NONE,
  V4L2_MEMORY_DMABUF,
  V4L2_MEMORY_MMAP,
  V4L2_MEMORY_USERPTR,
  V4L2_PIX_FMT_YUYV,
  VIDIOC_S_PARM,
  VIDIOC_STREAMON,
} from "../../src/include/uapi/videodev2.js";
import { dmaBufSize, dmaBufSync, dmaHeapAlloc, withUserStruct } from "../../src/uapi/lib.js";
import type { Uapi } from "../../src/uapi/uapi.js";
import {
  type V4l2Buffer,
  type V4l2PixFormat,
  vidiocCreateBufs,
  vidiocDqbuf,
  vidiocExpbuf,
  vidiocGFmt,
  vidiocQbuf,
  vidiocQuerybuf,
  vidiocQuerycap,
  vidiocRemoveBufs,
  vidiocReqbufs,
  vidiocSFmt,
  vidiocStreamoff,
  vidiocStreamon,
  vidiocTryFmt,
} from "../../src/uapi/v4l2.js";
import { expectErrno, type Fds, openV4l2Driver, scoped } from "./case-helpers.js";
// Types only: suite.ts imports this module, so a value import back would be a cycle.
import type { ConformanceCase } from "./suite.js";

/** vivid's video capture node in the VM (n_devs=1) and in the model. */
export const VIVID_CAPTURE = "/dev/video0";
/** vivid's video output node. */
export const VIVID_OUTPUT = "/dev/video1";

const CAP = V4L2_BUF_TYPE_VIDEO_CAPTURE;
const OUT = V4L2_BUF_TYPE_VIDEO_OUTPUT;
const MMAP = V4L2_MEMORY_MMAP;
const DMABUF = V4L2_MEMORY_DMABUF;
const PAGE = 4096;
/** 640x480 YUYV: 1280-byte lines, 614400 bytes = 150 pages (no page rounding to argue about). */
const VGA = { width: 640, height: 480, pixelformat: V4L2_PIX_FMT_YUYV } as const;
const VGA_SIZE = 640 * 480 * 2;
/** Generous: real vivid runs at 30 fps in real time, slowly under QEMU's TCG. */
const FRAME_TIMEOUT_MS = 10_000;

/**
 * Opens `path` and returns the fd when VIDIOC_QUERYCAP's driver is "vivid"; -1 when
 * the node is missing or belongs to another driver.
 */
export function openVivid(u: Uapi, path = VIVID_CAPTURE, flags = O_RDWR): number {
  return openV4l2Driver(u, path, "vivid", flags);
}

function capture(u: Uapi, h: Fds, flags = O_RDWR): number {
  const fd = openVivid(u, VIVID_CAPTURE, flags);
  assert.ok(fd >= 0, `no vivid at ${VIVID_CAPTURE}`);
  return h.add(fd);
}

/** The capture node set to 640x480 YUYV (the state vivid keeps between opens is not trusted). */
function vgaCapture(u: Uapi, h: Fds, flags = O_RDWR): { fd: number; fmt: V4l2PixFormat } {
  const fd = capture(u, h, flags);
  const fmt = vidiocSFmt(u, fd, CAP, VGA);
  assert.equal(fmt.sizeimage, VGA_SIZE, "640x480 YUYV sizeimage");
  return { fd, fmt };
}

/** poll(POLLIN) with a generous timeout, then DQBUF: a frame on both clocks. */
function nextFrame(u: Uapi, fd: number, memory = MMAP): V4l2Buffer {
  const [rev] = u.poll([{ fd, events: POLLIN }], FRAME_TIMEOUT_MS);
  assert.ok((rev ?? 0) & POLLIN, `no frame within ${FRAME_TIMEOUT_MS} ms (revents ${rev})`);
  return vidiocDqbuf(u, fd, CAP, memory);
}

/** The V4L2_BUF_CAP_* bits both the model and Linux 6.12 define for this queue. */
const MODELLED_BUF_CAPS =
  V4L2_BUF_CAP_SUPPORTS_MMAP |
  V4L2_BUF_CAP_SUPPORTS_USERPTR |
  V4L2_BUF_CAP_SUPPORTS_DMABUF |
  V4L2_BUF_CAP_SUPPORTS_ORPHANED_BUFS |
  V4L2_BUF_CAP_SUPPORTS_MMAP_CACHE_HINTS |
  V4L2_BUF_CAP_SUPPORTS_REMOVE_BUFS;

/** The smallest webcam size: 320x180 YUYV, 115200 bytes (29 pages), to keep 64 buffers cheap. */
const SMALL = { width: 320, height: 180, pixelformat: V4L2_PIX_FMT_YUYV } as const;
/** PLANE_INDEX_SHIFT of videobuf2-core.c with 4 KiB pages: PAGE_SHIFT + 3. */
const PLANE_INDEX_SHIFT = 15;

export const vividCases: ConformanceCase[] = [
  {
    suite: "vivid",
    name: "REQBUFS: below min_reqbufs_allocation (2) gives 2; the capture queue stops at max_num_buffers 64 (MAX_VID_CAP_BUFFERS), the output queue at 32 (vivid_create_queue, vb2_core_reqbufs)",
    needs: ["vivid"],
    run: scoped((u, h) => {
      const fd = capture(u, h);
      vidiocSFmt(u, fd, CAP, SMALL);
      assert.equal(vidiocReqbufs(u, fd, { count: 1, type: CAP, memory: MMAP }).count, 2);
      vidiocReqbufs(u, fd, { count: 0, type: CAP, memory: MMAP });
      assert.equal(vidiocReqbufs(u, fd, { count: 100, type: CAP, memory: MMAP }).count, 64);
      vidiocQuerybuf(u, fd, CAP, MMAP, 63);
      expectErrno("EINVAL", () => vidiocQuerybuf(u, fd, CAP, MMAP, 64), "QUERYBUF 64");
      vidiocReqbufs(u, fd, { count: 0, type: CAP, memory: MMAP });
      const out = openVivid(u, VIVID_OUTPUT);
      assert.ok(out >= 0, `no vivid at ${VIVID_OUTPUT}`);
      h.add(out);
      vidiocSFmt(u, out, OUT, SMALL);
      assert.equal(vidiocReqbufs(u, out, { count: 100, type: OUT, memory: MMAP }).count, 32);
      vidiocReqbufs(u, out, { count: 0, type: OUT, memory: MMAP });
    }),
  },
  {
    suite: "vivid",
    name: "CREATE_BUFS reports V4L2_BUF_CAP_SUPPORTS_MAX_NUM_BUFFERS with max_num_buffers (64 capture, 32 output); past it → ENOBUFS (fill_buf_caps, vb2_core_create_bufs)",
    needs: ["vivid"],
    run: scoped((u, h) => {
      const fd = capture(u, h);
      vidiocSFmt(u, fd, CAP, SMALL);
      vidiocReqbufs(u, fd, { count: 0, type: CAP, memory: MMAP });
      const probe = vidiocCreateBufs(u, fd, { count: 0, memory: MMAP, type: CAP, fmt: SMALL });
      assert.ok(probe.capabilities & V4L2_BUF_CAP_SUPPORTS_MAX_NUM_BUFFERS, "cap bit");
      assert.equal(probe.maxNumBuffers, 64);
      const all = vidiocCreateBufs(u, fd, { count: 64, memory: MMAP, type: CAP, fmt: SMALL });
      assert.deepEqual([all.index, all.count], [0, 64]);
      expectErrno(
        "ENOBUFS",
        () => vidiocCreateBufs(u, fd, { count: 1, memory: MMAP, type: CAP, fmt: SMALL }),
        "buffer 65",
      );
      vidiocReqbufs(u, fd, { count: 0, type: CAP, memory: MMAP });
      const out = openVivid(u, VIVID_OUTPUT);
      assert.ok(out >= 0, `no vivid at ${VIVID_OUTPUT}`);
      h.add(out);
      vidiocSFmt(u, out, OUT, SMALL);
      const o = vidiocCreateBufs(u, out, { count: 0, memory: MMAP, type: OUT, fmt: SMALL });
      assert.equal(o.maxNumBuffers, 32);
    }),
  },
  {
    suite: "vivid",
    name: "VIDIOC_REMOVE_BUFS: REQBUFS and CREATE_BUFS report V4L2_BUF_CAP_SUPPORTS_REMOVE_BUFS; another buffer type → EINVAL even with count 0, else count 0 does nothing; more buffers than allocated, a range past max_num_buffers or over an index without a buffer → EINVAL; a queued buffer in the range or another file handle → EBUSY; a removed index is gone for QUERYBUF, QBUF and mmap; reserved[] comes back zeroed (v4l2-ioctl.c v4l_reqbufs, v4l_create_bufs, v4l_remove_bufs with INFO_FL_CLEAR; videobuf2-v4l2.c vb2_ioctl_remove_bufs; videobuf2-core.c vb2_core_remove_bufs)",
    needs: ["vivid"],
    run: scoped((u, h) => {
      const fd = capture(u, h);
      vidiocSFmt(u, fd, CAP, SMALL);
      const r = vidiocReqbufs(u, fd, { count: 4, type: CAP, memory: MMAP });
      assert.equal(r.count, 4);
      assert.ok(r.capabilities & V4L2_BUF_CAP_SUPPORTS_REMOVE_BUFS, "REQBUFS capabilities");
      const c = vidiocCreateBufs(u, fd, { count: 0, memory: MMAP, type: CAP, fmt: SMALL });
      assert.ok(c.capabilities & V4L2_BUF_CAP_SUPPORTS_REMOVE_BUFS, "CREATE_BUFS capabilities");
      const rm = (index: number, count: number, type = CAP, on = fd): Uint8Array =>
        vidiocRemoveBufs(u, on, { index, count, type, fillReserved: 0xa5 }).reserved;
      expectErrno("EINVAL", () => rm(0, 0, OUT), "another type, count 0");
      assert.ok(
        rm(1000, 0).every((x) => x === 0),
        "count 0 does nothing (whatever the index) and reserved[] is zeroed",
      );
      expectErrno("EINVAL", () => rm(0, 5), "5 of 4 buffers");
      expectErrno("EINVAL", () => rm(63, 2), "63 + 2 past max_num_buffers 64");
      expectErrno("EINVAL", () => rm(3, 2), "no buffer 4");
      vidiocQbuf(u, fd, { index: 1, type: CAP, memory: MMAP });
      expectErrno("EBUSY", () => rm(0, 2), "buffer 1 is queued");
      const other = openVivid(u);
      assert.ok(other >= 0, `no vivid at ${VIVID_CAPTURE}`);
      h.add(other);
      expectErrno("EBUSY", () => rm(2, 1, CAP, other), "not the queue's owner");
      assert.ok(
        rm(2, 1).every((x) => x === 0),
        "buffer 2 removed",
      );
      expectErrno("EINVAL", () => vidiocQuerybuf(u, fd, CAP, MMAP, 2), "QUERYBUF 2");
      expectErrno(
        "EINVAL",
        () => vidiocQbuf(u, fd, { index: 2, type: CAP, memory: MMAP }),
        "QBUF 2",
      );
      expectErrno(
        "EINVAL",
        () => u.mmap(PAGE, PROT_READ, MAP_SHARED, fd, 2 << PLANE_INDEX_SHIFT),
        "mmap of buffer 2",
      );
      expectErrno("EINVAL", () => rm(2, 1), "index 2 holds no buffer now");
      assert.equal(vidiocQuerybuf(u, fd, CAP, MMAP, 3).offset, 3 << PLANE_INDEX_SHIFT);
      vidiocReqbufs(u, fd, { count: 0, type: CAP, memory: MMAP });
      expectErrno("EINVAL", () => rm(0, 1), "no buffers at all");
    }),
  },
  {
    suite: "vivid",
    name: "VIDIOC_REMOVE_BUFS then CREATE_BUFS: new buffers take the first run of free indices long enough (bitmap_find_next_zero_area), CREATE_BUFS with count 0 reports the number of buffers, not the next index; m.offset follows the index; frames stream through the sparse queue and a dequeued buffer may be removed while streaming; removing every buffer forgets the memory type (videobuf2-core.c vb2_core_create_bufs, __vb2_queue_alloc, __setup_offsets, __vb2_queue_free; videobuf2-v4l2.c vb2_ioctl_create_bufs)",
    needs: ["vivid"],
    run: scoped((u, h) => {
      const fd = capture(u, h);
      const fmt = vidiocSFmt(u, fd, CAP, SMALL);
      const create = (count: number, memory = MMAP): [number, number] => {
        const c = vidiocCreateBufs(u, fd, { count, memory, type: CAP, fmt: SMALL });
        return [c.index, c.count];
      };
      const rm = (index: number, count: number): unknown =>
        vidiocRemoveBufs(u, fd, { index, count, type: CAP });
      assert.deepEqual(create(6), [0, 6]);
      rm(1, 2);
      assert.equal(create(0)[0], 4, "count 0: index = the 4 buffers allocated");
      assert.deepEqual(create(3), [6, 3], "three free indices in a row only from 6");
      assert.deepEqual(create(1), [1, 1], "one: the first hole");
      assert.equal(create(0)[0], 8, "8 buffers (indices 0, 1, 3-8); index 2 is free");
      expectErrno("EINVAL", () => vidiocQuerybuf(u, fd, CAP, MMAP, 2), "index 2 is free");
      const len = Math.ceil(fmt.sizeimage / PAGE) * PAGE;
      const used = [1, 3, 8];
      for (const i of used) {
        const b = vidiocQuerybuf(u, fd, CAP, MMAP, i);
        assert.deepEqual([b.index, b.offset, b.length], [i, i << PLANE_INDEX_SHIFT, fmt.sizeimage]);
        u.munmap(u.mmap(len, PROT_READ, MAP_SHARED, fd, b.offset));
        vidiocQbuf(u, fd, { index: i, type: CAP, memory: MMAP });
      }
      vidiocStreamon(u, fd, CAP);
      const b = nextFrame(u, fd);
      assert.ok(used.includes(b.index), `DQBUF gave buffer ${b.index}`);
      const queued = used.find((i) => i !== b.index)!;
      expectErrno("EBUSY", () => rm(queued, 1), `buffer ${queued} is with the driver`);
      rm(b.index, 1);
      expectErrno("EINVAL", () => vidiocQuerybuf(u, fd, CAP, MMAP, b.index), "removed");
      vidiocStreamoff(u, fd, CAP);
      for (const i of [0, 1, 3, 4, 5, 6, 7, 8]) if (i !== b.index) rm(i, 1);
      expectErrno("EINVAL", () => rm(0, 1), "no buffers left");
      assert.deepEqual(create(1, DMABUF), [0, 1], "the queue forgot MMAP: DMABUF buffers now");
      vidiocReqbufs(u, fd, { count: 0, type: CAP, memory: DMABUF });
    }),
  },
  {
    suite: "vivid",
    name: "output QBUF: a payload (bytesused) smaller than the frame → EINVAL; 0 means the whole plane; more than the plane → EINVAL (vivid-vid-out.c vid_out_buf_prepare, __verify_length)",
    needs: ["vivid"],
    run: scoped((u, h) => {
      const out = openVivid(u, VIVID_OUTPUT);
      assert.ok(out >= 0, `no vivid at ${VIVID_OUTPUT}`);
      h.add(out);
      const fmt = vidiocSFmt(u, out, OUT, VGA);
      assert.equal(vidiocReqbufs(u, out, { count: 3, type: OUT, memory: MMAP }).count, 3);
      const q = (index: number, bytesused: number): unknown =>
        vidiocQbuf(u, out, { index, type: OUT, memory: MMAP, bytesused });
      expectErrno("EINVAL", () => q(0, fmt.sizeimage - 1), "one byte short");
      expectErrno("EINVAL", () => q(0, fmt.sizeimage + PAGE), "past the plane");
      q(0, 0);
      q(1, fmt.sizeimage);
      assert.equal(vidiocQuerybuf(u, out, OUT, MMAP, 0).bytesused, fmt.sizeimage);
      vidiocReqbufs(u, out, { count: 0, type: OUT, memory: MMAP });
    }),
  },
  {
    suite: "vivid",
    name: "mmap cookies: QUERYBUF's m.offset is index << PLANE_INDEX_SHIFT (15); each maps its own buffer from the start; no buffer there or longer than it → EINVAL (__setup_offsets, __find_plane_by_offset, vb2_mmap)",
    needs: ["vivid"],
    run: scoped((u, h) => {
      const fd = capture(u, h);
      const fmt = vidiocSFmt(u, fd, CAP, SMALL);
      const n = vidiocReqbufs(u, fd, { count: 3, type: CAP, memory: MMAP }).count;
      assert.equal(n, 3);
      const len = Math.ceil(fmt.sizeimage / PAGE) * PAGE;
      for (let i = 0; i < n; i++) {
        const b = vidiocQuerybuf(u, fd, CAP, MMAP, i);
        assert.equal(b.offset, i << PLANE_INDEX_SHIFT, `buffer ${i}`);
        const m = u.mmap(len, PROT_READ, MAP_SHARED, fd, b.offset);
        u.munmap(m);
      }
      expectErrno(
        "EINVAL",
        () => u.mmap(PAGE, PROT_READ, MAP_SHARED, fd, 3 << PLANE_INDEX_SHIFT),
        "buffer 3",
      );
      expectErrno(
        "EINVAL",
        () => u.mmap(PAGE, PROT_READ, MAP_SHARED, fd, (1 << PLANE_INDEX_SHIFT) + PAGE),
        "plane 1",
      );
      expectErrno(
        "EINVAL",
        () => u.mmap(len + PAGE, PROT_READ, MAP_SHARED, fd, 1 << PLANE_INDEX_SHIFT),
        "too long",
      );
      vidiocReqbufs(u, fd, { count: 0, type: CAP, memory: MMAP });
    }),
  },
  {
    suite: "vivid",
    name: "VIDIOC_QUERYCAP: driver and card 'vivid', capture device caps on /dev/video0, output on /dev/video1",
    needs: ["vivid"],
    run: scoped((u, h) => {
      const fd = capture(u, h);
      const cap = vidiocQuerycap(u, fd);
      assert.equal(cap.driver, "vivid");
      assert.equal(cap.card, "vivid");
      assert.ok(cap.busInfo.startsWith("platform:vivid-000"), `bus_info ${cap.busInfo}`);
      assert.ok(cap.version > 0, "version is the kernel's");
      // v4l_querycap(): capabilities covers every node of the instance plus DEVICE_CAPS.
      const all =
        V4L2_CAP_DEVICE_CAPS | V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_VIDEO_OUTPUT | V4L2_CAP_STREAMING;
      assert.equal(cap.capabilities & all, all, `capabilities 0x${cap.capabilities.toString(16)}`);
      const dc = cap.deviceCaps;
      assert.equal(
        dc & (V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_STREAMING),
        V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_STREAMING,
      );
      assert.equal(
        dc & (V4L2_CAP_VIDEO_OUTPUT | V4L2_CAP_VIDEO_CAPTURE_MPLANE | V4L2_CAP_DEVICE_CAPS),
        0,
        `device_caps 0x${dc.toString(16)}`,
      );
      const out = openVivid(u, VIVID_OUTPUT);
      assert.ok(out >= 0, `no vivid at ${VIVID_OUTPUT}`);
      h.add(out);
      const oc = vidiocQuerycap(u, out).deviceCaps;
      assert.equal(
        oc & (V4L2_CAP_VIDEO_OUTPUT | V4L2_CAP_STREAMING),
        V4L2_CAP_VIDEO_OUTPUT | V4L2_CAP_STREAMING,
      );
      assert.equal(oc & V4L2_CAP_VIDEO_CAPTURE, 0, `output device_caps 0x${oc.toString(16)}`);
    }),
  },
  {
    suite: "vivid",
    name: "S_FMT/G_FMT: 640x480 YUYV round trip; odd sizes snap to the nearest webcam size",
    needs: ["vivid"],
    run: scoped((u, h) => {
      const fd = capture(u, h);
      const set = vidiocSFmt(u, fd, CAP, VGA);
      assert.deepEqual(
        [set.width, set.height, set.pixelformat, set.field, set.bytesperline, set.sizeimage],
        [640, 480, V4L2_PIX_FMT_YUYV, V4L2_FIELD_NONE, 1280, VGA_SIZE],
      );
      const got = vidiocGFmt(u, fd, CAP);
      assert.deepEqual(
        [got.width, got.height, got.pixelformat, got.bytesperline, got.sizeimage],
        [640, 480, V4L2_PIX_FMT_YUYV, 1280, VGA_SIZE],
      );
      // v4l2_find_nearest_size() over webcam_sizes[]: the least |dw| + |dh|.
      const near = (width: number, height: number): [number, number] => {
        const f = vidiocTryFmt(u, fd, CAP, { width, height, pixelformat: V4L2_PIX_FMT_YUYV });
        assert.equal(f.sizeimage, f.bytesperline * f.height, "sizeimage = bytesperline * height");
        return [f.width, f.height];
      };
      assert.deepEqual(near(641, 479), [640, 480]);
      assert.deepEqual(near(333, 177), [320, 180]);
      assert.deepEqual(near(1000, 600), [1280, 720]);
      assert.deepEqual(near(1, 1), [320, 180]);
      // TRY_FMT leaves the format alone; S_FMT of an odd size snaps it.
      assert.equal(vidiocGFmt(u, fd, CAP).width, 640);
      const s = vidiocSFmt(u, fd, CAP, {
        width: 1279,
        height: 721,
        pixelformat: V4L2_PIX_FMT_YUYV,
      });
      assert.deepEqual(
        [s.width, s.height, s.bytesperline, s.sizeimage],
        [1280, 720, 2560, 2560 * 720],
      );
      assert.equal(vidiocGFmt(u, fd, CAP).height, 720);
      // check_fmt(): an output buffer type on a capture node.
      expectErrno("EINVAL", () => vidiocGFmt(u, fd, OUT), "G_FMT(VIDEO_OUTPUT) on capture");
      vidiocSFmt(u, fd, CAP, VGA);
    }),
  },
  {
    suite: "vivid",
    name: "REQBUFS(MMAP): count granted, QUERYBUF lengths, V4L2_BUF_CAP_* of a dma-contig queue without cache hints",
    needs: ["vivid"],
    run: scoped((u, h) => {
      const { fd } = vgaCapture(u, h);
      const r = vidiocReqbufs(u, fd, { count: 3, type: CAP, memory: MMAP });
      assert.equal(r.count, 3);
      // fill_buf_caps(): MMAP and DMABUF (vivid), no USERPTR (allocators=1 is dma-contig),
      // ORPHANED_BUFS always, no MMAP_CACHE_HINTS (cache_hints=0); v4l_reqbufs() adds
      // REMOVE_BUFS because vivid offers VIDIOC_REMOVE_BUFS.
      assert.equal(
        r.capabilities & MODELLED_BUF_CAPS,
        V4L2_BUF_CAP_SUPPORTS_MMAP |
          V4L2_BUF_CAP_SUPPORTS_DMABUF |
          V4L2_BUF_CAP_SUPPORTS_ORPHANED_BUFS |
          V4L2_BUF_CAP_SUPPORTS_REMOVE_BUFS,
        `capabilities 0x${r.capabilities.toString(16)}`,
      );
      assert.equal(r.flags, 0, "V4L2_MEMORY_FLAG_NON_COHERENT not honoured without cache hints");
      const offsets = new Set<number>();
      for (let i = 0; i < r.count; i++) {
        const b = vidiocQuerybuf(u, fd, CAP, MMAP, i);
        assert.equal(b.index, i);
        assert.equal(b.length, VGA_SIZE);
        assert.equal(b.memory, MMAP);
        assert.equal(b.offset % PAGE, 0, "mmap offset page aligned");
        assert.equal(
          b.flags & (V4L2_BUF_FLAG_QUEUED | V4L2_BUF_FLAG_DONE | V4L2_BUF_FLAG_MAPPED),
          0,
        );
        assert.equal(b.flags & V4L2_BUF_FLAG_TIMESTAMP_MASK, V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC);
        offsets.add(b.offset);
      }
      assert.equal(offsets.size, r.count, "distinct mmap offsets");
      expectErrno(
        "EINVAL",
        () => vidiocQuerybuf(u, fd, CAP, MMAP, r.count),
        "QUERYBUF past the last buffer",
      );
      // A mapping makes QUERYBUF report MAPPED.
      const b0 = vidiocQuerybuf(u, fd, CAP, MMAP, 0);
      const map = u.mmap(b0.length, PROT_READ, MAP_SHARED, fd, b0.offset);
      try {
        assert.ok(
          vidiocQuerybuf(u, fd, CAP, MMAP, 0).flags & V4L2_BUF_FLAG_MAPPED,
          "MAPPED while mmapped",
        );
      } finally {
        u.munmap(map);
      }
      assert.equal(
        vidiocQuerybuf(u, fd, CAP, MMAP, 0).flags & V4L2_BUF_FLAG_MAPPED,
        0,
        "not MAPPED after munmap",
      );
      // More buffers replace the old ones (reqbufs frees, then allocates).
      assert.equal(vidiocReqbufs(u, fd, { count: 5, type: CAP, memory: MMAP }).count, 5);
    }),
  },
  {
    suite: "vivid",
    name: "REQBUFS: unknown memory type or wrong buffer type → EINVAL; S_FMT with buffers → EBUSY",
    needs: ["vivid"],
    run: scoped((u, h) => {
      const { fd } = vgaCapture(u, h);
      for (const memory of [0, 3 /* OVERLAY */, 5, 0xff])
        expectErrno(
          "EINVAL",
          () => vidiocReqbufs(u, fd, { count: 2, type: CAP, memory }),
          `memory ${memory}`,
        );
      expectErrno(
        "EINVAL",
        () => vidiocReqbufs(u, fd, { count: 2, type: OUT, memory: MMAP }),
        "VIDEO_OUTPUT on capture",
      );
      expectErrno(
        "EINVAL",
        () =>
          vidiocReqbufs(u, fd, {
            count: 2,
            type: V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE,
            memory: MMAP,
          }),
        "multi-planar type on a single-planar node",
      );
      // vb2_verify_memory_type(): USERPTR is not among the dma-contig queue's io_modes.
      expectErrno(
        "EINVAL",
        () => vidiocReqbufs(u, fd, { count: 2, type: CAP, memory: V4L2_MEMORY_USERPTR }),
        "USERPTR",
      );
      vidiocReqbufs(u, fd, { count: 2, type: CAP, memory: MMAP });
      expectErrno(
        "EBUSY",
        () => vidiocSFmt(u, fd, CAP, { width: 320, height: 180, pixelformat: V4L2_PIX_FMT_YUYV }),
        "S_FMT with buffers",
      );
      // Another open of the node may query but not touch the owner's queue.
      const other = capture(u, h);
      assert.equal(vidiocQuerybuf(u, other, CAP, MMAP, 0).length, VGA_SIZE);
      expectErrno(
        "EBUSY",
        () => vidiocReqbufs(u, other, { count: 2, type: CAP, memory: MMAP }),
        "REQBUFS from a non-owner",
      );
      expectErrno(
        "EBUSY",
        () => vidiocQbuf(u, other, { index: 0, type: CAP, memory: MMAP }),
        "QBUF from a non-owner",
      );
      assert.equal(vidiocReqbufs(u, fd, { count: 0, type: CAP, memory: MMAP }).count, 0);
    }),
  },
  {
    suite: "vivid",
    name: "QBUF: bad index, queued twice, wrong memory or type → EINVAL; DQBUF not streaming → EINVAL",
    needs: ["vivid"],
    run: scoped((u, h) => {
      const { fd } = vgaCapture(u, h);
      const { count } = vidiocReqbufs(u, fd, { count: 2, type: CAP, memory: MMAP });
      expectErrno(
        "EINVAL",
        () => vidiocQbuf(u, fd, { index: count, type: CAP, memory: MMAP }),
        "index = count",
      );
      expectErrno(
        "EINVAL",
        () => vidiocQbuf(u, fd, { index: 1000, type: CAP, memory: MMAP }),
        "index 1000",
      );
      expectErrno(
        "EINVAL",
        () => vidiocQbuf(u, fd, { index: 0, type: CAP, memory: DMABUF, fd: -1 }),
        "memory DMABUF on an MMAP queue",
      );
      expectErrno(
        "EINVAL",
        () => vidiocQbuf(u, fd, { index: 0, type: OUT, memory: MMAP }),
        "output type",
      );
      const q = vidiocQbuf(u, fd, { index: 0, type: CAP, memory: MMAP });
      assert.ok(q.flags & V4L2_BUF_FLAG_QUEUED, "QBUF returns QUEUED");
      assert.equal(q.flags & V4L2_BUF_FLAG_DONE, 0);
      expectErrno(
        "EINVAL",
        () => vidiocQbuf(u, fd, { index: 0, type: CAP, memory: MMAP }),
        "queued twice",
      );
      assert.ok(vidiocQuerybuf(u, fd, CAP, MMAP, 0).flags & V4L2_BUF_FLAG_QUEUED);
      // __vb2_wait_for_done_vb(): not streaming is EINVAL, blocking or not.
      expectErrno("EINVAL", () => vidiocDqbuf(u, fd, CAP, MMAP), "DQBUF before STREAMON");
      expectErrno("EINVAL", () => vidiocDqbuf(u, fd, OUT, MMAP), "DQBUF of the output type");
      expectErrno("EINVAL", () => vidiocStreamon(u, fd, OUT), "STREAMON of the output type");
    }),
  },
  {
    suite: "vivid",
    name: "DQBUF with O_NONBLOCK while streaming and nothing queued → EAGAIN; POLLERR before STREAMON",
    needs: ["vivid"],
    run: scoped((u, h) => {
      const { fd } = vgaCapture(u, h, O_RDWR | O_NONBLOCK);
      vidiocReqbufs(u, fd, { count: 2, type: CAP, memory: MMAP });
      // vb2_core_poll(): buffers allocated but not streaming → EPOLLERR.
      const [before] = u.poll([{ fd, events: POLLIN }], 0);
      assert.ok((before ?? 0) & POLLERR, `revents 0x${(before ?? 0).toString(16)} before STREAMON`);
      // Nothing queued: streaming starts with no buffer in the driver, nothing can complete.
      vidiocStreamon(u, fd, CAP);
      expectErrno(
        "EAGAIN",
        () => vidiocDqbuf(u, fd, CAP, MMAP),
        "non-blocking DQBUF, nothing done",
      );
      // quirk_poll_must_check_waiting_for_buffers: a capture queue streaming before its
      // first QBUF still polls EPOLLERR (vb1 compatibility).
      const [rev] = u.poll([{ fd, events: POLLIN }], 0);
      assert.equal((rev ?? 0) & (POLLIN | POLLERR), POLLERR, "streaming before any QBUF: POLLERR");
      // REQBUFS while streaming is EBUSY; STREAMON twice is allowed.
      expectErrno(
        "EBUSY",
        () => vidiocReqbufs(u, fd, { count: 0, type: CAP, memory: MMAP }),
        "REQBUFS(0) while streaming",
      );
      vidiocStreamon(u, fd, CAP);
      vidiocStreamoff(u, fd, CAP);
      expectErrno(
        "EINVAL",
        () => vidiocDqbuf(u, fd, CAP, MMAP),
        "non-blocking DQBUF after STREAMOFF",
      );
    }),
  },
  {
    suite: "vivid",
    name: "capture 3 frames with MMAP: sequence increases, bytesused = sizeimage, DONE cleared, TIMESTAMP_MONOTONIC",
    needs: ["vivid"],
    run: scoped((u, h) => {
      const { fd, fmt } = vgaCapture(u, h);
      const { count } = vidiocReqbufs(u, fd, { count: 4, type: CAP, memory: MMAP });
      const maps = [];
      try {
        for (let i = 0; i < count; i++) {
          const b = vidiocQuerybuf(u, fd, CAP, MMAP, i);
          maps.push(u.mmap(b.length, PROT_READ, MAP_SHARED, fd, b.offset));
          vidiocQbuf(u, fd, { index: i, type: CAP, memory: MMAP });
        }
        vidiocStreamon(u, fd, CAP);
        let lastSeq = -1;
        let lastTs = 0;
        for (let n = 0; n < 3; n++) {
          const b = nextFrame(u, fd);
          assert.ok(b.index < count, `index ${b.index}`);
          assert.ok(b.sequence > lastSeq, `sequence ${b.sequence} after ${lastSeq}`);
          assert.equal(b.bytesused, fmt.sizeimage, "bytesused");
          assert.equal(b.length, fmt.sizeimage, "length");
          assert.equal(b.field, V4L2_FIELD_NONE);
          assert.equal(
            b.flags & (V4L2_BUF_FLAG_DONE | V4L2_BUF_FLAG_QUEUED | V4L2_BUF_FLAG_ERROR),
            0,
            `flags 0x${b.flags.toString(16)}`,
          );
          assert.ok(b.flags & V4L2_BUF_FLAG_MAPPED, "MAPPED");
          assert.equal(b.flags & V4L2_BUF_FLAG_TIMESTAMP_MASK, V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC);
          assert.ok(
            b.timestampNs > 0 && b.timestampNs >= lastTs,
            `timestamp ${b.timestampNs} after ${lastTs}`,
          );
          // The CPU may read the frame now (content not compared: the pattern generators differ).
          assert.equal(maps[b.index]!.read(0, 16).length, 16);
          lastSeq = b.sequence;
          lastTs = b.timestampNs;
          vidiocQbuf(u, fd, { index: b.index, type: CAP, memory: MMAP });
        }
        vidiocStreamoff(u, fd, CAP);
      } finally {
        for (const m of maps) u.munmap(m);
      }
    }),
  },
  {
    suite: "vivid",
    name: "STREAMOFF takes every buffer back (no QUEUED/DONE, DQBUF → EINVAL), they queue again; REQBUFS(0) frees",
    needs: ["vivid"],
    run: scoped((u, h) => {
      const { fd } = vgaCapture(u, h, O_RDWR | O_NONBLOCK);
      const { count } = vidiocReqbufs(u, fd, { count: 3, type: CAP, memory: MMAP });
      for (let i = 0; i < count; i++) vidiocQbuf(u, fd, { index: i, type: CAP, memory: MMAP });
      vidiocStreamon(u, fd, CAP);
      // Let one frame complete, so STREAMOFF meets both DONE and QUEUED buffers.
      const [rev] = u.poll([{ fd, events: POLLIN }], FRAME_TIMEOUT_MS);
      assert.ok((rev ?? 0) & POLLIN, "a frame completes");
      vidiocStreamoff(u, fd, CAP);
      for (let i = 0; i < count; i++) {
        const f = vidiocQuerybuf(u, fd, CAP, MMAP, i).flags;
        assert.equal(
          f & (V4L2_BUF_FLAG_QUEUED | V4L2_BUF_FLAG_DONE | V4L2_BUF_FLAG_ERROR),
          0,
          `buffer ${i} flags 0x${f.toString(16)}`,
        );
      }
      expectErrno("EINVAL", () => vidiocDqbuf(u, fd, CAP, MMAP), "DQBUF after STREAMOFF");
      vidiocStreamoff(u, fd, CAP); // STREAMOFF when not streaming is fine
      for (let i = 0; i < count; i++) vidiocQbuf(u, fd, { index: i, type: CAP, memory: MMAP });
      // REQBUFS(0) (not streaming) frees queued buffers too.
      assert.equal(vidiocReqbufs(u, fd, { count: 0, type: CAP, memory: MMAP }).count, 0);
      expectErrno("EINVAL", () => vidiocQuerybuf(u, fd, CAP, MMAP, 0), "QUERYBUF after REQBUFS(0)");
      expectErrno(
        "EINVAL",
        () => vidiocQbuf(u, fd, { index: 0, type: CAP, memory: MMAP }),
        "QBUF after REQBUFS(0)",
      );
      expectErrno("EINVAL", () => vidiocStreamon(u, fd, CAP), "STREAMON without buffers");
      // The queue has no owner any more: S_FMT works again.
      vidiocSFmt(u, fd, CAP, VGA);
    }),
  },
  {
    suite: "vivid",
    name: "EXPBUF: a dma-buf of the MMAP buffer (SEEK_END = length, SYNC, mmap); it outlives REQBUFS(0)",
    needs: ["vivid"],
    run: scoped((u, h) => {
      const { fd } = vgaCapture(u, h);
      const { count } = vidiocReqbufs(u, fd, { count: 2, type: CAP, memory: MMAP });
      const b = vidiocQuerybuf(u, fd, CAP, MMAP, 1);
      const dbuf = h.add(vidiocExpbuf(u, fd, { type: CAP, index: 1, flags: O_CLOEXEC | O_RDWR }));
      assert.ok(dbuf >= 0);
      assert.equal(dmaBufSize(u, dbuf), b.length, "lseek(SEEK_END) = the plane's length");
      assert.equal(u.lseek(dbuf, 0, SEEK_END), VGA_SIZE);
      dmaBufSync(u, dbuf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ);
      const map = u.mmap(b.length, PROT_READ, MAP_SHARED, dbuf, 0);
      assert.equal(map.read(b.length - 8, 8).length, 8);
      dmaBufSync(u, dbuf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ);
      // A second export of the same plane is another dma-buf of the same size.
      const again = h.add(vidiocExpbuf(u, fd, { type: CAP, index: 1 }));
      assert.notEqual(again, dbuf);
      assert.equal(dmaBufSize(u, again), b.length);
      // Orphaned buffers (V4L2_BUF_CAP_SUPPORTS_ORPHANED_BUFS): REQBUFS(0) succeeds, the
      // exported buffer and its mapping stay valid until released.
      assert.equal(vidiocReqbufs(u, fd, { count: 0, type: CAP, memory: MMAP }).count, 0);
      assert.equal(map.read(0, 8).length, 8);
      assert.equal(dmaBufSize(u, dbuf), VGA_SIZE);
      u.munmap(map);
      assert.ok(count >= 2);
    }),
  },
  {
    suite: "vivid",
    name: "EXPBUF: flags beyond O_CLOEXEC|O_ACCMODE, bad index, wrong type, DMABUF queue → EINVAL",
    needs: ["vivid"],
    run: scoped((u, h) => {
      const { fd } = vgaCapture(u, h);
      vidiocReqbufs(u, fd, { count: 2, type: CAP, memory: MMAP });
      expectErrno(
        "EINVAL",
        () => vidiocExpbuf(u, fd, { type: CAP, index: 0, flags: O_NONBLOCK }),
        "O_NONBLOCK",
      );
      expectErrno(
        "EINVAL",
        () => vidiocExpbuf(u, fd, { type: CAP, index: 2 }),
        "index past the last buffer",
      );
      expectErrno(
        "EINVAL",
        () => vidiocExpbuf(u, fd, { type: CAP, index: 0, plane: 1 }),
        "plane 1 of a one-plane buffer",
      );
      expectErrno("EINVAL", () => vidiocExpbuf(u, fd, { type: OUT, index: 0 }), "output type");
      vidiocReqbufs(u, fd, { count: 0, type: CAP, memory: MMAP });
      vidiocReqbufs(u, fd, { count: 2, type: CAP, memory: DMABUF });
      expectErrno(
        "EINVAL",
        () => vidiocExpbuf(u, fd, { type: CAP, index: 0 }),
        "EXPBUF of a DMABUF queue",
      );
    }),
  },
  {
    suite: "vivid",
    name: "DMABUF: a 1 MiB system-heap buffer (one order-8 chunk) imports into dma-contig and receives a frame",
    needs: ["vivid", "system-heap"],
    run: scoped((u, h) => {
      const { fd, fmt } = vgaCapture(u, h);
      const heap = h.add(u.open("/dev/dma_heap/system", O_RDWR));
      const dbuf = h.add(dmaHeapAlloc(u, heap, 1 << 20));
      const r = vidiocReqbufs(u, fd, { count: 1, type: CAP, memory: DMABUF });
      assert.ok(r.count >= 1);
      const q = vidiocQbuf(u, fd, { index: 0, type: CAP, memory: DMABUF, fd: dbuf });
      assert.ok(q.flags & V4L2_BUF_FLAG_QUEUED);
      assert.equal(q.length, 1 << 20, "length: the dma-buf's size");
      vidiocStreamon(u, fd, CAP);
      const b = nextFrame(u, fd, DMABUF);
      assert.equal(b.index, 0);
      assert.equal(b.fd, dbuf, "m.fd comes back");
      assert.equal(b.bytesused, fmt.sizeimage);
      assert.equal(b.flags & (V4L2_BUF_FLAG_DONE | V4L2_BUF_FLAG_ERROR | V4L2_BUF_FLAG_QUEUED), 0);
      vidiocStreamoff(u, fd, CAP);
    }),
  },
  {
    suite: "vivid",
    name: "DMABUF: a scattered system-heap buffer → EFAULT (dma-contig, no IOMMU); too small → EINVAL; not a dma-buf → EINVAL",
    needs: ["vivid", "system-heap", "memfd"],
    run: scoped((u, h) => {
      const { fd } = vgaCapture(u, h);
      const heap = h.add(u.open("/dev/dma_heap/system", O_RDWR));
      vidiocReqbufs(u, fd, { count: 2, type: CAP, memory: DMABUF });
      // Age the page allocator first, as on a machine that has been up for a while: 16
      // single pages, every other one freed again. system_heap_allocate() then takes
      // nine 64 KiB chunks and six single pages, and the single pages come from those
      // holes (Linux: the per-CPU list, last freed first; the model: the order-0 free
      // list) — never one contiguous range, whatever the allocator's history.
      const singles = Array.from({ length: 16 }, () => h.add(dmaHeapAlloc(u, heap, PAGE)));
      for (let i = 1; i < singles.length; i += 2) h.close(singles[i]!);
      const scattered = h.add(dmaHeapAlloc(u, heap, VGA_SIZE));
      expectErrno(
        "EFAULT",
        () => vidiocQbuf(u, fd, { index: 0, type: CAP, memory: DMABUF, fd: scattered }),
        "scattered dma-buf",
      );
      // __prepare_dmabuf(): the dma-buf must hold the plane.
      const small = h.add(dmaHeapAlloc(u, heap, PAGE));
      expectErrno(
        "EINVAL",
        () => vidiocQbuf(u, fd, { index: 0, type: CAP, memory: DMABUF, fd: small }),
        "4 KiB dma-buf",
      );
      const memfd = h.add(u.memfdCreate("not-a-dmabuf", MFD_ALLOW_SEALING));
      u.ftruncate(memfd, 1 << 20);
      expectErrno(
        "EINVAL",
        () => vidiocQbuf(u, fd, { index: 0, type: CAP, memory: DMABUF, fd: memfd }),
        "memfd",
      );
      expectErrno(
        "EINVAL",
        () => vidiocQbuf(u, fd, { index: 0, type: CAP, memory: DMABUF, fd: -1 }),
        "fd -1",
      );
      // Nothing was queued by the failures.
      assert.equal(vidiocQuerybuf(u, fd, CAP, DMABUF, 0).flags & V4L2_BUF_FLAG_QUEUED, 0);
    }),
  },
  {
    suite: "vivid",
    name: "zero copy: the capture node's exported buffer queues on the output node as DMABUF",
    needs: ["vivid"],
    run: scoped((u, h) => {
      const { fd } = vgaCapture(u, h);
      const out = openVivid(u, VIVID_OUTPUT);
      assert.ok(out >= 0, `no vivid at ${VIVID_OUTPUT}`);
      h.add(out);
      const ofmt = vidiocSFmt(u, out, OUT, VGA);
      assert.equal(ofmt.sizeimage, VGA_SIZE);
      vidiocReqbufs(u, fd, { count: 1, type: CAP, memory: MMAP });
      const dbuf = h.add(vidiocExpbuf(u, fd, { type: CAP, index: 0, flags: O_CLOEXEC | O_RDWR }));
      const r = vidiocReqbufs(u, out, { count: 1, type: OUT, memory: DMABUF });
      assert.ok(r.count >= 1);
      const q = vidiocQbuf(u, out, {
        index: 0,
        type: OUT,
        memory: DMABUF,
        fd: dbuf,
        bytesused: VGA_SIZE,
      });
      assert.ok(q.flags & V4L2_BUF_FLAG_QUEUED, "dma-contig accepts dma-contig memory");
      assert.equal(q.bytesused, VGA_SIZE);
      assert.equal(vidiocReqbufs(u, out, { count: 0, type: OUT, memory: DMABUF }).count, 0);
    }),
  },
  {
    suite: "vivid",
    name: "unknown ioctls → ENOTTY: an unused VIDIOC number, a dma-buf ioctl, S_PARM on the output node",
    needs: ["vivid"],
    run: scoped((u, h) => {
      const fd = capture(u, h);
      withUserStruct(u, 64, (_s, addr) => {
        expectErrno("ENOTTY", () => u.ioctl(fd, _IOWR("V", 200, 16), addr), "VIDIOC nr 200");
        expectErrno(
          "ENOTTY",
          () => u.ioctl(fd, DMA_BUF_IOCTL_SYNC, addr),
          "DMA_BUF_IOCTL_SYNC on a video node",
        );
        expectErrno("ENOTTY", () => u.ioctl(fd, _IOW("b", 0x7f, 8), addr), "an unknown 'b' ioctl");
      });
      const out = openVivid(u, VIVID_OUTPUT);
      assert.ok(out >= 0);
      h.add(out);
      // vivid's vidioc_s_parm(): only the receive side takes a frame interval.
      withUserStruct(u, SIZEOF_V4L2_STREAMPARM, (s, addr) => {
        s.setU32(0, OUT);
        expectErrno("ENOTTY", () => u.ioctl(out, VIDIOC_S_PARM, addr), "S_PARM on the output node");
      });
      // Sanity: STREAMON's encoding is what the kernel knows (EINVAL, not ENOTTY, without buffers).
      withUserStruct(u, 4, (s, addr) => {
        s.setU32(0, CAP);
        expectErrno("EINVAL", () => u.ioctl(fd, VIDIOC_STREAMON, addr), "STREAMON without buffers");
      });
    }),
  },
];
