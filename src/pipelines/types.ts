/**
 * The contract between the pipelines (camera -> GPU -> display, run as userspace
 * programs on the simulated kernel's V4L2 and DRM drivers) and everything that asks
 * them questions: scenario files, the `dmabuf` command, reports, traces and sweeps.
 *
 * A PipelineSpec says what to build and how to share it; a PipelineResult is what
 * happened: the verdict, every checker violation, a CRC per frame against the CRC the
 * frame should have had, and where the virtual time went. Specs are plain data so a
 * YAML scenario, a sweep grid point and a TypeScript caller all produce the same thing.
 */

import type { Ns } from "../machine/clock.js";
import type { CostSnapshot } from "../machine/cost.js";
import type { FaultRule, FaultSiteStats } from "../machine/fault-inject.js";
import type { ProfileOverrides } from "../machine/profiles.js";
import type { TraceEvent } from "../machine/trace.js";
import type { Violation } from "../machine/violations.js";

/** Which devices the frames pass through. */
export type PipelineKind =
  /** vivid capture -> display scanout, zero copy: the display imports the camera's dma-buf. */
  | "camera-display"
  /** capture -> the CPU reads and stamps each frame through mmap + DMA_BUF_IOCTL_SYNC -> display. */
  | "camera-cpu-display"
  /** capture -> the GPU converts/inverts into a second buffer -> display scans that out. */
  | "camera-gpu-display"
  /** The CPU renders each frame into V4L2 OUTPUT buffers that the vivid output device reads by DMA (an encoder's input). */
  | "cpu-output";

export const PIPELINE_KINDS: readonly PipelineKind[] = [
  "camera-display",
  "camera-cpu-display",
  "camera-gpu-display",
  "cpu-output",
];

/**
 * How the shared buffers are mapped and kept coherent: the options argued over in the
 * 2011 dma-buf thread.
 */
export type MappingStrategy =
  /** Consistent memory (dma_alloc_coherent; uncached CPU mapping on non-coherent SoCs): no maintenance, slow CPU access. */
  | "coherent"
  /** Streaming, non-coherent memory (V4L2_MEMORY_FLAG_NON_COHERENT), maintenance line by line at every hand-over. */
  | "streaming"
  /** As streaming, but ranges at or above the threshold clean/flush the whole cache by set/way. */
  | "whole-cache"
  /** As streaming, plus V4L2_BUF_FLAG_NO_CACHE_INVALIDATE / NO_CACHE_CLEAN where the CPU does not touch the buffer. */
  | "cache-hints";

export const MAPPING_STRATEGIES: readonly MappingStrategy[] = [
  "coherent",
  "streaming",
  "whole-cache",
  "cache-hints",
];

/** Where the camera's buffers come from. */
export type BufferSource =
  /** V4L2_MEMORY_MMAP buffers allocated by videobuf2 and exported with VIDIOC_EXPBUF. */
  | "v4l2-mmap"
  /** Buffers from a DMA heap, queued to V4L2 as V4L2_MEMORY_DMABUF. */
  | "dma-heap"
  /** memfd pages wrapped by /dev/udmabuf, queued as V4L2_MEMORY_DMABUF. */
  | "udmabuf";

/** Per-device overrides of the profile's device defaults. */
export interface DeviceSpec {
  readonly coherent?: boolean;
  readonly dmaBits?: number;
  readonly iommu?: boolean;
  readonly bandwidthBytesPerNs?: number;
  /** Fixed cost of starting one DMA transfer, ns. */
  readonly setupNs?: number;
}

// ---------------------------------------------------------------------------------------
// Pipelines as graphs.

/**
 * What a device of a graph is, by the Linux interface userspace drives it through:
 * - "camera": V4L2 capture (vivid-like): a source; DQBUF hands out frames it wrote by DMA.
 * - "m2m": V4L2 memory-to-memory (an ISP, scaler or codec, as vim2m/vicodec): OUTPUT
 *   queue in, CAPTURE queue out.
 * - "gpu": a DRM render node (simgpu): one job per frame reads its inputs' dma-bufs and
 *   writes an output buffer, with implicit (dma-resv) or explicit (sync_file) fences.
 * - "npu": a compute accelerator in the style of drivers/accel: jobs that read input
 *   buffers and write output buffers, implicit fences.
 * - "display": KMS scanout with the pipe CRC (drm_debugfs_crc.c): a sink.
 * - "output": a V4L2 OUTPUT device (vivid-out): a sink that reads each frame by DMA;
 *   without inputs, the CPU renders each frame into its own MMAP buffers (cpu-output).
 * - "encoder": a V4L2 mem2mem stateful encoder (simenc, shaped like vicodec): a sink
 *   whose coded frames come back on its CAPTURE queue and are read by the program.
 */
export type GraphDeviceKind = "camera" | "m2m" | "gpu" | "npu" | "display" | "output" | "encoder";

/** One device instance of a graph: its kind and how it sits on the bus. */
export interface GraphDevice extends DeviceSpec {
  readonly kind: GraphDeviceKind;
  /**
   * A camera's videobuf2 allocator (vivid's `allocators` module parameter): dma-contig,
   * or dma-sg (MMAP buffers of scattered pages). Default: dma-contig, dma-sg for a
   * scattered pool without an IOMMU.
   */
  readonly allocator?: "dma-contig" | "dma-sg";
  /**
   * A camera's or ISP's capture queue mapped DMA_BIDIRECTIONAL (videobuf2's
   * q->bidirectional). Default: true when a CPU stage writes its buffers in place, as a
   * correct driver configures it; false maps them DMA_FROM_DEVICE, and on 32-bit ARM the
   * end of the CPU's access (dma_sync_*_for_device, an invalidate) discards its writes.
   */
  readonly bidirectional?: boolean;
  /**
   * How a GPU maps its own buffer objects (a gpu-bo pool) for its DMA: "per-job"
   * (dma_map_sgtable at each job's start, dma_unmap_sgtable at its end: the CPU owns
   * them between jobs; simgpu's default) or "pinned" (drm_gem_shmem_get_pages_sgt at the
   * first job, kept until the object is freed, as panfrost and v3d map theirs: no cache
   * maintenance per job; the CPU reaches them through its write-combined mapping).
   */
  readonly boMapping?: "per-job" | "pinned";
}

/**
 * Where a pool's buffers come from: V4L2 MMAP + VIDIOC_EXPBUF, a DMA heap, udmabuf,
 * GEM dumb buffers of a DRM device (DRM_IOCTL_MODE_CREATE_DUMB + PRIME export), or an
 * accelerator's own buffer objects (DRM_IOCTL_SIMNPU_BO_CREATE + PRIME export).
 */
export type GraphBufferSource =
  | BufferSource
  /**
   * V4L2_MEMORY_USERPTR: userspace's own memory (memfd pages it maps, and shares with
   * the other stages as a udmabuf), pinned by videobuf2 at QBUF (get_userptr).
   */
  | "v4l2-userptr"
  | "gem-dumb"
  | "accel-bo"
  /**
   * A GPU's own buffer objects (DRM_IOCTL_SIMGPU_GEM_CREATE: shmem pages, write-combined
   * for the CPU unless the GPU snoops), exported with PRIME, as Mesa allocates render
   * targets on panfrost or v3d.
   */
  | "gpu-bo";

/** A pool of buffers one stage writes into and its consumers read. */
export interface GraphPool {
  readonly source: GraphBufferSource;
  /** Heap for source "dma-heap": "system" or "cma". */
  readonly heap?: string;
  /** Buffers in rotation (REQBUFS count, or buffers allocated). */
  readonly count: number;
  /** V4L2 fourcc as text ("XR24", "YUYV"); default the graph's format. */
  readonly format?: string;
  /**
   * v4l2-userptr only: bytes of a structure the program keeps for each buffer (a
   * frame-info record it updates each time it queues the buffer), in memory of its own;
   * the named fault `shared-cacheline` puts it right before the frame in the frame's
   * memory, the frame `header` bytes in (default 40 with the fault).
   */
  readonly header?: number;
}

/**
 * What a CPU stage does with each frame through an mmap of its dma-buf: read and/or
 * write a region, a band of `lines` lines starting at `top` (or a `fraction` of the
 * frame's lines), `bytesPerLine` bytes of each from byte `left` — a 2D access with the
 * buffer's stride.
 */
export interface CpuAccess {
  readonly read: boolean;
  readonly write: boolean;
  readonly top?: number;
  readonly lines?: number;
  readonly fraction?: number;
  readonly left?: number;
  readonly bytesPerLine?: number;
}

/**
 * How a stage waits for the producer of its input before touching it, as a userspace
 * program would: "implicit" relies on the dma-buf's reservation (dma-resv fences that
 * the kernel waits for: DMA_BUF_IOCTL_SYNC, a driver's implicit dependencies, a page
 * flip's prepare_fb); "sync-file" passes the producer's out-fence as a sync_file (a
 * job's in-fence, or poll() before CPU access).
 */
export type GraphSync = "implicit" | "sync-file";

/** One stage of a graph: a device (or the CPU) doing one thing per frame. */
export interface GraphStage {
  /** Unique name, used by edges and in reports. */
  readonly name: string;
  /** The device it runs on (a key of GraphSpec.devices); absent for a CPU stage. */
  readonly device?: string;
  /** Stages whose output this one reads (fan-in: several; fan-out: several stages name the same input). */
  readonly inputs: readonly string[];
  /** Pool this stage writes into (producers: camera, m2m, gpu, npu). */
  readonly pool?: string;
  /**
   * The transform a gpu or npu stage applies: gpu "copy", "invert", "yuyv-to-xrgb" (to
   * its first input; a second input is blended over the result); npu "conv3x3",
   * "tile-sum".
   */
  readonly op?: string;
  /** For CPU stages: the access pattern. */
  readonly cpu?: CpuAccess;
  /** How this stage waits for its inputs' producers. Default "implicit". */
  readonly sync?: GraphSync;
  /** Frame rate of a source stage; default the spec's fps. */
  readonly fps?: number;
  /** A deliberate userspace mistake made by this stage only (as PipelineSpec.fault for the whole pipeline). */
  readonly fault?: PipelineFault;
  /**
   * Named kernel faults (`dmabuf list faults`) armed for the calls this stage makes only:
   * its ioctls, and the QBUF that hands its buffers back, wherever that happens.
   */
  readonly faults?: readonly string[];
}

/** A pipeline as a graph: device instances, buffer pools and stages with their edges. */
export interface GraphSpec {
  readonly devices: Readonly<Record<string, GraphDevice>>;
  readonly pools: Readonly<Record<string, GraphPool>>;
  readonly stages: readonly GraphStage[];
  /** The sink whose frames become PipelineResult.frames; default the first sink. */
  readonly primary?: string;
}

/**
 * A deliberate fault, to show what a missing call does. The pipeline leaves the named
 * step out (or applies the named hint wrongly) and the report must show wrong CRCs and
 * a violation naming it.
 */
export type PipelineFault =
  /** Leave out DMA_BUF_IOCTL_SYNC(START) before the CPU reads a captured frame. */
  | "omit-sync-start"
  /** Leave out DMA_BUF_IOCTL_SYNC(END) after the CPU wrote a frame. */
  | "omit-sync-end"
  /** Set V4L2_BUF_FLAG_NO_CACHE_INVALIDATE on QBUF although the CPU then reads the frame. */
  | "lying-no-cache-invalidate"
  /** Set V4L2_BUF_FLAG_NO_CACHE_CLEAN on QBUF although the CPU wrote the buffer. */
  | "lying-no-cache-clean";

export const PIPELINE_FAULTS: readonly PipelineFault[] = [
  "omit-sync-start",
  "omit-sync-end",
  "lying-no-cache-invalidate",
  "lying-no-cache-clean",
];

export interface PipelineSpec {
  /** A name for reports (the scenario's name). */
  readonly name?: string;
  /** Architecture profile (see `dmabuf list profiles`). Default "arm64". */
  readonly profile?: string;
  /** Overrides of profile fields (cache sizes, maintenance policy, device defaults...). */
  readonly overrides?: ProfileOverrides;
  readonly pipeline?: PipelineKind;
  readonly strategy?: MappingStrategy;
  readonly source?: BufferSource;
  /** Heap for source "dma-heap": "system" or "cma". Default "system". */
  readonly heap?: string;
  /** Frame geometry. Default 640x480. */
  readonly width?: number;
  readonly height?: number;
  /** V4L2 fourcc as text, "XR24" (XRGB8888) or "YUYV". Default "XR24". */
  readonly format?: string;
  /**
   * Buffer size in bytes. When given, the frame is `width` wide (default 1024 pixels for
   * sizes) and as tall as the size allows; sweeps over buffer size use this.
   */
  readonly bufferBytes?: number;
  /** Frames to run through. Default 8. */
  readonly frames?: number;
  /** V4L2 queue depth (REQBUFS count). Default 4. */
  readonly buffers?: number;
  /** Capture frame rate on the virtual clock. Default 30. */
  readonly fps?: number;
  /** Whether the CPU reads / writes each captured frame (camera-cpu-display always does both). */
  readonly cpuReads?: boolean;
  readonly cpuWrites?: boolean;
  /** Explicit V4L2 cache hints, overriding the strategy's choice. */
  readonly hints?: { readonly noCacheInvalidate?: boolean; readonly noCacheClean?: boolean };
  readonly devices?: {
    readonly camera?: DeviceSpec;
    readonly gpu?: DeviceSpec;
    readonly display?: DeviceSpec;
  };
  readonly fault?: PipelineFault;
  /**
   * The pipeline as a graph. When given, `pipeline` and `devices` are not (the graph
   * names its devices); the four PipelineKinds are sugar for the graphs `legacyGraph`
   * (src/pipelines/graph.ts) expands them to.
   */
  readonly graph?: GraphSpec;
  /**
   * Named kernel faults (`dmabuf list faults`, src/kernel/fault-inject.ts), passed to
   * the kernel's fault injector as its plan: each a recurring field bug class.
   */
  readonly faults?: readonly string[];
  /** Raw fault-injection rules, added to the plan of `faults` (what `dmabuf mutate` uses). */
  readonly injections?: readonly FaultRule[];
  /**
   * Record every maintenance and sync call site (result.callSites). Default true; false
   * leaves them out (a sweep's worker: its rows do not show them, and recording costs a
   * stack trace per call). A fault plan still applies either way.
   */
  readonly recordCallSites?: boolean;
  /**
   * Also record every function on each call's stack (result.callSites[].via: the
   * call-site census). Default false: it costs reading the whole stack per call, where
   * the site itself needs the frames down to its caller.
   */
  readonly recordCallStacks?: boolean;
  /** Seed for anything random (page scattering). Default: the profile's. */
  readonly seed?: number;
  /** Record a timeline (trace events). Default false. */
  readonly trace?: boolean;
}

/** One displayed frame. */
export interface FrameResult {
  readonly index: number;
  /** CRC-32 of what the display read, as the pipe CRC of drm_debugfs_crc.c would report it. */
  readonly crc: number;
  /** CRC-32 of what the frame should have been (computed independently of the machine). */
  readonly expectedCrc: number;
  readonly ok: boolean;
  /** Virtual time at which the frame was scanned out. */
  readonly time: Ns;
  /** Where time went for this frame. */
  readonly costs: CostSnapshot;
}

/** A buffer the pipeline shared, for reports and trace tracks. */
export interface BufferInfo {
  /** The dma-buf's name (DMA_BUF_SET_NAME) or exporter label: "cam0", "gpu-out1", ... */
  readonly name: string;
  readonly size: number;
  /** Exporter: "vivid", "system", "vgem", ... */
  readonly exporter: string;
  /** Devices attached to it. */
  readonly importers: readonly string[];
  /** Its DMA_BUF_IOCTL_SYNC calls, in order (src/report/coverage.ts balances them per fd per frame). */
  readonly syncs?: readonly {
    readonly time: number;
    readonly end: boolean;
    readonly dir: number;
    /** The fd the ioctl was made on, and the process that made it. */
    readonly fd: number;
    readonly pid: number;
  }[];
}

export type Verdict = "coherent" | "incoherent";

/**
 * What one sink of the pipeline saw: a display's pipe CRCs, or the CRCs of what an
 * output device (an encoder's input, an NPU's result) read, each against the CRC the
 * frame should have had there, computed apart from the machine along the graph.
 */
export interface SinkResult {
  /** The stage's name in the graph ("show", "encode"); "display" / "output" for the four PipelineKinds. */
  readonly name: string;
  /** The device instance it runs on ("cpu" for a CPU stage reading back a result). */
  readonly device: string;
  readonly kind: GraphDeviceKind | "cpu";
  /** Whether these are the frames in PipelineResult.frames. */
  readonly primary: boolean;
  /**
   * One entry per frame. `costs` are the whole frame's (every device and the CPU, as in
   * PipelineResult.frames), so do not add them up over sinks.
   */
  readonly frames: readonly FrameResult[];
  /** Every frame's CRC matched. */
  readonly ok: boolean;
}

export interface PipelineResult {
  /** The spec with every default filled in. */
  readonly spec: Required<
    Pick<
      PipelineSpec,
      | "profile"
      | "strategy"
      | "heap"
      | "width"
      | "height"
      | "format"
      | "frames"
      | "buffers"
      | "fps"
      | "cpuReads"
      | "cpuWrites"
    >
  > &
    Omit<PipelineSpec, "pipeline" | "source"> & {
      /** The camera's buffers: buffers.source, or the source of a graph's first camera pool. */
      readonly source: BufferSource | "v4l2-userptr";
      readonly bufferBytes: number;
      /** The PipelineKind, or "graph" for a pipeline given as a graph. */
      readonly pipeline: PipelineKind | "graph";
    };
  /** "coherent" when there are no violations and every frame of every sink has its expected CRC. */
  readonly verdict: Verdict;
  readonly violations: readonly Violation[];
  /**
   * The primary sink's frames (the display of the four PipelineKinds, vivid-out's for
   * cpu-output): what the terminal, JSON, HTML and trace reports have always shown, so
   * single-sink reports stay byte-identical. Same array as the primary `sinks` entry's.
   */
  readonly frames: readonly FrameResult[];
  /**
   * Every sink, the primary first, then in the graph's stage order. Always at least one
   * entry. Reports of multi-sink graphs (sinks.length > 1) show each sink's frames and
   * verdict; single-sink runs need nothing beyond `frames`.
   */
  readonly sinks: readonly SinkResult[];
  readonly buffers: readonly BufferInfo[];
  /** Sum over the run: setup, the frames and STREAMOFF (the teardown apart). */
  readonly costs: CostSnapshot;
  /** Virtual time from first QBUF to last frame displayed. */
  readonly elapsedNs: Ns;
  /**
   * The program's teardown after the last frame and STREAMOFF (REQBUFS(0), RMFB,
   * GEM_CLOSE, munmap, close: importers detach, exporters release), apart from the run's
   * and the frames' figures: when it started, how long it took and what it cost.
   */
  readonly teardown?: {
    readonly start: Ns;
    readonly elapsedNs: Ns;
    /** How many of `violations` (the last ones) the teardown found. */
    readonly violations: number;
    readonly costs: CostSnapshot;
  };
  /** Timeline, when `trace` was set (tracks: "cpu", device names, buffer names). */
  readonly trace: readonly TraceEvent[];
  /**
   * Every cache-maintenance and sync call site the run reached, with the bytes each was
   * asked to cover and really covered, when faults were injected or call sites recorded.
   */
  readonly callSites?: readonly FaultSiteStats[];
}
