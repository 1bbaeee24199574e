/**
 * The schema of a scenario file: one pipeline run described as data (YAML or JSON), the
 * same thing a {@link PipelineSpec} says in TypeScript, in the words a SoC engineer uses.
 *
 * The zod schema below is the single source of truth: it validates files (strictly:
 * an unknown key is an error, so a typo never silently falls back to a default), its
 * `.describe()` texts become the descriptions of the published JSON Schema
 * (schema/scenario.schema.json, what editors show on hover), and field paths here are
 * the paths users write in `dmabuf run --set` and `dmabuf sweep --vary`.
 *
 * Defaults are deliberately not filled in here: a field left out is left out of the
 * PipelineSpec, so the runner's (and the profile's) defaults apply and are documented
 * in one place.
 */

import { z } from "zod";
import { NAMED_FAULTS } from "../kernel/fault-inject.js";
import { PROFILES } from "../machine/profiles.js";
import { GRAPH_DEVICE_KINDS, GRAPH_GPU_OPS, GRAPH_NPU_OPS } from "../pipelines/graph.js";
import {
  type BufferSource,
  type GraphBufferSource,
  type GraphDeviceKind,
  MAPPING_STRATEGIES,
  type MappingStrategy,
  PIPELINE_FAULTS,
  PIPELINE_KINDS,
  type PipelineFault,
  type PipelineKind,
} from "../pipelines/types.js";

/** Version of the scenario format; bumped when a field changes meaning. */
export const SCENARIO_FORMAT_VERSION = 1;

/** `$id` of the published JSON Schema. */
export const SCENARIO_SCHEMA_ID = "urn:dmabuf:schema:scenario:v1";

// ---------------------------------------------------------------------------------------
// Human descriptions of every enumerated value: used in the JSON Schema, by
// `dmabuf list` and in the docs, so they are written once.

export const PIPELINE_DESCRIPTIONS: Readonly<Record<PipelineKind, string>> = {
  "camera-display":
    "vivid capture -> display scanout, zero copy: the display imports the camera's dma-buf.",
  "camera-cpu-display":
    "capture -> the CPU reads and stamps each frame through mmap + DMA_BUF_IOCTL_SYNC -> display.",
  "camera-gpu-display":
    "capture -> the GPU converts/inverts into a second buffer -> the display scans that out.",
  "cpu-output":
    "The CPU renders each frame into V4L2 OUTPUT buffers that the vivid output device reads by DMA (an encoder's input).",
};

export const STRATEGY_DESCRIPTIONS: Readonly<Record<MappingStrategy, string>> = {
  coherent:
    "Consistent memory (dma_alloc_coherent; uncached/write-combined CPU mapping on non-coherent SoCs): no maintenance, slow CPU access.",
  streaming:
    "Streaming, non-coherent memory (V4L2_MEMORY_FLAG_NON_COHERENT): cache maintenance line by line at every hand-over.",
  "whole-cache":
    "As streaming, but cleans/flushes go through the whole cache by set/way for ranges of at least machine.maintenance.thresholdBytes (default 0: every range).",
  "cache-hints":
    "As streaming, plus V4L2_BUF_FLAG_NO_CACHE_INVALIDATE / NO_CACHE_CLEAN where the CPU does not touch the buffer.",
};

export const SOURCE_DESCRIPTIONS: Readonly<Record<BufferSource, string>> = {
  "v4l2-mmap": "V4L2_MEMORY_MMAP buffers allocated by videobuf2 and exported with VIDIOC_EXPBUF.",
  "dma-heap":
    "Buffers from a DMA heap (/dev/dma_heap/<heap>), queued to V4L2 as V4L2_MEMORY_DMABUF.",
  udmabuf: "memfd pages wrapped by /dev/udmabuf, queued as V4L2_MEMORY_DMABUF.",
};

export const BUFFER_SOURCES: readonly BufferSource[] = ["v4l2-mmap", "dma-heap", "udmabuf"];

/** Sources of a graph's pools: the camera's three, GEM dumb buffers and an accelerator's own buffer objects. */
export const GRAPH_BUFFER_SOURCES: readonly GraphBufferSource[] = [
  ...BUFFER_SOURCES,
  "v4l2-userptr",
  "gem-dumb",
  "accel-bo",
  "gpu-bo",
];

export const HEAP_DESCRIPTIONS: Readonly<Record<string, string>> = {
  system:
    "drivers/dma-buf/heaps/system_heap.c: scattered pages from the page allocator, cached CPU mappings.",
  cma: "drivers/dma-buf/heaps/cma_heap.c: physically contiguous memory from the CMA area.",
};

export const HEAPS: readonly string[] = Object.keys(HEAP_DESCRIPTIONS);

export const FAULT_DESCRIPTIONS: Readonly<Record<PipelineFault, string>> = {
  "omit-sync-start": "Leave out DMA_BUF_IOCTL_SYNC(START) before the CPU reads a captured frame.",
  "omit-sync-end": "Leave out DMA_BUF_IOCTL_SYNC(END) after the CPU wrote a frame.",
  "lying-no-cache-invalidate":
    "Set V4L2_BUF_FLAG_NO_CACHE_INVALIDATE on QBUF although the CPU then reads the frame.",
  "lying-no-cache-clean":
    "Set V4L2_BUF_FLAG_NO_CACHE_CLEAN on QBUF although the CPU wrote the buffer.",
};

export const DEVICE_DESCRIPTIONS: Readonly<Record<"camera" | "gpu" | "display", string>> = {
  camera:
    "The capture device (vivid, drivers/media/test-drivers/vivid): writes each frame by DMA; exports its buffers.",
  gpu: "The GPU (a vgem-like render node): reads the captured frame and writes a converted one.",
  display:
    "The display controller (KMS scanout): reads the frame by DMA and computes the pipe CRC (drm_debugfs_crc.c).",
};

export const FORMAT_DESCRIPTIONS: Readonly<Record<string, string>> = {
  XR24: "XRGB8888, 4 bytes per pixel (DRM_FORMAT_XRGB8888 / V4L2_PIX_FMT_XBGR32).",
  YUYV: "YUYV 4:2:2, 2 bytes per pixel (V4L2_PIX_FMT_YUYV).",
};

// ---------------------------------------------------------------------------------------
// Sizes: numbers of bytes, or strings with a binary unit.

const SIZE_UNITS: Readonly<Record<string, number>> = {
  "": 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1024 ** 4,
  tib: 1024 ** 4,
};

/** Text accepted as a size: a decimal number with an optional binary unit, or hex. */
export const SIZE_PATTERN =
  "^\\s*(?:0[xX][0-9a-fA-F_]+|[0-9][0-9_]*(?:\\.[0-9]+)?\\s*(?:[kKmMgGtT](?:i?[bB])?|[bB])?)\\s*$";
const SIZE_RE = new RegExp(SIZE_PATTERN);

const SIZE_HINT = `a size: a number of bytes, or a string such as "64K", "512KiB", "32 MiB" or "0x4000_0000" (units are binary: K = 1024)`;

/**
 * Parses "512KiB", "32 MiB", "64K", "4096", "0x1000_0000" to bytes. Units are binary
 * (K, KB and KiB all mean 1024), as in the kernel's memparse() used for `cma=` and
 * `swiotlb=` on the command line. Returns undefined for anything else, or for a
 * fractional result.
 */
export function parseSize(text: string): number | undefined {
  const t = text.trim().replaceAll("_", "");
  if (/^0x[0-9a-f]+$/i.test(t)) {
    const v = Number.parseInt(t.slice(2), 16);
    return Number.isSafeInteger(v) ? v : undefined;
  }
  const m = /^([0-9]+(?:\.[0-9]+)?)\s*([a-z]*)$/i.exec(t);
  if (m === null) return undefined;
  const unit = SIZE_UNITS[m[2]!.toLowerCase()];
  if (unit === undefined) return undefined;
  const bytes = Number(m[1]) * unit;
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

/** A size in bytes: a non-negative integer, or a string with a unit. */
function size(description: string) {
  return z
    .union([
      z.number().int().nonnegative(),
      z
        .string()
        .regex(SIZE_RE, { error: `expected ${SIZE_HINT}`, abort: true })
        .refine((s) => parseSize(s) !== undefined, {
          error: `expected ${SIZE_HINT} that comes to a whole number of bytes below 2^53`,
        }),
    ])
    .transform((v) => (typeof v === "number" ? v : parseSize(v)!))
    .describe(`${description} Bytes, or a string with a binary unit: "64K", "512KiB", "32 MiB".`);
}

function isPowerOfTwo(n: number): boolean {
  return n > 0 && Number.isInteger(Math.log2(n));
}

// ---------------------------------------------------------------------------------------
// The machine.

const profileNames = Object.keys(PROFILES) as [string, ...string[]];

const CacheLevel = z
  .strictObject({
    name: z
      .string()
      .min(1)
      .optional()
      .describe(
        'Name for reports: "L1D", "L2", "L3". Default: L1D for the first level, then L2, L3.',
      ),
    sizeBytes: size(
      "Capacity of this level. Must be a whole number of `ways`-way sets of `lineSize`-byte lines.",
    ),
    ways: z
      .number()
      .int()
      .min(1)
      .max(1024)
      .describe("Associativity. With `replacement: plru` it must be a power of two of at most 32."),
  })
  .describe("One cache level, from the CPU outwards.");

const Cache = z
  .strictObject({
    lineSize: z
      .number()
      .int()
      .refine(isPowerOfTwo, { error: "expected a power of two" })
      .refine((n) => n >= 16 && n <= 256, { error: "expected 16 to 256 bytes" })
      .optional()
      .describe(
        "Cache line size in bytes, a power of two from 16 to 256 (32 on Cortex-A9, 64 on most others). Maintenance goes line by line in these units.",
      ),
    levels: z
      .array(CacheLevel)
      .min(1)
      .max(4)
      .optional()
      .describe(
        "The data-cache levels from the CPU outwards; the last one is where devices meet the CPU (the point of coherency) and is what set/way maintenance walks. Replaces the profile's list whole.",
      ),
    replacement: z
      .enum(["lru", "plru"])
      .optional()
      .describe("Replacement policy: true LRU, or tree pseudo-LRU (power-of-two ways)."),
  })
  .describe("CPU cache geometry; fields left out keep the profile's.");

const Maintenance = z
  .strictObject({
    kind: z
      .enum(["per-line", "whole-cache-above"])
      .optional()
      .describe(
        "per-line: every range sync cleans/invalidates line by line (DC CVAC, clflushopt, Zicbom). whole-cache-above: ranges of at least thresholdBytes clean/flush the whole cache by set/way instead, as arch/arm/mm/cache-l2x0.c does at the L2 size. The strategy decides which applies to the shared buffers (per-line for streaming and cache-hints, whole-cache-above for whole-cache): this field may restate it and is refused when it contradicts it.",
      ),
    thresholdBytes: size(
      "Range size from which the whole-cache strategy cleans/flushes the whole cache (Linux's l2x0 used the L2 size); default 0, every range.",
    ).optional(),
  })
  .describe("How range cache maintenance is carried out.");

const Costs = z
  .strictObject({
    hitNs: z
      .array(z.number().nonnegative())
      .min(1)
      .optional()
      .describe("Cost of one line access that hits, per cache level from the CPU outwards, ns."),
    dramBytesPerNs: z
      .number()
      .positive()
      .optional()
      .describe("DRAM bandwidth for line fills and write-backs, bytes per ns (= GB/s)."),
    uncachedReadNs: z
      .number()
      .nonnegative()
      .optional()
      .describe("One uncached or write-combined load of uncachedAccessBytes, ns."),
    uncachedWriteNs: z
      .number()
      .nonnegative()
      .optional()
      .describe("One uncached (strongly-ordered) store of uncachedAccessBytes, ns."),
    uncachedAccessBytes: z
      .number()
      .int()
      .positive()
      .optional()
      .describe("Width of one uncached access, bytes."),
    wcWriteBytesPerNs: z
      .number()
      .positive()
      .optional()
      .describe("Store bandwidth through a write-combining mapping, bytes per ns."),
    lineOpNs: z
      .number()
      .nonnegative()
      .optional()
      .describe(
        "One maintenance operation by address, per line (DC CVAC, clflushopt, PL310 line op), ns.",
      ),
    rangeOpNs: z
      .number()
      .nonnegative()
      .optional()
      .describe(
        "Fixed cost of one range operation (the barrier: DSB, PL310 cache sync, sfence), ns.",
      ),
    setWayOpNs: z
      .number()
      .nonnegative()
      .optional()
      .describe("One maintenance operation by set/way, per slot of the outer cache, ns."),
  })
  .describe("Cost-model figures in virtual nanoseconds (see docs/profiles.md).");

const bandwidth = z
  .number()
  .positive()
  .optional()
  .describe("DMA bandwidth, bytes per ns (= GB/s).");
const coherent = z
  .boolean()
  .optional()
  .describe(
    "Whether the device snoops the CPU caches (a dma-coherent device tree node). Non-coherent devices need cache maintenance.",
  );
const dmaBits = z
  .number()
  .int()
  .min(24)
  .max(64)
  .optional()
  .describe(
    "Width of the device's DMA mask in bits. Memory beyond it is bounced through swiotlb (or needs the IOMMU).",
  );
const iommu = z
  .boolean()
  .optional()
  .describe(
    "Whether the device sits behind an IOMMU (scattered pages look contiguous, no bouncing).",
  );

const MachineDevice = z
  .strictObject({
    coherent,
    dmaBits,
    iommu,
    bandwidth,
    setupNs: z
      .number()
      .nonnegative()
      .optional()
      .describe("Fixed cost of starting one DMA transfer, ns."),
    dmaOffset: size("Offset between DMA and physical addresses (phys = dma + offset).").optional(),
  })
  .describe("Defaults for every device on the machine; `devices` overrides them per device.");

const Machine = z
  .strictObject({
    profile: z
      .enum(profileNames)
      .optional()
      .describe(
        'Architecture profile the machine starts from (`dmabuf list profiles`). Default "arm64".',
      ),
    cache: Cache.optional(),
    maintenance: Maintenance.optional(),
    coherentAttr: z
      .enum(["cached", "uncached", "writecombine"])
      .optional()
      .describe(
        "Attribute of dma_alloc_coherent's CPU mapping for a non-coherent device (pgprot_dmacoherent): writecombine on ARM, uncached on RISC-V.",
      ),
    speculativeFillRate: z
      .number()
      .min(0)
      .max(1)
      .optional()
      .describe(
        "Fraction of the cache lines a non-coherent device writes under a streaming mapping that the CPU pulls into its cache speculatively during the transfer (0: never). ARM and RISC-V profiles 1/32, x86 0. Makes the invalidate after DMA_FROM_DEVICE necessary (docs/hazards.md).",
      ),
    forDeviceIgnoresDirection: z
      .boolean()
      .optional()
      .describe(
        "Whether arch_sync_dma_for_device cleans whatever the direction (mainline arm64 and RISC-V: true) or invalidates a DMA_FROM_DEVICE buffer (32-bit ARM, and arm64 with raspberrypi/linux PR 6995: false). Refused on x86, whose clflush has no direction.",
      ),
    swiotlbBytes: size("Size of the swiotlb bounce pool (0 disables bouncing).").optional(),
    cmaBytes: size("Size of the contiguous memory area behind the CMA heap.").optional(),
    ram: z
      .strictObject({
        base: size("Physical address where RAM starts.").optional(),
        size: size("Amount of RAM.").optional(),
      })
      .optional()
      .describe("Physical RAM layout; RAM above 4 GiB is out of reach of 32-bit devices."),
    costs: Costs.optional(),
    device: MachineDevice.optional(),
  })
  .describe(
    "The simulated SoC: an architecture profile plus the fields that make it yours. Anything left out keeps the profile's value.",
  );

// ---------------------------------------------------------------------------------------
// Buffers, devices, pipeline.

const Buffers = z
  .strictObject({
    source: z
      .enum(BUFFER_SOURCES as [BufferSource, ...BufferSource[]])
      .optional()
      .describe(
        `Where the camera's buffers come from. ${BUFFER_SOURCES.map((s) => `${s}: ${SOURCE_DESCRIPTIONS[s]}`).join(" ")} Default "v4l2-mmap".`,
      ),
    heap: z
      .enum(HEAPS as [string, ...string[]])
      .optional()
      .describe('DMA heap for source "dma-heap": "system" or "cma". Default "system".'),
    width: z
      .number()
      .int()
      .min(16)
      .max(16384)
      .refine((w) => w % 2 === 0, { error: "expected an even width (YUYV pairs pixels)" })
      .optional()
      .describe("Frame width in pixels, even, at least 16. Default 640."),
    height: z
      .number()
      .int()
      .min(1)
      .max(16384)
      .optional()
      .describe("Frame height in pixels. Default 480."),
    format: z
      .enum(Object.keys(FORMAT_DESCRIPTIONS) as [string, ...string[]])
      .optional()
      .describe(
        'Pixel format as a V4L2 fourcc: "XR24" (XRGB8888) or "YUYV". Default "XR24"; camera-display and camera-cpu-display always use XR24.',
      ),
    bufferBytes: size(
      "Buffer size. When given, the frame is `width` wide (default 1024 pixels) and as tall as the size allows; sweeps over buffer size use this.",
    ).optional(),
    count: z
      .number()
      .int()
      .min(2)
      .max(32)
      .optional()
      .describe("V4L2 queue depth (the REQBUFS count): buffers in rotation. Default 4."),
  })
  .describe("The shared frame buffers.");

const Device = z
  .strictObject({ coherent, dmaBits, iommu, bandwidth })
  .describe("Overrides of the machine's device defaults for one device.");

const Devices = z
  .strictObject({
    camera: Device.optional().describe(DEVICE_DESCRIPTIONS.camera),
    gpu: Device.optional().describe(DEVICE_DESCRIPTIONS.gpu),
    display: Device.optional().describe(DEVICE_DESCRIPTIONS.display),
  })
  .describe("Per-device overrides (a coherent GPU on a non-coherent SoC, a 64-bit display...).");

const Pipeline = z
  .strictObject({
    kind: z
      .enum(PIPELINE_KINDS as [PipelineKind, ...PipelineKind[]])
      .optional()
      .describe(
        `Which devices the frames pass through. ${PIPELINE_KINDS.map((k) => `${k}: ${PIPELINE_DESCRIPTIONS[k]}`).join(" ")} Default "camera-gpu-display".`,
      ),
    frames: z
      .number()
      .int()
      .min(1)
      .max(100000)
      .optional()
      .describe("Frames to run through the pipeline. Default 8."),
    fps: z
      .number()
      .positive()
      .max(10000)
      .optional()
      .describe("Capture frame rate on the virtual clock. Default 30."),
    strategy: z
      .enum(MAPPING_STRATEGIES as [MappingStrategy, ...MappingStrategy[]])
      .optional()
      .describe(
        `How the shared buffers are mapped and kept coherent. ${MAPPING_STRATEGIES.map((s) => `${s}: ${STRATEGY_DESCRIPTIONS[s]}`).join(" ")} Default "streaming".`,
      ),
    cpu: z
      .strictObject({
        reads: z
          .boolean()
          .optional()
          .describe(
            "Whether the CPU reads each captured frame. Default: true for camera-cpu-display, else false.",
          ),
        writes: z
          .boolean()
          .optional()
          .describe(
            "Whether the CPU writes each captured frame. Default: true for camera-cpu-display, else false.",
          ),
      })
      .optional()
      .describe("What the CPU does with each frame."),
    hints: z
      .strictObject({
        noCacheInvalidate: z
          .boolean()
          .optional()
          .describe(
            "Set V4L2_BUF_FLAG_NO_CACHE_INVALIDATE on QBUF: skip invalidating the CPU cache when the buffer is dequeued. Only correct if the CPU does not read it.",
          ),
        noCacheClean: z
          .boolean()
          .optional()
          .describe(
            "Set V4L2_BUF_FLAG_NO_CACHE_CLEAN on QBUF: skip cleaning the CPU cache when the buffer is queued. Only correct if the CPU did not write it.",
          ),
      })
      .optional()
      .describe("Explicit V4L2 cache hints, overriding what the strategy would choose."),
    fault: z
      .enum(PIPELINE_FAULTS as [PipelineFault, ...PipelineFault[]])
      .optional()
      .describe(
        `A deliberate mistake, to see what it does. ${PIPELINE_FAULTS.map((f) => `${f}: ${FAULT_DESCRIPTIONS[f]}`).join(" ")}`,
      ),
    faults: z
      .array(z.enum(NAMED_FAULTS.map((f) => f.name) as [string, ...string[]]))
      .optional()
      .describe(
        `Named kernel faults, each a bug class reported from the field, injected into the kernel's cache maintenance and syncs (shared-cacheline: into how the program lays out its USERPTR memory). ${NAMED_FAULTS.map((f) => `${f.name}: ${f.description}`).join(" ")}`,
      ),
  })
  .describe("What runs and how buffers are shared.");

// ---------------------------------------------------------------------------------------
// Pipelines as graphs.

const graphName = z.string().regex(/^[A-Za-z][A-Za-z0-9_-]{0,31}$/, {
  error: "expected a name of letters, digits, '-' and '_', starting with a letter (at most 32)",
});

const GraphDeviceSchema = z
  .strictObject({
    kind: z
      .enum(Object.keys(GRAPH_DEVICE_KINDS) as [GraphDeviceKind, ...GraphDeviceKind[]])
      .describe(
        `What the device is, by the Linux interface that drives it. ${Object.entries(
          GRAPH_DEVICE_KINDS,
        )
          .map(([k, d]) => `${k}: ${d}`)
          .join(" ")}`,
      ),
    coherent,
    dmaBits,
    iommu,
    bandwidth,
    setupNs: z
      .number()
      .nonnegative()
      .optional()
      .describe("Fixed cost of starting one DMA transfer on this device, ns."),
    allocator: z
      .enum(["dma-contig", "dma-sg"])
      .optional()
      .describe(
        "A camera's videobuf2 allocator (vivid's allocators= module parameter): dma-contig, or dma-sg (MMAP buffers of scattered pages, zeroed through the cache and mapped with DMA_ATTR_SKIP_CPU_SYNC until QBUF syncs them). Default dma-contig (dma-sg for a scattered pool without an IOMMU).",
      ),
    bidirectional: z
      .boolean()
      .optional()
      .describe(
        "A camera's or m2m ISP's capture queue mapped DMA_BIDIRECTIONAL (videobuf2's q->bidirectional). Default: true when a CPU stage writes its buffers in place; false maps them DMA_FROM_DEVICE, and on 32-bit ARM the end of the CPU's access (an invalidate) discards what it wrote.",
      ),
    boMapping: z
      .enum(["per-job", "pinned"])
      .optional()
      .describe(
        "How a gpu maps its own buffer objects (a gpu-bo pool) for its DMA: per-job (dma_map_sgtable at each job's start, unmap at its end: the CPU owns them between jobs; the default) or pinned (drm_gem_shmem_get_pages_sgt at the first job, kept until the object is freed, as panfrost and v3d do: no cache maintenance per job).",
      ),
  })
  .describe("One device instance: its kind and how it sits on the bus (unset: machine.device).");

const GraphPoolSchema = z
  .strictObject({
    source: z
      .enum(GRAPH_BUFFER_SOURCES as [GraphBufferSource, ...GraphBufferSource[]])
      .describe(
        "Where the buffers come from: v4l2-mmap (videobuf2 allocates, VIDIOC_EXPBUF exports), dma-heap, udmabuf (memfd pages), v4l2-userptr (memfd pages the program maps and queues as V4L2_MEMORY_USERPTR, shared with the other stages as a udmabuf), gem-dumb (DRM_IOCTL_MODE_CREATE_DUMB on a display, exported with PRIME), accel-bo (an NPU's own buffer objects, DRM_IOCTL_SIMNPU_BO_CREATE, exported with PRIME), or gpu-bo (a GPU's own buffer objects, DRM_IOCTL_SIMGPU_GEM_CREATE: shmem pages, write-combined for the CPU unless the GPU is coherent, exported with PRIME). Cameras: v4l2-mmap, dma-heap, udmabuf, v4l2-userptr; m2m: v4l2-mmap; gpu: gem-dumb, gpu-bo; npu: accel-bo, dma-heap, udmabuf.",
      ),
    heap: z
      .enum(HEAPS as [string, ...string[]])
      .optional()
      .describe('DMA heap for source "dma-heap": "system" or "cma". Default "system".'),
    count: z
      .number()
      .int()
      .min(2)
      .max(32)
      .describe("Buffers in rotation (the REQBUFS count, or buffers allocated)."),
    format: z
      .enum(Object.keys(FORMAT_DESCRIPTIONS) as [string, ...string[]])
      .optional()
      .describe("Pixel format of the buffers; default buffers.format (GEM dumb buffers: XR24)."),
    header: z
      .number()
      .int()
      .min(1)
      .max(1024)
      .optional()
      .describe(
        "v4l2-userptr only: bytes of a structure the program keeps for each buffer (a frame-info record it updates at every QBUF), in memory of its own. The named fault shared-cacheline puts it right before the frame in the frame's memory, the frame that many bytes in and sharing a cache line with it (default 40 bytes with the fault); only CPU stages and displays read a frame at an offset.",
      ),
  })
  .describe("A pool of buffers one stage writes into and the stages downstream read.");

const CpuAccessSchema = z
  .strictObject({
    read: z.boolean().optional().describe("The CPU reads the region. Default false."),
    write: z.boolean().optional().describe("The CPU writes the region. Default false."),
    top: z.number().int().nonnegative().optional().describe("First line of the region. Default 0."),
    lines: z
      .number()
      .int()
      .positive()
      .optional()
      .describe("Lines in the region. Default 16 (or `fraction` of the frame)."),
    fraction: z
      .number()
      .positive()
      .max(1)
      .optional()
      .describe("The region as a fraction of the frame's lines, when `lines` is not given."),
    left: z
      .number()
      .int()
      .nonnegative()
      .optional()
      .describe("First byte of each line (a 2D region). Default 0."),
    bytesPerLine: z
      .number()
      .int()
      .positive()
      .optional()
      .describe("Bytes of each line the region covers. Default the rest of the line."),
  })
  .describe(
    "What a CPU stage does through an mmap of the buffer, bracketed by DMA_BUF_IOCTL_SYNC: a 2D region with the buffer's stride.",
  );

const GraphStageSchema = z
  .strictObject({
    name: graphName.describe("The stage's name, for edges and reports."),
    device: graphName
      .optional()
      .describe("The device (a key of graph.devices) that runs it; left out for a CPU stage."),
    inputs: z
      .array(graphName)
      .max(8)
      .optional()
      .describe(
        "Stages whose output it reads (edges). Several stages naming one input is fan-out; a stage with several inputs is fan-in. Default none (a source).",
      ),
    pool: graphName
      .optional()
      .describe("The pool (a key of graph.pools) it writes into: cameras and GPUs."),
    op: z
      .enum([...GRAPH_GPU_OPS, ...GRAPH_NPU_OPS])
      .optional()
      .describe(
        "What a job does. gpu: copy, invert, yuyv-to-xrgb (default: yuyv-to-xrgb for YUYV input, else invert), applied to the first input; a second input is blended over the result. npu: conv3x3 (a 3x3 blur per channel, default) or tile-sum (per 16x16 tile and channel, the sum as a 32-bit word: a tensor only a CPU stage can read).",
      ),
    cpu: CpuAccessSchema.optional(),
    sync: z
      .enum(["implicit", "sync-file"])
      .optional()
      .describe(
        "How it waits for its input's producer: implicit (the dma-buf's dma-resv fences, which the kernel waits for) or sync-file (the producer's out-fence passed as a GPU job's in-fence, or poll()ed before CPU access). Default implicit.",
      ),
    fps: z
      .number()
      .positive()
      .max(10000)
      .optional()
      .describe("Frame rate of a camera stage. Default pipeline.fps."),
    fault: z
      .enum(PIPELINE_FAULTS as [PipelineFault, ...PipelineFault[]])
      .optional()
      .describe(
        "A deliberate userspace mistake made by this stage only (a CPU stage's DMA_BUF_IOCTL_SYNC brackets, a camera's QBUF hints), as pipeline.fault is for the whole pipeline.",
      ),
    faults: z
      .array(z.enum(NAMED_FAULTS.map((f) => f.name) as [string, ...string[]]))
      .optional()
      .describe(
        "Named kernel faults (`dmabuf list faults`) armed for this stage's calls only: its ioctls and syncs, and the QBUF that hands its buffers back to its device. Each must change at least one call, else the run is refused.",
      ),
  })
  .describe(
    "One stage: a device, or the CPU, doing one thing per frame. A CPU stage that no stage reads is a sink that reads a result back.",
  );

const GraphSchema = z
  .strictObject({
    devices: z
      .record(graphName, GraphDeviceSchema)
      .describe("The device instances, by name: two GPUs are two entries of kind gpu."),
    pools: z.record(graphName, GraphPoolSchema).optional().describe("The buffer pools, by name."),
    stages: z
      .array(GraphStageSchema)
      .min(1)
      .max(64)
      .describe("The stages, each with the stages it reads from."),
    primary: graphName
      .optional()
      .describe(
        "The sink whose frames the report's frame table shows (every sink is checked). Default the first sink.",
      ),
  })
  .describe(
    "The pipeline as a graph of devices, pools and stages (instead of pipeline.kind). buffers.width/height/format and pipeline.frames/fps/strategy/fault still apply.",
  );

/** The whole scenario file. */
export const ScenarioSchema = z
  .strictObject({
    $schema: z
      .string()
      .optional()
      .describe("The JSON Schema this file follows (for editors); ignored by dmabuf."),
    name: z
      .string()
      .min(1)
      .optional()
      .describe("Short name for reports. Default: the file name without its extension."),
    description: z
      .string()
      .optional()
      .describe("What this scenario shows, in a sentence or two (`dmabuf list scenarios`)."),
    machine: Machine.optional(),
    buffers: Buffers.optional(),
    devices: Devices.optional(),
    pipeline: Pipeline.optional(),
    graph: GraphSchema.optional(),
    seed: z
      .number()
      .int()
      .nonnegative()
      .optional()
      .describe("Seed for page scattering and anything else random. Default: the profile's."),
  })
  .superRefine((s, ctx) => {
    // The cache geometry must be buildable (src/machine/cache.ts rejects it otherwise);
    // checked here so the error points at the line in the file.
    const profile = PROFILES[s.machine?.profile ?? "arm64"]!;
    const cache = s.machine?.cache;
    const line = cache?.lineSize ?? profile.cache.lineSize;
    const plru = (cache?.replacement ?? profile.cache.replacement) === "plru";
    const levels = cache?.levels;
    if (levels === undefined) return;
    levels.forEach((lv, i) => {
      // With no ways there are no sets to count: the ways' own error says what is wrong.
      if (!(lv.ways >= 1)) return;
      const sets = lv.sizeBytes / (line * lv.ways);
      if (!Number.isInteger(sets) || sets < 1) {
        ctx.addIssue({
          code: "custom",
          path: ["machine", "cache", "levels", i, "sizeBytes"],
          message: `expected a whole number of ${lv.ways}-way sets of ${line}-byte lines (a multiple of ${lv.ways * line} bytes); got ${lv.sizeBytes} bytes`,
        });
      }
      if (plru && (!isPowerOfTwo(lv.ways) || lv.ways > 32)) {
        ctx.addIssue({
          code: "custom",
          path: ["machine", "cache", "levels", i, "ways"],
          message: `expected a power of two of at most 32 (pseudo-LRU replacement); got ${lv.ways}`,
        });
      }
    });
  })
  .describe(
    "A dmabuf scenario: one camera -> (CPU | GPU) -> display pipeline on a simulated SoC, with the mapping strategy, the buffers and the devices, checked for cache coherency.",
  );

/** The JSON Schema of scenario files, generated from {@link ScenarioSchema}. */
export function scenarioJsonSchema(): Record<string, unknown> {
  const generated = z.toJSONSchema(ScenarioSchema, { io: "input", target: "draft-2020-12" });
  const { $schema, ...rest } = generated as Record<string, unknown>;
  return {
    $schema,
    $id: SCENARIO_SCHEMA_ID,
    title: "dmabuf scenario",
    description: rest.description,
    ...rest,
  };
}

/** The JSON Schema as the text committed in schema/scenario.schema.json. */
export function scenarioJsonSchemaText(): string {
  return `${JSON.stringify(scenarioJsonSchema(), null, 2)}\n`;
}
