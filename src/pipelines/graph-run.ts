/**
 * Runs a pipeline graph as one userspace program: probes a driver per device instance,
 * opens each device node, allocates every pool, shares buffers as dma-bufs along the
 * edges and runs the stages in topological order once per frame. A buffer goes back to
 * its producer (VIDIOC_QBUF, or the GPU's free list) when every stage that reads it is
 * done with it: a display when the next flip replaced it, a GPU job when its fence
 * signalled, an output device when it was dequeued.
 *
 * Every sink's expected CRC is computed apart from the machine: each buffer carries the
 * frame it should hold, made by the sources' pure functions (vivid's test pattern) and
 * changed along the graph by the CPU's stamp and the GPU's transform.
 */

import {
  type SimNpu,
  simnpuCompute,
  simnpuOutputGeometry,
  simnpuProbe,
} from "../drivers/accel/simnpu/simnpu.js";
import { type SimDisplay, simdisplayProbe } from "../drivers/gpu/drm/simdisplay/simdisplay.js";
import { type SimGpu, simgpuBlend, simgpuProbe } from "../drivers/gpu/drm/simgpu/simgpu.js";
import type { M2mPixFormat, M2mTestDevice } from "../drivers/media/test-drivers/m2m-common.js";
import { type Simenc, simencEncode, simencProbe } from "../drivers/media/test-drivers/simenc.js";
import { type Vim2m, vim2mProbe, vim2mProcess } from "../drivers/media/test-drivers/vim2m.js";
import { type Vivid, vividProbe } from "../drivers/media/test-drivers/vivid/vivid.js";
import {
  DMA_BUF_SYNC_END,
  DMA_BUF_SYNC_READ,
  DMA_BUF_SYNC_START,
  DMA_BUF_SYNC_WRITE,
} from "../include/uapi/dma-buf.js";
import { DRM_CLOEXEC, DRM_RDWR } from "../include/uapi/drm.js";
import {
  MAP_SHARED,
  O_CLOEXEC,
  O_RDWR,
  POLLIN,
  PROT_READ,
  PROT_WRITE,
} from "../include/uapi/fcntl.js";
import {
  SIMGPU_OP_BLEND,
  SIMGPU_OP_COPY,
  SIMGPU_OP_INVERT,
  SIMGPU_OP_YUYV_TO_XRGB8888,
} from "../include/uapi/simgpu-drm.js";
import {
  SIMNPU_OP_CONV3X3,
  SIMNPU_OP_TILE_SUM,
  SIMNPU_SUBMIT_IN_FENCE,
  SIMNPU_SUBMIT_OUT_FENCE,
} from "../include/uapi/simnpu-accel.js";
import {
  V4L2_BUF_TYPE_VIDEO_CAPTURE,
  V4L2_BUF_TYPE_VIDEO_OUTPUT,
  V4L2_MEMORY_DMABUF,
  V4L2_MEMORY_FLAG_NON_COHERENT,
  V4L2_MEMORY_MMAP,
  V4L2_PIX_FMT_XBGR32,
  V4L2_PIX_FMT_YUYV,
} from "../include/uapi/videodev2.js";
import type { Kernel } from "../kernel/kernel.js";
import { crc32, crc32Le } from "../lib/crc32.js";
import { type ScratchBuffer, ScratchPool } from "../lib/scratch.js";
import type { FaultInjection } from "../machine/fault-inject.js";
import { simnpuBoCreate, simnpuSubmit } from "../uapi/accel.js";
import { drmGemClose, drmPrimeFdToHandle, drmPrimeHandleToFd } from "../uapi/drm.js";
import { dmaBufSetName, dmaBufSync as dmaBufSyncIoctl } from "../uapi/lib.js";
import type { SimUapi } from "../uapi/sim.js";
import type { Mapping } from "../uapi/uapi.js";
import {
  vidiocDqbuf,
  vidiocExpbuf,
  vidiocQbuf,
  vidiocQuerybuf,
  vidiocReqbufs,
  vidiocSFmt,
  vidiocStreamoff,
  vidiocStreamon,
} from "../uapi/v4l2.js";
import { type FrameGeometry, stampBytes, visibleCrc } from "./expected.js";
import { frameLayout, graphSinks, stageFormat, stageKind, topoOrder } from "./graph.js";
import type { ResolvedSpec } from "./spec.js";
import {
  CameraStage,
  DisplayStage,
  DmabufAllocator,
  deviceOverrides,
  GpuStage,
  OutputStage,
} from "./stages.js";
import type { CpuAccess, GraphPool, GraphSpec, GraphStage, PipelineFault } from "./types.js";

const PAGE = 4096;

/** One frame in one buffer, on its way through the graph. */
interface Frame {
  readonly fd: number;
  /** Where the frame starts in the buffer (a USERPTR frame beside the program's structure; else 0). */
  readonly offset: number;
  readonly geom: FrameGeometry;
  /** What the buffer should hold now, computed apart from the machine. */
  readonly expected: Uint8Array;
  /** The scratch buffer `expected` lives in (its content, when known, speeds up the CRC). */
  readonly expectedBuffer: ScratchBuffer;
  /** sync_file of the job that wrote it (explicit sync), or -1. */
  readonly fenceFd: number;
  /** For a captured V4L2 MMAP buffer: its video node fd and mmap offset. */
  readonly v4l2?: { readonly fd: number; readonly offset: number };
  /** Stages still to finish with it. */
  holds: number;
  /** Hands the buffer back to its producer. */
  readonly release: () => void;
}

/** What a sink recorded for one frame. */
export interface SinkFrame {
  readonly crc: number;
  readonly expectedCrc: number;
}

/** The drivers of a graph, one per device instance, in declaration order. */
export interface GraphDrivers {
  readonly vivid: Map<string, Vivid>;
  readonly gpu: Map<string, SimGpu>;
  readonly display: Map<string, SimDisplay>;
  readonly m2m: Map<string, Vim2m>;
  readonly npu: Map<string, SimNpu>;
  readonly encoder: Map<string, Simenc>;
}

/** Probes one driver instance per device of the graph, each its own DMA master named as the device. */
export function probeGraph(kernel: Kernel, spec: ResolvedSpec, g: GraphSpec): GraphDrivers {
  const drivers: GraphDrivers = {
    vivid: new Map(),
    gpu: new Map(),
    display: new Map(),
    m2m: new Map(),
    npu: new Map(),
    encoder: new Map(),
  };
  const writers = new Set<string>();
  // A camera or ISP whose buffers a CPU stage writes in place maps its queue bidirectionally.
  for (const s of g.stages) if (s.cpu?.write) writers.add(bufferOwner(g, s).name);
  for (const [name, d] of Object.entries(g.devices)) {
    const cfg = deviceOverrides(d);
    if (d.kind === "camera" || d.kind === "output") {
      const stage = g.stages.find((s) => s.device === name);
      const pool = stage?.pool !== undefined ? g.pools[stage.pool] : undefined;
      const scattered =
        pool !== undefined &&
        (pool.source === "udmabuf" ||
          pool.source === "v4l2-userptr" ||
          (pool.source === "dma-heap" && pool.heap !== "cma"));
      const iommu = cfg.iommu ?? kernel.machine.profile.device.iommu;
      drivers.vivid.set(
        name,
        vividProbe(kernel, {
          capture: cfg,
          output: cfg,
          ...(d.kind === "camera" ? { captureName: name } : { outputName: name }),
          // Imported buffers (an output's input, a scattered pool) need scatter-gather
          // unless an IOMMU makes them contiguous; an output the CPU renders into (no
          // inputs) uses its own MMAP buffers.
          allocator:
            d.allocator ??
            ((scattered || (d.kind === "output" && (stage?.inputs.length ?? 0) > 0)) && !iommu
              ? "dma-sg"
              : "dma-contig"),
          frameSizes: "continuous",
          allowCacheHints: true,
          bidirectional: d.bidirectional ?? (stage !== undefined && writers.has(stage.name)),
        }),
      );
    } else if (d.kind === "gpu") {
      drivers.gpu.set(
        name,
        simgpuProbe(kernel, {
          device: cfg,
          name,
          ...(d.boMapping !== undefined ? { boMapping: d.boMapping } : {}),
        }),
      );
    } else if (d.kind === "m2m") {
      const stage = g.stages.find((s) => s.device === name);
      // Contiguous CAPTURE buffers, so displays without an IOMMU can scan them out; cache
      // hints allowed (V4L2_MEMORY_FLAG_NON_COHERENT honoured), as the camera has them.
      drivers.m2m.set(
        name,
        vim2mProbe(kernel, {
          device: cfg,
          name,
          allocator: "dma-contig",
          allowCacheHints: true,
          // A CPU stage writing its results in place: mapped both ways, as the camera's.
          bidirectional: d.bidirectional ?? (stage !== undefined && writers.has(stage.name)),
        }),
      );
    } else if (d.kind === "npu") {
      drivers.npu.set(name, simnpuProbe(kernel, { device: cfg, name }));
    } else if (d.kind === "encoder") {
      // Its OUTPUT queue imports whatever it is given: scatter-gather unless an IOMMU
      // makes buffers contiguous (as an output device's); cache hints as the camera's.
      const iommu = cfg.iommu ?? kernel.machine.profile.device.iommu;
      drivers.encoder.set(
        name,
        simencProbe(kernel, {
          device: cfg,
          name,
          allocator: iommu ? "dma-contig" : "dma-sg",
          allowCacheHints: true,
        }),
      );
    } else if (d.kind === "display") {
      drivers.display.set(
        name,
        simdisplayProbe(kernel, {
          width: spec.width,
          height: spec.height,
          refreshHz: 60,
          device: cfg,
          name,
        }),
      );
    }
  }
  return drivers;
}

/** The stage whose buffer a stage works on: itself, or for a CPU stage (in place) its input's owner. */
function bufferOwner(g: GraphSpec, s: GraphStage): GraphStage {
  const input = s.device === undefined ? g.stages.find((x) => x.name === s.inputs[0]) : undefined;
  return input === undefined ? s : bufferOwner(g, input);
}

/** The lines and bytes of each line a CPU access touches. */
function accessRegion(
  a: CpuAccess,
  g: FrameGeometry,
): { top: number; lines: number; left: number; bytes: number } {
  const lines = Math.max(
    1,
    Math.min(
      g.height - (a.top ?? 0),
      a.lines ?? (a.fraction !== undefined ? Math.ceil(g.height * a.fraction) : 16),
    ),
  );
  const rowBytes = g.width * g.bpp;
  const left = Math.min(a.left ?? 0, rowBytes - 1);
  const bytes = Math.min(a.bytesPerLine ?? rowBytes - left, rowBytes - left);
  return { top: a.top ?? 0, lines, left, bytes };
}

/**
 * The CPU working on a frame in place through an mmap of its dma-buf. A CPU stage that
 * nothing reads is a sink: the program reading a result back (an NPU's tensor, a
 * frame to save), and its CRC is of the bytes it read.
 */
class CpuNode {
  readonly #maps = new Map<number, Mapping>();
  /**
   * The program's buffer for the lines it works on, reused from frame to frame (a fresh
   * one per frame is a few hundred KiB of new host pages each time, at 4K).
   */
  #band = new Uint8Array(0);

  constructor(
    readonly app: SimUapi,
    readonly stage: GraphStage,
    readonly fault: PipelineFault | undefined,
    readonly sink: boolean,
  ) {}

  /** Reads and/or writes the region; for a sink, the CRC of what was read and of what should have been. */
  process(f: Frame, frameNo: number): SinkFrame | undefined {
    const a = this.stage.cpu!;
    const len = Math.ceil((f.offset + f.geom.stride * f.geom.height) / PAGE) * PAGE;
    let map = this.#maps.get(f.fd);
    const lying = this.fault === "lying-no-cache-invalidate" && f.v4l2 !== undefined;
    if (map === undefined) {
      // A program that trusts DQBUF to have made the frame visible uses the V4L2 mapping.
      map = lying
        ? this.app.mmap(len, PROT_READ | PROT_WRITE, MAP_SHARED, f.v4l2!.fd, f.v4l2!.offset)
        : this.app.mmap(len, PROT_READ | PROT_WRITE, MAP_SHARED, f.fd, 0);
      this.#maps.set(f.fd, map);
    }
    // Explicit sync: wait for the producer's sync_file before touching the buffer.
    if (this.stage.sync === "sync-file" && f.fenceFd >= 0) {
      this.app.poll([{ fd: f.fenceFd, events: POLLIN }], -1);
    }
    const dir = (a.read ? DMA_BUF_SYNC_READ : 0) | (a.write ? DMA_BUF_SYNC_WRITE : 0);
    if (this.fault !== "omit-sync-start" && !lying) dmaBufSyncStart(this.app, f.fd, dir);
    const r = accessRegion(a, f.geom);
    const rowBytes = f.geom.width * f.geom.bpp;
    let crc = 0xffffffff;
    let want = 0xffffffff;
    const check = (got: Uint8Array, off: number): void => {
      if (!this.sink) return;
      crc = crc32Le(crc, got);
      want = crc32Le(want, f.expected.subarray(off, off + got.length));
    };
    if (r.left === 0 && r.bytes === rowBytes) {
      // Whole lines: one access of the band, stride padding included (a memcpy-like loop).
      const off = r.top * f.geom.stride;
      const len = r.lines * f.geom.stride;
      if (this.#band.length < len) this.#band = new Uint8Array(len);
      const band = a.read
        ? map.read(f.offset + off, len, this.#band)
        : this.#band.subarray(0, len).fill(0);
      for (let y = 0; y < r.lines; y++) {
        const o = y * f.geom.stride;
        check(band.subarray(o, o + rowBytes), off + o);
      }
      if (a.write) {
        for (let y = 0; y < r.lines; y++) {
          const o = y * f.geom.stride;
          stampBytes(band.subarray(o, o + rowBytes), frameNo, a.read);
          stampBytes(f.expected.subarray(off + o, off + o + rowBytes), frameNo, a.read);
        }
        map.write(f.offset + off, band);
      }
    } else {
      for (let y = r.top; y < r.top + r.lines; y++) {
        const off = y * f.geom.stride + r.left;
        const row = a.read ? map.read(f.offset + off, r.bytes) : new Uint8Array(r.bytes);
        check(row, off);
        if (a.write) {
          stampBytes(row, frameNo, a.read);
          map.write(f.offset + off, row);
          stampBytes(f.expected.subarray(off, off + r.bytes), frameNo, a.read);
        }
      }
    }
    if (this.fault !== "omit-sync-end") dmaBufSyncEnd(this.app, f.fd, dir);
    return this.sink ? { crc: ~crc >>> 0, expectedCrc: ~want >>> 0 } : undefined;
  }

  /** munmap of every mapping it made (each held a reference to its dma-buf). */
  release(): void {
    for (const m of this.#maps.values()) this.app.munmap(m);
  }
}

function dmaBufSyncStart(app: SimUapi, fd: number, dir: number): void {
  dmaBufSyncIoctl(app, fd, DMA_BUF_SYNC_START | dir);
}
function dmaBufSyncEnd(app: SimUapi, fd: number, dir: number): void {
  dmaBufSyncIoctl(app, fd, DMA_BUF_SYNC_END | dir);
}

/** An output device reading each frame it is given, queued as V4L2_MEMORY_DMABUF. */
class OutputNode {
  readonly fd: number;
  #queued = 0;
  #streaming = false;

  constructor(
    readonly app: SimUapi,
    readonly vivid: Vivid,
    spec: ResolvedSpec,
    count: number,
  ) {
    this.fd = app.open(vivid.output.vdev!.path, O_RDWR);
    vidiocSFmt(app, this.fd, V4L2_BUF_TYPE_VIDEO_OUTPUT, {
      width: spec.width,
      height: spec.height,
      pixelformat: V4L2_PIX_FMT_XBGR32,
    });
    vidiocReqbufs(app, this.fd, {
      count,
      type: V4L2_BUF_TYPE_VIDEO_OUTPUT,
      memory: V4L2_MEMORY_DMABUF,
      flags: 0,
    });
  }

  /** Queues the frame, waits until the device read it, dequeues it: the CRC of what it read. */
  send(f: Frame): number {
    const index = this.#queued % 2;
    vidiocQbuf(this.app, this.fd, {
      index,
      type: V4L2_BUF_TYPE_VIDEO_OUTPUT,
      memory: V4L2_MEMORY_DMABUF,
      flags: 0,
      fd: f.fd,
      bytesused: f.geom.stride * f.geom.height,
    });
    if (!this.#streaming) {
      vidiocStreamon(this.app, this.fd, V4L2_BUF_TYPE_VIDEO_OUTPUT);
      this.#streaming = true;
    }
    const got = this.vivid.output.waitForFrame(this.#queued++);
    vidiocDqbuf(this.app, this.fd, V4L2_BUF_TYPE_VIDEO_OUTPUT, V4L2_MEMORY_DMABUF);
    return crc32(got);
  }

  stop(): void {
    if (this.#streaming) vidiocStreamoff(this.app, this.fd, V4L2_BUF_TYPE_VIDEO_OUTPUT);
  }

  /** Teardown after STREAMOFF: VIDIOC_REQBUFS(0) unmaps and detaches the imported dma-bufs, then the node is closed. */
  release(): void {
    vidiocReqbufs(this.app, this.fd, {
      count: 0,
      type: V4L2_BUF_TYPE_VIDEO_OUTPUT,
      memory: V4L2_MEMORY_DMABUF,
    });
    this.app.close(this.fd);
  }
}

/**
 * A V4L2 mem2mem device (vim2m as an ISP, simenc as an encoder): each frame's input is
 * queued on the OUTPUT queue as V4L2_MEMORY_DMABUF; the result lands in one of its own
 * CAPTURE buffers (MMAP, exported with VIDIOC_EXPBUF for the stages downstream, and for
 * an encoder mmapped so the program can read the coded frame).
 */
class M2mNode {
  readonly fd: number;
  readonly buffers: { fd: number; offset: number; length: number }[] = [];
  readonly out: M2mPixFormat;
  readonly cap: M2mPixFormat;
  readonly free: boolean[];
  /** The OUTPUT slot each input dma-buf is queued to. */
  readonly #slots = new Map<number, number>();
  #next = 0;
  #streaming = false;

  constructor(
    readonly app: SimUapi,
    readonly device: M2mTestDevice,
    spec: ResolvedSpec,
    inFormat: string,
    outFormat: string,
    count: number,
    name: string,
    inputs: number,
  ) {
    this.fd = app.open(device.vdev.path, O_RDWR);
    const fourcc = (f: string): number => (f === "YUYV" ? V4L2_PIX_FMT_YUYV : V4L2_PIX_FMT_XBGR32);
    const size = { width: spec.width, height: spec.height };
    this.out = vidiocSFmt(app, this.fd, V4L2_BUF_TYPE_VIDEO_OUTPUT, {
      ...size,
      pixelformat: fourcc(inFormat),
    });
    this.cap = vidiocSFmt(app, this.fd, V4L2_BUF_TYPE_VIDEO_CAPTURE, {
      ...size,
      pixelformat: fourcc(outFormat),
    });
    // One OUTPUT slot per input buffer, so each dma-buf stays attached to its slot (vb2
    // keeps a DMABUF plane's attachment while the same fd is queued to it again).
    vidiocReqbufs(app, this.fd, {
      count: inputs,
      type: V4L2_BUF_TYPE_VIDEO_OUTPUT,
      memory: V4L2_MEMORY_DMABUF,
      flags: 0,
    });
    const rb = vidiocReqbufs(app, this.fd, {
      count,
      type: V4L2_BUF_TYPE_VIDEO_CAPTURE,
      memory: V4L2_MEMORY_MMAP,
      flags: spec.strategy !== "coherent" ? V4L2_MEMORY_FLAG_NON_COHERENT : 0,
    });
    for (let i = 0; i < rb.count; i++) {
      const fd = vidiocExpbuf(app, this.fd, {
        type: V4L2_BUF_TYPE_VIDEO_CAPTURE,
        index: i,
        flags: O_RDWR | O_CLOEXEC,
      });
      dmaBufSetName(app, fd, `${name}${i}`);
      const q = vidiocQuerybuf(app, this.fd, V4L2_BUF_TYPE_VIDEO_CAPTURE, V4L2_MEMORY_MMAP, i);
      this.buffers.push({ fd, offset: q.offset, length: q.length });
    }
    this.free = this.buffers.map(() => true);
  }

  get geometry(): FrameGeometry {
    return {
      width: this.cap.width,
      height: this.cap.height,
      stride: this.cap.bytesperline,
      bpp: this.cap.pixelformat === V4L2_PIX_FMT_YUYV ? 2 : 4,
    };
  }

  /** One job: the input in, a free CAPTURE buffer out; returns it once the job is done. */
  process(input: Frame): { index: number; bytesused: number } {
    let index = -1;
    for (let k = 0; k < this.free.length; k++) {
      const i = (this.#next + k) % this.free.length;
      if (this.free[i]) {
        index = i;
        break;
      }
    }
    if (index < 0) {
      throw new RangeError(
        `pipeline: ${this.device.dev.name} has no free CAPTURE buffer; give its pool more buffers`,
      );
    }
    this.free[index] = false;
    this.#next = index + 1;
    const slot = this.#slots.get(input.fd) ?? this.#slots.size;
    this.#slots.set(input.fd, slot);
    vidiocQbuf(this.app, this.fd, {
      index: slot,
      type: V4L2_BUF_TYPE_VIDEO_OUTPUT,
      memory: V4L2_MEMORY_DMABUF,
      flags: 0,
      fd: input.fd,
      bytesused: this.out.sizeimage,
    });
    vidiocQbuf(this.app, this.fd, {
      index,
      type: V4L2_BUF_TYPE_VIDEO_CAPTURE,
      memory: V4L2_MEMORY_MMAP,
      flags: 0,
    });
    if (!this.#streaming) {
      vidiocStreamon(this.app, this.fd, V4L2_BUF_TYPE_VIDEO_OUTPUT);
      vidiocStreamon(this.app, this.fd, V4L2_BUF_TYPE_VIDEO_CAPTURE);
      this.#streaming = true;
    }
    const done = vidiocDqbuf(this.app, this.fd, V4L2_BUF_TYPE_VIDEO_CAPTURE, V4L2_MEMORY_MMAP);
    vidiocDqbuf(this.app, this.fd, V4L2_BUF_TYPE_VIDEO_OUTPUT, V4L2_MEMORY_DMABUF);
    return { index: done.index, bytesused: done.bytesused };
  }

  stop(): void {
    if (!this.#streaming) return;
    vidiocStreamoff(this.app, this.fd, V4L2_BUF_TYPE_VIDEO_OUTPUT);
    vidiocStreamoff(this.app, this.fd, V4L2_BUF_TYPE_VIDEO_CAPTURE);
  }

  /**
   * Teardown after STREAMOFF: VIDIOC_REQBUFS(0) on both queues (the imported inputs are
   * unmapped and detached), the exported CAPTURE buffers' fds and the node closed.
   */
  release(): void {
    vidiocReqbufs(this.app, this.fd, {
      count: 0,
      type: V4L2_BUF_TYPE_VIDEO_OUTPUT,
      memory: V4L2_MEMORY_DMABUF,
    });
    vidiocReqbufs(this.app, this.fd, {
      count: 0,
      type: V4L2_BUF_TYPE_VIDEO_CAPTURE,
      memory: V4L2_MEMORY_MMAP,
    });
    for (const b of this.buffers) this.app.close(b.fd);
    this.app.close(this.fd);
  }
}

/**
 * A stateful encoder (simenc) as a sink: the frame goes in on the OUTPUT queue, the
 * coded frame comes back in a CAPTURE buffer, and the program reads it through its
 * V4L2 mmap (as a recorder writing it to a file would); the CRC is of the coded bytes.
 */
class EncoderNode {
  readonly m2m: M2mNode;
  readonly #maps: Mapping[];

  constructor(
    app: SimUapi,
    device: Simenc,
    spec: ResolvedSpec,
    inFormat: string,
    name: string,
    inputs: number,
  ) {
    this.m2m = new M2mNode(app, device, spec, inFormat, inFormat, 2, name, inputs);
    this.#maps = this.m2m.buffers.map((b) =>
      app.mmap(b.length, PROT_READ, MAP_SHARED, this.m2m.fd, b.offset),
    );
  }

  encode(f: Frame): SinkFrame {
    const { index, bytesused } = this.m2m.process(f);
    const coded = this.#maps[index]!.read(0, bytesused);
    this.m2m.free[index] = true;
    return { crc: crc32(coded), expectedCrc: crc32(simencEncode(f.expected, this.m2m.out)) };
  }

  /** The coded-frame mappings, then the mem2mem teardown. */
  release(): void {
    for (const m of this.#maps) this.m2m.app.munmap(m);
    this.m2m.release();
  }
}

const NPU_OPS: Readonly<Record<string, number>> = {
  conv3x3: SIMNPU_OP_CONV3X3,
  "tile-sum": SIMNPU_OP_TILE_SUM,
};

/**
 * A compute accelerator (simnpu) on /dev/accel/accelN: its pool's buffers are its own
 * (DRM_IOCTL_SIMNPU_BO_CREATE, exported with PRIME) or allocated from a heap or as
 * udmabufs and imported; each frame is one job from the input's imported handle into a
 * free output, with an out-fence for whoever waits explicitly.
 */
class NpuNode {
  readonly fd: number;
  readonly outputs: { fd: number; handle: number }[] = [];
  readonly free: boolean[];
  readonly op: number;
  readonly inGeom: FrameGeometry;
  readonly outGeom: FrameGeometry;
  readonly #imports = new Map<number, number>();
  #next = 0;

  constructor(
    readonly app: SimUapi,
    npu: SimNpu,
    stage: GraphStage,
    pool: GraphPool,
    inGeom: FrameGeometry,
  ) {
    this.fd = app.open(npu.path, O_RDWR);
    this.op = NPU_OPS[stage.op ?? "conv3x3"]!;
    this.inGeom = inGeom;
    const g = simnpuOutputGeometry(this.op, this.params(inGeom));
    this.outGeom = {
      width: g.width,
      height: g.height,
      stride: g.rowBytes,
      bpp: g.rowBytes / g.width,
    };
    const size = Math.ceil((g.rowBytes * g.height) / PAGE) * PAGE;
    const alloc =
      pool.source === "dma-heap" || pool.source === "udmabuf"
        ? new DmabufAllocator(app, pool.source, pool.heap ?? "system")
        : undefined;
    for (let i = 0; i < pool.count; i++) {
      const name = `${stage.pool}${i}`;
      let fd: number;
      let handle: number;
      if (alloc === undefined) {
        handle = simnpuBoCreate(app, this.fd, size).handle;
        fd = drmPrimeHandleToFd(app, this.fd, handle, DRM_CLOEXEC | DRM_RDWR);
      } else {
        fd = alloc.alloc(size, name);
        handle = drmPrimeFdToHandle(app, this.fd, fd);
      }
      dmaBufSetName(app, fd, name);
      this.outputs.push({ fd, handle });
    }
    alloc?.close();
    this.free = this.outputs.map(() => true);
  }

  params(g: FrameGeometry): { width: number; height: number; cpp: number; inPitch: number } {
    return { width: g.width, height: g.height, cpp: g.bpp, inPitch: g.stride };
  }

  /** PRIME-imports an input buffer once (the NPU maps it at import, drm_gem_prime_import). */
  importBuffer(fd: number): void {
    if (!this.#imports.has(fd)) this.#imports.set(fd, drmPrimeFdToHandle(this.app, this.fd, fd));
  }

  /** Submits one job from `input` into a free output; `inFenceFd` >= 0 adds an explicit in-fence. */
  run(stage: GraphStage, input: Frame, inFenceFd: number): { index: number; outFenceFd: number } {
    const index = takeFree(this.free, this.#next, stage);
    this.#next = index + 1;
    const r = simnpuSubmit(this.app, this.fd, {
      op: this.op,
      inHandle: this.#imports.get(input.fd)!,
      outHandle: this.outputs[index]!.handle,
      ...this.params(input.geom),
      outPitch: this.outGeom.stride,
      flags: SIMNPU_SUBMIT_OUT_FENCE | (inFenceFd >= 0 ? SIMNPU_SUBMIT_IN_FENCE : 0),
      ...(inFenceFd >= 0 ? { inFenceFd } : {}),
    });
    return { index, outFenceFd: r.outFenceFd };
  }

  /** What the job writes, from the input's expected bytes (simnpuCompute, apart from the machine). */
  expected(input: Frame): Uint8Array {
    return simnpuCompute(this.op, input.expected, this.params(input.geom));
  }

  /**
   * The teardown once every job is done: DRM_IOCTL_GEM_CLOSE of the imported inputs
   * (unmapped and detached) and of the outputs, their fds closed, then the node.
   */
  release(): void {
    for (const h of this.#imports.values()) drmGemClose(this.app, this.fd, h);
    for (const o of this.outputs) {
      drmGemClose(this.app, this.fd, o.handle);
      this.app.close(o.fd);
    }
    this.app.close(this.fd);
  }
}

/** The first free buffer from `next` on, round robin, marked taken; a clear error when none is free. */
function takeFree(free: boolean[], next: number, s: GraphStage): number {
  for (let k = 0; k < free.length; k++) {
    const i = (next + k) % free.length;
    if (free[i]) {
      free[i] = false;
      return i;
    }
  }
  throw new RangeError(
    `pipeline: stage ${s.name}: every buffer of pool ${s.pool} is still in use; give it more buffers`,
  );
}

const GPU_OPS: Readonly<Record<string, number>> = {
  copy: SIMGPU_OP_COPY,
  invert: SIMGPU_OP_INVERT,
  "yuyv-to-xrgb": SIMGPU_OP_YUYV_TO_XRGB8888,
};

/**
 * Runs the graph for `spec.frames` frames; `record(sink, frame, result)` is called for
 * every sink of every frame, the primary sink last so its per-frame costs close the frame.
 * `faults` are deliberate userspace mistakes by stage name (a stage's own `fault` wins);
 * while a stage runs (and while its buffers are handed back to its device) the kernel's
 * fault injector has the stage's name as its scope, so a named fault can be armed for
 * one stage. After the last frame and STREAMOFF, `teardown()` is called and every stage
 * releases what it made (REQBUFS(0), RMFB, GEM_CLOSE, munmap, close).
 */
export function runGraph(
  kernel: Kernel,
  app: SimUapi,
  spec: ResolvedSpec,
  g: GraphSpec,
  drivers: GraphDrivers,
  record: (sink: GraphStage, frame: number, r: SinkFrame) => void,
  steady: () => void,
  faults: ReadonlyMap<string, PipelineFault> = new Map(),
  afterStage?: (stage: GraphStage, frame: number, bufferFd: number) => void,
  teardown?: () => void,
): void {
  const order = topoOrder(g);
  const consumers = new Map<string, GraphStage[]>();
  for (const s of order)
    for (const i of s.inputs) (consumers.get(i) ?? consumers.set(i, []).get(i)!).push(s);
  const sinks = graphSinks(g);
  const fault0 = spec.fault;
  const injector = kernel.machine.faults;
  const inStage = <T>(s: GraphStage, f: () => T): T => scoped(injector, s.name, f);
  const formatOf = (name: string): string =>
    stageFormat(g, g.stages.find((x) => x.name === name)!, spec.format);

  // Set-up, in stage order: open nodes, allocate pools, import along edges.
  const cameras = new Map<string, CameraStage>();
  const displays = new Map<string, DisplayStage>();
  const gpus = new Map<string, { node: GpuStage; free: boolean[]; next: number }>();
  const cpus = new Map<string, CpuNode>();
  const outputs = new Map<string, OutputNode>();
  const rendered = new Map<string, OutputStage>();
  const m2ms = new Map<string, M2mNode>();
  const npus = new Map<string, NpuNode>();
  const encoders = new Map<string, EncoderNode>();
  /**
   * Each stage's expected frames live in one buffer, taken from this thread's pool for
   * the run (given back at its end, so the next run reuses the memory and what it holds).
   */
  const expectedOf = new Map<string, ScratchBuffer>();
  const bufferOf = (s: GraphStage): ScratchBuffer => {
    let b = expectedOf.get(s.name);
    if (b === undefined) {
      b = expectedPool.take(s.name);
      expectedOf.set(s.name, b);
    }
    return b;
  };
  /** A stage's expected frame, copied out of a pure function's result. */
  const keep = (s: GraphStage, bytes: Uint8Array): Uint8Array => {
    const e = bufferOf(s).get(bytes.length);
    e.set(bytes);
    return e;
  };
  const displayOf = (s: GraphStage): DisplayStage => {
    let d = displays.get(s.device!);
    if (d === undefined) {
      d = new DisplayStage(app, kernel, spec, drivers.display.get(s.device!)!);
      displays.set(s.device!, d);
    }
    return d;
  };
  /** The geometry of what a stage's buffers hold. */
  const geometryOf = (name: string): FrameGeometry => {
    const s = g.stages.find((x) => x.name === name)!;
    const kind = stageKind(g, s);
    if (kind === "camera") {
      const c = cameras.get(name)!;
      const bpp = formatOf(name) === "YUYV" ? 2 : 4;
      return { width: spec.width, height: spec.height, stride: c.bytesperline, bpp };
    }
    if (kind === "gpu") return gpus.get(name)!.node.outGeometry;
    if (kind === "m2m") return m2ms.get(name)!.geometry;
    if (kind === "npu") return npus.get(name)!.outGeom;
    return geometryOf(s.inputs[0]!); // CPU stages work in place
  };
  /** The buffers a stage's consumers read (set up already: stages run in topological order). */
  const producerBuffers = (name: string): { fd: number; pitch: number; offset?: number }[] => {
    const s = g.stages.find((x) => x.name === name)!;
    const kind = stageKind(g, s);
    if (kind === "camera") {
      const c = cameras.get(name)!;
      return c.buffers.map((b) => ({ fd: b.fd, pitch: c.bytesperline, offset: b.frameOffset }));
    }
    if (kind === "gpu")
      return gpus.get(name)!.node.outputs.map((o) => ({ fd: o.fd, pitch: o.pitch }));
    if (kind === "m2m") {
      const m = m2ms.get(name)!;
      return m.buffers.map((b) => ({ fd: b.fd, pitch: m.cap.bytesperline }));
    }
    if (kind === "npu") {
      const n = npus.get(name)!;
      return n.outputs.map((o) => ({ fd: o.fd, pitch: n.outGeom.stride }));
    }
    return producerBuffers(s.inputs[0]!); // CPU stages work in place
  };
  for (const s of order) {
    const kind = stageKind(g, s);
    inStage(s, () => {
      if (kind === "camera") {
        const pool = g.pools[s.pool!]!;
        const vivid = drivers.vivid.get(s.device!)!;
        const layout = frameLayout(g, s, spec.faults);
        cameras.set(
          s.name,
          new CameraStage(app, kernel, spec, {
            path: vivid.capture.vdev!.path,
            source:
              pool.source === "gem-dumb" || pool.source === "accel-bo" || pool.source === "gpu-bo"
                ? "v4l2-mmap"
                : pool.source,
            heap: pool.heap ?? "system",
            count: pool.count,
            ...(s.fps !== undefined ? { fps: s.fps } : {}),
            namePrefix: s.pool!,
            format: formatOf(s.name),
            ...(layout !== undefined ? { layout } : {}),
          }),
        );
      } else if (kind === "cpu") {
        const sink = (consumers.get(s.name)?.length ?? 0) === 0;
        cpus.set(s.name, new CpuNode(app, s, s.fault ?? faults.get(s.name) ?? fault0, sink));
      } else if (kind === "display") {
        displayOf(s);
      } else if (kind === "gpu") {
        const pool = g.pools[s.pool!]!;
        // GEM dumb buffers come from a display: the first one downstream, else the first;
        // a gpu-bo pool is the GPU's own.
        const down = (consumers.get(s.name) ?? []).find((c) => stageKind(g, c) === "display");
        const allocStage =
          pool.source === "gpu-bo"
            ? undefined
            : (down ?? g.stages.find((x) => stageKind(g, x) === "display")!);
        const inputFormat = formatOf(s.inputs[0]!);
        const op = GPU_OPS[s.op ?? (inputFormat === "YUYV" ? "yuyv-to-xrgb" : "invert")]!;
        const node = new GpuStage(
          app,
          kernel,
          spec,
          allocStage !== undefined ? displayOf(allocStage) : undefined,
          drivers.gpu.get(s.device!)!,
          { count: pool.count, namePrefix: s.pool!, op },
        );
        gpus.set(s.name, { node, free: node.outputs.map(() => true), next: 0 });
      } else if (kind === "output" && s.inputs.length === 0) {
        rendered.set(s.name, new OutputStage(app, kernel, spec, drivers.vivid.get(s.device!)!));
      } else if (kind === "output") {
        outputs.set(s.name, new OutputNode(app, drivers.vivid.get(s.device!)!, spec, 2));
      } else if (kind === "m2m") {
        const pool = g.pools[s.pool!]!;
        m2ms.set(
          s.name,
          new M2mNode(
            app,
            drivers.m2m.get(s.device!)!,
            spec,
            formatOf(s.inputs[0]!),
            formatOf(s.name),
            pool.count,
            s.pool!,
            producerBuffers(s.inputs[0]!).length,
          ),
        );
      } else if (kind === "npu") {
        npus.set(
          s.name,
          new NpuNode(
            app,
            drivers.npu.get(s.device!)!,
            s,
            g.pools[s.pool!]!,
            geometryOf(s.inputs[0]!),
          ),
        );
      } else if (kind === "encoder") {
        encoders.set(
          s.name,
          new EncoderNode(
            app,
            drivers.encoder.get(s.device!)!,
            spec,
            formatOf(s.inputs[0]!),
            `${s.name}-coded`,
            producerBuffers(s.inputs[0]!).length,
          ),
        );
      }
    });
  }
  // Imports along the edges: each consumer device imports every buffer of its producer once.
  const fbs = new Map<string, Map<number, number>>(); // display stage -> fd -> fb
  const gpuHandles = new Map<string, Map<number, number>>(); // gpu stage -> fd -> handle
  for (const s of order) {
    const kind = stageKind(g, s);
    inStage(s, () => {
      if (kind === "display") {
        const d = displayOf(s);
        const m = new Map<number, number>();
        const producer = g.stages.find((x) => x.name === s.inputs[0])!;
        const own = stageKind(g, producer) === "gpu" ? gpus.get(producer.name)!.node : undefined;
        for (const b of producerBuffers(s.inputs[0]!)) {
          const o = own?.outputs.find((x) => x.fd === b.fd && own.display === d);
          m.set(b.fd, o !== undefined ? o.fb : d.importFramebuffer(b.fd, b.pitch, b.offset));
        }
        fbs.set(s.name, m);
      } else if (kind === "gpu") {
        const node = gpus.get(s.name)!.node;
        gpuHandles.set(
          s.name,
          new Map(
            s.inputs.flatMap((i) => producerBuffers(i).map((b) => [b.fd, node.importBuffer(b.fd)])),
          ),
        );
      } else if (kind === "npu") {
        const node = npus.get(s.name)!;
        for (const b of producerBuffers(s.inputs[0]!)) node.importBuffer(b.fd);
      }
    });
  }

  for (const [name, c] of cameras) inStage(g.stages.find((x) => x.name === name)!, () => c.start());
  steady();

  const onScreen = new Map<string, Frame>();
  const current = new Map<string, Frame>();
  for (let n = 0; n < spec.frames; n++) {
    current.clear();
    const deferred: (() => void)[] = [];
    const results = new Map<string, SinkFrame>();
    const done = (f: Frame): void => {
      if (--f.holds === 0) f.release();
    };
    for (const s of order) {
      const kind = stageKind(g, s);
      const users = consumers.get(s.name)?.length ?? 0;
      const input = (): Frame => current.get(s.inputs[0]!)!;
      inStage(s, () => {
        if (kind === "camera") {
          const cam = cameras.get(s.name)!;
          const buf = cam.dequeue();
          const frame: Frame = {
            fd: cam.buffers[buf.index]!.fd,
            offset: cam.buffers[buf.index]!.frameOffset,
            geom: geometryOf(s.name),
            expected: cam.expectedFrame(buf.sequence, bufferOf(s)),
            expectedBuffer: bufferOf(s),
            fenceFd: -1,
            ...(cam.memory === V4L2_MEMORY_MMAP
              ? { v4l2: { fd: cam.fd, offset: cam.buffers[buf.index]!.offset } }
              : {}),
            holds: users,
            // Handing the buffer back is the camera stage's call, wherever it happens.
            release: () => inStage(s, () => cam.queue(buf.index)),
          };
          current.set(s.name, frame);
          afterStage?.(s, n, frame.fd);
          if (users === 0) frame.release();
        } else if (kind === "cpu") {
          const f = input();
          const r = cpus.get(s.name)!.process(f, n);
          // The stamp changed the expected bytes in place, in the region's rows.
          if (s.cpu?.write) {
            const region = accessRegion(s.cpu, f.geom);
            f.expectedBuffer.touchRows(region.top + region.lines);
          }
          if (r !== undefined) results.set(s.name, r);
          // In place: this stage's hold passes to its own consumers.
          f.holds += users - 1;
          current.set(s.name, f);
          afterStage?.(s, n, f.fd);
          if (f.holds === 0) f.release();
        } else if (kind === "gpu") {
          const gp = gpus.get(s.name)!;
          const ins = s.inputs.map((i) => current.get(i)!);
          const index = takeFree(gp.free, gp.next, s);
          gp.next = index + 1;
          const handles = gpuHandles.get(s.name)!;
          const fence = (f: Frame): number => (s.sync === "sync-file" ? f.fenceFd : -1);
          // The first input through the stage's op, then a second one blended over it:
          // the blend job waits for the first through the output's reservation.
          const jobs = ins.map((f, i) =>
            gp.node.runInto(
              handles.get(f.fd)!,
              index,
              f.geom.stride,
              fence(f),
              ...(i === 0 ? [] : [SIMGPU_OP_BLEND]),
            ),
          );
          const out = gp.node.outputs[index]!;
          const expectedBuffer = bufferOf(s);
          const expected = gp.node.expectedOutput(
            ins[0]!.expected,
            ins[0]!.geom,
            expectedBuffer,
            ins[0]!.expectedBuffer.content,
          );
          const outGeom = gp.node.outGeometry;
          for (const f of ins.slice(1)) {
            simgpuBlend(f.expected, expected, {
              width: outGeom.width,
              height: outGeom.height,
              srcPitch: f.geom.stride,
              dstPitch: outGeom.stride,
            });
            expectedBuffer.forget();
          }
          const last = jobs[jobs.length - 1]!;
          const frame: Frame = {
            fd: out.fd,
            offset: 0,
            geom: outGeom,
            expected,
            expectedBuffer,
            fenceFd: last.outFenceFd,
            holds: users,
            release: () => {
              gp.free[index] = true;
            },
          };
          current.set(s.name, frame);
          if (users === 0) frame.release();
          // The inputs go back once the jobs' fences signalled.
          deferred.push(() =>
            inStage(s, () => {
              for (const j of jobs) gp.node.wait(j.outFenceFd);
              for (const f of ins) done(f);
            }),
          );
        } else if (kind === "npu") {
          const node = npus.get(s.name)!;
          const f = input();
          const job = node.run(s, f, s.sync === "sync-file" ? f.fenceFd : -1);
          const frame: Frame = {
            fd: node.outputs[job.index]!.fd,
            offset: 0,
            geom: node.outGeom,
            expected: keep(s, node.expected(f)),
            expectedBuffer: bufferOf(s),
            fenceFd: job.outFenceFd,
            holds: users,
            release: () => {
              node.free[job.index] = true;
            },
          };
          current.set(s.name, frame);
          if (users === 0) frame.release();
          deferred.push(() =>
            inStage(s, () => {
              app.poll([{ fd: job.outFenceFd, events: POLLIN }], -1);
              app.close(job.outFenceFd);
              done(f);
            }),
          );
        } else if (kind === "m2m") {
          const m = m2ms.get(s.name)!;
          const f = input();
          const { index } = m.process(f);
          done(f);
          const b = m.buffers[index]!;
          const frame: Frame = {
            fd: b.fd,
            offset: 0,
            geom: m.geometry,
            expected: keep(s, vim2mProcess(f.expected, m.out, m.cap)),
            expectedBuffer: bufferOf(s),
            fenceFd: -1,
            v4l2: { fd: m.fd, offset: b.offset },
            holds: users,
            release: () => {
              m.free[index] = true;
            },
          };
          current.set(s.name, frame);
          if (users === 0) frame.release();
        } else if (kind === "display") {
          const f = input();
          const d = displayOf(s);
          const { crc } = d.show(fbs.get(s.name)!.get(f.fd)!);
          const prev = onScreen.get(s.name);
          if (prev !== undefined) done(prev);
          onScreen.set(s.name, f);
          results.set(s.name, {
            crc,
            expectedCrc: visibleCrc(f.expected, f.geom, f.expectedBuffer.content),
          });
        } else if (kind === "output" && s.inputs.length === 0) {
          const { crc, expected } = rendered.get(s.name)!.renderAndSend(n);
          results.set(s.name, { crc, expectedCrc: expected });
        } else if (kind === "output") {
          const f = input();
          const crc = outputs.get(s.name)!.send(f);
          results.set(s.name, {
            crc,
            expectedCrc: visibleCrc(f.expected, f.geom, f.expectedBuffer.content),
          });
          done(f);
        } else if (kind === "encoder") {
          const f = input();
          results.set(s.name, encoders.get(s.name)!.encode(f));
          done(f);
        }
      });
    }
    for (const d of deferred) d();
    for (const sink of [...sinks.slice(1), sinks[0]!]) record(sink, n, results.get(sink.name)!);
  }
  for (const c of cameras.values()) c.stop();
  for (const d of displays.values()) d.stop();
  for (const o of outputs.values()) o.stop();
  for (const o of rendered.values()) o.stop();
  for (const m of m2ms.values()) m.stop();
  for (const e of encoders.values()) e.m2m.stop();
  for (const [name, b] of expectedOf) expectedPool.give(name, b);

  // Teardown, as the program ends: each stage releases what it made, consumers before
  // their producers, so a buffer's importers detach (unmap_dma_buf) before its producer
  // frees it and the last reference releases it (the exporter's release) — every one of
  // those paths under the checker. Its costs are the run's teardown, not a frame's.
  teardown?.();
  const releasedDisplays = new Set<DisplayStage>();
  for (const s of [...order].reverse()) {
    const kind = stageKind(g, s);
    inStage(s, () => {
      if (kind === "cpu") cpus.get(s.name)!.release();
      else if (kind === "display") {
        const d = displayOf(s);
        if (!releasedDisplays.has(d)) d.release();
        releasedDisplays.add(d);
      } else if (kind === "gpu") gpus.get(s.name)!.node.release();
      else if (kind === "npu") npus.get(s.name)!.release();
      else if (kind === "m2m") m2ms.get(s.name)!.release();
      else if (kind === "encoder") encoders.get(s.name)!.release();
      else if (kind === "output" && s.inputs.length === 0) rendered.get(s.name)!.release();
      else if (kind === "output") outputs.get(s.name)!.release();
      else if (kind === "camera") cameras.get(s.name)!.release();
    });
  }
}

/** Expected-frame buffers between runs in this thread (a run that throws leaves its own to the GC). */
const expectedPool = new ScratchPool();

/** Runs `f` with the fault injector's scope set to `name` (see FaultRule.scope). */
function scoped<T>(injector: FaultInjection, name: string, f: () => T): T {
  const prev = injector.scope;
  injector.scope = name;
  try {
    return f();
  } finally {
    injector.scope = prev;
  }
}
