/**
 * vivid, the Virtual Video Test Driver (drivers/media/test-drivers/vivid/vivid-core.c),
 * reduced to what buffer sharing needs: a video capture node (/dev/video0) and a video
 * output node (/dev/video1), each a DMA master on the machine with a vb2 queue.
 *
 * Several instances, as the n_devs module parameter makes: call vividProbe once per
 * instance. Instance i is "vivid-00i"; its nodes take the lowest free /dev/videoN
 * numbers in registration order (capture, then output), as video_register_device(...,
 * -1) does, so two instances are video0/video1 and video2/video3. (Real vivid also
 * registers VBI, radio, SDR, meta and touch nodes by default, whose numbers interleave;
 * the model has only the capture and output nodes.) Each node is its own DMA master
 * ("vivid-cap", "vivid-out" for instance 0, "vivid-cap-1"... after) with its own
 * configuration.
 *
 * As in vivid_create_queue(): MMAP and DMABUF always, USERPTR too (real vivid offers it
 * only with its vmalloc allocator; the model has no vmalloc allocator and keeps USERPTR
 * on the DMA allocators, options.userptr turns it off), monotonic timestamps,
 * allow_cache_hints from the cache_hints module parameter (off by default), and the
 * allocator from the allocators parameter: dma-contig by default here, or dma-sg.
 */

import type { DmaBufCore } from "../../../../dma-buf/dma-buf.js";
import {
  V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC,
  V4L2_BUF_FLAG_TSTAMP_SRC_EOF,
  V4L2_BUF_TYPE_VIDEO_CAPTURE,
  V4L2_BUF_TYPE_VIDEO_OUTPUT,
  V4L2_CAP_READWRITE,
  V4L2_CAP_STREAMING,
  V4L2_CAP_VIDEO_CAPTURE,
  V4L2_CAP_VIDEO_OUTPUT,
} from "../../../../include/uapi/videodev2.js";
import type { DeviceConfig } from "../../../../machine/device.js";
import { type DriverHost, driverDeviceName, freeDevnodePath } from "../../../host.js";
import { VideoDevice } from "../../v4l2-core/v4l2-dev.js";
import {
  VB2_DMABUF,
  VB2_MMAP,
  VB2_READ,
  VB2_USERPTR,
  VB2_WRITE,
  type Vb2MemOps,
  Vb2Queue,
} from "../../videobuf2/videobuf2-core.js";
import { vb2DmaContigMemops } from "../../videobuf2/videobuf2-dma-contig.js";
import { vb2DmaSgMemops } from "../../videobuf2/videobuf2-dma-sg.js";
import { VividCapture } from "./vivid-vid-cap.js";
import { type VividFrameSizes, vividDefaultFormat } from "./vivid-vid-common.js";
import { VividOutput } from "./vivid-vid-out.js";

/** Module parameters and machine wiring of one vivid instance. */
export interface VividOptions {
  /** The vb2 allocator (module parameter allocators): default "dma-contig". */
  readonly allocator?: "dma-contig" | "dma-sg";
  /** The capture DMA master's configuration; unset fields come from the profile. */
  readonly capture?: Partial<Omit<DeviceConfig, "name">>;
  /** The output DMA master's configuration. */
  readonly output?: Partial<Omit<DeviceConfig, "name">>;
  /** Module parameter cache_hints: allow V4L2_BUF_FLAG_NO_CACHE_* and V4L2_MEMORY_FLAG_NON_COHERENT (default false). */
  readonly allowCacheHints?: boolean;
  /** q->min_queued_buffers of both queues (default 0, as vivid with requests support). */
  readonly minQueuedBuffers?: number;
  /** Offer V4L2_MEMORY_USERPTR (default true). */
  readonly userptr?: boolean;
  /** Device node paths (default: the lowest free /dev/videoN, capture first). */
  readonly capturePath?: string;
  readonly outputPath?: string;
  /**
   * Frame sizes S_FMT accepts: "webcam" (default; vivid's webcam input snaps to its
   * discrete sizes) or "continuous" (any size, as vivid's HDMI input with its scaler;
   * the pipelines use it to sweep buffer sizes).
   */
  readonly frameSizes?: VividFrameSizes;
  /**
   * Reproduce kernels before the 2025 vb2-dma-contig fix, whose exported buffers'
   * begin/end_cpu_access did nothing (DMA_BUF_IOCTL_SYNC without cache maintenance).
   */
  readonly legacyNoopCpuAccess?: boolean;
  /**
   * vb2_queue.bidirectional for the capture queue: buffers are mapped
   * DMA_BIDIRECTIONAL, as drivers do when the CPU (or the device) also writes capture
   * buffers; otherwise a 32-bit ARM sync for the device invalidates the CPU's writes.
   */
  readonly bidirectional?: boolean;
  /** Instance number, for names ("vivid-000-vid-cap"); default: the next on this kernel. */
  readonly instance?: number;
  /** The capture DMA master's name (default "vivid-cap", "vivid-cap-1" for instance 1...). */
  readonly captureName?: string;
  /** The output DMA master's name (default "vivid-out", "vivid-out-1"...). */
  readonly outputName?: string;
}

/** A probed vivid instance. */
export interface Vivid {
  readonly capture: VividCapture;
  readonly output: VividOutput;
  /** The allocator both queues use. */
  readonly memOps: Vb2MemOps;
}

/** Instances probed per kernel (vivid_devs). */
const vividInstances = new WeakMap<DriverHost, number>();

/**
 * vivid_create_instance(): adds the instance's DMA masters ("vivid-cap" and
 * "vivid-out" for the first) to the machine and registers its capture and output nodes
 * (/dev/video0 and /dev/video1 for the first) with `host`. Call once per instance.
 */
export function vividProbe(host: DriverHost, options: VividOptions = {}): Vivid {
  const m = host.machine;
  const index = options.instance ?? vividInstances.get(host) ?? 0;
  vividInstances.set(host, Math.max(index + 1, vividInstances.get(host) ?? 0));
  const inst = String(index).padStart(3, "0");
  const suffix = index ? `-${index}` : "";
  // vivid sets a 64-bit DMA mask on its platform device; coherency, bandwidth and
  // IOMMU come from the profile unless overridden.
  const capDev = m.addDevice(driverDeviceName(host, `vivid-cap${suffix}`, options.captureName), {
    dmaBits: 64,
    ...options.capture,
  });
  const outDev = m.addDevice(driverDeviceName(host, `vivid-out${suffix}`, options.outputName), {
    dmaBits: 64,
    ...options.output,
  });
  const memOps = makeMemOps(
    host,
    host.dmaBuf,
    options.allocator ?? "dma-contig",
    options.legacyNoopCpuAccess ?? false,
  );
  const ioModes = VB2_MMAP | VB2_DMABUF | (options.userptr === false ? 0 : VB2_USERPTR);
  const common = {
    memOps,
    machine: m,
    allowCacheHints: options.allowCacheHints ?? false,
    minQueuedBuffers: options.minQueuedBuffers ?? 0,
    // vivid_create_queue(..., min_reqbufs_allocation = 2, ...) for both video queues.
    minReqbufsAllocation: 2,
    // supports_requests=1 by default: the video queues take media requests.
    supportsRequests: true,
    timestampFlags: V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC | V4L2_BUF_FLAG_TSTAMP_SRC_EOF,
  };

  const capture = new VividCapture(m, capDev);
  capture.frameSizes = options.frameSizes ?? "webcam";
  capture.fmt = vividDefaultFormat("capture", capture.frameSizes);
  capture.queue = new Vb2Queue({
    ...common,
    name: `vivid-${inst}-vid-cap`,
    type: V4L2_BUF_TYPE_VIDEO_CAPTURE,
    // vivid_create_queue(): read() on capture queues, write() on output queues.
    ioModes: ioModes | VB2_READ,
    isOutput: false,
    // MAX_VID_CAP_BUFFERS (vivid-core.h); the output queue keeps VB2_MAX_FRAME.
    maxNumBuffers: 64,
    bidirectional: options.bidirectional ?? false,
    ops: capture.qops,
    dev: capDev,
  });
  capture.vdev = new VideoDevice({
    name: `vivid-${inst}-vid-cap`,
    path: options.capturePath ?? freeDevnodePath(host, "/dev/video"),
    vflDir: "rx",
    deviceCaps: V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_STREAMING | V4L2_CAP_READWRITE,
    queue: capture.queue,
    ioctlOps: capture.ioctlOps,
  });

  const output = new VividOutput(m, outDev);
  output.frameSizes = options.frameSizes ?? "webcam";
  output.fmt = vividDefaultFormat("output", output.frameSizes);
  output.queue = new Vb2Queue({
    ...common,
    name: `vivid-${inst}-vid-out`,
    type: V4L2_BUF_TYPE_VIDEO_OUTPUT,
    ioModes: ioModes | VB2_WRITE,
    isOutput: true,
    ops: output.qops,
    dev: outDev,
  });
  // video_register_device: the capture node is registered first, so it has its number.
  capture.vdev.register(host);
  output.vdev = new VideoDevice({
    name: `vivid-${inst}-vid-out`,
    path: options.outputPath ?? freeDevnodePath(host, "/dev/video"),
    vflDir: "tx",
    deviceCaps: V4L2_CAP_VIDEO_OUTPUT | V4L2_CAP_STREAMING | V4L2_CAP_READWRITE,
    queue: output.queue,
    ioctlOps: output.ioctlOps,
  });

  output.vdev.register(host);
  return { capture, output, memOps };
}

function makeMemOps(
  host: DriverHost,
  core: DmaBufCore,
  allocator: "dma-contig" | "dma-sg",
  legacyNoopCpuAccess: boolean,
): Vb2MemOps {
  return allocator === "dma-sg"
    ? vb2DmaSgMemops(host.dma, core)
    : vb2DmaContigMemops(host.dma, core, { legacyNoopCpuAccess });
}
