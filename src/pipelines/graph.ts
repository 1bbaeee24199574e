/**
 * Pipelines as graphs: the checks a GraphSpec must pass before anything is probed
 * (names, edges, what each device kind can do, cycles), the order stages run in, and
 * the graphs the four PipelineKinds are sugar for.
 *
 * A graph is what a platform engineer draws: device instances (two cameras, two GPUs,
 * a display and an encoder, each with its own coherency, DMA mask, IOMMU, bandwidth and
 * setup cost), pools of buffers (V4L2 MMAP + EXPBUF, DMA heaps, udmabuf, GEM dumb), and
 * stages joined by edges: a stage reads the buffers its inputs produced. One buffer read
 * by two stages is fan-out (the display and the encoder read the GPU's output); a stage
 * with two inputs is fan-in. CPU stages work in place on their input's buffer.
 */

import { layoutFault, NAMED_FAULTS } from "../kernel/fault-inject.js";
import { didYouMean } from "../lib/did-you-mean.js";
import type {
  GraphBufferSource,
  GraphDeviceKind,
  GraphSpec,
  GraphStage,
  PipelineKind,
  PipelineSpec,
} from "./types.js";

/** One problem with a graph, with the scenario field path it is about. */
export interface GraphIssue {
  readonly field: string;
  readonly problem: string;
}

/** Device kinds this model has drivers for, and what a stage on each does. */
export const GRAPH_DEVICE_KINDS: Readonly<Record<GraphDeviceKind, string>> = {
  camera:
    "V4L2 capture (vivid): a source; each frame is DMA-written into a buffer of its pool and dequeued with VIDIOC_DQBUF.",
  m2m: "V4L2 memory-to-memory ISP (vim2m): its input queued on the OUTPUT queue as DMABUF, the result in its own CAPTURE MMAP buffers (EXPBUF) in its pool's format (XR24/YUYV conversion).",
  gpu: "DRM render node (simgpu): one job per frame reads its input's dma-buf and writes a buffer of its pool (GEM dumb), with dma-resv fences and optional sync_file in/out fences; with two inputs it composites: a second job blends the second input over the first's result (SIMGPU_OP_BLEND).",
  npu: "Compute accelerator (simnpu, drivers/accel): one job per frame reads its input's dma-buf (PRIME import) and writes a buffer of its pool (accel-bo, or an imported dma-heap/udmabuf buffer): conv3x3 (a 3x3 blur, an image) or tile-sum (16x16 tile sums, a tensor); implicit dma-resv fences, optional sync_file in-fence.",
  display:
    "KMS display (simdisplay): a sink; PRIME-imports its input, page-flips to it and reports the pipe CRC (drm_debugfs_crc.c).",
  output:
    "V4L2 OUTPUT device (vivid-out): a sink; its input is queued as V4L2_MEMORY_DMABUF and read by DMA, and the CRC of what it read is recorded. Without inputs the CPU renders vivid's pattern into its own MMAP OUTPUT buffers (QBUF cleans them), as cpu-output does.",
  encoder:
    "V4L2 mem2mem stateful encoder (simenc, shaped like vicodec): a sink; its input queued on the OUTPUT queue as DMABUF, each coded frame dequeued from its own CAPTURE MMAP buffers and read through mmap; the CRC is of the coded bytes.",
};

/** Kinds with a driver in this model; the others are refused with the reason. */
export const GRAPH_KINDS_AVAILABLE: ReadonlySet<GraphDeviceKind> = new Set(
  Object.keys(GRAPH_DEVICE_KINDS) as GraphDeviceKind[],
);

/** Transforms a gpu stage can apply (DRM_IOCTL_SIMGPU_SUBMIT ops). */
export const GRAPH_GPU_OPS = ["copy", "invert", "yuyv-to-xrgb"] as const;

/** Jobs an npu stage can run (DRM_IOCTL_SIMNPU_SUBMIT ops). */
export const GRAPH_NPU_OPS = ["conv3x3", "tile-sum"] as const;

/** Where each producer kind's pool may come from, and why. */
const POOL_SOURCES: Partial<Record<GraphDeviceKind, readonly string[]>> = {
  camera: ["v4l2-mmap", "dma-heap", "udmabuf", "v4l2-userptr"],
  m2m: ["v4l2-mmap"],
  gpu: ["gem-dumb", "gpu-bo"],
  npu: ["accel-bo", "dma-heap", "udmabuf"],
};

const SOURCE_KINDS: ReadonlySet<GraphDeviceKind> = new Set(["camera"]);
const SINK_KINDS: ReadonlySet<GraphDeviceKind> = new Set(["display", "output", "encoder"]);

/** Whether a stage is a source (no inputs), a transform, or a sink (nothing reads it). */
export function stageKind(g: GraphSpec, s: GraphStage): GraphDeviceKind | "cpu" {
  return s.device === undefined ? "cpu" : (g.devices[s.device]?.kind ?? "cpu");
}

/** Whether a stage makes frames: a camera, or an output the CPU renders into (no inputs). */
export function isSourceStage(g: GraphSpec, s: GraphStage): boolean {
  const kind = stageKind(g, s);
  return SOURCE_KINDS.has(kind as GraphDeviceKind) || (kind === "output" && s.inputs.length === 0);
}

/** Whether a stage is a sink: a display, output or encoder, or a CPU stage nothing reads (it reads a result back). */
export function isSinkStage(g: GraphSpec, s: GraphStage): boolean {
  const kind = stageKind(g, s);
  if (kind === "cpu") return !g.stages.some((x) => x.inputs.includes(s.name));
  return SINK_KINDS.has(kind);
}

/** The stages in an order where every stage comes after its inputs (declaration order kept where free). */
export function topoOrder(g: GraphSpec): GraphStage[] {
  const done = new Set<string>();
  const out: GraphStage[] = [];
  const pending = [...g.stages];
  while (pending.length > 0) {
    const i = pending.findIndex((s) => s.inputs.every((x) => done.has(x)));
    if (i < 0) break;
    const s = pending.splice(i, 1)[0]!;
    done.add(s.name);
    out.push(s);
  }
  return out;
}

/** The sinks of a graph, the primary first. */
export function graphSinks(g: GraphSpec): GraphStage[] {
  const sinks = g.stages.filter((s) => isSinkStage(g, s));
  const p = sinks.findIndex((s) => s.name === g.primary);
  if (p > 0) sinks.unshift(sinks.splice(p, 1)[0]!);
  return sinks;
}

/** `no X "name"`, with the closest known name when it looks like a typo, else the known names. */
function unknownName(what: string, name: string, known: readonly string[], where: string): string {
  const guess = didYouMean(name, known);
  return `no ${what} "${name}"${where}${guess !== undefined ? ` (did you mean "${guess}"?)` : ` (known: ${known.join(", ") || "none"})`}`;
}

/**
 * Every problem with a graph, before anything runs. Empty when it can run. `format` is
 * the pipeline's default pixel format (buffers.format), for pools that name none.
 */
export function graphIssues(g: GraphSpec, format = "XR24"): GraphIssue[] {
  const out: GraphIssue[] = [];
  const add = (field: string, problem: string): void => {
    out.push({ field, problem });
  };
  const names = new Set<string>();
  const devicesUsed = new Map<string, string>();
  const stageNames = g.stages.map((s) => s.name);
  for (const [name, d] of Object.entries(g.devices)) {
    if (d.allocator !== undefined && d.kind !== "camera")
      add(
        `graph.devices.${name}.allocator`,
        `only a camera (vivid) chooses its videobuf2 allocator; a ${d.kind} has none to choose`,
      );
    if (d.bidirectional !== undefined && d.kind !== "camera" && d.kind !== "m2m")
      add(
        `graph.devices.${name}.bidirectional`,
        `only a camera's or an m2m ISP's capture queue is mapped for a CPU stage to write in place; a ${d.kind} has no such queue`,
      );
    if (d.boMapping !== undefined) {
      const writesOwn = g.stages.some(
        (s) => s.device === name && s.pool !== undefined && g.pools[s.pool]?.source === "gpu-bo",
      );
      if (d.kind !== "gpu" || !writesOwn)
        add(
          `graph.devices.${name}.boMapping`,
          d.kind !== "gpu"
            ? `only a gpu maps its own buffer objects; a ${d.kind} has none`
            : "this gpu writes no gpu-bo pool, so it has no buffer objects of its own to map (its outputs are a display's GEM dumb buffers)",
        );
    }
    if (!GRAPH_KINDS_AVAILABLE.has(d.kind)) {
      add(
        `graph.devices.${name}.kind`,
        `${d.kind} devices have no driver in this model yet (${GRAPH_DEVICE_KINDS[d.kind]}); available: ${[...GRAPH_KINDS_AVAILABLE].join(", ")}`,
      );
    }
  }
  const consumers = (name: string): GraphStage[] => g.stages.filter((x) => x.inputs.includes(name));
  g.stages.forEach((s, i) => {
    const at = `graph.stages[${i}]`;
    if (names.has(s.name))
      add(`${at}.name`, `a second stage named "${s.name}"; names must be unique`);
    names.add(s.name);
    const kind = stageKind(g, s);
    if (s.device !== undefined) {
      const d = g.devices[s.device];
      if (d === undefined) {
        add(
          `${at}.device`,
          unknownName("device", s.device, Object.keys(g.devices), " in graph.devices"),
        );
        return;
      }
      const other = devicesUsed.get(s.device);
      if (other !== undefined) {
        add(
          `${at}.device`,
          `device "${s.device}" already runs stage "${other}"; give each stage its own device instance`,
        );
      }
      devicesUsed.set(s.device, s.name);
    }
    const seen = new Set<string>();
    for (const [j, input] of s.inputs.entries()) {
      if (seen.has(input))
        add(`${at}.inputs[${j}]`, `"${input}" is read twice; name each input once`);
      seen.add(input);
      if (!g.stages.some((x) => x.name === input)) {
        add(
          `${at}.inputs[${j}]`,
          unknownName(
            "stage named",
            input,
            stageNames.filter((n) => n !== s.name),
            "",
          ),
        );
      } else if (input === s.name) add(`${at}.inputs[${j}]`, "a stage cannot read its own output");
      else {
        const src = g.stages.find((x) => x.name === input)!;
        const srcKind = stageKind(g, src);
        if (SINK_KINDS.has(srcKind as GraphDeviceKind)) {
          add(`${at}.inputs[${j}]`, `"${input}" is a ${srcKind}, a sink: nothing comes out of it`);
        } else if (
          src.op === "tile-sum" &&
          (SINK_KINDS.has(kind as GraphDeviceKind) || kind === "gpu" || kind === "m2m")
        ) {
          add(
            `${at}.inputs[${j}]`,
            `"${input}" writes tile sums (a tensor of ${16}x${16}-tile totals), not a frame a ${kind} can take; read it back with a CPU stage or use op conv3x3`,
          );
        }
      }
    }
    const one = (what: string): void => {
      if (s.inputs.length !== 1) add(`${at}.inputs`, `${what}; it has ${s.inputs.length}`);
    };
    if (kind === "cpu") {
      const sink = consumers(s.name).length === 0;
      if (s.cpu === undefined)
        add(`${at}.cpu`, "a stage without a device is a CPU stage and needs `cpu` (read/write)");
      else if (!s.cpu.read && !s.cpu.write)
        add(
          `${at}.cpu`,
          "a CPU stage that neither reads nor writes does nothing; set read and/or write",
        );
      else if (sink && !s.cpu.read)
        add(
          `${at}.cpu`,
          "nothing reads this CPU stage's buffer, so it is a sink that reads a result back: set read: true (a write nobody reads checks nothing)",
        );
      one("a CPU stage works in place on one input's buffer (fan-in is a gpu stage's)");
      if (s.pool !== undefined) add(`${at}.pool`, "a CPU stage works in place; it has no pool");
    } else if (SOURCE_KINDS.has(kind as GraphDeviceKind)) {
      if (s.inputs.length > 0) add(`${at}.inputs`, `a ${kind} is a source; it has no inputs`);
      if (s.pool === undefined) add(`${at}.pool`, `a ${kind} needs a pool to capture into`);
    } else if (kind === "output" && s.inputs.length === 0) {
      // The CPU renders into the output device's own MMAP buffers: source and sink in one.
      if (s.pool !== undefined)
        add(
          `${at}.pool`,
          "an output without inputs renders into its own V4L2 MMAP OUTPUT buffers; it has no pool",
        );
    } else if (SINK_KINDS.has(kind as GraphDeviceKind)) {
      one(`a ${kind} reads one input (fan-in is a gpu stage's)`);
      if (s.pool !== undefined)
        add(
          `${at}.pool`,
          kind === "encoder"
            ? "an encoder is a sink: its coded frames land in its own CAPTURE MMAP buffers, it has no pool"
            : `a ${kind} is a sink; it reads its input's buffers, it has no pool`,
        );
    } else if (kind === "m2m") {
      one("an m2m device reads one OUTPUT buffer per job");
      if (s.pool === undefined)
        add(`${at}.pool`, "an m2m stage writes into its CAPTURE pool; name one (source v4l2-mmap)");
      if (s.op !== undefined)
        add(`${at}.op`, "an m2m ISP converts to its pool's format; it takes no op");
    } else if (kind === "gpu") {
      if (s.inputs.length === 0 || s.inputs.length > 2)
        add(
          `${at}.inputs`,
          `a gpu stage reads one input, or composites two (the second blended over the first); this one has ${s.inputs.length}`,
        );
      if (s.inputs.length === 2) {
        const second = g.stages.find((x) => x.name === s.inputs[1]);
        const f = second !== undefined ? stageFormat(g, second, format) : "XR24";
        if (f !== "XR24")
          add(
            `${at}.inputs[1]`,
            `the second input of a composite is blended over the first as XRGB8888 (SIMGPU_OP_BLEND keeps the format); "${s.inputs[1]}" holds ${f}: convert it first (a gpu or m2m stage)`,
          );
      }
      if (s.pool === undefined) add(`${at}.pool`, "a gpu stage writes into a pool; name one");
      if (s.op !== undefined && !(GRAPH_GPU_OPS as readonly string[]).includes(s.op))
        add(`${at}.op`, `simgpu has no op "${s.op}" (ops: ${GRAPH_GPU_OPS.join(", ")})`);
    } else if (kind === "npu") {
      one("an npu job reads one input buffer (DRM_IOCTL_SIMNPU_SUBMIT in_handle)");
      if (s.pool === undefined)
        add(`${at}.pool`, "an npu stage writes into a pool; name one (source accel-bo)");
      if (s.op !== undefined && !(GRAPH_NPU_OPS as readonly string[]).includes(s.op))
        add(`${at}.op`, `simnpu has no op "${s.op}" (ops: ${GRAPH_NPU_OPS.join(", ")})`);
      const pf = s.pool !== undefined ? g.pools[s.pool]?.format : undefined;
      if (pf !== undefined && pf !== stageFormat(g, s, format))
        add(
          `graph.pools.${s.pool}.format`,
          `an npu's output keeps its input's layout (${stageFormat(g, s, format)}, cpp channels per element); ${pf} cannot apply`,
        );
    }
    if (kind !== "cpu" && s.cpu !== undefined)
      add(
        `${at}.cpu`,
        `only CPU stages (no device) take an access pattern; this one runs on ${s.device}`,
      );
    if (s.fps !== undefined && !SOURCE_KINDS.has(kind as GraphDeviceKind))
      add(`${at}.fps`, "only sources (cameras) have a frame rate");
    if (s.pool !== undefined) {
      const pool = g.pools[s.pool];
      const allowed = POOL_SOURCES[kind as GraphDeviceKind];
      if (pool === undefined)
        add(`${at}.pool`, unknownName("pool", s.pool, Object.keys(g.pools), " in graph.pools"));
      else if (allowed !== undefined && !allowed.includes(pool.source))
        add(
          `${at}.pool`,
          `a ${kind} stage writes ${allowed.join(" or ")} buffers (${POOL_WHY[kind as GraphDeviceKind]}); pool "${s.pool}" is ${pool.source}`,
        );
    }
    if (s.sync === "sync-file" && kind !== "gpu" && kind !== "npu" && kind !== "cpu")
      add(
        `${at}.sync`,
        `only gpu and npu jobs (in-fence) and CPU stages (poll) wait on a sync_file; a ${kind} waits implicitly`,
      );
    if (
      s.fault !== undefined &&
      (kind !== "cpu" || (s.fault !== "omit-sync-start" && s.fault !== "omit-sync-end"))
    )
      add(
        `${at}.fault`,
        kind !== "cpu"
          ? `${s.fault} is a CPU stage's mistake (its DMA_BUF_IOCTL_SYNC brackets); this stage runs on a ${kind}: use faults (named kernel faults) for its calls`
          : `${s.fault} spans a camera's QBUF and the CPU's access, so it is a pipeline.fault; a stage takes omit-sync-start or omit-sync-end`,
      );
    for (const [j, f] of (s.faults ?? []).entries()) {
      const known = NAMED_FAULTS.map((x) => x.name);
      if (!known.includes(f))
        add(`${at}.faults[${j}]`, unknownName("named fault", f, known, " (`dmabuf list faults`)"));
    }
  });
  const poolUsers = new Map<string, string>();
  for (const s of g.stages) {
    if (s.pool === undefined) continue;
    const other = poolUsers.get(s.pool);
    if (other !== undefined)
      add(
        "graph.pools",
        `pool "${s.pool}" is written by both "${other}" and "${s.name}"; give each producer its own pool`,
      );
    poolUsers.set(s.pool, s.name);
  }
  for (const [name, pool] of Object.entries(g.pools)) {
    if (!poolUsers.has(name)) add(`graph.pools.${name}`, "no stage writes into this pool");
    if (pool.heap !== undefined && pool.source !== "dma-heap")
      add(
        `graph.pools.${name}.heap`,
        `a heap is only used with source dma-heap; the source is ${pool.source}`,
      );
    if (pool.source === "gem-dumb" && pool.format !== undefined && pool.format !== "XR24")
      add(`graph.pools.${name}.format`, "GEM dumb scanout buffers are XRGB8888 (XR24)");
    if (pool.source === "gpu-bo" && pool.format !== undefined && pool.format !== "XR24")
      add(`graph.pools.${name}.format`, "simgpu renders XRGB8888 (XR24) into its buffer objects");
    if (pool.header !== undefined && pool.source !== "v4l2-userptr")
      add(
        `graph.pools.${name}.header`,
        `only the program's own USERPTR memory (source v4l2-userptr) has a structure beside the frame; the source is ${pool.source}, whose buffers start on a page of their own`,
      );
  }
  if (out.length === 0 && topoOrder(g).length !== g.stages.length) {
    add("graph.stages", "the edges form a cycle; every stage must come after the stages it reads");
  }
  if (g.stages.length > 0 && graphSinks(g).length === 0) {
    add(
      "graph.stages",
      "no sink: a graph needs a display, output or encoder stage (or a CPU stage reading a result back) whose CRC says whether the frames arrived",
    );
  }
  if (g.primary !== undefined && !graphSinks(g).some((s) => s.name === g.primary)) {
    add(
      "graph.primary",
      unknownName(
        "sink stage",
        g.primary,
        graphSinks(g).map((s) => s.name),
        " in this graph",
      ),
    );
  }
  if (!g.stages.some((s) => isSourceStage(g, s))) {
    add(
      "graph.stages",
      "no source: a graph needs a camera stage (or an output stage without inputs, which the CPU renders for)",
    );
  }
  return out;
}

const POOL_WHY: Partial<Record<GraphDeviceKind, string>> = {
  camera: "V4L2 MMAP, DMA heap / udmabuf buffers queued as DMABUF, or USERPTR memory",
  m2m: "its CAPTURE buffers are its own V4L2 MMAP buffers",
  gpu: "GEM dumb scanout buffers of a display, or its own buffer objects",
  npu: "its own buffer objects, or a heap or udmabuf buffer it imports",
};

/**
 * Bytes of the frame-info structure the fault shared-cacheline puts before a frame when
 * the pool names none: not a multiple of any profile's cache line, so the frame always
 * starts mid line.
 */
export const DEFAULT_FRAME_HEADER = 40;

/** Stages that can read a frame at an offset into its buffer. */
const OFFSET_READERS: ReadonlySet<GraphDeviceKind | "cpu"> = new Set(["cpu", "display"]);

/** The stages that read a producer's buffers, through CPU stages working in place. */
function offsetReaders(g: GraphSpec, producer: GraphStage): GraphStage[] {
  const out: GraphStage[] = [];
  for (const s of g.stages) {
    if (!s.inputs.includes(producer.name)) continue;
    out.push(s);
    if (stageKind(g, s) === "cpu") out.push(...offsetReaders(g, s));
  }
  return out;
}

/**
 * Where a camera stage's frame-info structures lie (`header` bytes per buffer, updated
 * at every QBUF): in memory of their own, apart from every page a device maps, or, with
 * a layout fault on the stage or the whole pipeline (`shared-cacheline`), right before
 * the frame in the same memory, the frame `header` bytes in. Undefined for a stage
 * without a v4l2-userptr pool, or with one that names no structure and has no fault.
 */
export function frameLayout(
  g: GraphSpec,
  s: GraphStage,
  pipelineFaults: readonly string[] = [],
): { readonly header: number; readonly offset: number; readonly beside: boolean } | undefined {
  const pool = s.pool !== undefined ? g.pools[s.pool] : undefined;
  if (pool?.source !== "v4l2-userptr" || stageKind(g, s) !== "camera") return undefined;
  const beside = [...pipelineFaults, ...(s.faults ?? [])].some(
    (f) => layoutFault(f) === "unaligned-userptr",
  );
  if (pool.header === undefined && !beside) return undefined;
  const header = pool.header ?? DEFAULT_FRAME_HEADER;
  return { header, offset: beside ? header : 0, beside };
}

/** Readers of a camera stage's frames that cannot read at an offset (for the layout fault's check). */
export function readersWithoutOffset(g: GraphSpec, producer: GraphStage): GraphStage[] {
  return offsetReaders(g, producer).filter((r) => !OFFSET_READERS.has(stageKind(g, r)));
}

/** The pixel format of what a stage's buffers hold (`format`: the pipeline's default). */
export function stageFormat(g: GraphSpec, s: GraphStage, format: string, depth = 0): string {
  const kind = stageKind(g, s);
  const input = g.stages.find((x) => x.name === s.inputs[0]);
  // An NPU's conv3x3 keeps its input's layout (cpp channels per element).
  const fromInput = (): string =>
    input !== undefined && input !== s && depth < g.stages.length
      ? stageFormat(g, input, format, depth + 1)
      : format;
  if (kind === "npu") return fromInput();
  if (s.pool !== undefined) return g.pools[s.pool]?.format ?? (kind === "gpu" ? "XR24" : format);
  return fromInput();
}

/**
 * The graph a PipelineKind is sugar for. Device names are the DMA masters the legacy
 * pipelines have always had, so reports keep their names.
 */
export function legacyGraph(
  spec: Omit<PipelineSpec, "pipeline" | "source"> & {
    readonly pipeline?: PipelineKind | "graph";
    readonly source?: GraphBufferSource;
  },
): GraphSpec {
  const kind = spec.pipeline ?? "camera-gpu-display";
  const reads = spec.cpuReads ?? kind === "camera-cpu-display";
  const writes = spec.cpuWrites ?? kind === "camera-cpu-display";
  const source = spec.source ?? "v4l2-mmap";
  const count = spec.buffers ?? 4;
  const dev = (k: "camera" | "gpu" | "display") => spec.devices?.[k] ?? {};
  if (kind === "cpu-output") {
    // The CPU renders into vivid-out's own MMAP buffers: one device, no edge between devices.
    return {
      devices: { "vivid-out": { kind: "output", ...dev("camera") } },
      pools: {},
      stages: [{ name: "output", device: "vivid-out", inputs: [] }],
      primary: "output",
    };
  }
  const cpu = reads || writes;
  const stages: GraphStage[] = [{ name: "capture", device: "vivid-cap", inputs: [], pool: "cam" }];
  let last = "capture";
  if (cpu) {
    stages.push({ name: "cpu", inputs: [last], cpu: { read: reads, write: writes, lines: 16 } });
    last = "cpu";
  }
  const devices: Record<string, GraphSpec["devices"][string]> = {
    "vivid-cap": { kind: "camera", ...dev("camera") },
    simdisplay: { kind: "display", ...dev("display") },
  };
  const pools: Record<string, GraphSpec["pools"][string]> = {
    cam: { source, count, ...(source === "dma-heap" ? { heap: spec.heap ?? "system" } : {}) },
  };
  if (kind === "camera-gpu-display") {
    devices["simgpu"] = { kind: "gpu", ...dev("gpu") };
    pools["gpu-out"] = { source: "gem-dumb", count: 3 };
    stages.push({
      name: "gpu",
      device: "simgpu",
      inputs: [last],
      pool: "gpu-out",
      op: spec.format === "YUYV" ? "yuyv-to-xrgb" : "invert",
      sync: "sync-file",
    });
    last = "gpu";
  }
  stages.push({ name: "display", device: "simdisplay", inputs: [last] });
  return { devices, pools, stages, primary: "display" };
}
