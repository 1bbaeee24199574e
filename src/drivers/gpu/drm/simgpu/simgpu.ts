/**
 * simgpu: a render-only GPU in the style of panfrost or v3d (drivers/gpu/drm/panfrost/,
 * drivers/gpu/drm/v3d/), on /dev/dri/cardN and /dev/dri/renderDM (the next free primary
 * and render minors: card1 and renderD129 when probed after vgem). Probe it as often as
 * the machine has GPUs; each instance is its own DMA master (named "simgpu", "simgpu-1"...
 * unless named), with its own coherency, mask, IOMMU and bandwidth, and its own fence
 * timeline. Its uAPI is ours (include/uapi/simgpu-drm.ts): GEM
 * create and mmap-offset ioctls for shmem objects (scattered pages, write-combined for
 * the CPU unless the GPU is coherent), and SUBMIT, one 2D job per call. The GPU maps
 * its own objects for the length of a job (dma_map_sgtable at start, unmap at the
 * end), so CPU access between jobs follows the DMA API's ownership rules; imported
 * objects use the mapping made at import.
 *
 * A job goes through the GPU scheduler (drm-sched.ts, drivers/gpu/drm/scheduler/) as a
 * DRM driver's does: at submit its dependencies are collected — the optional in-fence (a
 * sync_file), the WRITE-usage fences of src (a reader waits for writers) and the
 * READ-usage fences of dst (a writer waits for readers and writers: dma_resv_usage_rw,
 * drm_sched_job_add_implicit_dependencies) — the job is armed (its fence: one context per
 * GPU, seqno per job) and the fence is added to src's reservation as READ and to dst's as
 * WRITE. Jobs run in submission order; each waits for its dependencies, then the GPU
 * reads src by DMA through its mapping, computes, writes the visible bytes of dst by DMA
 * and signals the fence at the end of the transfer, on the virtual clock.
 *
 * The transform itself is a pure function ({@link simgpuTransform}) so pipelines can
 * compute what the GPU should have produced.
 */

import {
  DMA_BIDIRECTIONAL,
  DMA_FROM_DEVICE,
  DMA_TO_DEVICE,
  type DmaDirection,
} from "../../../../dma/direction.js";
import { SgTable } from "../../../../dma/scatterlist.js";
import type { DmaFenceOps } from "../../../../dma-buf/dma-fence.js";
import { DMA_RESV_USAGE_READ, DMA_RESV_USAGE_WRITE } from "../../../../dma-buf/dma-resv.js";
import { SyncFile } from "../../../../dma-buf/sync-file.js";
import { syncFileFile, syncFileGetFence } from "../../../../dma-buf/sync-file-fd.js";
import { KernelError } from "../../../../errno.js";
import {
  DRM_FORMAT_ARGB8888,
  DRM_FORMAT_XRGB8888,
  DRM_FORMAT_YUYV,
  fourccName,
} from "../../../../include/uapi/drm-mode.js";
import {
  DRM_IOCTL_SIMGPU_GEM_CREATE,
  DRM_IOCTL_SIMGPU_GEM_MMAP_OFFSET,
  DRM_IOCTL_SIMGPU_SUBMIT,
  SIMGPU_OP_BLEND,
  SIMGPU_OP_COPY,
  SIMGPU_OP_INVERT,
  SIMGPU_OP_YUYV_TO_XRGB8888,
  SIMGPU_SUBMIT_FLAGS,
  SIMGPU_SUBMIT_IN_FENCE,
  SIMGPU_SUBMIT_OUT_FENCE,
} from "../../../../include/uapi/simgpu-drm.js";
import type { CStruct } from "../../../../include/uapi/struct.js";
import { differingSpan, sameBytes, sameBytesIn } from "../../../../lib/bytes.js";
import { RowGather } from "../../../../lib/row-gather.js";
import { DmaRowLists } from "../../../../lib/row-segments.js";
import { dmaReadScratch, ScratchBuffer } from "../../../../lib/scratch.js";
import type { DeviceConfig, DmaDevice, DmaSegment } from "../../../../machine/device.js";
import type { RowContent } from "../../../../machine/row-notes.js";
import type { Current } from "../../../../vfs/file.js";
import { type DriverHost, driverDeviceName } from "../../../host.js";
import {
  DRIVER_GEM,
  DRIVER_RENDER,
  DRM_RENDER_ALLOW,
  DrmDevice,
  type DrmDriver,
} from "../drm-device.js";
import type { DrmFile } from "../drm-file.js";
import { type DrmGemObject, drmGemHandleCreate, drmGemLookupOrEnoent } from "../drm-gem.js";
import {
  type DrmGemShmem,
  drmGemShmemCreate,
  drmGemShmemDmaSegments,
  drmGemShmemGetPagesSgt,
  drmGemShmemPrimeImportSgTable,
} from "../drm-gem-shmem.js";
import { DRM_FORMATS } from "../drm-mode.js";
import { DrmGpuScheduler, drmSchedAddFence } from "../drm-sched.js";

/**
 * A job's result (its distinct rows, packed), reused by every GPU of this thread (source
 * rows are read in place or go to the thread's DMA read buffer): a job runs to
 * completion within its DMA callback, and fresh
 * frame-sized arrays per job, or per GPU when a run boots a machine (the main job,
 * sweeps), cost host page faults.
 */
const jobDstScratch = new ScratchBuffer();

/** Which distinct result row each row of a job is, reused by every job of this thread. */
let rowIndexScratch = new Int32Array(0);

function jobRowIndex(height: number): Int32Array {
  if (rowIndexScratch.length < height) rowIndexScratch = new Int32Array(height);
  return rowIndexScratch;
}

/** Which rows of a job's result equal the row above, reused by every job of this thread. */
let rowSameScratch = new Uint8Array(0);

function jobRowSame(height: number): Uint8Array {
  if (rowSameScratch.length < height) rowSameScratch = new Uint8Array(height);
  return rowSameScratch.subarray(0, height);
}

/**
 * Geometry of one job. Pitches are in bytes; formats are DRM fourccs and default to the
 * op's natural ones (XR24 for COPY/INVERT, YUYV -> XR24 for YUYV_TO_XRGB8888).
 */
export interface SimgpuTransformParams {
  readonly width: number;
  readonly height: number;
  readonly srcPitch: number;
  readonly dstPitch: number;
  readonly srcFormat?: number;
  readonly dstFormat?: number;
}

/** The formats of a job, defaults filled in. */
function jobFormats(op: number, p: SimgpuTransformParams): { src: number; dst: number } {
  const yuyv = op === SIMGPU_OP_YUYV_TO_XRGB8888;
  return {
    src: p.srcFormat ?? (yuyv ? DRM_FORMAT_YUYV : DRM_FORMAT_XRGB8888),
    dst: p.dstFormat ?? DRM_FORMAT_XRGB8888,
  };
}

function clamp8(v: number): number {
  return Math.min(255, Math.max(0, v));
}

/**
 * BT.601 limited-range YCbCr to RGB in integers (the fixed-point form of ITU-R BT.601
 * used by libyuv and most V4L2 drivers): C = Y-16, D = Cb-128, E = Cr-128;
 * R = (298C + 409E + 128) >> 8, G = (298C - 100D - 208E + 128) >> 8,
 * B = (298C + 516D + 128) >> 8, each clamped to 0..255. Returns 0xXXRRGGBB with X = 0xff.
 */
export function bt601ToXrgb(y: number, cb: number, cr: number): number {
  const c = y - 16;
  const d = cb - 128;
  const e = cr - 128;
  const r = clamp8((298 * c + 409 * e + 128) >> 8);
  const g = clamp8((298 * c - 100 * d - 208 * e + 128) >> 8);
  const b = clamp8((298 * c + 516 * d + 128) >> 8);
  return ((0xff << 24) | (r << 16) | (g << 8) | b) >>> 0;
}

/** Bytes per row a format occupies for `width` pixels. */
export function simgpuRowBytes(format: number, width: number): number {
  const info = DRM_FORMATS.get(format);
  if (info === undefined)
    throw new KernelError("EINVAL", `simgpu: unknown format ${fourccName(format)}`);
  return width * info.cpp;
}

/** Bytes per source row and per result row of a job. */
export function simgpuJobRowBytes(
  op: number,
  p: SimgpuTransformParams,
): { src: number; dst: number } {
  const f = jobFormats(op, p);
  return { src: simgpuRowBytes(f.src, p.width), dst: simgpuRowBytes(f.dst, p.width) };
}

/**
 * What is known of a transform's rows beforehand (see {@link simgpuTransform}), each as
 * `same[y] !== 0` for row y equal to row y - 1; rows past an array's length are not
 * claimed.
 */
export interface SimgpuKnownRows {
  /** Source rows equal to the one above (by the structure of what made them): not compared. */
  readonly src?: Uint8Array;
  /**
   * Rows of `out` as it holds them when called (an earlier result) equal to the one
   * above: such a row whose new value is also the row above is rewritten only where
   * the row above changed.
   */
  readonly was?: Uint8Array;
}

/** A result row made apart, to compare with the one it replaces (grown as needed). */
let rowScratch = new Uint8Array(0);

/**
 * What the GPU writes for one job: `height` rows of dst at `dstPitch`, computed from src
 * rows at `srcPitch`. Bytes past each row's visible width are 0 here; the GPU does not
 * write them, so in the real buffer they keep whatever was there. `known`: what is known
 * of the rows (the result is the same bytes; less is compared and written).
 */
export function simgpuTransform(
  op: number,
  src: Uint8Array,
  p: SimgpuTransformParams,
  out?: Uint8Array,
  known: SimgpuKnownRows = {},
): Uint8Array {
  const { src: srcRow, dst: dstRow } = simgpuJobRowBytes(op, p);
  const size = simgpuResultBytes(op, p);
  if (out !== undefined && out.length < size)
    throw new RangeError(`simgpu: ${out.length} bytes cannot hold a ${size}-byte result`);
  const dst = out === undefined ? new Uint8Array(size) : out.subarray(0, size);
  const pad = p.dstPitch - dstRow;
  const same = known.src;
  const was = out === undefined ? undefined : known.was;
  if (was !== undefined && rowScratch.length < dstRow) rowScratch = new Uint8Array(dstRow);
  // Where the result row above differs from what dst held there (with `was`).
  let lo = 0;
  let hi = dstRow;
  for (let y = 0; y < p.height; y++) {
    const si = y * p.srcPitch;
    const di = y * p.dstPitch;
    if (
      y > 0 &&
      ((same !== undefined && y < same.length && same[y] !== 0) ||
        sameBytes(src, si, si - p.srcPitch, srcRow))
    ) {
      // The same source row gives the same result row: copy it (host memcmp and memcpy;
      // frames are mostly rows equal to the one above, and a row that differs mostly
      // differs early). Inverting a 4K row word by word in JavaScript takes several
      // times longer than comparing and copying it.
      if (was !== undefined && y < was.length && was[y] !== 0) {
        // dst held the row above here too: it differs where the row above changed.
        if (hi > lo) dst.copyWithin(di + lo, di - p.dstPitch + lo, di - p.dstPitch + hi);
      } else {
        dst.copyWithin(di, di - p.dstPitch, di - p.dstPitch + dstRow);
        lo = 0;
        hi = dstRow;
      }
    } else if (was !== undefined) {
      // Made apart and written where it differs from what dst holds.
      const line = rowScratch;
      transformRow(op, src, si, line, 0, p.width, srcRow);
      ({ lo, hi } = differingSpan(line, 0, dst, di, dstRow));
      if (hi > lo) dst.set(line.subarray(lo, hi), di + lo);
    } else {
      transformRow(op, src, si, dst, di, p.width, srcRow);
    }
    // The bytes between rows: 0 (a reused `out` holds older bytes there).
    if (pad > 0 && y + 1 < p.height) dst.fill(0, di + dstRow, di + p.dstPitch);
  }
  return dst;
}

/**
 * One row of a job: `width` pixels of `src` from `si` (`srcRow` bytes) to `dst` from
 * `di`. The one implementation of each op's rule, for the GPU's job and for
 * {@link simgpuTransform}. Whole rows at a time, 32-bit words where the row is word
 * aligned (it is in every frame the pipelines make): `~w` inverts four bytes, a table
 * converts YUYV.
 */
function transformRow(
  op: number,
  src: Uint8Array,
  si: number,
  dst: Uint8Array,
  di: number,
  width: number,
  srcRow: number,
): void {
  if (op === SIMGPU_OP_COPY) {
    dst.set(src.subarray(si, si + srcRow), di);
  } else if (op === SIMGPU_OP_INVERT) {
    const s32 = wordsAt(src, si, srcRow);
    const d32 = wordsAt(dst, di, srcRow);
    if (s32 !== undefined && d32 !== undefined) invertWords(s32, d32);
    else for (let i = 0; i < srcRow; i++) dst[di + i] = 255 - src[si + i]!;
  } else if (op === SIMGPU_OP_YUYV_TO_XRGB8888) {
    yuyvRowToXrgb(src, si, dst, wordsAt(dst, di, width * 4), di, width);
  } else if (op === SIMGPU_OP_BLEND) {
    throw new RangeError("simgpu: BLEND reads dst too; use simgpuBlend");
  } else {
    throw new KernelError("EINVAL", `simgpu: unknown op ${op}`);
  }
}

/** Bytes of dst a job's result spans: every row at `dstPitch`, the last without its padding. */
export function simgpuResultBytes(op: number, p: SimgpuTransformParams): number {
  return p.dstPitch * (p.height - 1) + simgpuRowBytes(jobFormats(op, p).dst, p.width);
}

/** `src` inverted into `dst`, word by word (a small function V8 optimizes whole). */
function invertWords(src: Int32Array, dst: Int32Array): void {
  const n = dst.length;
  for (let i = 0; i < n; i++) dst[i] = ~src[i]!;
}

/**
 * What a SIMGPU_OP_BLEND job leaves in dst: (src + dst + 1) >> 1 for each visible byte of
 * `height` rows, written into `dst` (rows at `dstPitch`; the padding is not touched).
 */
export function simgpuBlend(
  src: Uint8Array,
  dst: Uint8Array,
  p: SimgpuTransformParams,
): Uint8Array {
  const row = simgpuRowBytes(jobFormats(SIMGPU_OP_BLEND, p).dst, p.width);
  for (let y = 0; y < p.height; y++) {
    const si = y * p.srcPitch;
    const di = y * p.dstPitch;
    for (let i = 0; i < row; i++) dst[di + i] = (src[si + i]! + dst[di + i]! + 1) >> 1;
  }
  return dst;
}

/** An Int32 view of `a[off..off+len)`, when it is word aligned. */
function wordsAt(a: Uint8Array, off: number, len: number): Int32Array | undefined {
  const at = a.byteOffset + off;
  if (at % 4 !== 0 || len % 4 !== 0) return undefined;
  return new Int32Array(a.buffer, at, len >>> 2);
}

/**
 * BT.601 by table: the terms of {@link bt601ToXrgb} per Y, Cb and Cr value, and a clamp
 * table indexed by the sum (offset so negative sums index from 0). Same integers, same
 * rounding: `(298C + 409E + 128) >> 8` is `(yTerm[Y] + rCr[Cr]) >> 8`.
 */
const Y_TERM = new Int32Array(256);
const R_CR = new Int32Array(256);
const G_CB = new Int32Array(256);
const G_CR = new Int32Array(256);
const B_CB = new Int32Array(256);
for (let v = 0; v < 256; v++) {
  Y_TERM[v] = 298 * (v - 16) + 128;
  R_CR[v] = 409 * (v - 128);
  G_CB[v] = -100 * (v - 128);
  G_CR[v] = -208 * (v - 128);
  B_CB[v] = 516 * (v - 128);
}
/** clamp8(v >> 8) for every v the terms can sum to, at CLAMP[(v >> 8) + CLAMP_OFF]. */
const CLAMP_OFF = 512;
const CLAMP = new Uint8Array(1024 + 512);
for (let i = 0; i < CLAMP.length; i++) CLAMP[i] = clamp8(i - CLAMP_OFF);

/**
 * One row of YUYV (Y0 Cb Y1 Cr) to XRGB8888 (little endian B G R X, X = 0xff), at `di`
 * of `dst` (`dst32`: the same row as words, when it is word aligned).
 */
function yuyvRowToXrgb(
  src: Uint8Array,
  si: number,
  dst: Uint8Array,
  dst32: Int32Array | undefined,
  di: number,
  width: number,
): void {
  for (let x = 0; x < width; x += 2) {
    const s = si + x * 2;
    const ya = Y_TERM[src[s]!]!;
    const yb = Y_TERM[src[s + 2]!]!;
    const cb = src[s + 1]!;
    const cr = src[s + 3]!;
    const r = R_CR[cr]!;
    const g = G_CB[cb]! + G_CR[cr]!;
    const b = B_CB[cb]!;
    const a =
      0xff000000 |
      (CLAMP[((ya + r) >> 8) + CLAMP_OFF]! << 16) |
      (CLAMP[((ya + g) >> 8) + CLAMP_OFF]! << 8) |
      CLAMP[((ya + b) >> 8) + CLAMP_OFF]!;
    const c =
      0xff000000 |
      (CLAMP[((yb + r) >> 8) + CLAMP_OFF]! << 16) |
      (CLAMP[((yb + g) >> 8) + CLAMP_OFF]! << 8) |
      CLAMP[((yb + b) >> 8) + CLAMP_OFF]!;
    if (dst32 !== undefined) {
      dst32[x] = a;
      dst32[x + 1] = c;
    } else {
      const d = di + x * 4;
      dst[d] = a & 0xff;
      dst[d + 1] = (a >>> 8) & 0xff;
      dst[d + 2] = (a >>> 16) & 0xff;
      dst[d + 3] = a >>> 24;
      dst[d + 4] = c & 0xff;
      dst[d + 5] = (c >>> 8) & 0xff;
      dst[d + 6] = (c >>> 16) & 0xff;
      dst[d + 7] = c >>> 24;
    }
  }
}

/** Checks a job's op, formats and geometry as the driver's submit ioctl does (EINVAL). */
function checkParams(op: number, p: Required<SimgpuTransformParams>): void {
  const bad = (why: string): never => {
    throw new KernelError("EINVAL", `DRM_IOCTL_SIMGPU_SUBMIT: ${why}`);
  };
  if (p.width === 0 || p.height === 0) bad("width and height must be non-zero");
  if (op === SIMGPU_OP_COPY || op === SIMGPU_OP_INVERT || op === SIMGPU_OP_BLEND) {
    if (p.srcFormat !== p.dstFormat) bad("copy/invert/blend keep the format");
    if (!DRM_FORMATS.has(p.srcFormat)) bad(`unknown format ${fourccName(p.srcFormat)}`);
  } else if (op === SIMGPU_OP_YUYV_TO_XRGB8888) {
    if (p.srcFormat !== DRM_FORMAT_YUYV) bad("YUYV_TO_XRGB8888 reads YUYV");
    if (p.dstFormat !== DRM_FORMAT_XRGB8888 && p.dstFormat !== DRM_FORMAT_ARGB8888)
      bad("YUYV_TO_XRGB8888 writes XR24/AR24");
    if (p.width % 2 !== 0) bad("YUYV needs an even width");
  } else {
    bad(`unknown op ${op}`);
  }
  if (p.srcPitch < simgpuRowBytes(p.srcFormat, p.width))
    bad(`src pitch ${p.srcPitch} is below a row`);
  if (p.dstPitch < simgpuRowBytes(p.dstFormat, p.width))
    bad(`dst pitch ${p.dstPitch} is below a row`);
}

/** The GPU's job fences: one timeline. */
const simgpuFenceOps: DmaFenceOps = {
  getDriverName: () => "simgpu",
  getTimelineName: () => "simgpu-ring",
  use64bitSeqno: true,
};

/** What a job works on, for run_job. */
interface SimgpuJob {
  readonly seqno: number;
  readonly op: number;
  readonly src: DrmGemObject;
  readonly dst: DrmGemObject;
  readonly params: Required<SimgpuTransformParams>;
}

/** The probed GPU. */
export class SimGpu {
  /** drm_sched_init at probe: the GPU's one ring and fence timeline. */
  readonly sched: DrmGpuScheduler;
  /**
   * Jobs' source and result rows as DMA segments, by buffer and geometry: a pipeline's
   * jobs read and write the same few buffers frame after frame.
   */
  readonly #rowLists = new DmaRowLists();

  constructor(
    readonly host: DriverHost,
    readonly drm: DrmDevice,
    readonly dev: DmaDevice,
    /** How its own objects are mapped for its DMA ({@link SimgpuOptions.boMapping}). */
    readonly boMapping: "per-job" | "pinned" = "per-job",
  ) {
    this.sched = new DrmGpuScheduler(host, simgpuFenceOps);
  }

  /** The fence context of the GPU's timeline. */
  get fenceContext(): number {
    return this.sched.fenceContext;
  }
  get jobsCompleted(): number {
    return this.sched.jobsCompleted;
  }

  get cardPath(): string {
    return this.drm.primaryPath;
  }
  get renderPath(): string {
    return this.drm.renderPath!;
  }
  /** Jobs submitted and not yet finished. */
  get pendingJobs(): number {
    return this.sched.pendingJobs;
  }

  /** DRM_IOCTL_SIMGPU_SUBMIT. */
  submit(file: DrmFile, d: CStruct, current: Current): void {
    const op = d.u32(0);
    const flags = d.u32(4);
    if (flags & ~SIMGPU_SUBMIT_FLAGS)
      throw new KernelError(
        "EINVAL",
        `DRM_IOCTL_SIMGPU_SUBMIT: unknown flags 0x${flags.toString(16)}`,
      );
    const params: Required<SimgpuTransformParams> = {
      width: d.u32(16),
      height: d.u32(20),
      srcPitch: d.u32(24),
      dstPitch: d.u32(28),
      srcFormat: d.u32(32),
      dstFormat: d.u32(36),
    };
    checkParams(op, params);
    const src = drmGemLookupOrEnoent(file, d.u32(8), "DRM_IOCTL_SIMGPU_SUBMIT");
    const dst = drmGemLookupOrEnoent(file, d.u32(12), "DRM_IOCTL_SIMGPU_SUBMIT");
    const need = (pitch: number, fmt: number): number =>
      pitch * (params.height - 1) + simgpuRowBytes(fmt, params.width);
    if (src.size < need(params.srcPitch, params.srcFormat))
      throw new KernelError("EINVAL", "DRM_IOCTL_SIMGPU_SUBMIT: src is smaller than the job reads");
    if (dst.size < need(params.dstPitch, params.dstFormat))
      throw new KernelError(
        "EINVAL",
        "DRM_IOCTL_SIMGPU_SUBMIT: dst is smaller than the job writes",
      );
    // The out-fence fd is reserved before the point of no return (etnaviv_ioctl_gem_submit,
    // msm_ioctl_gem_submit: get_unused_fd_flags early, fd_install once the job is
    // committed): after arm the job's fence is in both reservations and the job must be
    // pushed (drm_sched_job_cleanup), so a full fd table has to fail before it.
    const outFenceFd = flags & SIMGPU_SUBMIT_OUT_FENCE ? current.files.getUnusedFd(true) : -1;
    const job = this.sched.jobInit({
      label: `simgpu job (op ${op}, ${params.width}x${params.height})`,
      run: (done) => this.#run({ seqno: job.seqno, op, src, dst, params }, done),
      // free_job: the references to the objects taken at push.
      free: () => {
        src.put();
        dst.put();
      },
    });
    try {
      if (flags & SIMGPU_SUBMIT_IN_FENCE) {
        const f = syncFileGetFence(current.files, d.s32(40));
        if (f === undefined)
          throw new KernelError(
            "EINVAL",
            `DRM_IOCTL_SIMGPU_SUBMIT: in_fence_fd ${d.s32(40)} is not a sync_file`,
          );
        job.addDependency(f);
      }
      // Read src after its writers, write dst after everyone.
      job.addImplicitDependencies(src.resv, false);
      job.addImplicitDependencies(dst.resv, true);
    } catch (e) {
      // Aborted before arm: drm_sched_job_cleanup drops the dependencies, put_unused_fd.
      job.cleanup();
      if (outFenceFd >= 0) current.files.putUnusedFd(outFenceFd);
      throw e;
    }
    const fence = job.arm();
    // The driver, not drm_sched, publishes the fence (v3d_attach_fences_and_unlock_reservation):
    // READ on src, then WRITE on dst (an in-place job adds it to the one resv both ways).
    drmSchedAddFence(src.resv, fence, DMA_RESV_USAGE_READ);
    drmSchedAddFence(dst.resv, fence, DMA_RESV_USAGE_WRITE);
    if (outFenceFd >= 0)
      current.files.fdInstall(outFenceFd, syncFileFile(SyncFile.create(fence), this.host.fences));
    d.setS32(44, outFenceFd);
    d.setU64(48, job.seqno);
    src.get();
    dst.get();
    job.push();
  }

  /**
   * Maps the job's own (not imported) objects for the GPU: src to the device, dst from
   * it. Pinned objects are mapped once, by drm_gem_shmem_get_pages_sgt at their first job
   * (panfrost_mmu_map, v3d_bo_create), and stay mapped until freed: nothing per job.
   */
  #mapJob(job: SimgpuJob): { obj: DrmGemObject; sgt: SgTable; dir: DmaDirection }[] {
    const maps: { obj: DrmGemObject; sgt: SgTable; dir: DmaDirection }[] = [];
    const want = (obj: DrmGemObject, dir: DmaDirection): void => {
      if (obj.importSgt !== undefined) return;
      if (this.boMapping === "pinned") {
        drmGemShmemGetPagesSgt(obj, this.dev);
        return;
      }
      const have = maps.find((m) => m.obj === obj);
      if (have !== undefined) {
        have.dir = DMA_BIDIRECTIONAL;
        return;
      }
      maps.push({ obj, sgt: SgTable.fromRanges((obj.priv as DrmGemShmem).ranges), dir });
    };
    want(job.src, DMA_TO_DEVICE);
    want(job.dst, job.op === SIMGPU_OP_BLEND ? DMA_BIDIRECTIONAL : DMA_FROM_DEVICE);
    for (const m of maps) this.host.dma.dmaMapSgtable(this.dev, m.sgt, m.dir, 0);
    return maps;
  }

  #segments(obj: DrmGemObject, maps: readonly { obj: DrmGemObject; sgt: SgTable }[]): DmaSegment[] {
    if (obj.importSgt !== undefined) return obj.importSgt.dmaSegments();
    if (this.boMapping === "pinned") return drmGemShmemDmaSegments(obj, this.dev);
    return maps.find((m) => m.obj === obj)!.sgt.dmaSegments();
  }

  /**
   * A job's DMA read of its source rows and its computation: the result as its distinct
   * rows (`rows`, packed) and, for each row of the job, which of them it is (`index`).
   * A source row equal to the one above gives the same result row, so it is not
   * converted again: DRAM knows it equal when the write that put the frame there said
   * so (`DmaDevice.knownSameRows`: a camera's colour bars), else it is compared (the
   * host's memcmp); frames are mostly such rows. The rows are read in place when the
   * device can (the same reads and checks as a copy, one pass over the frame less),
   * else copied into the thread's DMA read buffer.
   */
  #transformRows(
    op: number,
    rows: readonly DmaSegment[],
    width: number,
    srcRow: number,
    dstRow: number,
    height: number,
  ): { rows: Uint8Array; index: Int32Array; source: RowContent | undefined } {
    const out = jobDstScratch.get(dstRow * height);
    const index = jobRowIndex(height);
    const memory = this.dev.bus.memory;
    const had = this.dev.knownRows(rows, srcRow);
    const known = had?.same;
    const seq = memory.writeSeq;
    let distinct = 0;
    let prev: Uint8Array | undefined;
    let prevOff = 0;
    const gather = new RowGather(srcRow, (b, off, y) => {
      if (
        prev !== undefined &&
        ((known !== undefined && y < known.length && known[y] !== 0 && memory.writeSeq === seq) ||
          sameBytesIn(b, off, prev, prevOff, srcRow))
      ) {
        index[y] = distinct - 1;
      } else {
        transformRow(op, b, off, out, distinct * dstRow, width, srcRow);
        index[y] = distinct++;
      }
      prev = b;
      prevOff = off;
    });
    if (!this.dev.readSegmentsInPlace(rows, (b, from, len, at) => gather.push(b, at, from, len)))
      gather.push(this.dev.readSegments(rows, dmaReadScratch.get(srcRow * height)), 0);
    // What the source was, if DRAM knew and nothing changed it while it was read.
    const source = memory.writeSeq === seq ? had?.content : undefined;
    return { rows: out, index, source };
  }

  /** run_job: map, DMA in, compute, DMA out; `done` (unmapped) at the end of the transfer. */
  #run(job: SimgpuJob, done: () => void): void {
    const p = job.params;
    const srcRow = simgpuRowBytes(p.srcFormat, p.width);
    const dstRow = simgpuRowBytes(p.dstFormat, p.width);
    // A blend reads dst as well: three rows move per row of the job.
    const bytes = (srcRow + dstRow * (job.op === SIMGPU_OP_BLEND ? 2 : 1)) * p.height;
    const maps = this.#mapJob(job);
    this.dev.submit(
      `job ${job.seqno} (op ${job.op}, ${p.width}x${p.height})`,
      bytes,
      () => {
        const rowLists = this.#rowLists;
        const rows = rowLists.rows(this.#segments(job.src, maps), 0, p.srcPitch, srcRow, p.height);
        const wrows = rowLists.rows(this.#segments(job.dst, maps), 0, p.dstPitch, dstRow, p.height);
        if (job.op === SIMGPU_OP_BLEND) {
          const packedP = { ...p, srcPitch: srcRow, dstPitch: dstRow };
          const packed = this.dev.readSegments(rows, dmaReadScratch.get(srcRow * p.height));
          const cur = this.dev.readSegments(wrows, jobDstScratch.get(dstRow * p.height));
          this.dev.writeSegments(wrows, simgpuBlend(packed, cur, packedP));
          return;
        }
        const result = this.#transformRows(job.op, rows, p.width, srcRow, dstRow, p.height);
        // The result's rows by DMA, as writeSegments would write the packed result: the
        // same writes, each from the distinct row it equals. DRAM is told which rows
        // those are, for whoever reads them next (a display's scanout).
        const same = jobRowSame(p.height);
        same[0] = 0;
        for (let y = 1; y < p.height; y++)
          same[y] = result.index[y] === result.index[y - 1] ? 1 : 0;
        // What the result is when the source's frame is known: the transform is row by
        // row, so results of two frames of one key differ only in the rows they do.
        const src = result.source;
        const content =
          src === undefined
            ? undefined
            : {
                key: `simgpu op ${job.op} ${p.width}x${p.height} ${p.srcPitch}->${p.dstPitch} ${p.srcFormat}->${p.dstFormat} of ${src.key}`,
                seq: src.seq,
                rows: Math.min(p.height, src.rows),
              };
        this.dev.writeRows(
          { rowBytes: dstRow, same, content },
          () => {
            let off = 0;
            for (const s of wrows) {
              const y = Math.floor(off / dstRow);
              this.dev.write(
                s.dmaAddr,
                result.rows,
                result.index[y]! * dstRow + (off - y * dstRow),
                s.len,
              );
              off += s.len;
            }
          },
          wrows,
        );
      },
      () => {
        for (const m of maps) this.host.dma.dmaUnmapSgtable(this.dev, m.sgt, m.dir, 0);
        done();
      },
    );
  }
}

/** How one simgpu instance is wired into the machine. */
export interface SimgpuOptions {
  /** The GPU's DMA master; unset fields come from the machine profile. */
  readonly device?: Partial<Omit<DeviceConfig, "name">>;
  /** The DMA master's name (dev_name): default "simgpu", then "simgpu-1", "simgpu-2"... */
  readonly name?: string;
  /**
   * How the GPU maps its own buffer objects: "per-job" (default: dma_map_sgtable at a
   * job's start, unmap at its end, so the CPU owns them between jobs) or "pinned"
   * (drm_gem_shmem_get_pages_sgt at the first job, unmapped when the object is freed,
   * as panfrost and v3d do).
   */
  readonly boMapping?: "per-job" | "pinned";
}

/**
 * simgpu's probe (a platform driver's .probe + drm_dev_register): its DMA device, the
 * DRM device and the three ioctls. Call it once per GPU.
 */
export function simgpuProbe(host: DriverHost, options: SimgpuOptions = {}): SimGpu {
  const dev = host.machine.addDevice(driverDeviceName(host, "simgpu", options.name), {
    ...options.device,
  });
  // panfrost: map_wc = !pfdev->coherent.
  const mapWc = !dev.coherent;
  let gpu: SimGpu;
  let drm: DrmDevice;
  const driver: DrmDriver = {
    name: "simgpu",
    desc: "dmabuf model render-only GPU",
    date: "20250101",
    major: 1,
    minor: 0,
    patchlevel: 0,
    features: DRIVER_GEM | DRIVER_RENDER,
    ioctls: [
      {
        cmd: DRM_IOCTL_SIMGPU_GEM_CREATE,
        flags: DRM_RENDER_ALLOW,
        name: "DRM_IOCTL_SIMGPU_GEM_CREATE",
        func: (_d, data, file) => {
          if (data.u32(8) !== 0)
            throw new KernelError("EINVAL", "DRM_IOCTL_SIMGPU_GEM_CREATE: flags must be 0");
          const size = data.u64(0);
          if (size === 0 || !Number.isFinite(size))
            throw new KernelError("EINVAL", `DRM_IOCTL_SIMGPU_GEM_CREATE: size ${size}`);
          const obj = drmGemShmemCreate(drm, size, mapWc);
          const handle = drmGemHandleCreate(file, obj);
          obj.put();
          data.setU64(0, obj.size).setU32(12, handle);
        },
      },
      {
        cmd: DRM_IOCTL_SIMGPU_GEM_MMAP_OFFSET,
        flags: DRM_RENDER_ALLOW,
        name: "DRM_IOCTL_SIMGPU_GEM_MMAP_OFFSET",
        func: (_d, data, file) => {
          if (data.u32(4) !== 0)
            throw new KernelError("EINVAL", "DRM_IOCTL_SIMGPU_GEM_MMAP_OFFSET: flags must be 0");
          const obj = drmGemLookupOrEnoent(file, data.u32(0), "DRM_IOCTL_SIMGPU_GEM_MMAP_OFFSET");
          data.setU64(8, drm.createMmapOffset(obj));
        },
      },
      {
        cmd: DRM_IOCTL_SIMGPU_SUBMIT,
        flags: DRM_RENDER_ALLOW,
        name: "DRM_IOCTL_SIMGPU_SUBMIT",
        func: (_d, data, file, current) => gpu.submit(file, data, current),
      },
    ],
    gemPrimeImportSgTable: (d, attach, sgt) => drmGemShmemPrimeImportSgTable(d, attach, sgt),
  };
  drm = new DrmDevice(host, driver, dev);
  gpu = new SimGpu(host, drm, dev, options.boMapping);
  drm.register();
  return gpu;
}
