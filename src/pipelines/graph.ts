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

import type {
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
  gpu: "DRM render node (simgpu): one job per frame reads its input's dma-buf and writes a buffer of its pool, with dma-resv fences and optional sync_file in/out fences.",
  npu: "Compute accelerator in the style of drivers/accel: jobs that read input buffers and write output buffers, implicit fences.",
  display:
    "KMS display (simdisplay): a sink; PRIME-imports its input, page-flips to it and reports the pipe CRC (drm_debugfs_crc.c).",
  output:
    "V4L2 OUTPUT device (vivid-out, an encoder's input): a sink; its input is queued as V4L2_MEMORY_DMABUF and read by DMA, and the CRC of what it read is recorded.",
};

/** Kinds with a driver in this model; the others are refused with the reason. */
export const GRAPH_KINDS_AVAILABLE: ReadonlySet<GraphDeviceKind> = new Set([
  "camera",
  "m2m",
  "gpu",
  "display",
  "output",
]);

/** Transforms a gpu stage can apply (DRM_IOCTL_SIMGPU_SUBMIT ops). */
export const GRAPH_GPU_OPS = ["copy", "invert", "yuyv-to-xrgb"] as const;

const SOURCE_KINDS: ReadonlySet<GraphDeviceKind> = new Set(["camera"]);
const SINK_KINDS: ReadonlySet<GraphDeviceKind> = new Set(["display", "output"]);

/** Whether a stage is a source (no inputs), a transform, or a sink (nothing reads it). */
export function stageKind(g: GraphSpec, s: GraphStage): GraphDeviceKind | "cpu" {
  return s.device === undefined ? "cpu" : (g.devices[s.device]?.kind ?? "cpu");
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
  const sinks = g.stages.filter((s) => SINK_KINDS.has(stageKind(g, s) as GraphDeviceKind));
  const p = sinks.findIndex((s) => s.name === g.primary);
  if (p > 0) sinks.unshift(sinks.splice(p, 1)[0]!);
  return sinks;
}

/** Every problem with a graph, before anything runs. Empty when it can run. */
export function graphIssues(g: GraphSpec): GraphIssue[] {
  const out: GraphIssue[] = [];
  const add = (field: string, problem: string): void => {
    out.push({ field, problem });
  };
  const names = new Set<string>();
  const devicesUsed = new Map<string, string>();
  for (const [name, d] of Object.entries(g.devices)) {
    if (d.allocator !== undefined && d.kind !== "camera")
      add(
        `graph.devices.${name}.allocator`,
        `only a camera (vivid) chooses its videobuf2 allocator; a ${d.kind} has none to choose`,
      );
    if (!GRAPH_KINDS_AVAILABLE.has(d.kind)) {
      add(
        `graph.devices.${name}.kind`,
        `${d.kind} devices have no driver in this model yet (${GRAPH_DEVICE_KINDS[d.kind]}); available: ${[...GRAPH_KINDS_AVAILABLE].join(", ")}`,
      );
    }
  }
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
          `no device "${s.device}" in graph.devices (known: ${Object.keys(g.devices).join(", ") || "none"})`,
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
    for (const [j, input] of s.inputs.entries()) {
      if (!g.stages.some((x) => x.name === input)) {
        add(`${at}.inputs[${j}]`, `no stage named "${input}"`);
      } else if (input === s.name) add(`${at}.inputs[${j}]`, "a stage cannot read its own output");
      else {
        const src = g.stages.find((x) => x.name === input)!;
        if (SINK_KINDS.has(stageKind(g, src) as GraphDeviceKind)) {
          add(
            `${at}.inputs[${j}]`,
            `"${input}" is a ${stageKind(g, src)}, a sink: nothing comes out of it`,
          );
        }
      }
    }
    if (kind === "cpu") {
      if (s.cpu === undefined)
        add(`${at}.cpu`, "a stage without a device is a CPU stage and needs `cpu` (read/write)");
      else if (!s.cpu.read && !s.cpu.write)
        add(
          `${at}.cpu`,
          "a CPU stage that neither reads nor writes does nothing; set read and/or write",
        );
      if (s.inputs.length !== 1)
        add(
          `${at}.inputs`,
          `a CPU stage works in place on one input's buffer; it has ${s.inputs.length}`,
        );
      if (s.pool !== undefined) add(`${at}.pool`, "a CPU stage works in place; it has no pool");
    } else if (SOURCE_KINDS.has(kind as GraphDeviceKind)) {
      if (s.inputs.length > 0) add(`${at}.inputs`, `a ${kind} is a source; it has no inputs`);
      if (s.pool === undefined) add(`${at}.pool`, `a ${kind} needs a pool to capture into`);
    } else if (SINK_KINDS.has(kind as GraphDeviceKind)) {
      if (s.inputs.length !== 1)
        add(`${at}.inputs`, `a ${kind} shows one input; it has ${s.inputs.length}`);
      if (s.pool !== undefined)
        add(`${at}.pool`, `a ${kind} is a sink; it reads its input's buffers, it has no pool`);
    } else if (kind === "m2m") {
      if (s.inputs.length !== 1)
        add(
          `${at}.inputs`,
          `an m2m device reads one OUTPUT buffer per job; this stage has ${s.inputs.length} inputs`,
        );
      if (s.pool === undefined)
        add(`${at}.pool`, "an m2m stage writes into its CAPTURE pool; name one (source v4l2-mmap)");
      else if (g.pools[s.pool] !== undefined && g.pools[s.pool]!.source !== "v4l2-mmap")
        add(
          `${at}.pool`,
          `an m2m stage's CAPTURE buffers are its own V4L2 MMAP buffers (source v4l2-mmap); pool "${s.pool}" is ${g.pools[s.pool]!.source}`,
        );
      if (s.op !== undefined)
        add(`${at}.op`, "an m2m ISP converts to its pool's format; it takes no op");
    } else if (kind === "gpu") {
      if (s.inputs.length !== 1)
        add(
          `${at}.inputs`,
          `simgpu jobs read one source buffer (DRM_IOCTL_SIMGPU_SUBMIT src_handle); this stage has ${s.inputs.length} inputs`,
        );
      if (s.pool === undefined) add(`${at}.pool`, "a gpu stage writes into a pool; name one");
      if (s.op !== undefined && !(GRAPH_GPU_OPS as readonly string[]).includes(s.op))
        add(`${at}.op`, `simgpu has no op "${s.op}" (ops: ${GRAPH_GPU_OPS.join(", ")})`);
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
      if (pool === undefined) add(`${at}.pool`, `no pool "${s.pool}" in graph.pools`);
      else if (kind === "gpu" && pool.source !== "gem-dumb")
        add(
          `${at}.pool`,
          `a gpu stage writes GEM dumb buffers of a display (source gem-dumb); pool "${s.pool}" is ${pool.source}`,
        );
      else if (kind === "camera" && pool.source === "gem-dumb")
        add(
          `${at}.pool`,
          "a camera captures into V4L2 MMAP, dma-heap or udmabuf buffers, not GEM dumb buffers",
        );
    }
    if (s.sync === "sync-file" && kind !== "gpu" && kind !== "cpu")
      add(
        `${at}.sync`,
        `only gpu jobs (in-fence) and CPU stages (poll) wait on a sync_file; a ${kind} waits implicitly`,
      );
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
  }
  if (out.length === 0 && topoOrder(g).length !== g.stages.length) {
    add("graph.stages", "the edges form a cycle; every stage must come after the stages it reads");
  }
  if (g.stages.length > 0 && graphSinks(g).length === 0) {
    add(
      "graph.stages",
      "no sink: a graph needs a display or output stage whose CRC says whether the frames arrived",
    );
  }
  if (g.primary !== undefined && !graphSinks(g).some((s) => s.name === g.primary)) {
    add("graph.primary", `"${g.primary}" is not a sink stage of this graph`);
  }
  if (!g.stages.some((s) => SOURCE_KINDS.has(stageKind(g, s) as GraphDeviceKind))) {
    add("graph.stages", "no source: a graph needs a camera stage");
  }
  return out;
}

/**
 * The graph a PipelineKind is sugar for. Device names are the DMA masters the legacy
 * pipelines have always had, so reports keep their names.
 */
export function legacyGraph(
  spec: Omit<PipelineSpec, "pipeline"> & { readonly pipeline?: PipelineKind | "graph" },
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
