/**
 * The named kernel faults: each recurring bug class from the field, as a plan for the
 * machine's fault injector (src/machine/fault-inject.ts). A scenario lists them by name
 * (`pipeline.faults`), the pipeline hands the names to the kernel, and the kernel arms
 * the plan; `dmabuf mutate` drives the same injector with one rule at a time. Sources
 * are in /work/shared/reference/field-bugs.md §1 and docs/hazards.md.
 */

import type { FaultRule } from "../machine/fault-inject.js";

export interface NamedFault {
  readonly name: string;
  /** What goes wrong, and where Linux handles it. */
  readonly description: string;
  /** The field report(s) it reproduces. */
  readonly source: string;
  readonly rules: readonly FaultRule[];
  /**
   * A mistake in how the program lays out its own memory rather than in a call it makes
   * (no rules): "unaligned-userptr" puts each USERPTR frame right after the structure the
   * program keeps beside it, in the same cache line (src/pipelines/stages.ts, CameraStage).
   */
  readonly layout?: "unaligned-userptr";
}

export const NAMED_FAULTS: readonly NamedFault[] = [
  {
    name: "invalidate-before-only",
    description:
      "The DMA code invalidates a DMA_FROM_DEVICE buffer before the transfer (arch_sync_dma_for_device invalidates) and never after it (arch_sync_dma_for_cpu left out): right on a CPU that never speculates, but lines the CPU fetches speculatively while the device writes stay in the cache. arm64 cleans before and invalidates after (arch/arm64/mm/dma-mapping.c), so does 32-bit ARM (arch/arm/mm/cache-v7.S, v7_dma_unmap_area).",
    source: "openmv/openmv PRs 1605 and 1610; Russell King on linux-arm-kernel, June 2015",
    rules: [
      { call: "arch_sync_dma_for_device", action: "invalidate" },
      { call: "arch_sync_dma_for_cpu", action: "omit" },
    ],
  },
  {
    name: "no-clean-before-dma",
    description:
      "The DMA code never cleans the CPU cache before the device accesses the buffer (arch_sync_dma_for_device left out): dirty lines (a memset, zeroed fresh pages) stay in the cache while the device writes, and their eviction overwrites the device's data (kernel/dma/direct.h, dma_direct_sync_single_for_device).",
    source:
      "amd/xdna-driver issue 1439; blue-oil/blueoil PR 957; zephyrproject-rtos/zephyr PR 71278",
    rules: [{ call: "arch_sync_dma_for_device", action: "omit" }],
  },
  {
    name: "zeroing-not-cleaned",
    description:
      "Fresh pages are zeroed through the cached linear map and the driver does not clean them (the clean after videobuf2's zeroing left out): with a QBUF that skips the clean (V4L2_BUF_FLAG_NO_CACHE_CLEAN), the zeros sit dirty in the cache while the camera writes, and an eviction puts them over the frame.",
    source:
      "amd/xdna-driver issue 1439 (buffer zeroed through the cache, then evicted over device data)",
    rules: [{ call: "cache_clean", caller: "alloc", action: "omit" }],
  },
  {
    name: "for-cpu-instead-of-for-device",
    description:
      "The driver calls dma_sync_*_for_cpu where dma_sync_*_for_device was needed: the CPU's writes are never cleaned to memory for the device, and ownership stays with the CPU (Documentation/core-api/dma-api-howto.rst).",
    source:
      "raspberrypi/linux PR 6995 discussion; udmabuf begin/end_cpu_access fix, kernel commit 1ffe09590121",
    rules: [{ call: "dma_sync_*_for_device", action: "swap" }],
  },
  {
    name: "to-device-instead-of-from-device",
    description:
      "The driver syncs for the CPU with DMA_TO_DEVICE where the device wrote the buffer (DMA_FROM_DEVICE): arch_sync_dma_for_cpu does nothing for DMA_TO_DEVICE, so stale lines survive (kernel/dma/debug.c check_sync reports the direction mismatch).",
    source: "raspberrypi/linux PR 6995; kernel commit 1ffe09590121 (udmabuf directions)",
    rules: [{ call: "dma_sync_*_for_cpu", action: "flip" }],
  },
  {
    name: "sync-wrong-direction",
    description:
      "Userspace brackets its access with DMA_BUF_SYNC_START/END giving the wrong direction (WRITE where it reads, READ where it writes): the exporter maintains the cache for what it was told, not for what the CPU did.",
    source:
      "kernel commit 1ffe09590121 (udmabuf begin/end_cpu_access directions); xbmc/xbmc PR 17561",
    rules: [{ call: "DMA_BUF_IOCTL_SYNC(*)", action: "flip" }],
  },
  {
    name: "double-sync-start",
    description:
      "Two DMA_BUF_IOCTL_SYNC(START) and one END per frame: the brackets do not pair up.",
    source: "fxd0h/libdrmtap issue 43 (2xSTART/1xEND per frame), PR 47",
    rules: [{ call: "DMA_BUF_IOCTL_SYNC(START)", action: "repeat" }],
  },
  {
    name: "lost-sync-end",
    description:
      "The END of every other frame is lost (a cache of mappings evicts an entry before its END): the CPU's writes of those frames are never cleaned for the display.",
    source: "fxd0h/libdrmtap issues 10 and 43, PR 47",
    rules: [{ call: "DMA_BUF_IOCTL_SYNC(END)", action: "omit", every: 2 }],
  },
  {
    name: "partial-sync",
    description:
      "The sync for the CPU covers only part of what the CPU then reads (dma_sync_single_range_for_cpu or a partial begin_cpu_access over the first half): the rest stays stale.",
    source:
      "amd/xdna-driver issue 1542 (465 of 528 ranges partly unflushed, found with a byte-coverage model)",
    rules: [{ call: "dma_sync_*_for_cpu", action: "shrink" }],
  },
  {
    name: "bounce-not-synced",
    description:
      "A bounced (swiotlb) mapping is synced without its copies: the device keeps reading the bounce slot's old bytes, the CPU the buffer's (kernel/dma/swiotlb.c swiotlb_sync_single_for_device / _for_cpu).",
    source: "raspberrypi/linux issue 5727 (RPi4 zero-copy NV12 shows pure green)",
    rules: [{ call: "swiotlb_sync_single_for_*", action: "omit" }],
  },
  {
    name: "cached-alias-of-coherent",
    description:
      "A CPU mapping of coherent (dma_alloc_coherent) memory is made cacheable (dma_pgprot / pgprot_dmacoherent left out, kernel/dma/mapping.c) while the kernel's own mapping of the same pages is write-combined or uncached: mismatched memory attributes. On a non-coherent device nothing maintains the cacheable alias (coherent memory needs no syncs), so the CPU reads stale lines and its writes stay in the cache.",
    source:
      "firecracker-microvm/firecracker issue 5536; intel/media-driver PR 1929 (imported dma-bufs need a coherent PAT index); au-ts/sddf PR 753",
    rules: [{ call: "dma_pgprot", action: "omit" }],
  },
  {
    name: "shared-cacheline",
    description:
      "The program keeps a structure (a frame-info record it updates each time it queues the buffer) right before each USERPTR frame in the same memory, not aligned to the cache line, so the line holding the structure's end also holds the frame's first bytes. Cache maintenance works on whole lines: the CPU's write to the structure while the device owns the buffer leaves that line dirty with the frame's old bytes, and its write-back (an eviction, or the clean before the invalidate at DQBUF, dcache_inval_poc in arch/arm64/mm/cache.S, v7_dma_inv_range in arch/arm/mm/cache-v7.S) puts them over what the device wrote; where an invalidate drops the partial line without cleaning it, the structure's update is lost instead. DMA buffers must be aligned to ARCH_DMA_MINALIGN (dma_get_cache_alignment(); vb2_dc_get_userptr refuses anything less, vb2_dma_sg_get_userptr does not check) or allocated separately.",
    source:
      "rsta2/circle issue 135 (Raspberry Pi: DMA buffers not aligned to the data cache line, random modification of data); amd/xdna-driver PR 634 (user pointer BOs take only cacheline-aligned pointers); thesofproject/sof PR 9676 (8-byte-aligned DMA buffers on a Cortex-M7, the invalidate corrupted the heap's chunk headers beside them)",
    rules: [],
    layout: "unaligned-userptr",
  },
];

/** The named faults that change the program's memory layout (no rules), by name. */
export function layoutFault(name: string): NamedFault["layout"] {
  return NAMED_FAULTS.find((x) => x.name === name)?.layout;
}

/** The injector plan for a list of fault names; throws RangeError naming an unknown one. */
export function faultPlan(names: readonly string[]): FaultRule[] {
  const rules: FaultRule[] = [];
  for (const n of names) {
    const f = NAMED_FAULTS.find((x) => x.name === n);
    if (f === undefined)
      throw new RangeError(
        `unknown fault '${n}': known faults are ${NAMED_FAULTS.map((x) => x.name).join(", ")}`,
      );
    rules.push(...f.rules);
  }
  return rules;
}
