/**
 * Fields that cannot take effect. A setting the pipeline would silently ignore (a
 * strategy the buffers cannot follow, a fault with no call to leave out, a device the
 * pipeline does not have) is refused with the reason and what would work instead, so
 * a run, a `--set` or a sweep never prints an answer that looks like it followed the
 * setting when it did not.
 *
 * How `pipeline.strategy` and `machine.maintenance` interact (one rule, documented in
 * docs/scenarios.md): the strategy decides HOW the shared buffers are maintained;
 * `machine.maintenance.thresholdBytes` only says from which range size the
 * `whole-cache` strategy goes to the whole cache. `streaming` and `cache-hints` always
 * maintain line by line; `whole-cache` cleans/flushes by set/way from the threshold on
 * (default 0: every range, invalidations flushed too; with a threshold, invalidations
 * stay by line as in arch/arm/mm/cache-l2x0.c). `machine.maintenance.kind` is accepted
 * only where it says the same as the strategy.
 */

import { layoutFault } from "../kernel/fault-inject.js";
import { type Profile, resolveProfile } from "../machine/profiles.js";
import { frameLayout, graphIssues, readersWithoutOffset, stageKind } from "./graph.js";
import type { GraphSpec, GraphStage, PipelineKind, PipelineSpec } from "./types.js";

/** One field that cannot take effect: the scenario field path and why. */
export interface SpecConflict {
  /** The field as a scenario names it ("pipeline.strategy", "buffers.heap"). */
  readonly field: string;
  readonly problem: string;
}

const PAGE = 4096;

/** The maintenance kind each non-coherent strategy implies. */
export function strategyMaintenanceKind(
  strategy: PipelineSpec["strategy"],
): "per-line" | "whole-cache-above" | undefined {
  if (strategy === "whole-cache") return "whole-cache-above";
  if (strategy === "streaming" || strategy === "cache-hints") return "per-line";
  return undefined;
}

function deviceCoherent(
  profile: Profile | undefined,
  spec: PipelineSpec,
  dev: "camera" | "gpu" | "display",
): boolean | undefined {
  return spec.devices?.[dev]?.coherent ?? profile?.device.coherent;
}

/**
 * Every field of `spec` (as the caller wrote it, before defaults) that cannot take
 * effect, in field order. Empty when everything given does something.
 */
export function specConflicts(spec: PipelineSpec): SpecConflict[] {
  const out: SpecConflict[] = [];
  const add = (field: string, problem: string): void => {
    out.push({ field, problem });
  };
  if (spec.graph !== undefined) {
    for (const i of graphIssues(spec.graph, spec.format)) add(i.field, i.problem);
    const graphOwns: [keyof PipelineSpec, string][] = [
      ["pipeline", "pipeline.kind"],
      ["devices", "devices"],
      ["source", "buffers.source"],
      ["heap", "buffers.heap"],
      ["buffers", "buffers.count"],
      ["cpuReads", "pipeline.cpu"],
      ["cpuWrites", "pipeline.cpu"],
      ["hints", "pipeline.hints"],
    ];
    const g = spec.graph;
    const cameraPools = g.stages
      .filter((st) => st.device !== undefined && g.devices[st.device]?.kind === "camera")
      .map((st) => (st.pool !== undefined ? g.pools[st.pool] : undefined));
    if (
      (spec.strategy === "coherent" || spec.strategy === "cache-hints") &&
      !cameraPools.some((p) => p?.source === "v4l2-mmap")
    ) {
      add(
        "pipeline.strategy",
        `${spec.strategy} applies to V4L2 MMAP capture buffers only (REQBUFS without V4L2_MEMORY_FLAG_NON_COHERENT, or QBUF cache hints), and no camera of this graph captures into a v4l2-mmap pool; DMA heaps and udmabuf only hand out cached memory`,
      );
    }
    const cpuStages = g.stages.filter((st) => st.device === undefined);
    if (
      (spec.fault === "omit-sync-start" || spec.fault === "omit-sync-end") &&
      cpuStages.length === 0
    ) {
      add(
        "pipeline.fault",
        `${spec.fault}: the graph has no CPU stage, so there is no DMA_BUF_IOCTL_SYNC to leave out`,
      );
    }
    if (spec.fault === "lying-no-cache-clean") {
      add(
        "pipeline.fault",
        "lying-no-cache-clean is an OUTPUT-queue mistake of cpu-output; no graph stage renders into V4L2 MMAP OUTPUT buffers",
      );
    }
    if (
      spec.fault === "lying-no-cache-invalidate" &&
      !(cpuStages.some((st) => st.cpu?.read) && cameraPools.some((p) => p?.source === "v4l2-mmap"))
    ) {
      add(
        "pipeline.fault",
        "lying-no-cache-invalidate needs a CPU stage that reads a camera's v4l2-mmap buffers",
      );
    }
    for (const c of layoutFaultConflicts(spec, g)) add(c.field, c.problem);
    for (const [k, field] of graphOwns) {
      if (spec[k] !== undefined && !out.some((c) => c.field === field)) {
        add(
          field,
          `a scenario with a graph describes its devices, pools and stages there (graph.devices, graph.pools, graph.stages); ${field} cannot apply`,
        );
      }
    }
    return out;
  }
  for (const [j, f] of (spec.faults ?? []).entries())
    if (layoutFault(f) !== undefined)
      add(
        `pipeline.faults[${j}]`,
        `${f} changes how the program lays out its own USERPTR memory, and this pipeline has none: it needs a graph whose camera captures into a v4l2-userptr pool`,
      );
  const kind: PipelineKind = spec.pipeline ?? "camera-gpu-display";
  const source = spec.source ?? "v4l2-mmap";
  const strategy = spec.strategy;
  const capture = kind !== "cpu-output";
  const dmabufSource = capture && source !== "v4l2-mmap";
  const cpuReads = spec.cpuReads ?? kind === "camera-cpu-display";
  const cpuWrites = spec.cpuWrites ?? kind === "camera-cpu-display";
  let profile: Profile | undefined;
  try {
    profile = resolveProfile(spec.profile ?? "arm64", spec.overrides ?? {});
  } catch {
    profile = undefined; // the runner reports a bad profile itself
  }
  const sourceText = source === "dma-heap" ? `dma-heap (${spec.heap ?? "system"})` : source;

  // Buffers.
  if (!capture && spec.source !== undefined && spec.source !== "v4l2-mmap") {
    add(
      "buffers.source",
      `cpu-output renders into V4L2_MEMORY_MMAP OUTPUT buffers of /dev/video1, so source ${spec.source} cannot apply; leave buffers.source out (or v4l2-mmap)`,
    );
  }
  if (spec.heap !== undefined && source !== "dma-heap") {
    add(
      "buffers.heap",
      `a heap is only used with buffers.source dma-heap; the source is ${source}`,
    );
  }
  if (
    spec.format !== undefined &&
    spec.format !== "XR24" &&
    (kind === "camera-display" || kind === "camera-cpu-display")
  ) {
    add(
      "buffers.format",
      `${kind} scans the camera's own buffer out and the display takes XRGB8888 only, so ${spec.format} cannot apply; camera-gpu-display converts YUYV on the GPU`,
    );
  }

  // The strategy.
  if (strategy === "coherent" && dmabufSource) {
    add(
      "pipeline.strategy",
      `coherent cannot apply to ${sourceText} buffers: Linux's DMA heaps (system_heap.c and cma_heap.c) and udmabuf only hand out cached memory with cached CPU mappings, and V4L2 chooses coherent memory only for its own MMAP buffers. Coherent (dma_alloc_coherent) buffers come from buffers.source v4l2-mmap, which REQBUFS allocates without V4L2_MEMORY_FLAG_NON_COHERENT under this strategy`,
    );
  }
  if (strategy === "cache-hints" && dmabufSource) {
    add(
      "pipeline.strategy",
      `cache-hints cannot apply to ${sourceText} buffers: videobuf2 honours V4L2_BUF_FLAG_NO_CACHE_INVALIDATE/NO_CACHE_CLEAN only on MMAP queues allocated with V4L2_MEMORY_FLAG_NON_COHERENT (vb2_queue_allows_cache_hints) and clears them for DMABUF; use buffers.source v4l2-mmap`,
    );
  }
  if (strategy === "cache-hints" && !capture) {
    add(
      "pipeline.strategy",
      "cache-hints cannot change cpu-output: the CPU writes every OUTPUT buffer, so NO_CACHE_CLEAN would be a lie (that is the lying-no-cache-clean fault), and a TO_DEVICE queue has no invalidate at DQBUF to skip",
    );
  }
  if (spec.hints !== undefined && (spec.hints.noCacheClean || spec.hints.noCacheInvalidate)) {
    if (dmabufSource) {
      add(
        "pipeline.hints",
        `videobuf2 ignores V4L2 cache hints on ${sourceText} (V4L2_MEMORY_DMABUF) buffers (vb2_queue_allows_cache_hints); use buffers.source v4l2-mmap`,
      );
    }
  }
  const userKind = spec.overrides?.maintenance?.kind;
  const implied = strategyMaintenanceKind(strategy ?? "streaming");
  if (userKind !== undefined && implied !== undefined && userKind !== implied) {
    add(
      "machine.maintenance.kind",
      `${userKind} contradicts pipeline.strategy ${strategy ?? "streaming"}, which maintains ${implied === "per-line" ? "line by line" : "the whole cache by set/way"}: the strategy decides how buffers are maintained and machine.maintenance.thresholdBytes only sets where whole-cache starts; leave machine.maintenance.kind out`,
    );
  }
  const threshold = spec.overrides?.maintenance?.thresholdBytes;
  if (
    strategy === "whole-cache" &&
    threshold !== undefined &&
    spec.bufferBytes !== undefined &&
    Math.ceil(spec.bufferBytes / PAGE) * PAGE < threshold &&
    (spec.format ?? "XR24") === "XR24"
  ) {
    add(
      "pipeline.strategy",
      `whole-cache cannot take effect: every buffer (${spec.bufferBytes} bytes) is smaller than machine.maintenance.thresholdBytes (${threshold}), so every range is still maintained line by line, as with streaming`,
    );
  }
  if (strategy !== undefined && strategy !== "streaming" && profile !== undefined) {
    // Who maintains the shared buffers: the camera's mapping (vb2, heap attachment), the
    // GPU's import on the GPU pipeline. A coherent device needs no maintenance at all.
    const maintainers: ("camera" | "gpu")[] =
      kind === "camera-gpu-display" ? ["camera", "gpu"] : ["camera"];
    if (maintainers.every((d) => deviceCoherent(profile, spec, d) === true)) {
      add(
        "pipeline.strategy",
        `${strategy} cannot change anything: the ${maintainers.join(" and ")} snoop${maintainers.length === 1 ? "s" : ""} the CPU caches (coherent: true on ${profile.name}), so the DMA API does no cache maintenance for ${maintainers.length === 1 ? "it" : "them"} (dev_is_dma_coherent) and its coherent memory is cached like any other; make a device non-coherent (devices.camera.coherent: false) to compare strategies`,
      );
    }
  }

  // The CPU.
  if (!capture && (spec.cpuReads === true || spec.cpuWrites === true)) {
    add(
      "pipeline.cpu",
      "cpu-output always has the CPU write every frame and never read one back; pipeline.cpu cannot apply",
    );
  }
  if (!capture && spec.fps !== undefined) {
    add(
      "pipeline.fps",
      "vivid's output device has no VIDIOC_S_PARM (ENOTTY) and consumes a frame every 1/30 s, so pipeline.fps cannot apply to cpu-output",
    );
  }

  // Faults.
  const fault = spec.fault;
  if (fault === "omit-sync-start" || fault === "omit-sync-end") {
    if (!capture) {
      add(
        "pipeline.fault",
        `${fault}: cpu-output writes through the V4L2 mapping, whose QBUF does the maintenance; there is no DMA_BUF_IOCTL_SYNC to leave out (lying-no-cache-clean is its mistake)`,
      );
    } else if (!cpuReads && !cpuWrites) {
      add(
        "pipeline.fault",
        `${fault}: the CPU does not touch the frames (pipeline.cpu), so there is no DMA_BUF_IOCTL_SYNC to leave out; set pipeline.cpu.reads/writes`,
      );
    }
  }
  if (fault === "lying-no-cache-invalidate") {
    if (!capture) {
      add(
        "pipeline.fault",
        "lying-no-cache-invalidate is a capture-queue mistake; cpu-output has no captured frame to read (lying-no-cache-clean is its mistake)",
      );
    } else if (dmabufSource) {
      add(
        "pipeline.fault",
        `lying-no-cache-invalidate: videobuf2 ignores cache hints on ${sourceText} (DMABUF) buffers; use buffers.source v4l2-mmap`,
      );
    }
  }
  if (fault === "lying-no-cache-clean" && capture) {
    add(
      "pipeline.fault",
      "lying-no-cache-clean is an OUTPUT-queue mistake (the CPU wrote the buffer and QBUF skips the clean); it applies to cpu-output only",
    );
  }

  // Devices the pipeline does not have.
  if (spec.devices?.gpu !== undefined && kind !== "camera-gpu-display") {
    add("devices.gpu", `${kind} has no GPU; devices.gpu cannot apply`);
  }
  if (spec.devices?.display !== undefined && kind === "cpu-output") {
    add("devices.display", "cpu-output has no display (vivid-out reads the frames)");
  }
  return out;
}

/**
 * A layout fault (`shared-cacheline`) of a graph: it needs a camera stage capturing
 * into the program's USERPTR memory, through videobuf2-dma-sg (vb2_dc_get_userptr
 * refuses memory not aligned to dma_get_cache_alignment(), EINVAL), on a device that
 * does not snoop the CPU caches (a coherent device never sees a stale or dirty line, so
 * the run would be the aligned one's), and readers that can take a frame at an offset.
 */
function layoutFaultConflicts(spec: PipelineSpec, g: GraphSpec): SpecConflict[] {
  const out: SpecConflict[] = [];
  let profile: Profile | undefined;
  try {
    profile = resolveProfile(spec.profile ?? "arm64", spec.overrides ?? {});
  } catch {
    return out; // the runner reports a bad profile itself
  }
  const check = (field: string, name: string, stages: readonly GraphStage[]): void => {
    const targets = stages.filter((s) => frameLayout(g, s, [name])?.beside === true);
    if (targets.length === 0) {
      out.push({
        field,
        problem: `${name} cannot take effect: ${stages.length === 1 ? `stage "${stages[0]!.name}" is not a camera capturing` : "no camera stage captures"} into a v4l2-userptr pool, the only frame memory the program lays out itself (every other source's buffers start on a page of their own)`,
      });
      return;
    }
    for (const s of targets) {
      const d = g.devices[s.device!]!;
      const iommu = d.iommu ?? profile.device.iommu;
      const coherent = d.coherent ?? profile.device.coherent;
      const why = coherent
        ? `${s.device} snoops the CPU caches (coherent on ${profile.name}): the DMA API does no cache maintenance for it and its writes update the CPU's lines, so a line it shares with the structure is never stale and never written back over its data: the frames come out as with the structure kept apart. Make the device non-coherent (graph.devices.${s.device}.coherent: false) or use a profile whose DMA does not snoop (arm64, cortex-a9, riscv64)`
        : (d.allocator ?? (iommu ? "dma-contig" : "dma-sg")) === "dma-contig"
          ? `${s.device} uses videobuf2-dma-contig, whose vb2_dc_get_userptr refuses user memory not aligned to dma_get_cache_alignment() (EINVAL at QBUF), so the unaligned frame never reaches the device; videobuf2-dma-sg (a camera without an IOMMU) takes it unchecked`
          : undefined;
      const bad = readersWithoutOffset(g, s)[0];
      const header = frameLayout(g, s, [name])!.header;
      if (why !== undefined) out.push({ field, problem: `${name} cannot take effect: ${why}` });
      else if (header % profile.cache.lineSize === 0)
        out.push({
          field,
          problem: `${name} cannot take effect: the structure before stage "${s.name}"'s frames (graph.pools.${s.pool}.header, ${header} bytes) is a whole number of ${profile.cache.lineSize}-byte cache lines on ${profile.name}, so each frame starts on a line of its own and shares none; give a header that is not a multiple of ${profile.cache.lineSize}`,
        });
      else if (bad !== undefined)
        out.push({
          field,
          problem: `${name} puts stage "${s.name}"'s frames at an offset into their buffers, and stage "${bad.name}" (a ${stageKind(g, bad)}) cannot read a frame at an offset: only CPU stages and displays (DRM_IOCTL_MODE_ADDFB2 offsets[0]) can`,
        });
    }
  };
  for (const [j, f] of (spec.faults ?? []).entries())
    if (layoutFault(f) !== undefined) check(`pipeline.faults[${j}]`, f, g.stages);
  for (const [i, s] of g.stages.entries())
    for (const [j, f] of (s.faults ?? []).entries())
      if (layoutFault(f) !== undefined) check(`graph.stages[${i}].faults[${j}]`, f, [s]);
  return out;
}

/** Throws a RangeError naming every field of `spec` that cannot take effect. */
export function assertSpecTakesEffect(spec: PipelineSpec): void {
  const c = specConflicts(spec);
  if (c.length > 0) {
    throw new RangeError(c.map((x) => `pipeline: ${x.field}: ${x.problem}`).join("\n"));
  }
}
