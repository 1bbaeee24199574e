/**
 * videobuf2's read()/write() emulator (drivers/media/common/videobuf2/videobuf2-core.c:
 * __vb2_init_fileio, __vb2_perform_fileio, __vb2_cleanup_fileio, vb2_read, vb2_write).
 * A queue whose driver offers VB2_READ (capture) or VB2_WRITE (output) serves read(2)
 * or write(2) by running the streaming API itself: the first call allocates
 * min_reqbufs_allocation MMAP buffers, queues them all (read) and starts streaming;
 * each read copies from the oldest done buffer through the kernel's mapping of it
 * (vb2_plane_vaddr) and queues it again once it has been read to its payload; each
 * write fills a buffer and queues it once full. While the emulator runs, the
 * streaming ioctls are EBUSY; it stops when the owner closes the file.
 */

import { ensure, KernelError } from "../../../errno.js";
import type { Current } from "../../../vfs/file.js";
import {
  VB2_MAX_FRAME,
  VB2_READ,
  VB2_WRITE,
  type Vb2Buffer,
  type Vb2Queue,
} from "./videobuf2-core.js";

const V4L2_MEMORY_MMAP = 1;

/** struct vb2_fileio_buf. */
interface Vb2FileioBuf {
  pos: number;
  size: number;
  queued: boolean;
}

/** struct vb2_fileio_data. */
export interface Vb2FileioState {
  readonly read: boolean;
  readonly bufs: Vb2FileioBuf[];
  curIndex: number;
  initialIndex: number;
  qCount: number;
  dqCount: number;
}

/** __vb2_init_fileio(). */
function initFileio(q: Vb2Queue, read: boolean, current: Current | undefined): Vb2FileioState {
  ensure((q.ioModes & (read ? VB2_READ : VB2_WRITE)) !== 0, "EINVAL", `${q.name}: no file io`);
  if (q.streaming || q.numBuffers > 0)
    throw new KernelError("EBUSY", `${q.name}: file io while the streaming API is in use`);
  const fileio: Vb2FileioState = {
    read,
    bufs: [],
    curIndex: 0,
    initialIndex: 0,
    qCount: 0,
    dqCount: 0,
  };
  q.fileio = fileio;
  try {
    const count = q.reqbufs(V4L2_MEMORY_MMAP, 0, q.minReqbufsAllocation);
    if (count > VB2_MAX_FRAME)
      throw new KernelError("ENOSPC", `${q.name}: fileio: more than VB2_MAX_FRAME buffers`);
    for (let i = 0; i < q.numBuffers; i++) {
      const vb = q.buffer(i);
      if (vb.numPlanes !== 1)
        throw new KernelError("EBUSY", `${q.name}: fileio needs single-plane buffers`);
      if (vb.planes[0]!.mem?.vaddr?.() === undefined)
        throw new KernelError("EINVAL", `${q.name}: buffer ${i} has no kernel mapping`);
      fileio.bufs.push({ pos: 0, size: vb.planeSize(0), queued: false });
    }
    if (read) {
      // Queue every buffer; initial_index past the last says they all are.
      for (let i = 0; i < q.numBuffers; i++) {
        // MMAP buffers: preparing them never touches the caller (poll() starts this without one).
        q.qbuf(q.buffer(i), current as Current);
        fileio.bufs[i]!.queued = true;
      }
      fileio.initialIndex = q.numBuffers;
      fileio.curIndex = fileio.initialIndex;
    }
    q.streamon(q.type);
  } catch (e) {
    q.fileio = undefined;
    q.release();
    throw e;
  }
  return fileio;
}

/** The kernel's mapping of buffer `vb`'s plane. */
function vaddrOf(vb: Vb2Buffer) {
  return vb.planes[0]!.mem!.vaddr!()!;
}

/**
 * __vb2_perform_fileio(): one read (into a new array, returned) or write (of `data`).
 * Returns the bytes moved: up to the end of the current buffer's payload (read) or
 * size (write), so a call may move fewer than asked.
 */
function performFileio(
  q: Vb2Queue,
  read: boolean,
  count: number,
  data: Uint8Array | undefined,
  nonblocking: boolean,
  current: Current,
): { moved: number; bytes: Uint8Array } {
  if (q.waitingInDqbuf)
    throw new KernelError(
      "EBUSY",
      `${q.name}: another dup()ped fd is ${read ? "reading" : "writing"}`,
    );
  const fileio = q.fileio ?? initFileio(q, read, current);
  let index = fileio.curIndex;
  let buf: Vb2FileioBuf;
  if (index >= q.numBuffers) {
    const vb = q.dqbuf(nonblocking);
    q.dqbufFinish(vb);
    fileio.dqCount++;
    index = vb.index;
    fileio.curIndex = index;
    buf = fileio.bufs[index]!;
    buf.pos = 0;
    buf.queued = false;
    buf.size = read ? vb.planePayload(0) : vb.planeSize(0);
  } else {
    buf = fileio.bufs[index]!;
  }
  const n = Math.min(count, buf.size - buf.pos);
  const vb = q.buffer(index);
  const m = q.machine.cpu;
  let bytes: Uint8Array = new Uint8Array(0);
  if (read) bytes = m.read(vaddrOf(vb), buf.pos, n);
  else if (n > 0) m.write(vaddrOf(vb), buf.pos, data!, 0, n);
  buf.pos += n;
  if (buf.pos === buf.size) {
    // Queue the buffer again: read to its payload, or written full. The write's length
    // goes into the vb2 plane only: __prepare_mmap() then copies the V4L2 buffer's
    // bytesused over it (__fill_vb2_buffer), which no QBUF ever set on a buffer that only
    // write() used, so in Linux 6.12 a driver that checks the payload sees 0.
    if (!read) vb.planes[0]!.bytesused = buf.pos;
    q.qbuf(vb, current);
    buf.pos = 0;
    buf.queued = true;
    buf.size = vb.planeSize(0);
    fileio.qCount++;
    if (fileio.initialIndex < q.numBuffers) fileio.initialIndex++;
    fileio.curIndex = fileio.initialIndex;
    // vb2_write: the first full buffer is queued on a queue already streaming (init did STREAMON).
  }
  return { moved: n, bytes };
}

/** vb2_read(): at most `count` bytes of the current frame (EAGAIN when nonblocking and none is done). */
export function vb2Read(
  q: Vb2Queue,
  count: number,
  nonblocking: boolean,
  current: Current,
): Uint8Array {
  return performFileio(q, true, count, undefined, nonblocking, current).bytes;
}

/** vb2_write(): copies up to the rest of the current buffer; returns the bytes taken. */
export function vb2Write(
  q: Vb2Queue,
  data: Uint8Array,
  nonblocking: boolean,
  current: Current,
): number {
  return performFileio(q, false, data.length, data, nonblocking, current).moved;
}

/**
 * The part of vb2_core_poll() that starts the emulator: polling a queue without
 * buffers for POLLIN (capture that offers read()) or POLLOUT (output that offers
 * write()) starts it; true when it was started, EPOLLERR (thrown) when that failed.
 */
export function vb2PollStartsFileio(q: Vb2Queue, wantIn: boolean, wantOut: boolean): boolean {
  if (q.numBuffers !== 0 || q.fileio !== undefined) return false;
  if (!q.isOutput && (q.ioModes & VB2_READ) !== 0 && wantIn) {
    initFileio(q, true, undefined);
    return true;
  }
  if (q.isOutput && (q.ioModes & VB2_WRITE) !== 0 && wantOut) {
    initFileio(q, false, undefined);
    return true;
  }
  return false;
}
