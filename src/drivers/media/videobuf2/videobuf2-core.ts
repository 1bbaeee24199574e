/**
 * videobuf2 core (drivers/media/common/videobuf2/videobuf2-core.c,
 * include/media/videobuf2-core.h): the buffer queue every V4L2 driver uses.
 *
 * A queue owns up to max_num_buffers (VB2_MAX_FRAME unless the driver says more) buffers
 * of one memory type (MMAP, USERPTR, DMABUF).
 * Each buffer moves through the states
 *
 *   DEQUEUED --QBUF--> (PREPARING) --> QUEUED --streaming--> ACTIVE --done--> DONE/ERROR --DQBUF--> DEQUEUED
 *
 * While QUEUED/ACTIVE/DONE the driver and its device own the buffer; after DQBUF the
 * application does. The allocator (videobuf2-dma-contig / -dma-sg) does the cache
 * maintenance in `prepare` (at QBUF, before the device) and `finish` (at buffer_done,
 * before the application), unless the buffer's skip_cache_sync_on_* bits say not to.
 * An imported dma-buf (DMABUF) is mapped at the QBUF that attaches it and stays mapped
 * across DQBUF and later QBUFs of the same dma-buf, as in Linux 6.12; its CPU access is
 * bracketed by DMA_BUF_IOCTL_SYNC, never by vb2.
 *
 * Errors are thrown as KernelError with the errno vb2 returns.
 */

import type { DmaDirection } from "../../../dma/direction.js";
import { DMA_BIDIRECTIONAL, DMA_FROM_DEVICE, DMA_TO_DEVICE } from "../../../dma/direction.js";
import type { DmaBuf } from "../../../dma-buf/dma-buf.js";
import { dmaBufFd, dmaBufGet } from "../../../dma-buf/dma-buf.js";
import { ensure, KernelError } from "../../../errno.js";
import { O_ACCMODE, O_CLOEXEC, POLLERR, POLLIN, POLLOUT } from "../../../include/uapi/fcntl.js";
import {
  V4L2_MEMORY_DMABUF,
  V4L2_MEMORY_FLAG_NON_COHERENT,
  V4L2_MEMORY_MMAP,
  V4L2_MEMORY_USERPTR,
  VIDEO_MAX_FRAME,
} from "../../../include/uapi/videodev2.js";
import type { CpuMapping } from "../../../machine/cpu.js";
import type { DmaDevice, DmaSegment } from "../../../machine/device.js";
import type { Machine } from "../../../machine/machine.js";
import { PAGE_SIZE } from "../../../machine/memory.js";
import { SimulationError } from "../../../machine/outcome.js";
import type { Current, Vma } from "../../../vfs/file.js";
import type { Vb2FileioState } from "./videobuf2-fileio.js";

/** enum vb2_buffer_state. */
export type Vb2BufferState =
  | "dequeued"
  | "in-request"
  | "preparing"
  | "queued"
  | "active"
  | "done"
  | "error";

/** VB2_MEMORY_UNKNOWN; the other vb2 memory types equal V4L2_MEMORY_*. */
export const VB2_MEMORY_UNKNOWN = 0;
export const VB2_MAX_FRAME = VIDEO_MAX_FRAME;
/** PLANE_INDEX_BITS: up to 8 planes in an mmap cookie. */
const PLANE_INDEX_COUNT = 8;
/** PLANE_INDEX_SHIFT = PAGE_SHIFT + PLANE_INDEX_BITS. */
const PLANE_INDEX_SHIFT = 12 + 3;
/** MAX_BUFFER_INDEX = BIT(30 - PLANE_INDEX_SHIFT): 32768 buffers with 4 KiB pages. */
export const MAX_BUFFER_INDEX = 2 ** (30 - PLANE_INDEX_SHIFT);

/** enum vb2_io_modes. */
export const VB2_MMAP = 1 << 0;
export const VB2_USERPTR = 1 << 1;
export const VB2_READ = 1 << 2;
export const VB2_WRITE = 1 << 3;
export const VB2_DMABUF = 1 << 4;

/** EPOLLRDNORM / EPOLLWRNORM (include/uapi/asm-generic/poll.h). */
export const POLLRDNORM = 0x0040;
export const POLLWRNORM = 0x0100;

/**
 * A plane's memory as the allocator hands it to vb2 (the mem_priv plus the vb2_mem_ops
 * that act on it). Which methods exist depends on how it was made: `alloc` (MMAP),
 * `getUserptr` (USERPTR) or `attachDmabuf` (DMABUF).
 */
export interface Vb2PlaneMem {
  readonly size: number;
  /** Where the device reads or writes the plane (vb2_dma_contig_plane_dma_addr, vb2_dma_sg_plane_desc). */
  dmaSegments(): DmaSegment[];
  /** prepare memop: cache maintenance before the device owns the plane. */
  prepare(): void;
  /** finish memop: cache maintenance before the CPU owns the plane again. */
  finish(): void;
  /** num_users memop: 1 plus the mmaps and exported dma-bufs holding the memory. */
  numUsers(): number;
  /** put memop (MMAP): drops vb2's reference; the memory goes with the last user. */
  put?(): void;
  /** mmap memop (MMAP). */
  mmap?(vma: Vma): void;
  /** vaddr memop: the kernel's mapping of the plane (vb2_plane_vaddr), for read()/write(). */
  vaddr?(): CpuMapping | undefined;
  /** get_dmabuf memop (MMAP): exports the plane; EXPBUF installs the fd. */
  getDmabuf?(flags: number): DmaBuf;
  /** put_userptr memop (USERPTR). */
  putUserptr?(): void;
  /** map_dmabuf memop (DMABUF): dma_buf_map_attachment, at buffer prepare. */
  mapDmabuf?(): void;
  /** unmap_dmabuf memop (DMABUF). */
  unmapDmabuf?(): void;
  /** detach_dmabuf memop (DMABUF). */
  detachDmabuf?(): void;
}

/** struct vb2_mem_ops: how an allocator makes plane memory of each kind. */
export interface Vb2MemOps {
  readonly name: string;
  /** alloc memop: `size` bytes (page aligned) for an MMAP plane. Throws ENOMEM. */
  alloc(vb: Vb2Buffer, dev: DmaDevice, size: number): Vb2PlaneMem;
  /** get_userptr memop: pins the caller's pages at `vaddr`. */
  getUserptr(
    vb: Vb2Buffer,
    dev: DmaDevice,
    vaddr: number,
    size: number,
    current: Current,
  ): Vb2PlaneMem;
  /** attach_dmabuf memop: EFAULT when the dma-buf is smaller than `size`. */
  attachDmabuf(vb: Vb2Buffer, dev: DmaDevice, dbuf: DmaBuf, size: number): Vb2PlaneMem;
}

/** What queue_setup is asked and answers (num_buffers, num_planes, sizes[]). */
export interface Vb2QueueSetup {
  numBuffers: number;
  /** 0 from REQBUFS; the requested count from CREATE_BUFS, with `sizes` filled in. */
  numPlanes: number;
  sizes: number[];
}

/** struct vb2_ops: the driver's callbacks. */
export interface Vb2Ops {
  /** queue_setup: fill in planes and sizes (or check the requested ones: EINVAL). */
  queueSetup(q: Vb2Queue, setup: Vb2QueueSetup): void;
  bufInit?(vb: Vb2Buffer): void;
  /** buf_prepare: checks the plane fits and sets the payload; throws EINVAL. */
  bufPrepare?(vb: Vb2Buffer): void;
  bufFinish?(vb: Vb2Buffer): void;
  bufCleanup?(vb: Vb2Buffer): void;
  /** buf_queue: the buffer now belongs to the driver. */
  bufQueue(vb: Vb2Buffer): void;
  /** start_streaming: on failure return buffers with vb2_buffer_done(QUEUED) and throw. */
  startStreaming?(q: Vb2Queue, count: number): void;
  /** stop_streaming: stop the DMA, return every buffer with vb2_buffer_done(ERROR). */
  stopStreaming?(q: Vb2Queue): void;
}

/** struct vb2_plane. */
export interface Vb2Plane {
  mem: Vb2PlaneMem | undefined;
  dbuf: DmaBuf | undefined;
  dbufMapped: boolean;
  bytesused: number;
  length: number;
  minLength: number;
  /** m.offset: the mmap cookie (MMAP). */
  offset: number;
  /** m.userptr (USERPTR). */
  userptr: number;
  /** m.fd (DMABUF). */
  fd: number;
  dataOffset: number;
}

/** What userspace passed with QBUF for one plane (vb2_v4l2_buffer.planes[]). */
export interface Vb2UserPlane {
  bytesused: number;
  length: number;
  userptr: number;
  fd: number;
  dataOffset: number;
}

function emptyPlane(): Vb2Plane {
  return {
    mem: undefined,
    dbuf: undefined,
    dbufMapped: false,
    bytesused: 0,
    length: 0,
    minLength: 0,
    offset: 0,
    userptr: 0,
    fd: 0,
    dataOffset: 0,
  };
}

/** struct vb2_buffer with struct vb2_v4l2_buffer's fields folded in. */
export class Vb2Buffer {
  state: Vb2BufferState = "dequeued";
  /** Buffer prepared (memory acquired, buf_prepare done) and not yet dequeued. */
  prepared = false;
  /** prepare memop called and finish not yet. */
  synced = false;
  skipCacheSyncOnPrepare = false;
  skipCacheSyncOnFinish = false;
  readonly planes: Vb2Plane[];
  /** What userspace passed with the last QBUF/PREPARE_BUF. */
  userPlanes: Vb2UserPlane[];
  /** Timestamp in nanoseconds of the virtual clock. */
  timestamp = 0;
  /** vb2_v4l2_buffer: flags userspace set that vb2 keeps (hints, timecode...). */
  flags = 0;
  field = 0;
  sequence = 0;
  /** The dma-buf VIDIOC_EXPBUF last made of this buffer: names its track in a trace. */
  exported: DmaBuf | undefined;

  constructor(
    readonly queue: Vb2Queue,
    readonly index: number,
    readonly type: number,
    readonly memory: number,
    readonly numPlanes: number,
  ) {
    this.planes = Array.from({ length: numPlanes }, emptyPlane);
    this.userPlanes = Array.from({ length: numPlanes }, () => ({
      bytesused: 0,
      length: 0,
      userptr: 0,
      fd: 0,
      dataOffset: 0,
    }));
  }

  /** The buffer's track in a trace: the dma-buf it was imported from or exported as, else "QUEUE buffer N". */
  get traceTrack(): string {
    return (
      (this.planes[0]?.dbuf ?? this.exported)?.traceTrack ??
      `${this.queue.name} buffer ${this.index}`
    );
  }

  /** vb2_plane_size(). */
  planeSize(p = 0): number {
    return this.planes[p]?.length ?? 0;
  }

  /** vb2_set_plane_payload(). */
  setPlanePayload(p: number, size: number): void {
    const plane = this.planes[p];
    if (plane !== undefined) plane.bytesused = size;
  }

  /** vb2_get_plane_payload(). */
  planePayload(p = 0): number {
    return this.planes[p]?.bytesused ?? 0;
  }

  /** vb2_buffer_in_use(): someone besides vb2 holds the memory (an mmap, an exported dma-buf). */
  inUse(): boolean {
    return this.planes.some((p) => p.mem !== undefined && p.mem.numUsers() > 1);
  }
}

/** How a driver sets a queue up (the fields of struct vb2_queue a driver fills in). */
export interface Vb2QueueConfig {
  readonly name: string;
  readonly type: number;
  readonly isOutput: boolean;
  /** VB2_MMAP | VB2_USERPTR | VB2_DMABUF ... */
  readonly ioModes: number;
  readonly memOps: Vb2MemOps;
  readonly ops: Vb2Ops;
  /** q->dev: the device whose DMA API the allocator uses. */
  readonly dev: DmaDevice;
  readonly machine: Machine;
  /** q->allow_cache_hints: honour NO_CACHE_* flags and V4L2_MEMORY_FLAG_NON_COHERENT for MMAP. */
  readonly allowCacheHints: boolean;
  /** q->min_queued_buffers: start_streaming waits for this many queued buffers. */
  readonly minQueuedBuffers: number;
  /** q->min_reqbufs_allocation: REQBUFS allocates at least this many (default min_queued_buffers + 1). */
  readonly minReqbufsAllocation?: number;
  /** q->max_num_buffers: the queue's limit (default VB2_MAX_FRAME, at most MAX_BUFFER_INDEX). */
  readonly maxNumBuffers?: number;
  /** V4L2_BUF_FLAG_TIMESTAMP_* | V4L2_BUF_FLAG_TSTAMP_SRC_*. */
  readonly timestampFlags: number;
  /** q->bidirectional: map DMA_BIDIRECTIONAL. */
  readonly bidirectional?: boolean;
  /**
   * q->supports_requests: the queue takes buffers in media requests
   * (V4L2_BUF_CAP_SUPPORTS_REQUESTS). The model has no media request objects, so no
   * request fd can be given; the flag decides the capability and QBUF's errnos.
   */
  readonly supportsRequests?: boolean;
}

/** struct vb2_queue and the vb2_core_* operations on it. */
export class Vb2Queue {
  readonly name: string;
  readonly type: number;
  readonly isOutput: boolean;
  readonly ioModes: number;
  readonly memOps: Vb2MemOps;
  readonly ops: Vb2Ops;
  readonly dev: DmaDevice;
  readonly machine: Machine;
  readonly allowCacheHints: boolean;
  readonly minQueuedBuffers: number;
  /** q->min_reqbufs_allocation (the driver's, or min_queued_buffers + 1 as vb2_core_queue_init sets it). */
  readonly minReqbufsAllocation: number;
  /** q->max_num_buffers. */
  readonly maxNumBuffers: number;
  readonly timestampFlags: number;
  readonly dmaDir: DmaDirection;
  readonly supportsRequests: boolean;
  /** The file handle that allocated the buffers (q->owner). */
  owner: unknown = undefined;
  /** q->fileio: the read()/write() emulator's state while it runs (./videobuf2-fileio.ts). */
  fileio: Vb2FileioState | undefined = undefined;
  /** q->uses_qbuf: a buffer was queued without a request since the last cancel. */
  usesQbuf = false;

  memory = VB2_MEMORY_UNKNOWN;
  nonCoherentMem = false;
  /**
   * q->bufs indexed by buffer index, with holes: VIDIOC_REMOVE_BUFS frees any range, and
   * CREATE_BUFS fills the first free range (q->bufs_bitmap is "defined here").
   */
  readonly bufs: (Vb2Buffer | undefined)[] = [];
  #numBuffers = 0;
  readonly queuedList: Vb2Buffer[] = [];
  readonly doneList: Vb2Buffer[] = [];
  ownedByDrvCount = 0;
  streaming = false;
  startStreamingCalled = false;
  error = false;
  waitingForBuffers = false;
  waitingInDqbuf = false;
  lastBufferDequeued = false;

  constructor(c: Vb2QueueConfig) {
    ensure(c.ioModes !== 0, "EINVAL", "vb2_core_queue_init: no io_modes");
    this.name = c.name;
    this.type = c.type;
    this.isOutput = c.isOutput;
    this.ioModes = c.ioModes;
    this.memOps = c.memOps;
    this.ops = c.ops;
    this.dev = c.dev;
    this.machine = c.machine;
    this.allowCacheHints = c.allowCacheHints;
    this.minQueuedBuffers = c.minQueuedBuffers;
    // vb2_core_queue_init(): max_num_buffers defaults to VB2_MAX_FRAME, is clamped to what
    // the mmap cookie can encode, and may not be below VB2_MAX_FRAME.
    this.maxNumBuffers = Math.min(c.maxNumBuffers ?? VB2_MAX_FRAME, MAX_BUFFER_INDEX);
    ensure(
      this.maxNumBuffers >= VB2_MAX_FRAME && c.minQueuedBuffers <= this.maxNumBuffers,
      "EINVAL",
      "vb2_core_queue_init: max_num_buffers below VB2_MAX_FRAME or min_queued_buffers above it",
    );
    this.minReqbufsAllocation = Math.max(c.minReqbufsAllocation ?? 0, c.minQueuedBuffers + 1);
    this.timestampFlags = c.timestampFlags;
    this.supportsRequests = c.supportsRequests ?? false;
    this.dmaDir = c.bidirectional
      ? DMA_BIDIRECTIONAL
      : c.isOutput
        ? DMA_TO_DEVICE
        : DMA_FROM_DEVICE;
  }

  /** vb2_get_num_buffers(): the weight of the bitmap, not the highest index. */
  get numBuffers(): number {
    return this.#numBuffers;
  }

  /** The allocated buffers in index order (the set bits of q->bufs_bitmap). */
  allocated(): Vb2Buffer[] {
    return this.bufs.filter((vb): vb is Vb2Buffer => vb !== undefined);
  }

  get queuedCount(): number {
    return this.queuedList.length;
  }

  /** vb2_is_busy(): buffers are allocated. */
  get busy(): boolean {
    return this.#numBuffers > 0;
  }

  /** vb2_queue_allows_cache_hints(). */
  allowsCacheHints(): boolean {
    return this.allowCacheHints && this.memory === V4L2_MEMORY_MMAP;
  }

  // ---------------------------------------------------------------------------------
  // Allocation

  /** vb2_verify_memory_type(). */
  verifyMemoryType(memory: number, type: number): void {
    ensure(
      memory === V4L2_MEMORY_MMAP ||
        memory === V4L2_MEMORY_USERPTR ||
        memory === V4L2_MEMORY_DMABUF,
      "EINVAL",
      `${this.name}: unsupported memory type ${memory}`,
    );
    ensure(type === this.type, "EINVAL", `${this.name}: requested type ${type} is incorrect`);
    const mode =
      memory === V4L2_MEMORY_MMAP
        ? VB2_MMAP
        : memory === V4L2_MEMORY_USERPTR
          ? VB2_USERPTR
          : VB2_DMABUF;
    ensure(
      (this.ioModes & mode) !== 0,
      "EINVAL",
      `${this.name}: ${memoryName(memory)} for current setup unsupported`,
    );
    ensure(this.fileio === undefined, "EBUSY", `${this.name}: file io in progress`);
  }

  /**
   * vb2_core_reqbufs(): frees every buffer (count 0, or a change of memory type or
   * coherency), then asks the driver and allocates. EBUSY while streaming. Buffers
   * still mmapped or exported are orphaned: their memory lives until the last user goes
   * (V4L2_BUF_CAP_SUPPORTS_ORPHANED_BUFS). Returns the count allocated.
   */
  reqbufs(memory: number, flags: number, count: number): number {
    const nonCoherent = (flags & V4L2_MEMORY_FLAG_NON_COHERENT) !== 0;
    ensure(!this.streaming, "EBUSY", `${this.name}: REQBUFS while streaming`);
    ensure(
      !(this.waitingInDqbuf && count > 0),
      "EBUSY",
      `${this.name}: another dup()ped fd is waiting for a buffer`,
    );
    if (
      count === 0 ||
      this.#numBuffers !== 0 ||
      (this.memory !== VB2_MEMORY_UNKNOWN && this.memory !== memory) ||
      nonCoherent !== this.nonCoherentMem
    ) {
      this.#cancel();
      this.#free(0, this.maxNumBuffers);
      if (count === 0) return 0;
    }
    let numBuffers = Math.min(Math.max(count, this.minReqbufsAllocation), this.maxNumBuffers);
    this.memory = memory;
    this.#setCoherency(nonCoherent);
    const setup: Vb2QueueSetup = { numBuffers, numPlanes: 0, sizes: [] };
    try {
      this.ops.queueSetup(this, setup);
    } catch (e) {
      this.memory = VB2_MEMORY_UNKNOWN;
      throw e;
    }
    numBuffers = setup.numBuffers;
    if (setup.numPlanes === 0 || setup.sizes.slice(0, setup.numPlanes).some((s) => !(s > 0))) {
      this.memory = VB2_MEMORY_UNKNOWN;
      throw new KernelError("EINVAL", `${this.name}: queue_setup gave no planes or a zero size`);
    }
    const { allocated, first } = this.#alloc(memory, numBuffers, setup.numPlanes, setup.sizes);
    if (allocated === 0) {
      this.memory = VB2_MEMORY_UNKNOWN;
      throw new KernelError("ENOMEM", `${this.name}: memory allocation failed`);
    }
    if (allocated < this.minReqbufsAllocation) {
      this.#free(first, allocated);
      throw new KernelError("ENOMEM", `${this.name}: fewer than the minimum number of buffers`);
    }
    this.waitingForBuffers = !this.isOutput;
    return allocated;
  }

  /**
   * vb2_core_create_bufs(): adds `count` buffers with planes of at least
   * `requestedSizes` (checked by the driver's queue_setup), at the first free range of
   * indices (after a VIDIOC_REMOVE_BUFS, the hole it left). EINVAL on a memory type or
   * coherency mismatch with the buffers already there. Returns how many were allocated
   * and the first index.
   */
  createBufs(
    memory: number,
    flags: number,
    count: number,
    requestedSizes: readonly number[],
  ): { allocated: number; first: number } {
    const nonCoherent = (flags & V4L2_MEMORY_FLAG_NON_COHERENT) !== 0;
    const noPrevious = this.#numBuffers === 0;
    if (this.#numBuffers >= this.maxNumBuffers) {
      throw new KernelError("ENOBUFS", `${this.name}: maximum number of buffers already allocated`);
    }
    if (noPrevious) {
      ensure(
        !(this.waitingInDqbuf && count > 0),
        "EBUSY",
        `${this.name}: another dup()ped fd is waiting for a buffer`,
      );
      this.memory = memory;
      this.waitingForBuffers = !this.isOutput;
      this.#setCoherency(nonCoherent);
    } else {
      ensure(this.memory === memory, "EINVAL", `${this.name}: memory model mismatch`);
      ensure(
        nonCoherent === this.nonCoherentMem,
        "EINVAL",
        `${this.name}: memory coherency model mismatch`,
      );
    }
    const setup: Vb2QueueSetup = {
      numBuffers: Math.min(count, this.maxNumBuffers - this.#numBuffers),
      numPlanes: requestedSizes.length,
      sizes: [...requestedSizes],
    };
    try {
      this.ops.queueSetup(this, setup);
    } catch (e) {
      if (noPrevious) this.memory = VB2_MEMORY_UNKNOWN;
      throw e;
    }
    const r = this.#alloc(memory, setup.numBuffers, setup.numPlanes, setup.sizes);
    if (r.allocated === 0) {
      if (noPrevious) this.memory = VB2_MEMORY_UNKNOWN;
      throw new KernelError("ENOMEM", `${this.name}: memory allocation failed`);
    }
    return r;
  }

  /**
   * vb2_core_remove_bufs() (videobuf2-core.c, 6.12): frees buffers [start, start+count).
   * count 0 does nothing; EINVAL when count exceeds the buffers allocated, the range
   * passes max_num_buffers, or an index in it holds no buffer; EBUSY when one of them is
   * not DEQUEUED (queued, with the driver, or done). Mapped or exported MMAP memory is
   * orphaned, as at REQBUFS. The last removal returns the queue to no memory type.
   */
  removeBufs(start: number, count: number): void {
    if (count === 0) return;
    ensure(
      count <= this.#numBuffers,
      "EINVAL",
      `${this.name}: REMOVE_BUFS of ${count} buffers, ${this.#numBuffers} allocated`,
    );
    ensure(
      count <= this.maxNumBuffers && start <= this.maxNumBuffers - count,
      "EINVAL",
      `${this.name}: REMOVE_BUFS range ${start}+${count} past max_num_buffers ${this.maxNumBuffers}`,
    );
    for (let i = start; i < start + count; i++) {
      const vb = this.bufs[i];
      ensure(vb !== undefined, "EINVAL", `${this.name}: REMOVE_BUFS: no buffer ${i}`);
      ensure(
        vb.state === "dequeued",
        "EBUSY",
        `${this.name}: REMOVE_BUFS: buffer ${i} is ${vb.state}`,
      );
    }
    this.#free(start, count);
  }

  #setCoherency(nonCoherent: boolean): void {
    // set_queue_coherency(): only a queue that allows cache hints may be non-coherent.
    this.nonCoherentMem = this.allowsCacheHints() ? nonCoherent : false;
  }

  /**
   * bitmap_find_next_zero_area(): the first index from which `n` indices are free, or -1.
   */
  #firstFreeRange(n: number): number {
    let run = 0;
    for (let i = 0; i < this.maxNumBuffers; i++) {
      run = this.bufs[i] === undefined ? run + 1 : 0;
      if (run === n) return i - n + 1;
    }
    return -1;
  }

  /**
   * __vb2_queue_alloc(): as many of `count` buffers as fit in one free range of indices
   * (fewer when no range is long enough). Returns how many and the first index.
   */
  #alloc(
    memory: number,
    count: number,
    numPlanes: number,
    sizes: readonly number[],
  ): { allocated: number; first: number } {
    let n = Math.min(count, this.maxNumBuffers - this.#numBuffers);
    let first = -1;
    for (; n > 0; n--) {
      first = this.#firstFreeRange(n);
      if (first >= 0) break;
    }
    if (n === 0) return { allocated: 0, first: 0 };
    let done = 0;
    for (; done < n; done++) {
      const index = first + done;
      const vb = new Vb2Buffer(this, index, this.type, memory, numPlanes);
      // init_buffer_cache_hints(): the exporter syncs DMABUF; nothing to invalidate for TO_DEVICE.
      if (memory === V4L2_MEMORY_DMABUF) {
        vb.skipCacheSyncOnFinish = true;
        vb.skipCacheSyncOnPrepare = true;
      } else if (this.dmaDir === DMA_TO_DEVICE) {
        vb.skipCacheSyncOnFinish = true;
      }
      for (let p = 0; p < numPlanes; p++) {
        vb.planes[p]!.length = sizes[p]!;
        vb.planes[p]!.minLength = sizes[p]!;
      }
      this.#addBuffer(vb);
      if (memory === V4L2_MEMORY_MMAP) {
        try {
          this.#memAlloc(vb);
        } catch (e) {
          this.#removeBuffer(vb);
          if (done === 0) throw e;
          break;
        }
        this.#setupOffsets(vb);
        try {
          this.ops.bufInit?.(vb);
        } catch {
          this.#memFree(vb);
          this.#removeBuffer(vb);
          break;
        }
      }
    }
    return { allocated: done, first };
  }

  /** vb2_queue_add_buffer(). */
  #addBuffer(vb: Vb2Buffer): void {
    this.bufs[vb.index] = vb;
    this.#numBuffers++;
  }

  /** vb2_queue_remove_buffer(): the index is free again (trailing holes are trimmed). */
  #removeBuffer(vb: Vb2Buffer): void {
    if (this.bufs[vb.index] !== vb) return;
    this.bufs[vb.index] = undefined;
    this.#numBuffers--;
    while (this.bufs.length > 0 && this.bufs[this.bufs.length - 1] === undefined) this.bufs.pop();
  }

  /** __vb2_buf_mem_alloc(). */
  #memAlloc(vb: Vb2Buffer): void {
    for (let p = 0; p < vb.numPlanes; p++) {
      const plane = vb.planes[p]!;
      const size = Math.ceil(plane.length / PAGE_SIZE) * PAGE_SIZE;
      try {
        plane.mem = this.memOps.alloc(vb, this.dev, size);
      } catch (e) {
        for (let q = p - 1; q >= 0; q--) {
          vb.planes[q]!.mem?.put?.();
          vb.planes[q]!.mem = undefined;
        }
        throw e;
      }
    }
    // Allocated buffers start dequeued: userspace may fill them before the first QBUF.
    this.#traceOwner(vb, "userspace");
  }

  #memFree(vb: Vb2Buffer): void {
    for (const plane of vb.planes) {
      plane.mem?.put?.();
      plane.mem = undefined;
    }
  }

  /**
   * __setup_offsets(): the mmap cookie encodes the buffer index and the plane, not a
   * running byte offset: index << PLANE_INDEX_SHIFT (15 with 4 KiB pages) plus
   * plane << PAGE_SHIFT. Bit 30 stays free for mem2mem's DST_QUEUE_OFF_BASE.
   */
  #setupOffsets(vb: Vb2Buffer): void {
    vb.planes.forEach((plane, p) => {
      plane.offset = vb.index * 2 ** PLANE_INDEX_SHIFT + p * PAGE_SIZE;
    });
  }

  /** __vb2_queue_free(): the buffers at indices [start, start+count) that exist. */
  #free(start: number, count: number): void {
    const end = Math.min(start + count, this.bufs.length);
    const doomed: Vb2Buffer[] = [];
    for (let i = start; i < end; i++) {
      const vb = this.bufs[i];
      if (vb !== undefined) doomed.push(vb);
    }
    for (const vb of doomed) if (vb.planes[0]!.mem !== undefined) this.ops.bufCleanup?.(vb);
    for (const vb of doomed) {
      this.#traceOwner(vb, undefined);
      if (this.memory === V4L2_MEMORY_MMAP) this.#memFree(vb);
      else if (this.memory === V4L2_MEMORY_DMABUF) this.#dmabufPut(vb);
      else this.#userptrPut(vb);
    }
    for (const vb of doomed) this.#removeBuffer(vb);
    if (this.#numBuffers === 0) {
      this.memory = VB2_MEMORY_UNKNOWN;
      this.queuedList.length = 0;
    }
  }

  #userptrPut(vb: Vb2Buffer): void {
    for (const plane of vb.planes) {
      plane.mem?.putUserptr?.();
      plane.mem = undefined;
    }
  }

  /**
   * __vb2_plane_dmabuf_put() (videobuf2-core.c): the only place an imported dma-buf is
   * unmapped in 6.12 (another dma-buf queued on the plane, REQBUFS, queue release).
   */
  #planeDmabufPut(plane: Vb2Plane): void {
    if (plane.mem === undefined) return;
    if (plane.dbufMapped) plane.mem.unmapDmabuf?.();
    plane.mem.detachDmabuf?.();
    plane.dbuf?.put();
    plane.mem = undefined;
    plane.dbuf = undefined;
    plane.dbufMapped = false;
    plane.bytesused = 0;
    plane.length = 0;
    plane.fd = 0;
    plane.dataOffset = 0;
  }

  #dmabufPut(vb: Vb2Buffer): void {
    for (const plane of vb.planes) this.#planeDmabufPut(plane);
  }

  // ---------------------------------------------------------------------------------
  // Queueing

  /** The buffer at `index`: EINVAL when out of range (vb2_queue_or_prepare_buf, querybuf). */
  buffer(index: number): Vb2Buffer {
    const vb = this.bufs[index];
    if (vb === undefined)
      throw new KernelError("EINVAL", `${this.name}: buffer index ${index} out of range`);
    return vb;
  }

  /** __buf_prepare(): acquire the memory, let the driver check it, sync for the device. */
  #bufPrepare(vb: Vb2Buffer, current: Current): void {
    if (this.error) throw new KernelError("EIO", `${this.name}: fatal error occurred on queue`);
    if (vb.prepared) return;
    const orig = vb.state;
    vb.state = "preparing";
    try {
      if (this.memory === V4L2_MEMORY_MMAP) this.#prepareMmap(vb);
      else if (this.memory === V4L2_MEMORY_USERPTR) this.#prepareUserptr(vb, current);
      else this.#prepareDmabuf(vb, current);
    } finally {
      vb.state = orig;
    }
    // __vb2_buf_mem_prepare().
    if (!vb.synced) {
      vb.synced = true;
      for (const plane of vb.planes) plane.mem?.prepare();
    }
    vb.prepared = true;
  }

  #prepareMmap(vb: Vb2Buffer): void {
    // __fill_vb2_buffer() for MMAP: only the payload comes from userspace.
    vb.planes.forEach((plane, p) => {
      plane.bytesused = vb.userPlanes[p]!.bytesused;
      plane.dataOffset = vb.userPlanes[p]!.dataOffset;
    });
    this.ops.bufPrepare?.(vb);
  }

  /** __prepare_userptr(): (re)acquire pages when the address or length changed. */
  #prepareUserptr(vb: Vb2Buffer, current: Current): void {
    let reacquired = vb.planes[0]!.mem === undefined;
    try {
      for (let p = 0; p < vb.numPlanes; p++) {
        const plane = vb.planes[p]!;
        const up = vb.userPlanes[p]!;
        if (plane.userptr !== 0 && plane.userptr === up.userptr && plane.length === up.length)
          continue;
        ensure(
          up.length >= plane.minLength,
          "EINVAL",
          `${this.name}: provided buffer size ${up.length} is less than setup size ${plane.minLength}`,
        );
        if (plane.mem !== undefined) {
          if (!reacquired) {
            reacquired = true;
            this.ops.bufCleanup?.(vb);
          }
          plane.mem.putUserptr?.();
        }
        plane.mem = undefined;
        plane.bytesused = 0;
        plane.length = 0;
        plane.userptr = 0;
        plane.dataOffset = 0;
        plane.mem = this.memOps.getUserptr(vb, this.dev, up.userptr, up.length, current);
      }
      vb.planes.forEach((plane, p) => {
        const up = vb.userPlanes[p]!;
        plane.bytesused = up.bytesused;
        plane.length = up.length;
        plane.userptr = up.userptr;
        plane.dataOffset = up.dataOffset;
      });
      if (reacquired) this.ops.bufInit?.(vb);
      try {
        this.ops.bufPrepare?.(vb);
      } catch (e) {
        this.ops.bufCleanup?.(vb);
        throw e;
      }
    } catch (e) {
      for (const plane of vb.planes) {
        plane.mem?.putUserptr?.();
        plane.mem = undefined;
        plane.userptr = 0;
        plane.length = 0;
      }
      throw e;
    }
  }

  /**
   * __prepare_dmabuf() (videobuf2-core.c, 6.12): dma_buf_get() each fd (EINVAL if it is
   * not a dma-buf) and check its length. When every plane still holds the same dma-buf
   * and length, the planes stay attached and mapped from an earlier QBUF: nothing is
   * mapped again. Otherwise the whole buffer lets go of its old dma-bufs
   * (__vb2_buf_dmabuf_put: unmap, detach, put) and attaches and maps the new ones, now at
   * QBUF so userspace learns early when a buffer does not suit the device.
   */
  #prepareDmabuf(vb: Vb2Buffer, current: Current): void {
    let reacquired = vb.planes[0]!.mem === undefined;
    const dbufs: DmaBuf[] = [];
    const putAll = (from: number): void => {
      for (let p = from; p < dbufs.length; p++) dbufs[p]!.put();
    };
    for (let p = 0; p < vb.numPlanes; p++) {
      const plane = vb.planes[p]!;
      const up = vb.userPlanes[p]!;
      let dbuf: DmaBuf;
      try {
        dbuf = dmaBufGet(current, up.fd);
      } catch (e) {
        putAll(0);
        if (e instanceof KernelError)
          throw new KernelError(
            "EINVAL",
            `${this.name}: invalid dmabuf fd ${up.fd} for plane ${p}`,
          );
        throw e;
      }
      dbufs.push(dbuf);
      if (up.length === 0) up.length = dbuf.size;
      if (up.length < plane.minLength) {
        putAll(0);
        throw new KernelError(
          "EINVAL",
          `${this.name}: invalid dmabuf length ${up.length} for plane ${p}, minimum length ${plane.minLength}`,
        );
      }
      if (dbuf !== plane.dbuf || plane.length !== up.length) reacquired = true;
    }
    try {
      if (reacquired) {
        if (vb.planes[0]!.mem !== undefined) {
          this.ops.bufCleanup?.(vb);
          this.#dmabufPut(vb);
        }
        for (let p = 0; p < vb.numPlanes; p++) {
          const plane = vb.planes[p]!;
          const dbuf = dbufs[p]!;
          try {
            plane.mem = this.memOps.attachDmabuf(vb, this.dev, dbuf, vb.userPlanes[p]!.length);
          } catch (e) {
            putAll(p);
            throw e;
          }
          plane.dbuf = dbuf;
          // The plane holds the attachment mapped (pinned) until __vb2_plane_dmabuf_put.
          try {
            plane.mem.mapDmabuf!();
          } catch (e) {
            putAll(p + 1);
            throw e;
          }
          plane.dbufMapped = true;
        }
      } else {
        putAll(0);
      }
      vb.planes.forEach((plane, p) => {
        const up = vb.userPlanes[p]!;
        plane.bytesused = up.bytesused;
        plane.length = up.length;
        plane.fd = up.fd;
        plane.dataOffset = up.dataOffset;
      });
      if (reacquired) this.ops.bufInit?.(vb);
      try {
        this.ops.bufPrepare?.(vb);
      } catch (e) {
        this.ops.bufCleanup?.(vb);
        throw e;
      }
    } catch (e) {
      this.#dmabufPut(vb);
      throw e;
    }
  }

  /** vb2_core_prepare_buf(). */
  prepareBuf(vb: Vb2Buffer, current: Current): void {
    ensure(vb.state === "dequeued", "EINVAL", `${this.name}: invalid buffer state ${vb.state}`);
    ensure(!vb.prepared, "EINVAL", `${this.name}: buffer already prepared`);
    this.#bufPrepare(vb, current);
  }

  /** __enqueue_in_driver(). */
  #enqueueInDriver(vb: Vb2Buffer): void {
    vb.state = "active";
    this.ownedByDrvCount++;
    this.ops.bufQueue(vb);
  }

  /**
   * vb2_core_qbuf(): prepare if needed (EINVAL unless DEQUEUED), add to the queued list,
   * hand to the driver when streaming, start streaming once min_queued_buffers are in.
   */
  qbuf(vb: Vb2Buffer, current: Current): void {
    if (this.error) throw new KernelError("EIO", `${this.name}: fatal error occurred on queue`);
    if (vb.state === "dequeued" || vb.state === "in-request") {
      if (!vb.prepared) this.#bufPrepare(vb, current);
    } else if (vb.state === "preparing") {
      throw new KernelError("EINVAL", `${this.name}: buffer still being prepared`);
    } else {
      throw new KernelError(
        "EINVAL",
        `${this.name}: buffer ${vb.index} in state ${vb.state} cannot be queued`,
      );
    }
    const orig = vb.state;
    this.usesQbuf = true;
    this.queuedList.push(vb);
    this.waitingForBuffers = false;
    vb.state = "queued";
    if (this.startStreamingCalled) this.#enqueueInDriver(vb);
    if (
      this.streaming &&
      !this.startStreamingCalled &&
      this.queuedList.length >= this.minQueuedBuffers
    ) {
      try {
        this.#startStreaming();
      } catch (e) {
        this.queuedList.splice(this.queuedList.indexOf(vb), 1);
        vb.state = orig;
        throw e;
      }
    }
    this.#traceOwner(vb, this.dev.name);
  }

  /**
   * Who holds `vb` as an ownership span on its buffer's track: the driver's device from
   * VIDIOC_QBUF to VIDIOC_DQBUF, and for the queue's own memory (MMAP, USERPTR)
   * "userspace" from DQBUF to the next QBUF.
   */
  #traceOwner(vb: Vb2Buffer, owner: string | undefined): void {
    const trace = this.machine.trace;
    if (!trace.enabled) return;
    if (owner === undefined) {
      trace.disown(vb, this.machine.now);
      return;
    }
    // The dma-buf imported now (a DMABUF slot holds another one after the next QBUF), or
    // the one EXPBUF makes of the queue's own memory, perhaps after this span opened.
    const imported = vb.planes[0]?.dbuf;
    const label = vb.traceTrack;
    trace.own(vb, owner, this.machine.now, () => (imported ?? vb.exported)?.traceTrack ?? label, {
      queue: this.name,
      index: vb.index,
    });
  }

  /** vb2_start_streaming(). */
  #startStreaming(): void {
    for (const vb of this.queuedList) this.#enqueueInDriver(vb);
    this.startStreamingCalled = true;
    try {
      this.ops.startStreaming?.(this, this.ownedByDrvCount);
    } catch (e) {
      this.startStreamingCalled = false;
      if (this.ownedByDrvCount > 0) {
        this.#warn(
          "start_streaming failed and left buffers with the driver",
          "a driver's start_streaming must return its buffers with vb2_buffer_done(VB2_BUF_STATE_QUEUED) on failure",
        );
        for (const vb of this.allocated()) if (vb.state === "active") this.bufferDone(vb, "queued");
      }
      throw e;
    }
  }

  /**
   * vb2_buffer_done(): the driver is finished with `vb`. DONE and ERROR sync for the CPU
   * (finish memop) and wake DQBUF; QUEUED gives it back unused (failed start).
   */
  bufferDone(vb: Vb2Buffer, state: "done" | "error" | "queued"): void {
    if (vb.state !== "active") {
      this.#warn(
        `vb2_buffer_done on buffer ${vb.index} in state ${vb.state}`,
        "call vb2_buffer_done() once per buffer the driver got through buf_queue",
      );
      return;
    }
    if (state !== "queued") {
      // __vb2_buf_mem_finish().
      if (vb.synced) {
        vb.synced = false;
        for (const plane of vb.planes) plane.mem?.finish();
      }
      this.doneList.push(vb);
    }
    vb.state = state;
    this.ownedByDrvCount--;
  }

  /** __vb2_wait_for_done_vb(): EINVAL when not streaming, EAGAIN when non-blocking and empty. */
  #waitForDoneVb(nonblocking: boolean): void {
    for (;;) {
      ensure(
        !this.waitingInDqbuf,
        "EBUSY",
        `${this.name}: another dup()ped fd is waiting for a buffer`,
      );
      ensure(this.streaming, "EINVAL", `${this.name}: streaming off, will not wait for buffers`);
      if (this.error) throw new KernelError("EIO", `${this.name}: queue in error state`);
      if (this.doneList.length > 0) return;
      if (nonblocking)
        throw new KernelError("EAGAIN", `${this.name}: nonblocking and no buffers to dequeue`);
      if (this.ownedByDrvCount === 0) {
        // Nothing the driver holds can complete: a real task would sleep until a signal.
        throw new SimulationError(
          "would-block-forever",
          `${this.name}: VIDIOC_DQBUF would block forever: no buffer is queued to the driver`,
        );
      }
      this.waitingInDqbuf = true;
      const clock = this.machine.clock;
      const start = clock.now;
      const ok = clock.runUntilCondition(
        () => this.doneList.length > 0 || !this.streaming || this.error,
      );
      this.waitingInDqbuf = false;
      this.machine.costs.charge("wait", clock.now - start, 1, 0);
      if (!ok) {
        throw new SimulationError(
          "would-block-forever",
          `${this.name}: VIDIOC_DQBUF would block forever: nothing scheduled can ever complete a buffer`,
        );
      }
    }
  }

  /** vb2_core_dqbuf(): the oldest done buffer, back to DEQUEUED (DMABUF planes stay mapped). */
  dqbuf(nonblocking: boolean): Vb2Buffer {
    this.#waitForDoneVb(nonblocking);
    const vb = this.doneList.shift()!;
    if (vb.state !== "done" && vb.state !== "error") {
      throw new KernelError("EINVAL", `${this.name}: invalid buffer state ${vb.state}`);
    }
    this.ops.bufFinish?.(vb);
    vb.prepared = false;
    this.queuedList.splice(this.queuedList.indexOf(vb), 1);
    return vb;
  }

  /**
   * The second half of vb2_core_dqbuf, after fill_user_buffer: __vb2_dqbuf(). In Linux
   * 6.12 (videobuf2-core.c __vb2_dqbuf) it only sets the state: an imported dma-buf stays
   * attached and mapped until its plane lets go of it (__vb2_plane_dmabuf_put: another
   * dma-buf queued on the plane, REQBUFS, queue release). The exporter's unmap therefore
   * no longer hands the buffer to the CPU at DQBUF; userspace brackets its CPU access
   * with DMA_BUF_IOCTL_SYNC.
   */
  dqbufFinish(vb: Vb2Buffer): void {
    this.#vb2Dqbuf(vb);
  }

  #vb2Dqbuf(vb: Vb2Buffer): void {
    if (vb.state === "dequeued") return;
    vb.state = "dequeued";
    // A DMABUF slot says nothing of its dma-buf once dequeued; MMAP memory stays the queue's.
    this.#traceOwner(vb, this.memory === V4L2_MEMORY_DMABUF ? undefined : "userspace");
  }

  /** __vb2_queue_cancel(): stop the driver, take every buffer back, forget queued and done lists. */
  #cancel(): void {
    if (this.startStreamingCalled) this.ops.stopStreaming?.(this);
    if (this.ownedByDrvCount > 0) {
      this.#warn(
        "stop_streaming left buffers in the active state",
        "a driver's stop_streaming must return every buffer with vb2_buffer_done(VB2_BUF_STATE_ERROR)",
      );
      for (const vb of this.allocated()) if (vb.state === "active") this.bufferDone(vb, "error");
    }
    this.streaming = false;
    this.startStreamingCalled = false;
    this.error = false;
    this.usesQbuf = false;
    this.queuedList.length = 0;
    this.doneList.length = 0;
    this.ownedByDrvCount = 0;
    for (const vb of this.allocated()) {
      if (vb.synced) {
        vb.synced = false;
        for (const plane of vb.planes) plane.mem?.finish();
      }
      if (vb.prepared) {
        this.ops.bufFinish?.(vb);
        vb.prepared = false;
      }
      this.#vb2Dqbuf(vb);
    }
  }

  /** vb2_core_streamon(): EINVAL without buffers or with fewer than min_queued_buffers allocated. */
  streamon(type: number): void {
    ensure(type === this.type, "EINVAL", `${this.name}: invalid stream type ${type}`);
    if (this.streaming) return;
    ensure(this.#numBuffers > 0, "EINVAL", `${this.name}: no buffers have been allocated`);
    ensure(
      this.#numBuffers >= this.minQueuedBuffers,
      "EINVAL",
      `${this.name}: need at least ${this.minQueuedBuffers} allocated buffers`,
    );
    this.streaming = true;
    if (this.queuedList.length >= this.minQueuedBuffers) {
      try {
        this.#startStreaming();
      } catch (e) {
        this.streaming = false;
        throw e;
      }
    }
  }

  /** vb2_core_streamoff(): every buffer goes back to userspace, DEQUEUED, even without STREAMON. */
  streamoff(type: number): void {
    ensure(type === this.type, "EINVAL", `${this.name}: invalid stream type ${type}`);
    this.#cancel();
    this.waitingForBuffers = !this.isOutput;
    this.lastBufferDequeued = false;
  }

  /** vb2_queue_error(): wakes waiters; DQBUF and QBUF return EIO until STREAMOFF. */
  queueError(): void {
    this.error = true;
  }

  /**
   * vb2_core_expbuf(): exports an MMAP plane as a dma-buf with the allocator's ops and
   * installs it as a new fd of `current`. EINVAL unless the queue is MMAP.
   */
  expbuf(type: number, index: number, plane: number, flags: number, current: Current): number {
    ensure(
      this.memory === V4L2_MEMORY_MMAP,
      "EINVAL",
      `${this.name}: queue is not currently set up for mmap`,
    );
    ensure(
      (flags & ~(O_CLOEXEC | O_ACCMODE)) === 0,
      "EINVAL",
      `${this.name}: EXPBUF supports only O_CLOEXEC and access mode flags`,
    );
    ensure(type === this.type, "EINVAL", `${this.name}: invalid buffer type ${type}`);
    const vb = this.buffer(index);
    const p = vb.planes[plane];
    ensure(p !== undefined, "EINVAL", `${this.name}: buffer plane ${plane} out of range`);
    const mem = p.mem;
    if (mem?.getDmabuf === undefined)
      throw new KernelError("EINVAL", `${this.name}: queue does not support DMA buffer exporting`);
    const dbuf = mem.getDmabuf(flags & O_ACCMODE);
    if (plane === 0) vb.exported = dbuf;
    try {
      return dmaBufFd(dbuf, current, flags & ~O_ACCMODE);
    } catch (e) {
      dbuf.put();
      throw e;
    }
  }

  /**
   * vb2_mmap(): maps the plane whose cookie is the offset. EINVAL without MAP_SHARED,
   * without PROT_READ (capture) or PROT_WRITE (output), for an unknown cookie, or when
   * the mapping is longer than the plane.
   */
  mmap(vma: Vma): void {
    ensure(vma.shared, "EINVAL", `${this.name}: invalid vma flags, VM_SHARED needed`);
    if (this.isOutput)
      ensure((vma.prot & 2) !== 0, "EINVAL", `${this.name}: invalid vma flags, VM_WRITE needed`);
    else ensure((vma.prot & 1) !== 0, "EINVAL", `${this.name}: invalid vma flags, VM_READ needed`);
    ensure(
      this.memory === V4L2_MEMORY_MMAP,
      "EINVAL",
      `${this.name}: queue is not currently set up for mmap`,
    );
    // __find_plane_by_offset(): the cookie's buffer index and plane number.
    const off = vma.pgoff * PAGE_SIZE;
    const index = Math.floor(off / 2 ** PLANE_INDEX_SHIFT) % MAX_BUFFER_INDEX;
    const planeNo = Math.floor(off / PAGE_SIZE) % PLANE_INDEX_COUNT;
    const vb = this.bufs[index];
    if (vb === undefined || planeNo >= vb.numPlanes)
      throw new KernelError(
        "EINVAL",
        `${this.name}: no buffer at mmap offset 0x${off.toString(16)} (buffer ${index}, plane ${planeNo})`,
      );
    const plane = vb.planes[planeNo]!;
    const length = Math.ceil(plane.length / PAGE_SIZE) * PAGE_SIZE;
    ensure(
      length >= vma.length,
      "EINVAL",
      `${this.name}: MMAP invalid, as it would overflow buffer length`,
    );
    // The cookie selects a buffer; the mapping always starts at its beginning.
    vma.pgoff = 0;
    plane.mem!.mmap!(vma);
  }

  /** vb2_core_poll(). */
  poll(events: number): number {
    if (!this.isOutput && (events & (POLLIN | POLLRDNORM)) === 0) return 0;
    if (this.isOutput && (events & (POLLOUT | POLLWRNORM)) === 0) return 0;
    if (!this.streaming || this.error) return POLLERR;
    if (this.waitingForBuffers && (events & (POLLIN | POLLRDNORM)) !== 0) return POLLERR;
    if (this.doneList.length === 0 && this.lastBufferDequeued) return POLLIN | POLLRDNORM;
    const vb = this.doneList[0];
    if (vb !== undefined && (vb.state === "done" || vb.state === "error"))
      return this.isOutput ? POLLOUT | POLLWRNORM : POLLIN | POLLRDNORM;
    return 0;
  }

  /** vb2_core_queue_release(): at the owner's close (the read()/write() emulator stops too). */
  release(): void {
    this.fileio = undefined;
    this.#cancel();
    this.#free(0, this.maxNumBuffers);
  }

  #warn(message: string, hint: string): void {
    this.machine.violations.report({
      kind: "api-misuse",
      api: "v4l2",
      time: this.machine.now,
      agent: this.name,
      phys: -1,
      len: 0,
      message: `${this.name}: ${message}`,
      hint,
    });
  }
}

/** "MMAP", "USERPTR", "DMABUF" for messages. */
export function memoryName(memory: number): string {
  return memory === V4L2_MEMORY_MMAP
    ? "MMAP"
    : memory === V4L2_MEMORY_USERPTR
      ? "USERPTR"
      : memory === V4L2_MEMORY_DMABUF
        ? "DMABUF"
        : `memory ${memory}`;
}
