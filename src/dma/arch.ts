/**
 * Architecture cache maintenance for streaming DMA: arch_sync_dma_for_device() and
 * arch_sync_dma_for_cpu(), per architecture and direction, exactly as Linux issues it.
 * The machine applies the profile's per-line / whole-cache policy to each operation.
 *
 * | arch    | for_device TO / FROM / BIDI      | for_cpu TO / FROM / BIDI | source                          |
 * |---------|----------------------------------|--------------------------|---------------------------------|
 * | arm64   | clean / clean / clean            | - / inv / inv            | arch/arm64/mm/dma-mapping.c     |
 * | arm     | clean / inv / clean              | - / inv / inv            | arch/arm/mm/dma-mapping.c,      |
 * |         |                                  |                          | cache-v7.S v7_dma_{map,unmap}_area |
 * | riscv64 | clean / clean / clean            | - / inv / inv            | arch/riscv/mm/dma-noncoherent.c |
 * | x86_64  | flush / flush / flush (clflush)  | - / flush / flush        | drivers/gpu/drm/drm_cache.c     |
 *
 * x86 has no non-coherent DMA in the DMA API (no ARCH_HAS_SYNC_DMA_*): its devices
 * snoop. Engines that do not (integrated GPUs' and display engines' non-snooped
 * accesses) are kept coherent by their drivers with clflush, or wbinvd for the whole
 * cache (drm_clflush_sg / drm_clflush_virt_range). A device marked non-coherent on an
 * x86 profile gets that treatment here, so the "64 MiB cache" question of the 2011
 * thread can be asked of an x86 machine; coherent devices (the default) get nothing.
 *
 * The profile's forDeviceIgnoresDirection (false: raspberrypi/linux PR 6995) makes arm64
 * and RISC-V invalidate a DMA_FROM_DEVICE buffer for the device as 32-bit ARM does.
 *
 * 32-bit ARM invalidates (rather than cleans) a DMA_FROM_DEVICE buffer at map time:
 * whatever the CPU had written there is discarded, because the device will overwrite
 * it. Every invalidate cleans partly covered lines at the range's edges first.
 */

import { flipDirection, injectFault, shrinkLength } from "../machine/fault-inject.js";
import type { Machine } from "../machine/machine.js";
import type { PhysRange } from "../machine/violations.js";
import { DMA_FROM_DEVICE, DMA_TO_DEVICE, type DmaDirection, directionName } from "./direction.js";

/** Bytes of `ranges`. */
const bytesOf = (ranges: readonly PhysRange[]): number => ranges.reduce((n, r) => n + r.len, 0);

/** `ranges` cut to their first halves (line aligned): a "shrink" fault. */
function halves(m: Machine, ranges: readonly PhysRange[]): PhysRange[] {
  return ranges.map((r) => ({ phys: r.phys, len: shrinkLength(r.len, m.cache.line) }));
}

/**
 * Runs an arch maintenance call through the fault injector: flip turns the direction
 * over, shrink halves the ranges.
 */
function faulted(
  m: Machine,
  call: string,
  ranges: readonly PhysRange[],
  dir: DmaDirection | undefined,
  run: (ranges: readonly PhysRange[], dir: DmaDirection) => void,
): void {
  injectFault(m.faults, call, { dir, bytes: bytesOf(ranges), ranges }, (a) =>
    run(
      a === "shrink" ? halves(m, ranges) : ranges,
      a === "flip" && dir !== undefined ? flipDirection(dir) : (dir ?? DMA_FROM_DEVICE),
    ),
  );
}

/** arch_sync_dma_for_device(): make the device's view of the ranges right before it accesses them. */
export function archSyncDmaForDevice(
  m: Machine,
  ranges: readonly PhysRange[],
  dir: DmaDirection,
): void {
  injectFault(
    m.faults,
    "arch_sync_dma_for_device",
    { dir, bytes: bytesOf(ranges), invalidatable: true, ranges },
    (a) => {
      // Dropping the lines before the DMA: right on a CPU that never speculates.
      if (a === "invalidate")
        m.maintain(
          dir === DMA_FROM_DEVICE ? "invalidate" : "flush",
          ranges,
          `for_device ${directionName(dir)} (drop before DMA)`,
        );
      else
        syncForDevice(
          m,
          a === "shrink" ? halves(m, ranges) : ranges,
          a === "flip" ? flipDirection(dir) : dir,
        );
    },
  );
}

/**
 * Whether arch_sync_dma_for_device invalidates (rather than cleans) for `dir`: a
 * DMA_FROM_DEVICE buffer on 32-bit ARM, or on arm64/RISC-V when the profile respects
 * the direction (raspberrypi/linux PR 6995). x86 flushes, which invalidates too.
 */
export function archMapInvalidates(m: Machine, dir: DmaDirection): boolean {
  if (m.profile.arch === "x86_64") return true;
  return (
    dir === DMA_FROM_DEVICE && !(m.profile.forDeviceIgnoresDirection ?? m.profile.arch !== "arm")
  );
}

function syncForDevice(m: Machine, ranges: readonly PhysRange[], dir: DmaDirection): void {
  const why = `for_device ${directionName(dir)}`;
  switch (m.profile.arch) {
    case "arm64":
    case "riscv64":
    case "arm":
      // 32-bit ARM (and arm64 with raspberrypi/linux PR 6995) discards whatever the CPU
      // wrote to a FROM_DEVICE buffer, legally: the device will overwrite it. A CPU that
      // writes a buffer a device later reads maps it DMA_BIDIRECTIONAL (videobuf2:
      // vb2_queue.bidirectional). Mainline arm64 and RISC-V clean whatever the direction.
      m.maintain(archMapInvalidates(m, dir) ? "invalidate" : "clean", ranges, why);
      return;
    case "x86_64":
      // clflush writes back and invalidates: x86 has no clean-only user instruction
      // that drm_cache.c relies on.
      m.maintain("flush", ranges, why);
      return;
  }
}

/** arch_sync_dma_for_cpu(): drop lines the CPU may have (speculatively) cached while the device wrote. */
export function archSyncDmaForCpu(
  m: Machine,
  ranges: readonly PhysRange[],
  dir: DmaDirection,
): void {
  faulted(m, "arch_sync_dma_for_cpu", ranges, dir, (r, d) => syncForCpu(m, r, d));
}

function syncForCpu(m: Machine, ranges: readonly PhysRange[], dir: DmaDirection): void {
  if (dir === DMA_TO_DEVICE) return;
  switch (m.profile.arch) {
    case "arm64":
    case "riscv64":
    case "arm": {
      const before = m.cache.counters.discardedDirty;
      m.maintain("invalidate", ranges, `for_cpu ${directionName(dir)}`);
      const lost = m.cache.counters.discardedDirty - before;
      if (lost > 0) reportDiscardedCpuWrites(m, ranges, lost, dir);
      return;
    }
    case "x86_64":
      m.maintain("flush", ranges, `for_cpu ${directionName(dir)}`);
      return;
  }
}

/**
 * The invalidate for the CPU threw away dirty lines: CPU stores to the buffer since it
 * was last handed to the device (edge lines are cleaned, not discarded), which the
 * architecture may or may not have written back. Reported so the loss is never silent.
 */
function reportDiscardedCpuWrites(
  m: Machine,
  ranges: readonly PhysRange[],
  lines: number,
  dir: DmaDirection,
): void {
  m.violations.report({
    kind: "api-misuse",
    api: "dma-api",
    time: m.now,
    agent: "cpu",
    phys: ranges[0]?.phys ?? -1,
    len: lines * m.cache.line,
    message: `the ${directionName(dir)} invalidate for the CPU discarded ${lines} dirty line(s): CPU writes to the buffer were never handed to the device and are lost`,
    hint: "after writing a DMA_FROM_DEVICE/DMA_BIDIRECTIONAL streaming buffer from the CPU, call dma_sync_*_for_device() before the next dma_sync_*_for_cpu() or dma_unmap_*()",
  });
}

/**
 * arch_dma_prep_coherent(): before memory is handed out as a coherent (uncached)
 * buffer, clean and invalidate its cacheable linear-map alias so no dirty line can
 * later be written back over it.
 */
export function archDmaPrepCoherent(m: Machine, ranges: readonly PhysRange[]): void {
  faulted(m, "arch_dma_prep_coherent", ranges, undefined, (r) => prepCoherent(m, r));
}

function prepCoherent(m: Machine, ranges: readonly PhysRange[]): void {
  // arm64 only cleans to the point of coherency (dcache_clean_poc in
  // arch/arm64/mm/dma-mapping.c); 32-bit ARM and RISC-V clean and invalidate.
  // x86 flushes before set_pages_uc (drm_cache.c callers, set_memory_uc).
  m.maintain(m.profile.arch === "arm64" ? "clean" : "flush", ranges, "prep_coherent");
}
