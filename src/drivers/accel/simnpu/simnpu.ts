/**
 * simnpu: the model's compute accelerator (an NPU), a drivers/accel driver shaped like
 * ivpu and qaic (drivers/accel/ivpu/, drivers/accel/qaic/). Its uAPI is ours
 * (include/uapi/simnpu-accel.ts). Each probe is one device: /dev/accel/accelN (the next
 * accel minor), its own DMA master ("simnpu", "simnpu-1"... unless named) with its own
 * coherency, DMA mask, IOMMU, bandwidth and setup cost, and its own fence timeline.
 *
 * - Buffer objects are GEM shmem objects (scattered pages; write-combined for the CPU
 *   unless the device is coherent, as ivpu maps them), with PRIME export, and import of
 *   any dma-buf: the import attaches the NPU's device and maps the buffer once
 *   (drm_gem_prime_import), so the exporter's cache maintenance happens at import and
 *   afterwards only through DMA_BUF_IOCTL_SYNC — which is why a CPU write to an imported
 *   buffer without DMA_BUF_SYNC_END is read stale by the NPU (and named by the checker).
 * - SUBMIT queues one job through the GPU scheduler flow (drm-sched.ts): implicit
 *   dependencies from the objects' reservations, an optional sync_file in-fence, the
 *   job's fence published in the reservations and optionally returned as a sync_file.
 *   The job DMA-reads the input rows, computes ({@link simnpuCompute}, a pure function),
 *   DMA-writes the output rows, then signals.
 * - WAIT waits for an object's fences with a timeout (DRM_IOCTL_IVPU_BO_WAIT).
 */

import {
  DMA_BIDIRECTIONAL,
  DMA_FROM_DEVICE,
  DMA_TO_DEVICE,
  type DmaDirection,
} from "../../../dma/direction.js";
import { SgTable } from "../../../dma/scatterlist.js";
import type { DmaFence, DmaFenceOps } from "../../../dma-buf/dma-fence.js";
import { DMA_RESV_USAGE_READ } from "../../../dma-buf/dma-resv.js";
import { SyncFile } from "../../../dma-buf/sync-file.js";
import { syncFileFile, syncFileGetFence } from "../../../dma-buf/sync-file-fd.js";
import { KernelError } from "../../../errno.js";
import {
  DRM_IOCTL_SIMNPU_BO_CREATE,
  DRM_IOCTL_SIMNPU_BO_MMAP_OFFSET,
  DRM_IOCTL_SIMNPU_SUBMIT,
  DRM_IOCTL_SIMNPU_WAIT,
  SIMNPU_OP_CONV3X3,
  SIMNPU_OP_TILE_SUM,
  SIMNPU_SUBMIT_FLAGS,
  SIMNPU_SUBMIT_IN_FENCE,
  SIMNPU_SUBMIT_OUT_FENCE,
  SIMNPU_TILE,
} from "../../../include/uapi/simnpu-accel.js";
import type { CStruct } from "../../../include/uapi/struct.js";
import { dmaRowSegments } from "../../../lib/row-segments.js";
import type { DeviceConfig, DmaDevice, DmaSegment } from "../../../machine/device.js";
import type { Current } from "../../../vfs/file.js";
import {
  DRIVER_COMPUTE_ACCEL,
  DRIVER_GEM,
  DRM_RENDER_ALLOW,
  DrmDevice,
  type DrmDriver,
} from "../../gpu/drm/drm-device.js";
import type { DrmFile } from "../../gpu/drm/drm-file.js";
import {
  type DrmGemObject,
  drmGemHandleCreate,
  drmGemLookupOrEnoent,
} from "../../gpu/drm/drm-gem.js";
import {
  type DrmGemShmem,
  drmGemShmemCreate,
  drmGemShmemPrimeImportSgTable,
} from "../../gpu/drm/drm-gem-shmem.js";
import { DrmGpuScheduler } from "../../gpu/drm/drm-sched.js";
import { type DriverHost, driverDeviceName } from "../../host.js";

/** The geometry of one job: `height` rows of `width` elements of `cpp` bytes. */
export interface SimnpuParams {
  readonly width: number;
  readonly height: number;
  /** Bytes per element (1..4 independent 8-bit channels). */
  readonly cpp: number;
  /** Bytes from one input row to the next. */
  readonly inPitch: number;
}

/** The output a job writes: `height` rows of `rowBytes` bytes. */
export function simnpuOutputGeometry(
  op: number,
  p: SimnpuParams,
): { width: number; height: number; rowBytes: number } {
  if (op === SIMNPU_OP_CONV3X3)
    return { width: p.width, height: p.height, rowBytes: p.width * p.cpp };
  if (op === SIMNPU_OP_TILE_SUM) {
    const tx = Math.ceil(p.width / SIMNPU_TILE);
    return { width: tx, height: Math.ceil(p.height / SIMNPU_TILE), rowBytes: tx * p.cpp * 4 };
  }
  throw new KernelError("EINVAL", `simnpu: unknown op ${op}`);
}

/**
 * What the NPU computes for one job, as packed rows (rowBytes each, no padding) of
 * {@link simnpuOutputGeometry}:
 * - SIMNPU_OP_CONV3X3: per channel, (sum of [1 2 1; 2 4 2; 1 2 1] * the 3x3 neighbourhood
 *   + 8) >> 4, coordinates clamped at the edges;
 * - SIMNPU_OP_TILE_SUM: per 16x16 tile (the last ones cut at the edge) and channel, the
 *   sum of the elements as a little-endian u32.
 */
export function simnpuCompute(op: number, input: Uint8Array, p: SimnpuParams): Uint8Array {
  const g = simnpuOutputGeometry(op, p);
  const out = new Uint8Array(g.rowBytes * g.height);
  const at = (x: number, y: number, c: number): number => {
    const cx = Math.min(Math.max(x, 0), p.width - 1);
    const cy = Math.min(Math.max(y, 0), p.height - 1);
    return input[cy * p.inPitch + cx * p.cpp + c]!;
  };
  if (op === SIMNPU_OP_CONV3X3) {
    const k = [1, 2, 1, 2, 4, 2, 1, 2, 1];
    for (let y = 0; y < p.height; y++)
      for (let x = 0; x < p.width; x++)
        for (let c = 0; c < p.cpp; c++) {
          let s = 0;
          for (let j = -1; j <= 1; j++)
            for (let i = -1; i <= 1; i++) s += k[(j + 1) * 3 + i + 1]! * at(x + i, y + j, c);
          out[y * g.rowBytes + x * p.cpp + c] = (s + 8) >> 4;
        }
    return out;
  }
  const v = new DataView(out.buffer);
  for (let y = 0; y < p.height; y++)
    for (let x = 0; x < p.width; x++)
      for (let c = 0; c < p.cpp; c++) {
        const o =
          Math.floor(y / SIMNPU_TILE) * g.rowBytes + (Math.floor(x / SIMNPU_TILE) * p.cpp + c) * 4;
        v.setUint32(o, v.getUint32(o, true) + input[y * p.inPitch + x * p.cpp + c]!, true);
      }
  return out;
}

/** The NPU's job fences: one timeline per device. */
const simnpuFenceOps: DmaFenceOps = {
  getDriverName: () => "simnpu",
  getTimelineName: () => "simnpu-job",
  use64bitSeqno: true,
};

/** How one simnpu is wired into the machine. */
export interface SimnpuOptions {
  /** The NPU's DMA master; unset fields come from the machine profile. */
  readonly device?: Partial<Omit<DeviceConfig, "name">>;
  /** The DMA master's name: default "simnpu", then "simnpu-1"... */
  readonly name?: string;
}

/** A probed NPU. */
export class SimNpu {
  readonly sched: DrmGpuScheduler;

  constructor(
    readonly host: DriverHost,
    readonly drm: DrmDevice,
    readonly dev: DmaDevice,
  ) {
    this.sched = new DrmGpuScheduler(host, simnpuFenceOps);
  }

  /** /dev/accel/accelN. */
  get path(): string {
    return this.drm.primaryPath;
  }
  /** N of accelN. */
  get minor(): number {
    return this.drm.index;
  }
  get jobsCompleted(): number {
    return this.sched.jobsCompleted;
  }
  get pendingJobs(): number {
    return this.sched.pendingJobs;
  }

  /** DRM_IOCTL_SIMNPU_SUBMIT. */
  submit(file: DrmFile, d: CStruct, current: Current): void {
    const name = "DRM_IOCTL_SIMNPU_SUBMIT";
    const bad = (why: string): never => {
      throw new KernelError("EINVAL", `${name}: ${why}`);
    };
    const op = d.u32(0);
    const flags = d.u32(4);
    if (flags & ~SIMNPU_SUBMIT_FLAGS) bad(`unknown flags 0x${flags.toString(16)}`);
    if (op !== SIMNPU_OP_CONV3X3 && op !== SIMNPU_OP_TILE_SUM) bad(`unknown op ${op}`);
    const p: SimnpuParams = {
      width: d.u32(16),
      height: d.u32(20),
      cpp: d.u32(24),
      inPitch: d.u32(28),
    };
    const outPitch = d.u32(32);
    if (p.width === 0 || p.height === 0) bad("width and height must be non-zero");
    if (p.cpp < 1 || p.cpp > 4) bad(`cpp ${p.cpp} is not 1..4`);
    if (p.inPitch < p.width * p.cpp) bad(`in_pitch ${p.inPitch} is below a row`);
    const g = simnpuOutputGeometry(op, p);
    if (outPitch < g.rowBytes) bad(`out_pitch ${outPitch} is below a row of ${g.rowBytes}`);
    const input = drmGemLookupOrEnoent(file, d.u32(8), name);
    const output = drmGemLookupOrEnoent(file, d.u32(12), name);
    if (input === output) bad("the input and output must be different objects");
    if (input.size < p.inPitch * (p.height - 1) + p.width * p.cpp)
      bad("the input is smaller than the job reads");
    if (output.size < outPitch * (g.height - 1) + g.rowBytes)
      bad("the output is smaller than the job writes");
    // The out-fence fd before the job (get_unused_fd_flags, as etnaviv and msm do): once
    // pushed, the job runs and its fence is in the reservations, so a full fd table must
    // fail first or the ioctl would report EMFILE for work it did.
    const outFenceFd = flags & SIMNPU_SUBMIT_OUT_FENCE ? current.files.getUnusedFd(true) : -1;
    const explicit: DmaFence[] = [];
    if (flags & SIMNPU_SUBMIT_IN_FENCE) {
      const f = syncFileGetFence(current.files, d.s32(36));
      if (f === undefined) {
        if (outFenceFd >= 0) current.files.putUnusedFd(outFenceFd);
        bad(`in_fence_fd ${d.s32(36)} is not a sync_file`);
      }
      explicit.push(f!);
    }
    const inObj = input.get();
    const outObj = output.get();
    const { fence, seqno } = this.sched.push(
      {
        label: `job (op ${op}, ${p.width}x${p.height}x${p.cpp})`,
        run: (done) => this.#run(op, p, outPitch, inObj, outObj, done),
      },
      explicit,
      [inObj.resv],
      [outObj.resv],
    );
    if (outFenceFd >= 0)
      current.files.fdInstall(outFenceFd, syncFileFile(SyncFile.create(fence), this.host.fences));
    d.setS32(40, outFenceFd);
    fence.put();
    d.setU64(48, seqno);
  }

  /** The DMA segments of an object for this job: its import mapping, or a mapping made now. */
  #map(obj: DrmGemObject, dir: DmaDirection): { segs: DmaSegment[]; unmap: () => void } {
    if (obj.importSgt !== undefined) return { segs: obj.importSgt.dmaSegments(), unmap: () => {} };
    const sgt = SgTable.fromRanges((obj.priv as DrmGemShmem).ranges);
    this.host.dma.dmaMapSgtable(this.dev, sgt, dir, 0);
    return {
      segs: sgt.dmaSegments(),
      unmap: () => this.host.dma.dmaUnmapSgtable(this.dev, sgt, dir, 0),
    };
  }

  #run(
    op: number,
    p: SimnpuParams,
    outPitch: number,
    input: DrmGemObject,
    output: DrmGemObject,
    done: () => void,
  ): void {
    const g = simnpuOutputGeometry(op, p);
    const inRow = p.width * p.cpp;
    const src = this.#map(input, input === output ? DMA_BIDIRECTIONAL : DMA_TO_DEVICE);
    const dst = this.#map(output, DMA_FROM_DEVICE);
    const rows = dmaRowSegments(src.segs, 0, p.inPitch, inRow, p.height);
    const wrows = dmaRowSegments(dst.segs, 0, outPitch, g.rowBytes, g.height);
    this.dev.submit(
      `simnpu job (op ${op}, ${p.width}x${p.height})`,
      inRow * p.height + g.rowBytes * g.height,
      () => {
        const packed = this.dev.readSegments(rows);
        this.dev.writeSegments(wrows, simnpuCompute(op, packed, { ...p, inPitch: inRow }));
      },
      () => {
        src.unmap();
        dst.unmap();
        input.put();
        output.put();
        done();
      },
    );
  }

  /** DRM_IOCTL_SIMNPU_WAIT: every fence of the object, until the absolute timeout. */
  wait(file: DrmFile, d: CStruct): void {
    if (d.u32(4) !== 0) throw new KernelError("EINVAL", "DRM_IOCTL_SIMNPU_WAIT: flags must be 0");
    const obj = drmGemLookupOrEnoent(file, d.u32(0), "DRM_IOCTL_SIMNPU_WAIT");
    const deadline = Number(new DataView(d.bytes.buffer, d.bytes.byteOffset).getBigInt64(8, true));
    const timeout = Math.max(0, deadline - this.host.machine.clock.now);
    const ret = obj.resv.waitTimeout(DMA_RESV_USAGE_READ, true, timeout);
    if (ret < 0) throw new KernelError("EINVAL", `DRM_IOCTL_SIMNPU_WAIT: ${ret}`);
    if (ret === 0)
      throw new KernelError(
        "ETIMEDOUT",
        "DRM_IOCTL_SIMNPU_WAIT: the object's jobs did not finish in time",
      );
  }
}

/**
 * simnpu's probe (a platform driver's .probe + drm_dev_register of a
 * DRIVER_COMPUTE_ACCEL device): one NPU per call.
 */
export function simnpuProbe(host: DriverHost, options: SimnpuOptions = {}): SimNpu {
  const dev = host.machine.addDevice(driverDeviceName(host, "simnpu", options.name), {
    ...options.device,
  });
  const mapWc = !dev.coherent;
  let npu: SimNpu;
  let drm: DrmDevice;
  const driver: DrmDriver = {
    name: "simnpu",
    desc: "dmabuf model compute accelerator",
    date: "20250101",
    major: 1,
    minor: 0,
    patchlevel: 0,
    features: DRIVER_GEM | DRIVER_COMPUTE_ACCEL,
    ioctls: [
      {
        cmd: DRM_IOCTL_SIMNPU_BO_CREATE,
        flags: DRM_RENDER_ALLOW,
        name: "DRM_IOCTL_SIMNPU_BO_CREATE",
        func: (_d, data, file) => {
          if (data.u32(8) !== 0)
            throw new KernelError("EINVAL", "DRM_IOCTL_SIMNPU_BO_CREATE: flags must be 0");
          const size = data.u64(0);
          if (size === 0 || !Number.isFinite(size))
            throw new KernelError("EINVAL", `DRM_IOCTL_SIMNPU_BO_CREATE: size ${size}`);
          const obj = drmGemShmemCreate(drm, size, mapWc);
          const handle = drmGemHandleCreate(file, obj);
          obj.put();
          data.setU64(0, obj.size).setU32(12, handle);
        },
      },
      {
        cmd: DRM_IOCTL_SIMNPU_BO_MMAP_OFFSET,
        flags: DRM_RENDER_ALLOW,
        name: "DRM_IOCTL_SIMNPU_BO_MMAP_OFFSET",
        func: (_d, data, file) => {
          if (data.u32(4) !== 0)
            throw new KernelError("EINVAL", "DRM_IOCTL_SIMNPU_BO_MMAP_OFFSET: flags must be 0");
          const obj = drmGemLookupOrEnoent(file, data.u32(0), "DRM_IOCTL_SIMNPU_BO_MMAP_OFFSET");
          data.setU64(8, drm.createMmapOffset(obj));
        },
      },
      {
        cmd: DRM_IOCTL_SIMNPU_SUBMIT,
        flags: DRM_RENDER_ALLOW,
        name: "DRM_IOCTL_SIMNPU_SUBMIT",
        func: (_d, data, file, current) => npu.submit(file, data, current),
      },
      {
        cmd: DRM_IOCTL_SIMNPU_WAIT,
        flags: DRM_RENDER_ALLOW,
        name: "DRM_IOCTL_SIMNPU_WAIT",
        func: (_d, data, file) => npu.wait(file, data),
      },
    ],
    gemPrimeImportSgTable: (d, attach, sgt) => drmGemShmemPrimeImportSgTable(d, attach, sgt),
  };
  drm = new DrmDevice(host, driver, dev);
  npu = new SimNpu(host, drm, dev);
  drm.register();
  return npu;
}
