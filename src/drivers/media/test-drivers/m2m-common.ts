/**
 * What the model's memory-to-memory test drivers (vim2m.ts, simenc.ts) share — the parts
 * vim2m.c and vicodec-core.c each write out for themselves: per-open formats for the
 * OUTPUT (source) and CAPTURE (destination) queue, queue_setup/buf_prepare against them,
 * the format ioctls, and a device_run that DMA-reads the whole source buffer, computes
 * the destination with the driver's pure function, DMA-writes it and finishes the job.
 *
 * Each instance is its own DMA master (with the machine's coherency, mask, IOMMU,
 * bandwidth and setup cost unless overridden) and its own /dev/videoN node (the lowest
 * free number). Queues offer MMAP (with EXPBUF) and DMABUF; with `allowCacheHints` they
 * honour V4L2_MEMORY_FLAG_NON_COHERENT and the NO_CACHE_* buffer flags, exactly as the
 * capture path does, because the same videobuf2 code does the prepare/finish syncs.
 *
 * A job is two transfers on the device's queue: the read of the source (its sizeimage
 * bytes, padding included: the device really reads every input byte), then the write of
 * what the driver computed (bytesused of the destination). Both are charged to the
 * device's bandwidth and setup cost on the virtual clock.
 */

import { dmaSegmentsSlice } from "../../../dma/scatterlist.js";
import { KernelError } from "../../../errno.js";
import type { CStruct } from "../../../include/uapi/struct.js";
import {
  V4L2_BUF_FLAG_TIMESTAMP_COPY,
  V4L2_BUF_TYPE_VIDEO_CAPTURE,
  V4L2_BUF_TYPE_VIDEO_OUTPUT,
  V4L2_CAP_STREAMING,
  V4L2_CAP_VIDEO_M2M,
  V4L2_CAPABILITY,
  V4L2_COLORSPACE_SRGB,
  V4L2_FIELD_NONE,
  V4L2_FMT_FLAG_COMPRESSED,
  V4L2_FMTDESC,
  V4L2_FORMAT_PIX,
  V4L2_TYPE_IS_OUTPUT,
} from "../../../include/uapi/videodev2.js";
import type { DeviceConfig, DmaDevice } from "../../../machine/device.js";
import { type DriverHost, driverDeviceName, freeDevnodePath } from "../../host.js";
import { type V4l2FileHandle, type V4l2FileOps, VideoDevice } from "../v4l2-core/v4l2-dev.js";
import type { V4l2IoctlOps } from "../v4l2-core/v4l2-ioctl.js";
import {
  V4l2M2mCtx,
  V4l2M2mDev,
  v4l2M2mBufferIoctls,
  v4l2M2mFops,
} from "../v4l2-core/v4l2-mem2mem.js";
import {
  VB2_DMABUF,
  VB2_MMAP,
  type Vb2Buffer,
  type Vb2MemOps,
  Vb2Queue,
  type Vb2QueueSetup,
} from "../videobuf2/videobuf2-core.js";
import { vb2DmaContigMemops } from "../videobuf2/videobuf2-dma-contig.js";
import { vb2DmaSgMemops } from "../videobuf2/videobuf2-dma-sg.js";
import type { V4l2Fh } from "../videobuf2/videobuf2-v4l2.js";

/** One queue's format (the struct v4l2_pix_format fields the m2m drivers use). */
export interface M2mPixFormat {
  readonly width: number;
  readonly height: number;
  readonly pixelformat: number;
  /** 0 for a compressed format. */
  readonly bytesperline: number;
  readonly sizeimage: number;
}

/** A format a queue enumerates. */
export interface M2mFormatDesc {
  readonly fourcc: number;
  readonly description: string;
  readonly compressed?: boolean;
}

/** What a format request asks for (struct v4l2_pix_format as userspace filled it). */
export interface M2mFormatRequest {
  readonly width: number;
  readonly height: number;
  readonly pixelformat: number;
  readonly bytesperline: number;
}

/** A concrete m2m test driver: its identity, formats and what its device computes. */
export interface M2mDriverDesc {
  /** struct v4l2_capability's driver, card and bus_info. */
  readonly driver: string;
  readonly card: string;
  readonly busInfo: string;
  readonly outputFormats: readonly M2mFormatDesc[];
  readonly captureFormats: readonly M2mFormatDesc[];
  /** A new context's formats. */
  defaults(): { out: M2mPixFormat; cap: M2mPixFormat };
  /** TRY_FMT: the format `req` becomes on the queue of `type`, given the context's current formats. */
  tryFmt(
    type: number,
    req: M2mFormatRequest,
    cur: { out: M2mPixFormat; cap: M2mPixFormat },
  ): M2mPixFormat;
  /** After S_FMT(OUTPUT): the CAPTURE format that follows from it (a coded format's size), if any. */
  followOutput?(out: M2mPixFormat, cap: M2mPixFormat): M2mPixFormat;
  /** G_FMT/TRY_FMT/S_FMT's colorspace (default sRGB). */
  readonly colorspace?: number;
  /** The bytes the device writes for one job (their length is the destination's bytesused). */
  process(src: Uint8Array, out: M2mPixFormat, cap: M2mPixFormat): Uint8Array;
}

/** How one instance of an m2m test driver is wired. */
export interface M2mDriverOptions {
  /** The DMA master; unset fields come from the machine profile. */
  readonly device?: Partial<Omit<DeviceConfig, "name">>;
  /** The DMA master's name: default the driver's name, then "<driver>-1"... */
  readonly name?: string;
  /** Device node (default: the lowest free /dev/videoN). */
  readonly path?: string;
  /** The vb2 allocator of both queues: "dma-contig" (default) or "dma-sg". */
  readonly allocator?: "dma-contig" | "dma-sg";
  /** q->allow_cache_hints on both queues (default false, as in most drivers). */
  readonly allowCacheHints?: boolean;
  /**
   * q->bidirectional on the CAPTURE queue: its buffers are mapped DMA_BIDIRECTIONAL, for
   * userspace that writes a result in place before passing it on (default false).
   */
  readonly bidirectional?: boolean;
}

/** One open file's state: its m2m context and formats. */
export class M2mTestCtx {
  out: M2mPixFormat;
  cap: M2mPixFormat;
  /** Sequence numbers handed out on each queue since the last STREAMON. */
  outSequence = 0;
  capSequence = 0;
  readonly m2m: V4l2M2mCtx;

  constructor(
    readonly device: M2mTestDevice,
    readonly fh: V4l2FileHandle,
  ) {
    const d = device.desc.defaults();
    this.out = d.out;
    this.cap = d.cap;
    this.m2m = new V4l2M2mCtx(device.m2mDev, (ctx) => ({
      src: this.#queue(ctx, V4L2_BUF_TYPE_VIDEO_OUTPUT),
      dst: this.#queue(ctx, V4L2_BUF_TYPE_VIDEO_CAPTURE),
    }));
  }

  /** The driver's queue_init for one side. */
  #queue(ctx: V4l2M2mCtx, type: number): Vb2Queue {
    const dev = this.device;
    const isOutput = type === V4L2_BUF_TYPE_VIDEO_OUTPUT;
    const fmt = (): M2mPixFormat => (isOutput ? this.out : this.cap);
    return new Vb2Queue({
      name: `${dev.dev.name}-${this.fh.id}-${isOutput ? "out" : "cap"}`,
      type,
      isOutput,
      ioModes: VB2_MMAP | VB2_DMABUF,
      memOps: dev.memOps,
      machine: dev.host.machine,
      dev: dev.dev,
      allowCacheHints: dev.allowCacheHints,
      ...(!isOutput && dev.bidirectional ? { bidirectional: true } : {}),
      minQueuedBuffers: 0,
      timestampFlags: V4L2_BUF_FLAG_TIMESTAMP_COPY,
      ops: {
        queueSetup: (_q, setup: Vb2QueueSetup) => {
          const size = fmt().sizeimage;
          if (setup.numPlanes > 0) {
            if (setup.numPlanes !== 1 || setup.sizes[0]! < size)
              throw new KernelError(
                "EINVAL",
                `${dev.desc.driver}: plane size ${setup.sizes[0]} is below sizeimage ${size}`,
              );
          } else {
            setup.sizes[0] = size;
          }
          setup.numPlanes = 1;
        },
        bufPrepare: (vb: Vb2Buffer) => {
          const size = fmt().sizeimage;
          if (vb.planeSize(0) < size)
            throw new KernelError(
              "EINVAL",
              `${dev.desc.driver}: data will not fit into plane (${vb.planeSize(0)} < ${size})`,
            );
          if (!isOutput) vb.setPlanePayload(0, size);
        },
        bufQueue: (vb: Vb2Buffer) => ctx.bufQueue(vb),
        startStreaming: () => {
          if (isOutput) this.outSequence = 0;
          else this.capSequence = 0;
        },
        stopStreaming: (q: Vb2Queue) => ctx.returnBuffers(q),
      },
    });
  }

  /** The format of the queue of `type`. */
  format(type: number): M2mPixFormat {
    return V4L2_TYPE_IS_OUTPUT(type) ? this.out : this.cap;
  }
}

function readRequest(f: CStruct): M2mFormatRequest {
  return {
    width: f.u32(V4L2_FORMAT_PIX.width),
    height: f.u32(V4L2_FORMAT_PIX.height),
    pixelformat: f.u32(V4L2_FORMAT_PIX.pixelformat),
    bytesperline: f.u32(V4L2_FORMAT_PIX.bytesperline),
  };
}

function writeFormat(f: CStruct, fmt: M2mPixFormat, colorspace = V4L2_COLORSPACE_SRGB): void {
  f.bytes.fill(0, V4L2_FORMAT_PIX.width, f.bytes.length);
  f.setU32(V4L2_FORMAT_PIX.width, fmt.width)
    .setU32(V4L2_FORMAT_PIX.height, fmt.height)
    .setU32(V4L2_FORMAT_PIX.pixelformat, fmt.pixelformat)
    .setU32(V4L2_FORMAT_PIX.field, V4L2_FIELD_NONE)
    .setU32(V4L2_FORMAT_PIX.bytesperline, fmt.bytesperline)
    .setU32(V4L2_FORMAT_PIX.sizeimage, fmt.sizeimage)
    .setU32(V4L2_FORMAT_PIX.colorspace, colorspace);
}

/** A probed m2m test device: the node, its DMA master, the m2m device and the open contexts. */
export class M2mTestDevice {
  readonly dev: DmaDevice;
  readonly vdev: VideoDevice;
  readonly m2mDev: V4l2M2mDev;
  readonly memOps: Vb2MemOps;
  readonly allowCacheHints: boolean;
  readonly bidirectional: boolean;
  /** Open contexts by their m2m context. */
  readonly contexts = new Map<V4l2M2mCtx, M2mTestCtx>();
  /** Jobs finished since probe. */
  jobsCompleted = 0;

  constructor(
    readonly host: DriverHost,
    readonly desc: M2mDriverDesc,
    options: M2mDriverOptions,
  ) {
    this.dev = host.machine.addDevice(driverDeviceName(host, desc.driver, options.name), {
      ...options.device,
    });
    this.memOps =
      options.allocator === "dma-sg"
        ? vb2DmaSgMemops(host.dma, host.dmaBuf)
        : vb2DmaContigMemops(host.dma, host.dmaBuf);
    this.allowCacheHints = options.allowCacheHints ?? false;
    this.bidirectional = options.bidirectional ?? false;
    this.m2mDev = new V4l2M2mDev({ deviceRun: (ctx) => this.#deviceRun(ctx) }, host.machine);
    this.vdev = new VideoDevice({
      name: this.dev.name,
      path: options.path ?? freeDevnodePath(host, "/dev/video"),
      vflDir: "m2m",
      deviceCaps: V4L2_CAP_VIDEO_M2M | V4L2_CAP_STREAMING,
      ioctlOps: this.#ioctlOps(),
      fops: this.#fops(),
    });
    this.vdev.register(host);
  }

  /** The node's path (/dev/videoN). */
  get path(): string {
    return this.vdev.path;
  }

  /** The driver's open makes the file's context, its release forgets it. */
  #fops(): V4l2FileOps {
    const m2m = v4l2M2mFops((fh) => {
      const c = new M2mTestCtx(this, fh);
      this.contexts.set(c.m2m, c);
      return c.m2m;
    });
    return {
      ...m2m,
      release: (fh) => {
        m2m.release?.(fh);
        if (fh.m2mCtx !== undefined) this.contexts.delete(fh.m2mCtx);
      },
    };
  }

  #ctx(fh: V4l2Fh): M2mTestCtx {
    const m2m = (fh as V4l2FileHandle).m2mCtx;
    const c = m2m === undefined ? undefined : this.contexts.get(m2m);
    if (c === undefined) throw new KernelError("EINVAL", `${this.desc.driver}: no context`);
    return c;
  }

  #ioctlOps(): V4l2IoctlOps {
    const d = this.desc;
    return {
      querycap: (_v, cap) => {
        cap
          .setCstr(V4L2_CAPABILITY.driver, 16, d.driver)
          .setCstr(V4L2_CAPABILITY.card, 32, d.card)
          .setCstr(V4L2_CAPABILITY.busInfo, 32, d.busInfo)
          .setU32(V4L2_CAPABILITY.capabilities, V4L2_CAP_VIDEO_M2M | V4L2_CAP_STREAMING);
      },
      enumFmt: (_v, f) => {
        const type = f.u32(V4L2_FMTDESC.type);
        const list = V4L2_TYPE_IS_OUTPUT(type) ? d.outputFormats : d.captureFormats;
        const fmt = list[f.u32(V4L2_FMTDESC.index)];
        if (fmt === undefined)
          throw new KernelError("EINVAL", `${d.driver}: no format ${f.u32(V4L2_FMTDESC.index)}`);
        f.setU32(V4L2_FMTDESC.flags, fmt.compressed ? V4L2_FMT_FLAG_COMPRESSED : 0)
          .setCstr(V4L2_FMTDESC.description, 32, fmt.description)
          .setU32(V4L2_FMTDESC.pixelformat, fmt.fourcc);
      },
      gFmt: (_v, f, fh) =>
        writeFormat(f, this.#ctx(fh).format(f.u32(V4L2_FORMAT_PIX.type)), d.colorspace),
      tryFmt: (_v, f, fh) => {
        const c = this.#ctx(fh);
        writeFormat(f, d.tryFmt(f.u32(V4L2_FORMAT_PIX.type), readRequest(f), c), d.colorspace);
      },
      sFmt: (_v, f, fh) => {
        const c = this.#ctx(fh);
        const type = f.u32(V4L2_FORMAT_PIX.type);
        const fmt = d.tryFmt(type, readRequest(f), c);
        if (c.m2m.queue(type).busy)
          throw new KernelError("EBUSY", `${d.driver}: S_FMT while the queue has buffers`);
        if (V4L2_TYPE_IS_OUTPUT(type)) {
          c.out = fmt;
          if (d.followOutput !== undefined) {
            const cap = d.followOutput(fmt, c.cap);
            // The coded side follows the raw side unless its buffers are allocated.
            if (!c.m2m.capQ.q.busy) c.cap = cap;
          }
        } else {
          c.cap = fmt;
        }
        writeFormat(f, fmt, d.colorspace);
      },
      buffers: v4l2M2mBufferIoctls,
    };
  }

  /** device_run: read the source by DMA, compute, write the destination by DMA, finish. */
  #deviceRun(m2m: V4l2M2mCtx): void {
    const c = this.contexts.get(m2m)!;
    const src = m2m.nextSrcBuf()!;
    const dst = m2m.nextDstBuf()!;
    const out = c.out;
    const cap = c.cap;
    const srcSegs = dmaSegmentsSlice(src.planes[0]!.mem!.dmaSegments(), 0, out.sizeimage);
    let result: Uint8Array = new Uint8Array(0);
    this.dev.submit(
      `${this.desc.driver} job: read source ${src.index}`,
      out.sizeimage,
      () => {
        result = this.desc.process(this.dev.readSegments(srcSegs), out, cap);
      },
      () => {
        const dstSegs = dmaSegmentsSlice(dst.planes[0]!.mem!.dmaSegments(), 0, result.length);
        this.dev.submit(
          `${this.desc.driver} job: write destination ${dst.index}`,
          result.length,
          () => this.dev.writeSegments(dstSegs, result),
          () => this.#finish(c, result.length),
        );
      },
    );
  }

  /** The end of a job: both buffers done (v4l2_m2m_buf_copy_metadata), job_finish. */
  #finish(c: M2mTestCtx, bytesused: number): void {
    const src = c.m2m.srcBufRemove()!;
    const dst = c.m2m.dstBufRemove()!;
    src.sequence = c.outSequence++;
    dst.sequence = c.capSequence++;
    dst.timestamp = src.timestamp;
    dst.field = V4L2_FIELD_NONE;
    dst.setPlanePayload(0, bytesused);
    src.queue.bufferDone(src, "done");
    dst.queue.bufferDone(dst, "done");
    this.jobsCompleted++;
    this.m2mDev.jobFinish(c.m2m);
  }
}

/** A driver's probe: one device per call. */
export function m2mTestProbe(
  host: DriverHost,
  desc: M2mDriverDesc,
  options: M2mDriverOptions = {},
): M2mTestDevice {
  return new M2mTestDevice(host, desc, options);
}
