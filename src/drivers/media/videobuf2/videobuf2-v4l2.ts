/**
 * videobuf2's V4L2 layer (drivers/media/common/videobuf2/videobuf2-v4l2.c): struct
 * v4l2_buffer in and out of the core, the cache-hint flags, the capability bits, and the
 * vb2_ioctl_* helpers with their queue-owner rule (only the file handle that allocated
 * the buffers may queue them: EBUSY for the others).
 *
 * Single-planar buffer types only (the vivid model is single-planar).
 */

import { KernelError } from "../../../errno.js";
import { O_NONBLOCK, POLLERR, POLLIN, POLLOUT } from "../../../include/uapi/fcntl.js";
import type { CStruct } from "../../../include/uapi/struct.js";
import {
  V4L2_BUF_CAP_SUPPORTS_DMABUF,
  V4L2_BUF_CAP_SUPPORTS_MAX_NUM_BUFFERS,
  V4L2_BUF_CAP_SUPPORTS_MMAP,
  V4L2_BUF_CAP_SUPPORTS_MMAP_CACHE_HINTS,
  V4L2_BUF_CAP_SUPPORTS_ORPHANED_BUFS,
  V4L2_BUF_CAP_SUPPORTS_REQUESTS,
  V4L2_BUF_CAP_SUPPORTS_USERPTR,
  V4L2_BUF_FLAG_BFRAME,
  V4L2_BUF_FLAG_DONE,
  V4L2_BUF_FLAG_ERROR,
  V4L2_BUF_FLAG_IN_REQUEST,
  V4L2_BUF_FLAG_KEYFRAME,
  V4L2_BUF_FLAG_LAST,
  V4L2_BUF_FLAG_M2M_HOLD_CAPTURE_BUF,
  V4L2_BUF_FLAG_MAPPED,
  V4L2_BUF_FLAG_NO_CACHE_CLEAN,
  V4L2_BUF_FLAG_NO_CACHE_INVALIDATE,
  V4L2_BUF_FLAG_PFRAME,
  V4L2_BUF_FLAG_PREPARED,
  V4L2_BUF_FLAG_QUEUED,
  V4L2_BUF_FLAG_REQUEST_FD,
  V4L2_BUF_FLAG_TIMECODE,
  V4L2_BUF_FLAG_TIMESTAMP_COPY,
  V4L2_BUF_FLAG_TIMESTAMP_MASK,
  V4L2_BUF_FLAG_TSTAMP_SRC_MASK,
  V4L2_BUFFER,
  V4L2_CREATE_BUFFERS,
  V4L2_EXPORTBUFFER,
  V4L2_FORMAT_PIX,
  V4L2_MEMORY_DMABUF,
  V4L2_MEMORY_FLAG_NON_COHERENT,
  V4L2_MEMORY_MMAP,
  V4L2_MEMORY_USERPTR,
  V4L2_REMOVE_BUFFERS,
  V4L2_REQUESTBUFFERS,
  V4L2_TYPE_IS_MULTIPLANAR,
} from "../../../include/uapi/videodev2.js";
import type { Current, File } from "../../../vfs/file.js";
import {
  POLLRDNORM,
  POLLWRNORM,
  VB2_DMABUF,
  VB2_MMAP,
  VB2_READ,
  VB2_USERPTR,
  VB2_WRITE,
  type Vb2Buffer,
  type Vb2Queue,
} from "./videobuf2-core.js";
import { vb2PollStartsFileio, vb2Read, vb2Write } from "./videobuf2-fileio.js";

/** Flags vb2 sets itself (V4L2_BUFFER_MASK_FLAGS). */
const V4L2_BUFFER_MASK_FLAGS =
  V4L2_BUF_FLAG_MAPPED |
  V4L2_BUF_FLAG_QUEUED |
  V4L2_BUF_FLAG_DONE |
  V4L2_BUF_FLAG_ERROR |
  V4L2_BUF_FLAG_PREPARED |
  V4L2_BUF_FLAG_IN_REQUEST |
  V4L2_BUF_FLAG_REQUEST_FD |
  V4L2_BUF_FLAG_TIMESTAMP_MASK;

/** Output flags passed on to the driver (V4L2_BUFFER_OUT_FLAGS). */
const V4L2_BUFFER_OUT_FLAGS =
  V4L2_BUF_FLAG_PFRAME |
  V4L2_BUF_FLAG_BFRAME |
  V4L2_BUF_FLAG_KEYFRAME |
  V4L2_BUF_FLAG_TIMECODE |
  V4L2_BUF_FLAG_M2M_HOLD_CAPTURE_BUF;

/**
 * fill_buf_caps(): what REQBUFS and CREATE_BUFS report in `capabilities`. CREATE_BUFS
 * (`withMaxNumBuffers`) also reports max_num_buffers, flagged by
 * V4L2_BUF_CAP_SUPPORTS_MAX_NUM_BUFFERS; REQBUFS has no field for it.
 */
export function vb2FillBufCaps(q: Vb2Queue, withMaxNumBuffers = false): number {
  let caps = V4L2_BUF_CAP_SUPPORTS_ORPHANED_BUFS;
  if (withMaxNumBuffers) caps |= V4L2_BUF_CAP_SUPPORTS_MAX_NUM_BUFFERS;
  if (q.ioModes & VB2_MMAP) caps |= V4L2_BUF_CAP_SUPPORTS_MMAP;
  if (q.ioModes & VB2_USERPTR) caps |= V4L2_BUF_CAP_SUPPORTS_USERPTR;
  if (q.ioModes & VB2_DMABUF) caps |= V4L2_BUF_CAP_SUPPORTS_DMABUF;
  if (q.allowCacheHints && q.ioModes & VB2_MMAP) caps |= V4L2_BUF_CAP_SUPPORTS_MMAP_CACHE_HINTS;
  if (q.supportsRequests) caps |= V4L2_BUF_CAP_SUPPORTS_REQUESTS;
  return caps;
}

/** validate_memory_flags(): NON_COHERENT survives only for MMAP on a queue that allows hints. */
export function vb2ValidateMemoryFlags(q: Vb2Queue, memory: number, flags: number): number {
  if (!q.allowCacheHints || memory !== V4L2_MEMORY_MMAP) return 0;
  return flags & V4L2_MEMORY_FLAG_NON_COHERENT;
}

/**
 * set_buffer_cache_hints(): without hint support the NO_CACHE_* flags are cleared in the
 * caller's struct (so userspace can see they do nothing); with it they set the buffer's
 * skip bits, which stay set for the life of the buffer, as in Linux.
 */
function setBufferCacheHints(q: Vb2Queue, vb: Vb2Buffer, b: CStruct): void {
  let flags = b.u32(V4L2_BUFFER.flags);
  if (!q.allowsCacheHints()) {
    flags &= ~(V4L2_BUF_FLAG_NO_CACHE_INVALIDATE | V4L2_BUF_FLAG_NO_CACHE_CLEAN);
    b.setU32(V4L2_BUFFER.flags, flags);
    return;
  }
  if (flags & V4L2_BUF_FLAG_NO_CACHE_INVALIDATE) vb.skipCacheSyncOnFinish = true;
  if (flags & V4L2_BUF_FLAG_NO_CACHE_CLEAN) vb.skipCacheSyncOnPrepare = true;
}

/** vb2_fill_vb2_v4l2_buffer(): what userspace passed with QBUF, checked (EINVAL). */
function fillVb2V4l2Buffer(q: Vb2Queue, vb: Vb2Buffer, b: CStruct): void {
  const memory = b.u32(V4L2_BUFFER.memory);
  const bytesused = b.u32(V4L2_BUFFER.bytesused);
  const userLength = b.u32(V4L2_BUFFER.length);
  if (q.isOutput) {
    // __verify_length().
    const length = memory === V4L2_MEMORY_USERPTR ? userLength : vb.planes[0]!.length;
    if (bytesused > length)
      throw new KernelError(
        "EINVAL",
        `${q.name}: bytesused ${bytesused} exceeds the plane length ${length}`,
      );
  }
  const up = vb.userPlanes[0]!;
  up.dataOffset = 0;
  if (memory === V4L2_MEMORY_USERPTR) {
    up.userptr = b.u64(V4L2_BUFFER.m);
    up.length = userLength;
  } else if (memory === V4L2_MEMORY_DMABUF) {
    up.fd = b.s32(V4L2_BUFFER.m);
    up.length = userLength;
  } else {
    up.length = vb.planes[0]!.length;
  }
  up.bytesused = q.isOutput ? bytesused || up.length : 0;
  vb.sequence = 0;
  let flags = b.u32(V4L2_BUFFER.flags) & ~V4L2_BUFFER_MASK_FLAGS;
  if (
    (q.timestampFlags & V4L2_BUF_FLAG_TIMESTAMP_MASK) !== V4L2_BUF_FLAG_TIMESTAMP_COPY ||
    !q.isOutput
  )
    flags &= ~V4L2_BUF_FLAG_TSTAMP_SRC_MASK;
  if (q.isOutput) {
    flags &= ~(V4L2_BUF_FLAG_TIMECODE | V4L2_BUF_FLAG_M2M_HOLD_CAPTURE_BUF);
    vb.field = b.u32(V4L2_BUFFER.field);
  } else {
    flags &= ~(V4L2_BUFFER_OUT_FLAGS | V4L2_BUF_FLAG_LAST);
  }
  vb.flags = flags;
}

/** __fill_v4l2_buffer(): the buffer's state as QUERYBUF/QBUF/DQBUF return it. */
export function vb2FillV4l2Buffer(vb: Vb2Buffer, b: CStruct): void {
  const q = vb.queue;
  const plane = vb.planes[0]!;
  b.setU32(V4L2_BUFFER.index, vb.index);
  b.setU32(V4L2_BUFFER.type, vb.type);
  b.setU32(V4L2_BUFFER.memory, vb.memory);
  b.setU32(V4L2_BUFFER.field, vb.field);
  // struct timeval: microseconds, as v4l2_buffer_set_timestamp() truncates.
  const ns = vb.timestamp;
  b.setU64(V4L2_BUFFER.tvSec, Math.floor(ns / 1e9));
  b.setU64(V4L2_BUFFER.tvUsec, Math.floor((ns % 1e9) / 1000));
  b.bytes.fill(0, V4L2_BUFFER.timecode, V4L2_BUFFER.timecode + 16);
  b.setU32(V4L2_BUFFER.sequence, vb.sequence);
  b.setU32(V4L2_BUFFER.reserved2, 0);
  b.setU32(V4L2_BUFFER.requestFd, 0);
  b.setU32(V4L2_BUFFER.length, plane.length);
  b.setU32(V4L2_BUFFER.bytesused, plane.bytesused);
  if (q.memory === V4L2_MEMORY_MMAP) {
    b.setU64(V4L2_BUFFER.m, 0);
    b.setU32(V4L2_BUFFER.m, plane.offset);
  } else if (q.memory === V4L2_MEMORY_USERPTR) {
    b.setU64(V4L2_BUFFER.m, plane.userptr);
  } else if (q.memory === V4L2_MEMORY_DMABUF) {
    b.setU64(V4L2_BUFFER.m, 0);
    b.setS32(V4L2_BUFFER.m, plane.fd);
  }
  let flags = vb.flags & ~V4L2_BUFFER_MASK_FLAGS;
  flags |= q.timestampFlags & V4L2_BUF_FLAG_TIMESTAMP_MASK;
  if ((q.timestampFlags & V4L2_BUF_FLAG_TIMESTAMP_MASK) !== V4L2_BUF_FLAG_TIMESTAMP_COPY) {
    flags &= ~V4L2_BUF_FLAG_TSTAMP_SRC_MASK;
    flags |= q.timestampFlags & V4L2_BUF_FLAG_TSTAMP_SRC_MASK;
  }
  switch (vb.state) {
    case "queued":
    case "active":
      flags |= V4L2_BUF_FLAG_QUEUED;
      break;
    case "in-request":
      flags |= V4L2_BUF_FLAG_IN_REQUEST;
      break;
    case "error":
      flags |= V4L2_BUF_FLAG_ERROR | V4L2_BUF_FLAG_DONE;
      break;
    case "done":
      flags |= V4L2_BUF_FLAG_DONE;
      break;
    default:
      break;
  }
  if ((vb.state === "dequeued" || vb.state === "in-request") && vb.synced && vb.prepared)
    flags |= V4L2_BUF_FLAG_PREPARED;
  if (vb.inUse()) flags |= V4L2_BUF_FLAG_MAPPED;
  b.setU32(V4L2_BUFFER.flags, flags);
}

function checkSinglePlanar(q: Vb2Queue, type: number): void {
  if (V4L2_TYPE_IS_MULTIPLANAR(type))
    throw new KernelError("EINVAL", `${q.name}: multi-planar buffers are not modelled`);
}

/** vb2_querybuf(): EINVAL for a wrong type or index. */
export function vb2Querybuf(q: Vb2Queue, b: CStruct): void {
  const type = b.u32(V4L2_BUFFER.type);
  if (type !== q.type) throw new KernelError("EINVAL", `${q.name}: wrong buffer type ${type}`);
  const vb = q.buffer(b.u32(V4L2_BUFFER.index));
  vb2FillV4l2Buffer(vb, b);
}

/** vb2_queue_or_prepare_buf(): the checks and copy-in shared by QBUF and PREPARE_BUF. */
function queueOrPrepareBuf(q: Vb2Queue, b: CStruct, opname: string): Vb2Buffer {
  const type = b.u32(V4L2_BUFFER.type);
  if (type !== q.type)
    throw new KernelError("EINVAL", `${q.name}: ${opname}: invalid buffer type ${type}`);
  checkSinglePlanar(q, type);
  const index = b.u32(V4L2_BUFFER.index);
  if (q.bufs[index] === undefined)
    throw new KernelError("EINVAL", `${q.name}: ${opname}: no buffer at index ${index}`);
  const memory = b.u32(V4L2_BUFFER.memory);
  if (memory !== q.memory)
    throw new KernelError("EINVAL", `${q.name}: ${opname}: invalid memory type ${memory}`);
  const vb = q.buffer(index);
  const withRequest = (b.u32(V4L2_BUFFER.flags) & V4L2_BUF_FLAG_REQUEST_FD) !== 0;
  if (withRequest && opname === "qbuf" && vb.state !== "dequeued")
    throw new KernelError("EINVAL", `${q.name}: qbuf: buffer is not in dequeued state`);
  if (!vb.prepared) {
    setBufferCacheHints(q, vb, b);
    fillVb2V4l2Buffer(q, vb, b);
  }
  if (opname !== "qbuf" || !withRequest) return vb;
  if (!q.supportsRequests)
    throw new KernelError("EBADR", `${q.name}: qbuf: queue does not support requests`);
  if (q.usesQbuf) throw new KernelError("EBUSY", `${q.name}: qbuf: queue does not use requests`);
  // media_request_get_by_fd(): the model has no media request files, so whatever
  // request_fd names is not one.
  throw new KernelError(
    "EINVAL",
    `${q.name}: qbuf: request_fd ${b.s32(V4L2_BUFFER.requestFd)} is not a media request (the model has none)`,
  );
}

/**
 * __copy_timestamp(): an output buffer of a TIMESTAMP_COPY queue (mem2mem) carries the
 * timestamp userspace gave it, which the driver copies to the destination buffer.
 */
function copyTimestamp(q: Vb2Queue, vb: Vb2Buffer, b: CStruct): void {
  if (!q.isOutput) return;
  if ((q.timestampFlags & V4L2_BUF_FLAG_TIMESTAMP_MASK) !== V4L2_BUF_FLAG_TIMESTAMP_COPY) return;
  vb.timestamp = b.u64(V4L2_BUFFER.tvSec) * 1e9 + b.u64(V4L2_BUFFER.tvUsec) * 1000;
}

/** vb2_fileio_is_active(): the streaming ioctls are EBUSY while read()/write() runs the queue. */
function checkNoFileio(q: Vb2Queue, what: string): void {
  if (q.fileio !== undefined)
    throw new KernelError("EBUSY", `${q.name}: ${what}: file io in progress`);
}

/** vb2_qbuf(). */
export function vb2Qbuf(q: Vb2Queue, b: CStruct, current: Current): void {
  checkNoFileio(q, "qbuf");
  const vb = queueOrPrepareBuf(q, b, "qbuf");
  copyTimestamp(q, vb, b);
  q.qbuf(vb, current);
  vb2FillV4l2Buffer(vb, b);
}

/** vb2_prepare_buf(). */
export function vb2PrepareBuf(q: Vb2Queue, b: CStruct, current: Current): void {
  checkNoFileio(q, "prepare_buf");
  if (b.u32(V4L2_BUFFER.flags) & V4L2_BUF_FLAG_REQUEST_FD)
    throw new KernelError("EINVAL", `${q.name}: prepare_buf: no requests with PREPARE_BUF`);
  const vb = queueOrPrepareBuf(q, b, "prepare_buf");
  q.prepareBuf(vb, current);
  vb2FillV4l2Buffer(vb, b);
}

/** vb2_dqbuf(): fills the struct, then clears V4L2_BUF_FLAG_DONE as the API requires. */
export function vb2Dqbuf(q: Vb2Queue, b: CStruct, nonblocking: boolean): void {
  checkNoFileio(q, "dqbuf");
  const type = b.u32(V4L2_BUFFER.type);
  if (type !== q.type) throw new KernelError("EINVAL", `${q.name}: invalid buffer type ${type}`);
  const vb = q.dqbuf(nonblocking);
  vb2FillV4l2Buffer(vb, b);
  q.dqbufFinish(vb);
  const flags = b.u32(V4L2_BUFFER.flags);
  if (!q.isOutput && flags & V4L2_BUF_FLAG_DONE && flags & V4L2_BUF_FLAG_LAST)
    q.lastBufferDequeued = true;
  b.setU32(V4L2_BUFFER.flags, flags & ~V4L2_BUF_FLAG_DONE);
}

/** The V4L2 file handle (struct v4l2_fh): the queue-owner identity. */
export interface V4l2Fh {
  readonly id: number;
}

/** vb2_queue_is_busy(): the buffers belong to another file handle. */
function queueIsBusy(q: Vb2Queue, fh: V4l2Fh): boolean {
  return q.owner !== undefined && q.owner !== fh;
}

function ensureOwner(q: Vb2Queue, fh: V4l2Fh): void {
  if (queueIsBusy(q, fh))
    throw new KernelError("EBUSY", `${q.name}: the queue's buffers belong to another file handle`);
}

/** vb2_ioctl_reqbufs(): capabilities and flags are written back even when the request fails. */
export function vb2IoctlReqbufs(q: Vb2Queue, fh: V4l2Fh, s: CStruct): void {
  const memory = s.u32(V4L2_REQUESTBUFFERS.memory);
  const type = s.u32(V4L2_REQUESTBUFFERS.type);
  let err: unknown;
  try {
    q.verifyMemoryType(memory, type);
  } catch (e) {
    err = e;
  }
  s.setU32(V4L2_REQUESTBUFFERS.capabilities, vb2FillBufCaps(q));
  const flags = vb2ValidateMemoryFlags(q, memory, s.bytes[V4L2_REQUESTBUFFERS.flags]!);
  s.bytes[V4L2_REQUESTBUFFERS.flags] = flags;
  if (err !== undefined) throw err;
  ensureOwner(q, fh);
  const count = q.reqbufs(memory, flags, s.u32(V4L2_REQUESTBUFFERS.count));
  s.setU32(V4L2_REQUESTBUFFERS.count, count);
  q.owner = count > 0 ? fh : undefined;
}

/** vb2_ioctl_create_bufs(): count 0 only checks memory and type; the size comes from fmt.pix.sizeimage. */
export function vb2IoctlCreateBufs(q: Vb2Queue, fh: V4l2Fh, s: CStruct): void {
  const memory = s.u32(V4L2_CREATE_BUFFERS.memory);
  const fmtOff = V4L2_CREATE_BUFFERS.format;
  const type = s.u32(fmtOff + V4L2_FORMAT_PIX.type);
  let err: unknown;
  try {
    q.verifyMemoryType(memory, type);
  } catch (e) {
    err = e;
  }
  s.setU32(V4L2_CREATE_BUFFERS.index, q.numBuffers);
  s.setU32(V4L2_CREATE_BUFFERS.capabilities, vb2FillBufCaps(q, true));
  s.setU32(V4L2_CREATE_BUFFERS.maxNumBuffers, q.maxNumBuffers);
  const flags = vb2ValidateMemoryFlags(q, memory, s.u32(V4L2_CREATE_BUFFERS.flags));
  s.setU32(V4L2_CREATE_BUFFERS.flags, flags);
  const count = s.u32(V4L2_CREATE_BUFFERS.count);
  if (count === 0) {
    if (err instanceof KernelError && err.code === "EBUSY") return;
    if (err !== undefined) throw err;
    return;
  }
  if (err !== undefined) throw err;
  ensureOwner(q, fh);
  checkSinglePlanar(q, type);
  const sizeimage = s.u32(fmtOff + V4L2_FORMAT_PIX.sizeimage);
  if (sizeimage === 0) throw new KernelError("EINVAL", `${q.name}: CREATE_BUFS with sizeimage 0`);
  const got = q.createBufs(memory, flags, count, [sizeimage]);
  s.setU32(V4L2_CREATE_BUFFERS.count, got.allocated);
  // vb2_core_create_bufs() reports the first index of the range it filled.
  s.setU32(V4L2_CREATE_BUFFERS.index, got.first);
  q.owner = fh;
}

/**
 * vb2_ioctl_remove_bufs() (videobuf2-v4l2.c, 6.12): EINVAL for another buffer type
 * (checked first), count 0 does nothing, EBUSY from a file handle that does not own the
 * queue or while read()/write() emulation runs; the rest is vb2_core_remove_bufs.
 */
export function vb2IoctlRemoveBufs(q: Vb2Queue, fh: V4l2Fh, s: CStruct): void {
  const type = s.u32(V4L2_REMOVE_BUFFERS.type);
  if (type !== q.type)
    throw new KernelError("EINVAL", `${q.name}: REMOVE_BUFS with buffer type ${type}`);
  const count = s.u32(V4L2_REMOVE_BUFFERS.count);
  if (count === 0) return;
  ensureOwner(q, fh);
  if (q.fileio !== undefined) throw new KernelError("EBUSY", `${q.name}: file io in progress`);
  q.removeBufs(s.u32(V4L2_REMOVE_BUFFERS.index), count);
}

/** vb2_ioctl_querybuf(): anyone may query. */
export function vb2IoctlQuerybuf(q: Vb2Queue, s: CStruct): void {
  vb2Querybuf(q, s);
}

/** vb2_ioctl_qbuf(). */
export function vb2IoctlQbuf(q: Vb2Queue, fh: V4l2Fh, s: CStruct, current: Current): void {
  ensureOwner(q, fh);
  vb2Qbuf(q, s, current);
}

/** vb2_ioctl_prepare_buf(). */
export function vb2IoctlPrepareBuf(q: Vb2Queue, fh: V4l2Fh, s: CStruct, current: Current): void {
  ensureOwner(q, fh);
  vb2PrepareBuf(q, s, current);
}

/** vb2_ioctl_dqbuf(): O_NONBLOCK on the file makes an empty queue EAGAIN. */
export function vb2IoctlDqbuf(q: Vb2Queue, fh: V4l2Fh, s: CStruct, file: File): void {
  ensureOwner(q, fh);
  vb2Dqbuf(q, s, (file.flags & O_NONBLOCK) !== 0);
}

/** vb2_ioctl_streamon(). */
export function vb2IoctlStreamon(q: Vb2Queue, fh: V4l2Fh, type: number): void {
  ensureOwner(q, fh);
  checkNoFileio(q, "streamon");
  q.streamon(type);
}

/** vb2_ioctl_streamoff(). */
export function vb2IoctlStreamoff(q: Vb2Queue, fh: V4l2Fh, type: number): void {
  ensureOwner(q, fh);
  checkNoFileio(q, "streamoff");
  q.streamoff(type);
}

/** vb2_ioctl_expbuf(). */
export function vb2IoctlExpbuf(q: Vb2Queue, fh: V4l2Fh, s: CStruct, current: Current): void {
  ensureOwner(q, fh);
  checkNoFileio(q, "expbuf");
  const fd = q.expbuf(
    s.u32(V4L2_EXPORTBUFFER.type),
    s.u32(V4L2_EXPORTBUFFER.index),
    s.u32(V4L2_EXPORTBUFFER.plane),
    s.u32(V4L2_EXPORTBUFFER.flags),
    current,
  );
  s.setS32(V4L2_EXPORTBUFFER.fd, fd);
}

/** _vb2_fop_release(): the owner's close releases the queue (cancel and free). */
export function vb2FopRelease(q: Vb2Queue, fh: V4l2Fh): void {
  if (q.owner === fh) {
    q.release();
    q.owner = undefined;
  }
}

/** vb2_fop_read(): EINVAL without VB2_READ, EBUSY when another file handle owns the queue. */
export function vb2FopRead(
  q: Vb2Queue,
  fh: V4l2Fh,
  len: number,
  nonblocking: boolean,
  current: Current,
): Uint8Array {
  return asFileioOwner(q, fh, VB2_READ, "read", () => vb2Read(q, len, nonblocking, current));
}

/** vb2_fop_write(). */
export function vb2FopWrite(
  q: Vb2Queue,
  fh: V4l2Fh,
  data: Uint8Array,
  nonblocking: boolean,
  current: Current,
): number {
  return asFileioOwner(q, fh, VB2_WRITE, "write", () => vb2Write(q, data, nonblocking, current));
}

/**
 * What vb2_fop_read and vb2_fop_write share: EINVAL without the io mode, EBUSY when
 * another file handle owns the queue; the caller owns it while the emulator runs.
 */
function asFileioOwner<T>(q: Vb2Queue, fh: V4l2Fh, mode: number, what: string, io: () => T): T {
  if ((q.ioModes & mode) === 0)
    throw new KernelError("EINVAL", `${q.name}: no ${what}() on this queue`);
  ensureOwner(q, fh);
  try {
    return io();
  } finally {
    // Only a started emulator makes the caller the owner; a failed start leaves the owner
    // as it was (clearing it would leak the buffers of a CREATE_BUFS/REQBUFS owner, whose
    // close then no longer releases the queue).
    if (q.fileio !== undefined) q.owner = fh;
  }
}

/**
 * vb2_fop_poll(): vb2_core_poll(), which first starts read()/write() on a queue without
 * buffers (POLLERR when that fails); the poller then owns the queue.
 */
export function vb2FopPoll(q: Vb2Queue, fh: V4l2Fh, events: number): number {
  const wantIn = (events & (POLLIN | POLLRDNORM)) !== 0;
  const wantOut = (events & (POLLOUT | POLLWRNORM)) !== 0;
  if (!q.isOutput && !wantIn) return 0;
  if (q.isOutput && !wantOut) return 0;
  try {
    if (vb2PollStartsFileio(q, wantIn, wantOut)) {
      q.owner = fh;
      // Writing to an output queue can start at once.
      if (q.isOutput) return POLLOUT | POLLWRNORM;
    }
  } catch {
    return POLLERR;
  }
  // write() may go on while fewer buffers are queued than there are.
  if (q.isOutput && q.fileio !== undefined && q.streaming && !q.error)
    if (q.queuedCount < q.numBuffers) return POLLOUT | POLLWRNORM;
  return q.poll(events);
}
