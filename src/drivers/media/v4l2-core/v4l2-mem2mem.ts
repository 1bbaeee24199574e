/**
 * The V4L2 memory-to-memory framework (drivers/media/v4l2-core/v4l2-mem2mem.c,
 * include/media/v4l2-mem2mem.h): a device that reads a buffer and writes another — a
 * scaler, an ISP, a codec — behind one /dev/videoN node.
 *
 * Every open of the node gets its own context (struct v4l2_m2m_ctx) with two vb2 queues:
 * OUTPUT (the source, which userspace fills and the device reads) and CAPTURE (the
 * destination, which the device writes and userspace dequeues). Buffers queued to the
 * driver wait on the context's ready lists. When both queues stream and both have a
 * ready buffer (and the driver's job_ready agrees), the context goes on the device's job
 * queue; the device runs one job at a time (device_run), and the driver ends it with
 * v4l2_m2m_job_finish, after which the next context (or this one again) is scheduled.
 *
 * The ioctl helpers (v4l2_m2m_ioctl_*) pick the queue by the buffer type, call the vb2
 * helpers and try to schedule after QBUF, PREPARE_BUF and STREAMON. Both queues give
 * their MMAP buffers mmap offsets from 0, so the CAPTURE queue's are reported with
 * DST_QUEUE_OFF_BASE added (QUERYBUF, QBUF, DQBUF, PREPARE_BUF) and mmap() picks the
 * queue by it. poll() reports EPOLLOUT for a done source buffer, EPOLLIN for a done
 * destination buffer, EPOLLERR when neither queue streams with a buffer queued.
 *
 * How a driver uses it (vim2m.ts and simenc.ts are the examples):
 * - probe: `new V4l2M2mDev(ops, machine)`, a VideoDevice with vflDir "m2m",
 *   `ioctlOps.buffers = v4l2M2mBufferIoctls` and `fops = v4l2M2mFops(open)`;
 * - open: `new V4l2M2mCtx(m2mDev, makeQueues)` with its two Vb2Queues, whose buf_queue
 *   is {@link V4l2M2mCtx.bufQueue} and whose stop_streaming returns the ready buffers
 *   with {@link V4l2M2mCtx.returnBuffers};
 * - device_run(ctx): take `ctx.nextSrcBuf()` / `ctx.nextDstBuf()`, DMA, then
 *   `ctx.srcBufRemove()`, `ctx.dstBufRemove()`, vb2_buffer_done both, and
 *   `m2mDev.jobFinish(ctx)`.
 */

import { KernelError } from "../../../errno.js";
import { POLLERR, POLLIN, POLLOUT } from "../../../include/uapi/fcntl.js";
import type { CStruct } from "../../../include/uapi/struct.js";
import {
  V4L2_BUF_TYPE_VIDEO_CAPTURE,
  V4L2_BUF_TYPE_VIDEO_OUTPUT,
  V4L2_BUFFER,
  V4L2_CREATE_BUFFERS,
  V4L2_EXPORTBUFFER,
  V4L2_FORMAT_PIX,
  V4L2_MEMORY_MMAP,
  V4L2_REQUESTBUFFERS,
  V4L2_TYPE_IS_OUTPUT,
} from "../../../include/uapi/videodev2.js";
import type { Machine } from "../../../machine/machine.js";
import { PAGE_SIZE } from "../../../machine/memory.js";
import type { Vma } from "../../../vfs/file.js";
import {
  POLLRDNORM,
  POLLWRNORM,
  type Vb2Buffer,
  type Vb2Queue,
} from "../videobuf2/videobuf2-core.js";
import {
  type V4l2Fh,
  vb2FopRelease,
  vb2IoctlCreateBufs,
  vb2IoctlDqbuf,
  vb2IoctlExpbuf,
  vb2IoctlPrepareBuf,
  vb2IoctlQbuf,
  vb2IoctlQuerybuf,
  vb2IoctlReqbufs,
  vb2IoctlStreamoff,
  vb2IoctlStreamon,
} from "../videobuf2/videobuf2-v4l2.js";
import type { V4l2FileHandle, V4l2FileOps } from "./v4l2-dev.js";
import type { V4l2BufferIoctls } from "./v4l2-ioctl.js";

/** Offset base of the CAPTURE queue's mmap cookies (1 << 30). */
export const DST_QUEUE_OFF_BASE = 1 << 30;

/** job_flags bits. */
const TRANS_QUEUED = 1 << 0;
const TRANS_RUNNING = 1 << 1;
const TRANS_ABORT = 1 << 2;

/** struct v4l2_m2m_ops: what the driver does with a job. */
export interface V4l2M2mOps {
  /** device_run: start the context's job; the driver calls jobFinish when it ends. */
  deviceRun(ctx: V4l2M2mCtx): void;
  /** job_ready: whether the context has enough to run (default: one buffer on each queue). */
  jobReady?(ctx: V4l2M2mCtx): boolean;
  /** job_abort: a running job should end soon (it still calls jobFinish). */
  jobAbort?(ctx: V4l2M2mCtx): void;
}

/** struct v4l2_m2m_dev: one per device, one job running at a time. */
export class V4l2M2mDev {
  /** curr_ctx: the context whose job is running. */
  currCtx: V4l2M2mCtx | undefined;
  /** job_queue: contexts waiting to run, in order. */
  readonly jobQueue: V4l2M2mCtx[] = [];
  /** Jobs started (device_run calls) since probe. */
  jobsRun = 0;

  constructor(
    readonly ops: V4l2M2mOps,
    readonly machine: Machine,
  ) {}

  /** v4l2_m2m_try_run(): run the first queued context unless one is running. */
  tryRun(): void {
    if (this.currCtx !== undefined) return;
    const ctx = this.jobQueue[0];
    if (ctx === undefined) return;
    this.currCtx = ctx;
    ctx.jobFlags |= TRANS_RUNNING;
    this.jobsRun++;
    this.ops.deviceRun(ctx);
  }

  /**
   * v4l2_m2m_try_schedule(): queue `ctx` for a job when both its queues stream, both have
   * a ready buffer, it is not queued or aborted already and the driver is ready.
   */
  trySchedule(ctx: V4l2M2mCtx): void {
    if (!ctx.outQ.q.streaming || !ctx.capQ.q.streaming) return;
    if (ctx.jobFlags & (TRANS_ABORT | TRANS_QUEUED)) return;
    if (ctx.outQ.rdyQueue.length === 0 && !ctx.outQ.buffered) return;
    if (ctx.capQ.rdyQueue.length === 0 && !ctx.capQ.buffered) return;
    if (this.ops.jobReady !== undefined && !this.ops.jobReady(ctx)) return;
    this.jobQueue.push(ctx);
    ctx.jobFlags |= TRANS_QUEUED;
    this.tryRun();
  }

  /**
   * v4l2_m2m_job_finish(): the driver is done with `ctx`'s job (its buffers already
   * returned with vb2_buffer_done); schedule it again and run the next job.
   */
  jobFinish(ctx: V4l2M2mCtx): void {
    if (this.currCtx !== ctx) return;
    this.dequeue(ctx);
    ctx.jobFlags &= ~(TRANS_QUEUED | TRANS_RUNNING);
    this.currCtx = undefined;
    this.trySchedule(ctx);
    this.tryRun();
  }

  /**
   * v4l2_m2m_cancel_job(): at STREAMOFF or close. A running job is asked to abort and
   * waited for (on the virtual clock); a queued one leaves the job queue.
   */
  cancelJob(ctx: V4l2M2mCtx): void {
    ctx.jobFlags |= TRANS_ABORT;
    if (ctx.jobFlags & TRANS_RUNNING) {
      this.ops.jobAbort?.(ctx);
      this.machine.clock.runUntilCondition(() => (ctx.jobFlags & TRANS_RUNNING) === 0);
    } else if (ctx.jobFlags & TRANS_QUEUED) {
      this.dequeue(ctx);
      ctx.jobFlags &= ~(TRANS_QUEUED | TRANS_RUNNING);
    }
  }

  /** Takes `ctx` off the job queue. */
  dequeue(ctx: V4l2M2mCtx): void {
    const i = this.jobQueue.indexOf(ctx);
    if (i >= 0) this.jobQueue.splice(i, 1);
  }
}

/** struct v4l2_m2m_queue_ctx: one queue of a context and its buffers ready for the device. */
export class V4l2M2mQueueCtx {
  /** rdy_queue: buffers the driver got through buf_queue and has not yet used. */
  readonly rdyQueue: Vb2Buffer[] = [];
  /** buffered: the device keeps its own copy, a job needs no ready buffer (codecs). */
  buffered = false;

  constructor(readonly q: Vb2Queue) {}
}

/** struct v4l2_m2m_ctx: one open file's pair of queues and its job state. */
export class V4l2M2mCtx {
  readonly outQ: V4l2M2mQueueCtx;
  readonly capQ: V4l2M2mQueueCtx;
  jobFlags = 0;

  /**
   * v4l2_m2m_ctx_init(): `queueInit` builds the source (OUTPUT) and destination
   * (CAPTURE) vb2 queues for this context (the driver's queue_init).
   */
  constructor(
    readonly m2mDev: V4l2M2mDev,
    queueInit: (ctx: V4l2M2mCtx) => { src: Vb2Queue; dst: Vb2Queue },
  ) {
    const { src, dst } = queueInit(this);
    this.outQ = new V4l2M2mQueueCtx(src);
    this.capQ = new V4l2M2mQueueCtx(dst);
  }

  /** v4l2_m2m_get_vq(): the queue of a buffer type (OUTPUT types: source). */
  queue(type: number): Vb2Queue {
    return this.queueCtx(type).q;
  }

  queueCtx(type: number): V4l2M2mQueueCtx {
    return V4L2_TYPE_IS_OUTPUT(type) ? this.outQ : this.capQ;
  }

  /** v4l2_m2m_buf_queue(): the driver's buf_queue puts the buffer on its ready list. */
  bufQueue(vb: Vb2Buffer): void {
    this.queueCtx(vb.type).rdyQueue.push(vb);
  }

  /** v4l2_m2m_next_src_buf(). */
  nextSrcBuf(): Vb2Buffer | undefined {
    return this.outQ.rdyQueue[0];
  }

  /** v4l2_m2m_next_dst_buf(). */
  nextDstBuf(): Vb2Buffer | undefined {
    return this.capQ.rdyQueue[0];
  }

  /** v4l2_m2m_src_buf_remove(). */
  srcBufRemove(): Vb2Buffer | undefined {
    return this.outQ.rdyQueue.shift();
  }

  /** v4l2_m2m_dst_buf_remove(). */
  dstBufRemove(): Vb2Buffer | undefined {
    return this.capQ.rdyQueue.shift();
  }

  /** A driver's stop_streaming: every ready buffer of `q` back with ERROR. */
  returnBuffers(q: Vb2Queue): void {
    const qc = q === this.outQ.q ? this.outQ : this.capQ;
    for (const vb of qc.rdyQueue.splice(0)) q.bufferDone(vb, "error");
  }

  /** v4l2_m2m_streamoff(): cancel the job, stop the queue, drop its ready list. */
  streamoff(fh: V4l2Fh, type: number): void {
    this.m2mDev.cancelJob(this);
    const qc = this.queueCtx(type);
    vb2IoctlStreamoff(qc.q, fh, type);
    this.m2mDev.dequeue(this);
    this.jobFlags = 0;
    qc.rdyQueue.length = 0;
    if (this.m2mDev.currCtx === this) this.m2mDev.currCtx = undefined;
  }

  /** v4l2_m2m_ctx_release(): at the last close: cancel the job, free both queues. */
  release(fh: V4l2Fh): void {
    this.m2mDev.cancelJob(this);
    vb2FopRelease(this.capQ.q, fh);
    vb2FopRelease(this.outQ.q, fh);
    // An unowned queue (buffers never requested) has nothing to free.
    this.outQ.rdyQueue.length = 0;
    this.capQ.rdyQueue.length = 0;
  }

  /** v4l2_m2m_poll() (the data part; no V4L2 events are modelled). */
  poll(events: number): number {
    const src = this.outQ.q;
    const dst = this.capQ.q;
    if (
      (!src.streaming || src.error || src.queuedCount === 0) &&
      (!dst.streaming || dst.error || (dst.queuedCount === 0 && !dst.lastBufferDequeued))
    )
      return POLLERR;
    let rc = 0;
    if (events & (POLLOUT | POLLWRNORM) && src.doneList.length > 0) rc |= POLLOUT | POLLWRNORM;
    if (events & (POLLIN | POLLRDNORM) && (dst.doneList.length > 0 || dst.lastBufferDequeued))
      rc |= POLLIN | POLLRDNORM;
    return rc;
  }

  /** v4l2_m2m_mmap(): offsets from DST_QUEUE_OFF_BASE up are the CAPTURE queue's. */
  mmap(vma: Vma): void {
    if (vma.pgoff * PAGE_SIZE < DST_QUEUE_OFF_BASE) {
      this.outQ.q.mmap(vma);
    } else {
      vma.pgoff -= DST_QUEUE_OFF_BASE / PAGE_SIZE;
      this.capQ.q.mmap(vma);
    }
  }
}

/** The m2m context of an open file: ENOTTY-safe lookup for the helpers below. */
function ctxOf(fh: V4l2Fh): V4l2M2mCtx {
  const ctx = (fh as V4l2FileHandle).m2mCtx;
  if (ctx === undefined) throw new KernelError("ENOTTY", "not a mem2mem file handle");
  return ctx;
}

/** v4l2_m2m_adjust_mem_offset(): a CAPTURE MMAP buffer's offset as userspace sees it. */
function adjustMemOffset(q: Vb2Queue, s: CStruct): void {
  if (s.u32(V4L2_BUFFER.memory) !== V4L2_MEMORY_MMAP || V4L2_TYPE_IS_OUTPUT(q.type)) return;
  s.setU32(V4L2_BUFFER.m, s.u32(V4L2_BUFFER.m) + DST_QUEUE_OFF_BASE);
}

/**
 * The v4l2_m2m_ioctl_* helpers an m2m driver puts in its ioctl ops: the queue by buffer
 * type, scheduling after QBUF/PREPARE_BUF/STREAMON, the CAPTURE offset base.
 */
export const v4l2M2mBufferIoctls: V4l2BufferIoctls = {
  reqbufs: (_vdev, fh, s) =>
    vb2IoctlReqbufs(ctxOf(fh).queue(s.u32(V4L2_REQUESTBUFFERS.type)), fh, s),
  createBufs: (_vdev, fh, s) =>
    vb2IoctlCreateBufs(
      ctxOf(fh).queue(s.u32(V4L2_CREATE_BUFFERS.format + V4L2_FORMAT_PIX.type)),
      fh,
      s,
    ),
  querybuf: (_vdev, fh, s) => {
    const q = ctxOf(fh).queue(s.u32(V4L2_BUFFER.type));
    vb2IoctlQuerybuf(q, s);
    adjustMemOffset(q, s);
  },
  qbuf: (_vdev, fh, s, _file, current) => {
    const ctx = ctxOf(fh);
    const q = ctx.queue(s.u32(V4L2_BUFFER.type));
    vb2IoctlQbuf(q, fh, s, current);
    adjustMemOffset(q, s);
    ctx.m2mDev.trySchedule(ctx);
  },
  prepareBuf: (_vdev, fh, s, _file, current) => {
    const ctx = ctxOf(fh);
    const q = ctx.queue(s.u32(V4L2_BUFFER.type));
    vb2IoctlPrepareBuf(q, fh, s, current);
    adjustMemOffset(q, s);
    ctx.m2mDev.trySchedule(ctx);
  },
  dqbuf: (_vdev, fh, s, file) => {
    const q = ctxOf(fh).queue(s.u32(V4L2_BUFFER.type));
    vb2IoctlDqbuf(q, fh, s, file);
    adjustMemOffset(q, s);
  },
  expbuf: (_vdev, fh, s, _file, current) =>
    vb2IoctlExpbuf(ctxOf(fh).queue(s.u32(V4L2_EXPORTBUFFER.type)), fh, s, current),
  streamon: (_vdev, fh, s) => {
    const ctx = ctxOf(fh);
    vb2IoctlStreamon(ctx.queue(s.u32(0)), fh, s.u32(0));
    ctx.m2mDev.trySchedule(ctx);
  },
  streamoff: (_vdev, fh, s) => ctxOf(fh).streamoff(fh, s.u32(0)),
};

/**
 * An m2m driver's v4l2_file_operations: `open` makes the file's context (the driver's
 * open: v4l2_m2m_ctx_init), release frees it, poll and mmap are v4l2_m2m_fop_poll/mmap.
 */
export function v4l2M2mFops(open: (fh: V4l2FileHandle) => V4l2M2mCtx): V4l2FileOps {
  return {
    open(fh) {
      fh.m2mCtx = open(fh);
    },
    release(fh) {
      fh.m2mCtx?.release(fh);
    },
    mmap: (fh, vma) => ctxOf(fh).mmap(vma),
    poll: (fh, events) => ctxOf(fh).poll(events),
  };
}

/** Whether `type` is a buffer type an m2m node takes (check_fmt for VFL_DIR_M2M). */
export function v4l2M2mTypeOk(type: number): boolean {
  return type === V4L2_BUF_TYPE_VIDEO_OUTPUT || type === V4L2_BUF_TYPE_VIDEO_CAPTURE;
}
