/**
 * The userspace side of each device in a pipeline, written the way a camera stack or a
 * compositor writes it: V4L2 ioctls for the camera, DMA_BUF_IOCTL_SYNC around CPU
 * access, PRIME to share buffers with the GPU and the display, page flips and the
 * display's CRC file. Each stage owns its fds and mappings.
 */

import { type SimDisplay, simdisplayProbe } from "../drivers/gpu/drm/simdisplay/simdisplay.js";
import { type SimGpu, simgpuProbe } from "../drivers/gpu/drm/simgpu/simgpu.js";
import { type Vivid, vividProbe } from "../drivers/media/test-drivers/vivid/vivid.js";
import { DRM_CLOEXEC, DRM_FORMAT_XRGB8888, DRM_RDWR } from "../include/uapi/drm.js";
import { DRM_MODE_PAGE_FLIP_EVENT } from "../include/uapi/drm-mode.js";
import {
  F_ADD_SEALS,
  F_SEAL_SHRINK,
  MAP_SHARED,
  MFD_ALLOW_SEALING,
  O_CLOEXEC,
  O_RDWR,
  POLLIN,
  PROT_READ,
  PROT_WRITE,
} from "../include/uapi/fcntl.js";
import {
  SIMGPU_OP_INVERT,
  SIMGPU_OP_YUYV_TO_XRGB8888,
  SIMGPU_SUBMIT_IN_FENCE,
  SIMGPU_SUBMIT_OUT_FENCE,
} from "../include/uapi/simgpu-drm.js";
import {
  V4L2_BUF_FLAG_NO_CACHE_CLEAN,
  V4L2_BUF_FLAG_NO_CACHE_INVALIDATE,
  V4L2_BUF_TYPE_VIDEO_CAPTURE,
  V4L2_BUF_TYPE_VIDEO_OUTPUT,
  V4L2_MEMORY_DMABUF,
  V4L2_MEMORY_FLAG_NON_COHERENT,
  V4L2_MEMORY_MMAP,
  V4L2_MEMORY_USERPTR,
  V4L2_PIX_FMT_XBGR32,
  V4L2_PIX_FMT_YUYV,
} from "../include/uapi/videodev2.js";
import type { Kernel } from "../kernel/kernel.js";
import { crc32 } from "../lib/crc32.js";
import type { ScratchBuffer, ScratchContent } from "../lib/scratch.js";
import type { DeviceConfig } from "../machine/device.js";
import {
  drmCrcOpen,
  drmCrcRead,
  drmGemClose,
  drmModeAddFB2,
  drmModeCreateDumb,
  drmModeDestroyDumb,
  drmModeGetConnector,
  drmModeGetResources,
  drmModePageFlip,
  drmModeRmFB,
  drmModeSetCrtc,
  drmPrimeFdToHandle,
  drmPrimeHandleToFd,
  drmReadEvents,
  simgpuGemCreate,
  simgpuSubmit,
} from "../uapi/drm.js";
import { dmaBufSetName, dmaHeapAlloc, udmabufCreate } from "../uapi/lib.js";
import type { SimUapi } from "../uapi/sim.js";
import type { Mapping } from "../uapi/uapi.js";
import {
  type V4l2Buffer,
  vidiocDqbuf,
  vidiocExpbuf,
  vidiocQbuf,
  vidiocQuerybuf,
  vidiocReqbufs,
  vidiocSFmt,
  vidiocSParm,
  vidiocStreamoff,
  vidiocStreamon,
} from "../uapi/v4l2.js";
import {
  expectedGpuOutput,
  expectedTestPattern,
  type FrameGeometry,
  visibleCrc,
} from "./expected.js";
import type { ResolvedSpec } from "./spec.js";
import type { DeviceSpec } from "./types.js";

const PAGE = 4096;

/** A device's overrides of the machine's device defaults, as a DMA master's configuration. */
export function deviceOverrides(d: DeviceSpec | undefined): Partial<Omit<DeviceConfig, "name">> {
  const out: { -readonly [K in keyof DeviceConfig]?: DeviceConfig[K] } = {};
  if (d?.coherent !== undefined) out.coherent = d.coherent;
  if (d?.dmaBits !== undefined) out.dmaBits = d.dmaBits;
  if (d?.iommu !== undefined) out.iommu = d.iommu;
  if (d?.bandwidthBytesPerNs !== undefined) out.bandwidthBytesPerNs = d.bandwidthBytesPerNs;
  if (d?.setupNs !== undefined) out.setupNs = d.setupNs;
  return out;
}

/** Boots the pipeline's drivers on the kernel: vivid, the GPU and the display. */
export function probeDrivers(
  kernel: Kernel,
  spec: ResolvedSpec,
): { vivid: Vivid; gpu: SimGpu; display: SimDisplay } {
  const cam = deviceOverrides(spec.devices?.camera);
  // dma-contig needs contiguous DMA addresses: a scattered heap or udmabuf buffer can
  // only be captured into by a scatter-gather engine (or through an IOMMU).
  const scattered =
    spec.source === "udmabuf" || (spec.source === "dma-heap" && spec.heap !== "cma");
  const camIommu = cam.iommu ?? kernel.machine.profile.device.iommu;
  const vivid = vividProbe(kernel, {
    capture: cam,
    output: cam,
    allocator: scattered && !camIommu ? "dma-sg" : "dma-contig",
    // The pipelines choose their own sizes and use the cache hints (vivid's cache_hints=1).
    frameSizes: "continuous",
    allowCacheHints: true,
    // The CPU stamps captured frames in place: the queue must map them bidirectionally.
    bidirectional: spec.cpuWrites,
  });
  const gpu = simgpuProbe(kernel, { device: deviceOverrides(spec.devices?.gpu) });
  const display = simdisplayProbe(kernel, {
    width: spec.width,
    height: spec.height,
    refreshHz: 60,
    device: deviceOverrides(spec.devices?.display),
  });
  return { vivid, gpu, display };
}

export interface CamBuffer {
  readonly index: number;
  /** The dma-buf fd (exported with VIDIOC_EXPBUF, or allocated and queued as DMABUF). */
  readonly fd: number;
  readonly name: string;
  /** The V4L2 mmap offset (MMAP memory only). */
  readonly offset: number;
  /** The user address queued as m.userptr (USERPTR memory only). */
  readonly userptr?: number;
  /** Where the frame starts in its dma-buf (USERPTR memory with a structure before it; else 0). */
  readonly frameOffset: number;
  /** The program's frame-info structure for the buffer: `bytes` bytes at `at` in `map`. */
  readonly header?: { readonly map: Mapping; readonly at: number; readonly bytes: number };
}

/**
 * Userspace allocating dma-bufs without a device: from a DMA heap
 * (DMA_HEAP_IOCTL_ALLOC on /dev/dma_heap/NAME) or as udmabufs over sealed memfd pages
 * (UDMABUF_CREATE). The heap or /dev/udmabuf stays open until {@link close}.
 */
export class DmabufAllocator {
  readonly #fd: number;

  constructor(
    readonly app: SimUapi,
    readonly source: "dma-heap" | "udmabuf" | "v4l2-userptr",
    heap: string,
  ) {
    this.#fd = app.open(source === "dma-heap" ? `/dev/dma_heap/${heap}` : "/dev/udmabuf", O_RDWR);
  }

  /** One buffer of `size` bytes (a multiple of the page size); `name` names the memfd. */
  alloc(size: number, name: string): number {
    if (this.source === "dma-heap") return dmaHeapAlloc(this.app, this.#fd, size);
    return this.allocUserMemory(size, name, false).fd;
  }

  /**
   * memfd pages as a udmabuf; with `map`, also mapped into the process (MAP_SHARED), the
   * memory a USERPTR program hands to V4L2 while the other stages import the udmabuf.
   */
  allocUserMemory(size: number, name: string, map: boolean): { fd: number; map?: Mapping } {
    const memfd = this.app.memfdCreate(name, MFD_ALLOW_SEALING);
    this.app.ftruncate(memfd, size);
    this.app.fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK);
    const fd = udmabufCreate(this.app, this.#fd, memfd, 0, size);
    const m = map ? this.app.mmap(size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0) : undefined;
    this.app.close(memfd);
    return { fd, ...(m !== undefined ? { map: m } : {}) };
  }

  close(): void {
    this.app.close(this.#fd);
  }
}

/** Where a camera stage's node and buffers are, when not the single camera of a PipelineKind. */
export interface CameraOptions {
  /** The capture node (default /dev/video0). */
  readonly path?: string;
  /** Buffer source, heap and count (default the spec's). */
  readonly source?: ResolvedSpec["source"];
  readonly heap?: string;
  readonly count?: number;
  readonly fps?: number;
  /** dma-buf names: `${prefix}${i}` (default "cam"). */
  readonly namePrefix?: string;
  /**
   * USERPTR memory only: a structure of `header` bytes the program keeps for each buffer
   * and updates at every QBUF: `beside` the frame at the start of its memory (the frame
   * `offset` bytes in), or in memory of its own (src/pipelines/graph.ts, frameLayout).
   */
  readonly layout?: { readonly header: number; readonly offset: number; readonly beside: boolean };
  /** Pixel format, "XR24" or "YUYV" (default the spec's). */
  readonly format?: string;
}

/** The camera: vivid capture through the V4L2 ioctls. */
export class CameraStage {
  readonly fd: number;
  readonly bytesperline: number;
  readonly sizeimage: number;
  readonly memory: number;
  readonly buffers: CamBuffer[] = [];
  readonly #pixelformat: number;
  readonly #userptrLength: number;
  /** QBUFs so far: the frame-info record the program writes beside a frame. */
  #queued = 0;
  /** The USERPTR program's own mappings of its memory (munmapped at release). */
  readonly #userMaps: Mapping[] = [];

  constructor(
    readonly app: SimUapi,
    readonly kernel: Kernel,
    readonly spec: ResolvedSpec,
    opts: CameraOptions = {},
  ) {
    const source = opts.source ?? spec.source;
    const heap = opts.heap ?? spec.heap;
    this.fd = app.open(opts.path ?? "/dev/video0", O_RDWR);
    this.#pixelformat =
      (opts.format ?? spec.format) === "YUYV" ? V4L2_PIX_FMT_YUYV : V4L2_PIX_FMT_XBGR32;
    const fmt = vidiocSFmt(app, this.fd, V4L2_BUF_TYPE_VIDEO_CAPTURE, {
      width: spec.width,
      height: spec.height,
      pixelformat: this.#pixelformat,
    });
    if (fmt.width !== spec.width || fmt.height !== spec.height) {
      throw new RangeError(
        `pipeline: vivid cannot capture ${spec.width}x${spec.height}; it offered ${fmt.width}x${fmt.height}`,
      );
    }
    this.bytesperline = fmt.bytesperline;
    this.sizeimage = fmt.sizeimage;
    this.#userptrLength = Math.ceil(this.sizeimage / PAGE) * PAGE;
    vidiocSParm(app, this.fd, V4L2_BUF_TYPE_VIDEO_CAPTURE, {
      numerator: 1,
      denominator: opts.fps ?? spec.fps,
    });
    this.memory =
      source === "v4l2-mmap"
        ? V4L2_MEMORY_MMAP
        : source === "v4l2-userptr"
          ? V4L2_MEMORY_USERPTR
          : V4L2_MEMORY_DMABUF;
    const nonCoherent = this.memory === V4L2_MEMORY_MMAP && spec.strategy !== "coherent";
    const rb = vidiocReqbufs(app, this.fd, {
      count: opts.count ?? spec.buffers,
      type: V4L2_BUF_TYPE_VIDEO_CAPTURE,
      memory: this.memory,
      flags: nonCoherent ? V4L2_MEMORY_FLAG_NON_COHERENT : 0,
    });
    const size = Math.ceil(this.sizeimage / PAGE) * PAGE;
    const alloc = source !== "v4l2-mmap" ? new DmabufAllocator(app, source, heap) : undefined;
    const prefix = opts.namePrefix ?? "cam";
    const layout = source === "v4l2-userptr" ? opts.layout : undefined;
    // Structures kept apart from the frames: one page of their own, no device maps it.
    const records =
      layout !== undefined && !layout.beside
        ? this.#recordMemory(Math.ceil((layout.header * rb.count) / PAGE) * PAGE, `${prefix}-info`)
        : undefined;
    if (records !== undefined) this.#userMaps.push(records);
    for (let i = 0; i < rb.count; i++) {
      let fd: number;
      let offset = 0;
      let userptr: number | undefined;
      const name = `${prefix}${i}`;
      let header: CamBuffer["header"];
      if (source === "v4l2-userptr") {
        // The program's own memory: videobuf2 pins it at QBUF (vb2_dc/dma_sg_get_userptr),
        // the frame after the structure the program keeps beside it, if any.
        const bytes =
          layout?.beside === true ? Math.ceil((layout.offset + size) / PAGE) * PAGE : size;
        const u = alloc!.allocUserMemory(bytes, name, true);
        fd = u.fd;
        userptr = u.map!.addr + (layout?.offset ?? 0);
        this.#userMaps.push(u.map!);
        if (layout !== undefined)
          header =
            records !== undefined
              ? { map: records, at: i * layout.header, bytes: layout.header }
              : { map: u.map!, at: 0, bytes: layout.header };
      } else if (alloc === undefined) {
        fd = vidiocExpbuf(app, this.fd, {
          type: V4L2_BUF_TYPE_VIDEO_CAPTURE,
          index: i,
          flags: O_RDWR | O_CLOEXEC,
        });
        offset = vidiocQuerybuf(app, this.fd, V4L2_BUF_TYPE_VIDEO_CAPTURE, this.memory, i).offset;
      } else {
        fd = alloc.alloc(size, name);
      }
      dmaBufSetName(app, fd, name);
      this.buffers.push({
        index: i,
        fd,
        name,
        offset,
        ...(userptr !== undefined ? { userptr } : {}),
        frameOffset: layout?.offset ?? 0,
        ...(header !== undefined ? { header } : {}),
      });
    }
    alloc?.close();
  }

  /** Memory of the program's own that no device maps (a memfd, mapped and closed). */
  #recordMemory(size: number, name: string): Mapping {
    const memfd = this.app.memfdCreate(name, 0);
    this.app.ftruncate(memfd, size);
    const m = this.app.mmap(size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
    this.app.close(memfd);
    return m;
  }

  /**
   * QBUF flags: the V4L2 cache hints the strategy (or a deliberate fault) asks for.
   * With "cache-hints" videobuf2 skips its own maintenance at QBUF and DQBUF; where the
   * CPU touches a frame, the DMA_BUF_IOCTL_SYNC brackets around that access do the
   * maintenance instead — once, rather than vb2's and the bracket's both.
   */
  get qbufFlags(): number {
    const s = this.spec;
    let flags = 0;
    if (s.strategy === "cache-hints") {
      flags |= V4L2_BUF_FLAG_NO_CACHE_INVALIDATE | V4L2_BUF_FLAG_NO_CACHE_CLEAN;
    }
    if (s.hints?.noCacheInvalidate) flags |= V4L2_BUF_FLAG_NO_CACHE_INVALIDATE;
    if (s.hints?.noCacheClean) flags |= V4L2_BUF_FLAG_NO_CACHE_CLEAN;
    if (s.fault === "lying-no-cache-invalidate") flags |= V4L2_BUF_FLAG_NO_CACHE_INVALIDATE;
    return flags;
  }

  /** VIDIOC_QBUF: hands buffer `index` to the driver. */
  queue(index: number): void {
    const b = this.buffers[index]!;
    vidiocQbuf(this.app, this.fd, {
      index,
      type: V4L2_BUF_TYPE_VIDEO_CAPTURE,
      memory: this.memory,
      flags: this.qbufFlags,
      ...(this.memory === V4L2_MEMORY_DMABUF ? { fd: b.fd } : {}),
      ...(b.userptr !== undefined ? { userptr: b.userptr, length: this.#userptrLength } : {}),
    });
    this.#queued++;
    if (b.header !== undefined) {
      // The program's bookkeeping for the frame in flight (which QBUF, which buffer), in
      // the structure beside it: a CPU store while the device owns the buffer.
      const rec = new Uint8Array(b.header.bytes);
      const v = new DataView(rec.buffer);
      for (let k = 0; k < rec.length; k++) rec[k] = (this.#queued * 13 + k) & 0xff;
      if (rec.length >= 8) {
        v.setUint32(0, this.#queued, true);
        v.setUint32(4, index, true);
      }
      b.header.map.write(b.header.at, rec);
    }
  }

  /** Queues every buffer and starts streaming. */
  start(): void {
    for (const b of this.buffers) this.queue(b.index);
    vidiocStreamon(this.app, this.fd, V4L2_BUF_TYPE_VIDEO_CAPTURE);
  }

  /** VIDIOC_DQBUF (blocking on the virtual clock until a frame is captured). */
  dequeue(): V4l2Buffer {
    return vidiocDqbuf(this.app, this.fd, V4L2_BUF_TYPE_VIDEO_CAPTURE, this.memory);
  }

  /**
   * The frame vivid writes for `sequence`, computed apart from the machine, in `into`
   * (valid until `into` is used again; a caller that stamps it calls `into.forget()`).
   */
  expectedFrame(sequence: number, into?: ScratchBuffer): Uint8Array {
    return expectedTestPattern(
      {
        width: this.spec.width,
        height: this.spec.height,
        bytesperline: this.bytesperline,
        pixelformat: this.#pixelformat,
      },
      sequence,
      into,
    );
  }

  stop(): void {
    vidiocStreamoff(this.app, this.fd, V4L2_BUF_TYPE_VIDEO_CAPTURE);
  }

  /**
   * The program's teardown after STREAMOFF, as libcamera and GStreamer's v4l2src do it:
   * VIDIOC_REQBUFS(0) frees the queue's buffers (an imported dma-buf is unmapped and
   * detached there: __vb2_plane_dmabuf_put), then the dma-buf fds, the USERPTR memory
   * and the node are closed; the last reference to a buffer releases it.
   */
  release(): void {
    vidiocReqbufs(this.app, this.fd, {
      count: 0,
      type: V4L2_BUF_TYPE_VIDEO_CAPTURE,
      memory: this.memory,
    });
    for (const b of this.buffers) this.app.close(b.fd);
    for (const m of this.#userMaps) this.app.munmap(m);
    this.app.close(this.fd);
  }
}

interface Scanout {
  readonly fb: number;
  readonly pitch: number;
  readonly handle: number;
  /** PRIME fd of the buffer (display-allocated buffers only). */
  readonly fd: number;
}

/** The display: KMS through PRIME-imported or dumb framebuffers, and its pipe CRC. */
export class DisplayStage {
  readonly fd: number;
  readonly #crtc: number;
  readonly #connector: number;
  readonly #mode;
  #crcFd = -1;
  #on = false;
  /** Framebuffers made, and GEM handles of PRIME imports and of dumb buffers, for release. */
  readonly #fbs: number[] = [];
  readonly #imported = new Set<number>();
  readonly #dumb: number[] = [];

  constructor(
    readonly app: SimUapi,
    readonly kernel: Kernel,
    readonly spec: ResolvedSpec,
    readonly driver: SimDisplay,
  ) {
    this.fd = app.open(driver.cardPath, O_RDWR);
    const res = drmModeGetResources(app, this.fd);
    this.#crtc = res.crtcs[0]!;
    this.#connector = res.connectors[0]!;
    const conn = drmModeGetConnector(app, this.fd, this.#connector);
    const mode = conn.modes.find((m) => m.hdisplay === spec.width && m.vdisplay === spec.height);
    if (mode === undefined) {
      throw new RangeError(`pipeline: the display has no ${spec.width}x${spec.height} mode`);
    }
    this.#mode = mode;
  }

  /**
   * PRIME-imports a dma-buf and makes a framebuffer of it (DRM_IOCTL_MODE_ADDFB2), the
   * frame `offset` bytes into the buffer (offsets[0]).
   */
  importFramebuffer(dmabufFd: number, pitch: number, offset = 0): number {
    const handle = drmPrimeFdToHandle(this.app, this.fd, dmabufFd);
    this.#imported.add(handle);
    return this.#addFb(handle, pitch, offset);
  }

  #addFb(handle: number, pitch: number, offset = 0): number {
    const fb = drmModeAddFB2(this.app, this.fd, {
      width: this.spec.width,
      height: this.spec.height,
      pixelFormat: DRM_FORMAT_XRGB8888,
      handles: [handle],
      pitches: [pitch],
      offsets: [offset],
    });
    this.#fbs.push(fb);
    return fb;
  }

  /** A scanout buffer allocated by the display (dumb, contiguous), exported for others. */
  createScanout(name: string): Scanout {
    const d = drmModeCreateDumb(this.app, this.fd, {
      width: this.spec.width,
      height: this.spec.height,
      bpp: 32,
    });
    this.#dumb.push(d.handle);
    const fb = this.#addFb(d.handle, d.pitch);
    const fd = drmPrimeHandleToFd(this.app, this.fd, d.handle, DRM_CLOEXEC | DRM_RDWR);
    dmaBufSetName(this.app, fd, name);
    return { fb, pitch: d.pitch, handle: d.handle, fd };
  }

  /**
   * Puts `fb` on screen (SETCRTC the first time, then PAGE_FLIP with an event) and
   * returns the pipe CRC of the first scanout of it.
   */
  show(fb: number): { crc: number; sequence: number } {
    let after: number;
    if (!this.#on) {
      drmModeSetCrtc(this.app, this.fd, {
        crtcId: this.#crtc,
        fbId: fb,
        x: 0,
        y: 0,
        connectors: [this.#connector],
        mode: this.#mode,
      });
      this.#on = true;
      // The CRC files open only on an active CRTC (EIO otherwise, drm_debugfs_crc.c).
      if (this.#crcFd < 0) this.#crcFd = drmCrcOpen(this.app, this.driver.minor, 0, "auto");
      after = -1;
    } else {
      drmModePageFlip(this.app, this.fd, this.#crtc, fb, DRM_MODE_PAGE_FLIP_EVENT, BigInt(fb));
      const events = drmReadEvents(this.app, this.fd);
      after = events[events.length - 1]!.sequence - 1;
    }
    // Entries are matched by frame number, as igt does: the ones queued since the last
    // show() are of earlier vblanks and are read past; frames the display skipped (a
    // fetch longer than a refresh period) leave gaps, so the first entry after the flip
    // is taken. Each read(2) blocks for the next line (on the virtual clock).
    for (;;) {
      for (const e of drmCrcRead(this.app, this.#crcFd)) {
        if (e.frame > after) return { crc: e.crcs[0]!, sequence: e.frame };
      }
    }
  }

  /** Turns the CRTC off (no more vblanks), as a compositor does at exit. */
  stop(): void {
    if (!this.#on) return;
    drmModeSetCrtc(this.app, this.fd, {
      crtcId: this.#crtc,
      fbId: 0,
      x: 0,
      y: 0,
      connectors: [],
      mode: null,
    });
    this.#on = false;
  }

  /**
   * A compositor's teardown once the CRTC is off: DRM_IOCTL_MODE_RMFB of every
   * framebuffer, DRM_IOCTL_GEM_CLOSE of every PRIME import (drm_prime_gem_destroy: the
   * attachment is unmapped and detached) and DESTROY_DUMB of its own buffers, then the
   * CRC file and the card are closed.
   */
  release(): void {
    for (const fb of this.#fbs) drmModeRmFB(this.app, this.fd, fb);
    for (const h of this.#imported) drmGemClose(this.app, this.fd, h);
    for (const h of this.#dumb) drmModeDestroyDumb(this.app, this.fd, h);
    if (this.#crcFd >= 0) this.app.close(this.#crcFd);
    this.app.close(this.fd);
  }
}

/** The GPU: PRIME imports, one job per frame, explicit out-fences for the camera's sake. */
export class GpuStage {
  readonly fd: number;
  readonly outputs: (Scanout & { gpuHandle: number })[] = [];
  readonly outGeometry: FrameGeometry;
  readonly #op: number;
  /** Handles of PRIME-imported inputs, closed at release. */
  readonly #imported = new Set<number>();

  constructor(
    readonly app: SimUapi,
    readonly kernel: Kernel,
    readonly spec: ResolvedSpec,
    /** The display whose dumb buffers it renders into; undefined: its own buffer objects. */
    readonly display: DisplayStage | undefined,
    driver: SimGpu,
    opts: { count?: number; namePrefix?: string; op?: number } = {},
  ) {
    this.fd = app.open(driver.renderPath, O_RDWR);
    this.#op = opts.op ?? (spec.format === "YUYV" ? SIMGPU_OP_YUYV_TO_XRGB8888 : SIMGPU_OP_INVERT);
    // Three scanout buffers: one on screen, one pending flip, one being rendered.
    for (let j = 0; j < (opts.count ?? 3); j++) {
      const name = `${opts.namePrefix ?? "gpu-out"}${j}`;
      if (display === undefined) {
        this.outputs.push(this.#createOwn(name));
        continue;
      }
      const s = display.createScanout(name);
      this.outputs.push({ ...s, gpuHandle: drmPrimeFdToHandle(app, this.fd, s.fd) });
    }
    this.outGeometry = {
      width: spec.width,
      height: spec.height,
      stride: this.outputs[0]!.pitch,
      bpp: 4,
    };
  }

  /**
   * One of its own buffer objects (DRM_IOCTL_SIMGPU_GEM_CREATE), exported with PRIME for
   * the stages downstream, as Mesa's render targets on panfrost: rows of XRGB8888.
   */
  #createOwn(name: string): Scanout & { gpuHandle: number } {
    const pitch = this.spec.width * 4;
    const bo = simgpuGemCreate(this.app, this.fd, pitch * this.spec.height);
    const fd = drmPrimeHandleToFd(this.app, this.fd, bo.handle, DRM_CLOEXEC | DRM_RDWR);
    dmaBufSetName(this.app, fd, name);
    return { fb: 0, pitch, handle: bo.handle, fd, gpuHandle: bo.handle };
  }

  importBuffer(dmabufFd: number): number {
    const h = drmPrimeFdToHandle(this.app, this.fd, dmabufFd);
    this.#imported.add(h);
    return h;
  }

  /**
   * The teardown once every job is done: DRM_IOCTL_GEM_CLOSE of the imported inputs and
   * of its handles of the output buffers (each unmapped and detached), the outputs'
   * PRIME fds closed, then the render node.
   */
  release(): void {
    for (const h of this.#imported) drmGemClose(this.app, this.fd, h);
    for (const o of this.outputs) {
      drmGemClose(this.app, this.fd, o.gpuHandle);
      this.app.close(o.fd);
    }
    this.app.close(this.fd);
  }

  /** Submits frame `n`'s job: camera buffer -> output buffer n % 3. */
  run(srcHandle: number, n: number, srcPitch: number): { fb: number; outFenceFd: number } {
    return this.runInto(srcHandle, n % this.outputs.length, srcPitch);
  }

  /**
   * Submits a job from `srcHandle` into output `index`; with `inFenceFd` the job also
   * waits for that sync_file (SIMGPU_SUBMIT_IN_FENCE), as explicit-sync userspace does;
   * `op` overrides the stage's op for this job (SIMGPU_OP_BLEND, a composite's second layer).
   */
  runInto(
    srcHandle: number,
    index: number,
    srcPitch: number,
    inFenceFd = -1,
    op = this.#op,
  ): { fb: number; outFenceFd: number } {
    const out = this.outputs[index]!;
    const r = simgpuSubmit(this.app, this.fd, {
      op,
      srcHandle,
      dstHandle: out.gpuHandle,
      width: this.spec.width,
      height: this.spec.height,
      srcPitch,
      dstPitch: out.pitch,
      flags: SIMGPU_SUBMIT_OUT_FENCE | (inFenceFd >= 0 ? SIMGPU_SUBMIT_IN_FENCE : 0),
      ...(inFenceFd >= 0 ? { inFenceFd } : {}),
    });
    return { fb: out.fb, outFenceFd: r.outFenceFd };
  }

  /** poll() on the job's sync_file until it signals, then closes it. */
  wait(fenceFd: number): void {
    this.app.poll([{ fd: fenceFd, events: POLLIN }], -1);
    this.app.close(fenceFd);
  }

  /**
   * What the GPU should have produced from `src` (whose content is `srcContent` when
   * known), in `into` (valid until `into` is used again).
   */
  expectedOutput(
    src: Uint8Array,
    srcGeom: FrameGeometry,
    into?: ScratchBuffer,
    srcContent?: ScratchContent,
  ): Uint8Array {
    return expectedGpuOutput(
      this.#op,
      src,
      {
        width: this.spec.width,
        height: this.spec.height,
        srcPitch: srcGeom.stride,
        dstPitch: this.outGeometry.stride,
      },
      into,
      srcContent,
    );
  }
}

/**
 * The CPU renders frames into V4L2 OUTPUT buffers (MMAP) that vivid's output device
 * reads by DMA. V4L2_BUF_FLAG_NO_CACHE_CLEAN is only true when the CPU did not write
 * the buffer — here it always did, so the hint is only set as a deliberate fault.
 */
export class OutputStage {
  readonly fd: number;
  readonly #maps: Mapping[] = [];
  readonly #geom: FrameGeometry;
  readonly #memory = V4L2_MEMORY_MMAP;
  #free: number[] = [];
  #streaming = false;
  #sent = 0;

  constructor(
    readonly app: SimUapi,
    readonly kernel: Kernel,
    readonly spec: ResolvedSpec,
    readonly vivid: Vivid,
  ) {
    this.fd = app.open(vivid.output.vdev!.path, O_RDWR);
    const pix = spec.format === "YUYV" ? V4L2_PIX_FMT_YUYV : V4L2_PIX_FMT_XBGR32;
    const fmt = vidiocSFmt(app, this.fd, V4L2_BUF_TYPE_VIDEO_OUTPUT, {
      width: spec.width,
      height: spec.height,
      pixelformat: pix,
    });
    // vivid's output node has no S_PARM (ENOTTY): it consumes a frame every 1/30 s.
    this.#geom = {
      width: fmt.width,
      height: fmt.height,
      stride: fmt.bytesperline,
      bpp: spec.format === "YUYV" ? 2 : 4,
    };
    const rb = vidiocReqbufs(app, this.fd, {
      count: spec.buffers,
      type: V4L2_BUF_TYPE_VIDEO_OUTPUT,
      memory: this.#memory,
      flags: spec.strategy !== "coherent" ? V4L2_MEMORY_FLAG_NON_COHERENT : 0,
    });
    for (let i = 0; i < rb.count; i++) {
      const q = vidiocQuerybuf(app, this.fd, V4L2_BUF_TYPE_VIDEO_OUTPUT, this.#memory, i);
      this.#maps.push(app.mmap(q.length, PROT_READ | PROT_WRITE, MAP_SHARED, this.fd, q.offset));
      this.#free.push(i);
    }
  }

  /** Renders frame `n`, queues it, and returns the CRC of what the device read and the expected CRC. */
  renderAndSend(n: number): { crc: number; expected: number } {
    if (this.#free.length === 0) {
      const done = vidiocDqbuf(this.app, this.fd, V4L2_BUF_TYPE_VIDEO_OUTPUT, this.#memory);
      this.#free.push(done.index);
    }
    const index = this.#free.shift()!;
    const frame = expectedTestPattern(
      {
        width: this.#geom.width,
        height: this.#geom.height,
        bytesperline: this.#geom.stride,
        pixelformat: this.spec.format === "YUYV" ? V4L2_PIX_FMT_YUYV : V4L2_PIX_FMT_XBGR32,
      },
      n + 1000,
    );
    this.#maps[index]!.write(0, frame);
    let flags = 0;
    if (this.spec.fault === "lying-no-cache-clean" || this.spec.hints?.noCacheClean) {
      flags |= V4L2_BUF_FLAG_NO_CACHE_CLEAN;
    }
    if (this.spec.hints?.noCacheInvalidate) flags |= V4L2_BUF_FLAG_NO_CACHE_INVALIDATE;
    vidiocQbuf(this.app, this.fd, {
      index,
      type: V4L2_BUF_TYPE_VIDEO_OUTPUT,
      memory: this.#memory,
      flags,
      bytesused: frame.length,
    });
    if (!this.#streaming) {
      vidiocStreamon(this.app, this.fd, V4L2_BUF_TYPE_VIDEO_OUTPUT);
      this.#streaming = true;
    }
    const want = this.#sent++;
    const got = this.vivid.output.waitForFrame(want);
    return { crc: crc32(got), expected: visibleCrc(frame, this.#geom) };
  }

  stop(): void {
    if (this.#streaming) vidiocStreamoff(this.app, this.fd, V4L2_BUF_TYPE_VIDEO_OUTPUT);
  }

  /** Teardown after STREAMOFF: the mappings, VIDIOC_REQBUFS(0), the node. */
  release(): void {
    for (const m of this.#maps) this.app.munmap(m);
    vidiocReqbufs(this.app, this.fd, {
      count: 0,
      type: V4L2_BUF_TYPE_VIDEO_OUTPUT,
      memory: this.#memory,
    });
    this.app.close(this.fd);
  }
}
