/**
 * The DMA mapping API (kernel/dma/mapping.c, kernel/dma/direct.c, drivers/iommu/dma-iommu.c),
 * with Linux's names: dma_map_single/page/sg(table), their unmaps, dma_sync_*_for_cpu /
 * _for_device, dma_alloc_coherent / dma_free_coherent, dma_mapping_error.
 *
 * Each call does what the kernel does for that device on this architecture:
 * - dma-direct (no IOMMU): the DMA address is the physical address (less the bus
 *   offset); memory the device cannot reach is bounced through swiotlb; a non-coherent
 *   device gets arch_sync_dma_for_device/for_cpu (src/dma/arch.ts) unless
 *   DMA_ATTR_SKIP_CPU_SYNC.
 * - dma-iommu: pages are mapped into the device's IOVA space with permissions from the
 *   direction; a scatterlist whose interior boundaries are page aligned becomes one
 *   contiguous IOVA segment.
 *
 * "Physical address" stands in for the kernel's struct page / linear-map pointer: the
 * model's kernel addresses RAM by physical address through a cacheable linear map.
 * Besides the cache maintenance, each mapping tells the machine who owns the memory
 * (the device, until sync_for_cpu or unmap), which DMA range the device may use, and
 * how to name the missing call if the checker finds a coherency bug in it.
 */

import { KernelError } from "../errno.js";
import type { OwnedRegion, StreamingOwner } from "../machine/coherency.js";
import type { CpuMapping, MemAttr } from "../machine/cpu.js";
import type { DmaDevice, WindowDirection } from "../machine/device.js";
import { flipDirection, injectFault, shrinkLength } from "../machine/fault-inject.js";
import { IOMMU_READ, IOMMU_WRITE } from "../machine/iommu.js";
import type { Machine } from "../machine/machine.js";
import { PAGE_SIZE } from "../machine/memory.js";
import { MAPPING_TRACK_SEPARATOR } from "../machine/trace.js";
import type { PhysRange } from "../machine/violations.js";
import {
  archDmaPrepCoherent,
  archMapInvalidates,
  archSyncDmaForCpu,
  archSyncDmaForDevice,
} from "./arch.js";
import { type DebugMapType, DmaDebug } from "./debug.js";
import {
  DMA_ATTR_NO_KERNEL_MAPPING,
  DMA_ATTR_SKIP_CPU_SYNC,
  DMA_BIDIRECTIONAL,
  DMA_FROM_DEVICE,
  DMA_MAPPING_ERROR,
  DMA_TO_DEVICE,
  type DmaDirection,
  directionName,
  validDirection,
} from "./direction.js";
import type { SgTable } from "./scatterlist.js";
import { Swiotlb } from "./swiotlb.js";

/** One physically contiguous piece of a streaming mapping. */
interface Piece {
  /** The caller's memory. */
  readonly phys: number;
  readonly len: number;
  /** Where the device sees it. */
  readonly dmaAddr: number;
  /** The swiotlb slot standing in for it, if bounced. */
  readonly bounce: number | undefined;
}

/** A live streaming mapping: what unmap and sync need to undo and redo. */
interface StreamingMapping {
  readonly dev: DmaDevice;
  readonly dir: DmaDirection;
  readonly pieces: Piece[];
  /** IOVA block, when mapped through an IOMMU. */
  readonly iova: { base: number; size: number } | undefined;
  readonly windows: number[];
  readonly owned: OwnedRegion;
  readonly region: number;
  /** The checker's region over a cache line the mapping shares with other data, if any. */
  readonly sharedLines: number | undefined;
}

/** Result of dma_alloc_coherent(). */
export interface CoherentAllocation {
  /** The CPU mapping (uncached/write-combined on a non-coherent device), or null with DMA_ATTR_NO_KERNEL_MAPPING. */
  readonly cpuAddr: CpuMapping | null;
  readonly dmaHandle: number;
  readonly size: number;
  /** Physical address of the memory. */
  readonly phys: number;
}

interface CoherentRecord {
  readonly alloc: CoherentAllocation;
  readonly fromCma: boolean;
  readonly pfnBlock: number;
  readonly window: number | undefined;
  readonly iova: number | undefined;
  readonly region: number;
}

const hex = (n: number): string => `0x${n.toString(16)}`;

/**
 * A streaming mapping that starts or ends in the middle of a cache line shares that line
 * with whatever lies beside the buffer (a structure, the next sub-allocated buffer, the
 * rest of an unaligned USERPTR page), and cache maintenance works on whole lines. The
 * checker gets a region over the shared edge lines whose advice says so and names the
 * fix. Undefined for a mapping aligned at both ends.
 */
function registerSharedLines(
  m: Machine,
  label: string,
  ranges: readonly PhysRange[],
): number | undefined {
  const L = m.cache.line;
  const start = ranges[0]?.phys ?? 0;
  const last = ranges[ranges.length - 1];
  const end = last === undefined ? 0 : last.phys + last.len;
  const lines: PhysRange[] = [];
  const edges: string[] = [];
  if (start % L !== 0) {
    lines.push({ phys: start - (start % L), len: L });
    edges.push(`starts mid cache line at ${hex(start)}`);
  }
  if (end % L !== 0 && (lines.length === 0 || end - (end % L) !== lines[0]!.phys)) {
    lines.push({ phys: end - (end % L), len: L });
  }
  if (end % L !== 0) edges.push(`ends mid cache line at ${hex(end)}`);
  if (lines.length === 0) return undefined;
  const why = `${label} ${edges.join(" and ")}, so it shares the line with the data beside it: the CPU's use of that data writes the line back over the device's bytes, or an invalidate of the line discards the CPU's update. Align DMA buffers to the cache line (ARCH_DMA_MINALIGN, dma_get_cache_alignment()) or allocate them separately (DMA-API debug warns of overlapping cachelines when two mappings share one)`;
  // The shared line is the cause of whatever goes wrong in it, whichever buffer or
  // mapping registered later also covers it (a udmabuf of the same pages).
  return m.violations.register(
    `cache line shared by ${label}`,
    lines,
    {
      "stale-cpu-read": why,
      "lost-device-write": why,
      "dirty-line-under-dma": why,
      "cpu-access-device-owned": why,
    },
    {},
    true,
  );
}

/**
 * dma_pgprot() (kernel/dma/mapping.c): the attribute of a CPU mapping of coherent
 * memory: cached for a coherent device, pgprot_dmacoherent (write-combine on ARM,
 * uncached on RISC-V) otherwise. A fault point: left out ("dma_pgprot" omitted), the
 * mapping stays cacheable while the kernel's own mapping of the same pages is not, the
 * mismatched attributes of firecracker-microvm/firecracker issue 5536 and
 * intel/media-driver PR 1929.
 */
export function dmaPgprot(m: Machine, dev: DmaDevice): MemAttr {
  let attr: MemAttr = "cached";
  injectFault(m.faults, "dma_pgprot", { bytes: 0 }, () => {
    attr = dev.coherent ? "cached" : m.profile.coherentAttr;
  });
  return attr;
}

export class DmaMappingApi {
  readonly debug: DmaDebug;
  readonly swiotlb: Swiotlb;
  /** Live streaming mappings by device and DMA address. */
  readonly #streaming = new Map<string, StreamingMapping>();
  readonly #coherent = new Map<string, CoherentRecord>();
  /** Bounce every mapping, as swiotlb=force does (for testing drivers). */
  forceBounce = false;

  constructor(readonly m: Machine) {
    this.debug = new DmaDebug(m);
    this.swiotlb = new Swiotlb(m);
  }

  /** dev_is_dma_coherent(). */
  isCoherent(dev: DmaDevice): boolean {
    return dev.coherent;
  }

  /** Live streaming mappings (all devices). */
  get liveMappings(): number {
    return this.#streaming.size;
  }

  // ---------------------------------------------------------------------------------
  // Single / page mappings

  /**
   * dma_map_page_attrs(): maps `size` bytes at `offset` in the page at physical address
   * `page` for `dev`. Returns the DMA address, or DMA_MAPPING_ERROR (check it with
   * {@link dmaMappingError}).
   */
  dmaMapPage(
    dev: DmaDevice,
    page: number,
    offset: number,
    size: number,
    dir: DmaDirection,
    attrs = 0,
  ): number {
    return this.#mapOne(dev, page + offset, size, dir, attrs, "page");
  }

  /** dma_map_single_attrs(): as dma_map_page for a kernel (linear-map) address. */
  dmaMapSingle(dev: DmaDevice, phys: number, size: number, dir: DmaDirection, attrs = 0): number {
    return this.#mapOne(dev, phys, size, dir, attrs, "single");
  }

  /** dma_unmap_page_attrs(). */
  dmaUnmapPage(dev: DmaDevice, addr: number, size: number, dir: DmaDirection, attrs = 0): void {
    this.#unmapOne(dev, addr, size, dir, attrs, "page");
  }

  /** dma_unmap_single_attrs(). */
  dmaUnmapSingle(dev: DmaDevice, addr: number, size: number, dir: DmaDirection, attrs = 0): void {
    this.#unmapOne(dev, addr, size, dir, attrs, "single");
  }

  /** dma_mapping_error(): whether a handle is the error value. Marks it checked for DMA-API debug. */
  dmaMappingError(dev: DmaDevice, addr: number): boolean {
    this.debug.mappingErrorChecked(dev, addr);
    return addr === DMA_MAPPING_ERROR;
  }

  /** dma_sync_single_for_cpu(): give (part of) a mapping back to the CPU. */
  dmaSyncSingleForCpu(dev: DmaDevice, addr: number, size: number, dir: DmaDirection): void {
    this.#faultedSingle("dma_sync_single_for_cpu", dev, addr, size, dir, true);
  }

  /** dma_sync_single_range_for_cpu(): `size` bytes at `offset` into the mapping at `addr`. */
  dmaSyncSingleRangeForCpu(
    dev: DmaDevice,
    addr: number,
    offset: number,
    size: number,
    dir: DmaDirection,
  ): void {
    this.dmaSyncSingleForCpu(dev, addr + offset, size, dir);
  }

  /** dma_sync_single_range_for_device(). */
  dmaSyncSingleRangeForDevice(
    dev: DmaDevice,
    addr: number,
    offset: number,
    size: number,
    dir: DmaDirection,
  ): void {
    this.dmaSyncSingleForDevice(dev, addr + offset, size, dir);
  }

  /** A single sync through the fault injector: omit, flip, shrink, or the opposite hand-over (swap). */
  #faultedSingle(
    call: string,
    dev: DmaDevice,
    addr: number,
    size: number,
    dir: DmaDirection,
    toCpu: boolean,
  ): void {
    const ranges = this.m.faults.armed ? this.#targets(dev, [{ addr, len: size }]) : undefined;
    injectFault(this.m.faults, call, { dir, bytes: size, swappable: true, ranges }, (a) => {
      const d = a === "flip" ? flipDirection(dir) : dir;
      const n = a === "shrink" ? shrinkLength(size, this.m.cache.line) : size;
      if ((a === "swap") !== toCpu) this.#syncSingleForCpu(dev, addr, n, d);
      else this.#syncSingleForDevice(dev, addr, n, d);
    });
  }

  /**
   * The physical memory a sync of these device ranges maintains (the bounce slot where a
   * piece is bounced): what the call is asked to cover, for the coverage picture.
   */
  #targets(
    dev: DmaDevice,
    spans: readonly { addr: number; len: number }[],
  ): { phys: number; len: number }[] {
    const out: { phys: number; len: number }[] = [];
    for (const sp of spans) {
      const s = this.#find(dev, sp.addr);
      if (s === undefined) continue;
      for (const p of s.pieces) {
        const a = Math.max(sp.addr, p.dmaAddr);
        const b = Math.min(sp.addr + sp.len, p.dmaAddr + p.len);
        if (a < b) out.push({ phys: (p.bounce ?? p.phys) + (a - p.dmaAddr), len: b - a });
      }
    }
    return out;
  }

  #syncSingleForCpu(dev: DmaDevice, addr: number, size: number, dir: DmaDirection): void {
    this.debug.checkSync(dev, addr, size, dir, true);
    const s = this.#find(dev, addr);
    if (s === undefined) return;
    if (this.m.trace.enabled)
      this.m.trace.instant("cpu", "dma-api", "dma_sync_single_for_cpu", this.m.now, {
        dev: dev.name,
        mapping: s.owned.label,
      });
    // The buffer is the CPU's from here: the swiotlb copy back is the CPU's own access.
    this.#setOwner(s, "cpu");
    this.#syncRange(s, addr, size, dir, true);
  }

  /** dma_sync_single_for_device(): hand (part of) a mapping back to the device. */
  dmaSyncSingleForDevice(dev: DmaDevice, addr: number, size: number, dir: DmaDirection): void {
    this.#faultedSingle("dma_sync_single_for_device", dev, addr, size, dir, false);
  }

  #syncSingleForDevice(dev: DmaDevice, addr: number, size: number, dir: DmaDirection): void {
    this.debug.checkSync(dev, addr, size, dir, false);
    const s = this.#find(dev, addr);
    if (s === undefined) return;
    if (this.m.trace.enabled)
      this.m.trace.instant("cpu", "dma-api", "dma_sync_single_for_device", this.m.now, {
        dev: dev.name,
        mapping: s.owned.label,
      });
    this.#syncRange(s, addr, size, dir, false);
    this.#setOwner(s, "device");
  }

  // ---------------------------------------------------------------------------------
  // Scatter-gather mappings

  /**
   * dma_map_sg_attrs(): maps the first `nents` entries of `sgt` and fills in their DMA
   * addresses. Returns the number of DMA segments (0 on failure).
   */
  dmaMapSg(dev: DmaDevice, sgt: SgTable, nents: number, dir: DmaDirection, attrs = 0): number {
    try {
      return this.#mapSg(dev, sgt, nents, dir, attrs);
    } catch (e) {
      if (e instanceof KernelError && e.code !== "EINVAL") return 0;
      throw e;
    }
  }

  /** dma_map_sgtable(): maps a whole table, sets `sgt.nents`; throws KernelError on failure. */
  dmaMapSgtable(dev: DmaDevice, sgt: SgTable, dir: DmaDirection, attrs = 0): void {
    sgt.nents = this.#mapSg(dev, sgt, sgt.origNents, dir, attrs);
  }

  /** dma_unmap_sg_attrs(): `nents` must be the count passed to dma_map_sg, not the one it returned. */
  dmaUnmapSg(dev: DmaDevice, sgt: SgTable, nents: number, dir: DmaDirection, attrs = 0): void {
    const seen = new Set<StreamingMapping>();
    for (let i = 0; i < sgt.nents; i++) {
      const e = sgt.sgl[i]!;
      if (e.dmaLength === 0) continue;
      this.debug.remove(dev, "scatter-gather", e.dmaAddress, e.dmaLength, dir, nents);
      const s = this.#streaming.get(this.#key(dev, e.dmaAddress));
      if (s !== undefined && !seen.has(s)) {
        seen.add(s);
        this.#teardown(s, dir, attrs);
      }
    }
  }

  /** dma_unmap_sgtable(). */
  dmaUnmapSgtable(dev: DmaDevice, sgt: SgTable, dir: DmaDirection, attrs = 0): void {
    this.dmaUnmapSg(dev, sgt, sgt.origNents, dir, attrs);
  }

  /** dma_sync_sg_for_cpu(): `nents` as passed to dma_map_sg. */
  dmaSyncSgForCpu(dev: DmaDevice, sgt: SgTable, nents: number, dir: DmaDirection): void {
    this.#faultedSg("dma_sync_sg_for_cpu", dev, sgt, nents, dir, true);
  }

  /** dma_sync_sg_for_device(). */
  dmaSyncSgForDevice(dev: DmaDevice, sgt: SgTable, nents: number, dir: DmaDirection): void {
    this.#faultedSg("dma_sync_sg_for_device", dev, sgt, nents, dir, false);
  }

  /** dma_sync_sgtable_for_cpu(). */
  dmaSyncSgtableForCpu(dev: DmaDevice, sgt: SgTable, dir: DmaDirection): void {
    this.#faultedSg("dma_sync_sgtable_for_cpu", dev, sgt, sgt.origNents, dir, true);
  }

  /** dma_sync_sgtable_for_device(). */
  dmaSyncSgtableForDevice(dev: DmaDevice, sgt: SgTable, dir: DmaDirection): void {
    this.#faultedSg("dma_sync_sgtable_for_device", dev, sgt, sgt.origNents, dir, false);
  }

  /** An sg sync through the fault injector: omit, flip, shrink (first half of the bytes), swap. */
  #faultedSg(
    call: string,
    dev: DmaDevice,
    sgt: SgTable,
    nents: number,
    dir: DmaDirection,
    toCpu: boolean,
  ): void {
    const bytes = sgt.sgl.slice(0, nents).reduce((n, e) => n + e.length, 0);
    const ranges = this.m.faults.armed
      ? this.#targets(
          dev,
          sgt.sgl
            .filter((e) => e.dmaLength > 0)
            .map((e) => ({ addr: e.dmaAddress, len: e.dmaLength })),
        )
      : undefined;
    injectFault(this.m.faults, call, { dir, bytes, swappable: true, ranges }, (a) => {
      const d = a === "flip" ? flipDirection(dir) : dir;
      const budget = a === "shrink" ? shrinkLength(bytes, this.m.cache.line) : Infinity;
      this.#syncSg(dev, sgt, nents, d, (a === "swap") !== toCpu, budget);
    });
  }

  // ---------------------------------------------------------------------------------
  // Coherent allocations

  /**
   * dma_alloc_coherent() / dma_alloc_attrs(): zeroed, physically contiguous memory both
   * the CPU and the device may use at any time without maintenance. For a non-coherent
   * device the CPU mapping has the profile's coherent attribute (write-combined on ARM,
   * uncached on RISC-V) after the cacheable alias is cleaned and invalidated;
   * DMA_ATTR_NO_KERNEL_MAPPING gives no CPU mapping at all. Throws ENOMEM.
   */
  dmaAllocCoherent(dev: DmaDevice, size: number, attrs = 0): CoherentAllocation {
    if (size <= 0) throw new KernelError("EINVAL", `dma_alloc_coherent: size ${size}`);
    const bytes = Math.ceil(size / PAGE_SIZE) * PAGE_SIZE;
    const m = this.m;
    let phys: number;
    let fromCma = true;
    let pfnBlock = -1;
    try {
      phys = m.cma.alloc(bytes / PAGE_SIZE, Math.min(bytes / PAGE_SIZE, 256));
    } catch (e) {
      if (!(e instanceof KernelError)) throw e;
      const order = Math.ceil(Math.log2(bytes / PAGE_SIZE));
      pfnBlock = m.pages.alloc(order);
      phys = pfnBlock * PAGE_SIZE;
      fromCma = false;
    }
    const ranges: PhysRange[] = [{ phys, len: bytes }];
    // Zero through the linear map, then make sure no cached copy survives (direct.c).
    m.cpu.zeroPhys(phys, bytes);
    if (!dev.coherent) archDmaPrepCoherent(m, ranges);
    let cpuAddr: CpuMapping | null = null;
    if ((attrs & DMA_ATTR_NO_KERNEL_MAPPING) === 0) {
      const attr = dev.coherent ? "cached" : m.profile.coherentAttr;
      cpuAddr = m.cpu.map(ranges, attr, `coherent ${dev.name} ${hex(phys)}`);
    }
    let dmaHandle: number;
    let window: number | undefined;
    let iova: number | undefined;
    if (dev.iommu !== undefined) {
      iova = dev.iommu.allocIova(bytes);
      dev.iommu.map(iova, phys, bytes, IOMMU_READ | IOMMU_WRITE);
      dmaHandle = iova;
    } else {
      dmaHandle = phys - dev.config.dmaOffset;
      if (dmaHandle + bytes - 1 > dev.dmaMask) {
        this.#release(fromCma, phys, pfnBlock);
        if (cpuAddr) m.cpu.unmap(cpuAddr);
        throw new KernelError(
          "ENOMEM",
          `dma_alloc_coherent: no memory below ${dev.name}'s DMA mask`,
        );
      }
      window = dev.addWindow({
        dmaAddr: dmaHandle,
        len: bytes,
        direction: "bidirectional",
        label: "coherent",
      });
    }
    const region = m.violations.register(`coherent buffer of ${dev.name} @${hex(phys)}`, ranges);
    m.ownership.addConsistent(phys, bytes);
    const alloc: CoherentAllocation = { cpuAddr, dmaHandle, size, phys };
    this.#coherent.set(this.#key(dev, dmaHandle), {
      alloc,
      fromCma,
      pfnBlock,
      window,
      iova,
      region,
    });
    this.debug.add({
      dev,
      type: "coherent",
      devAddr: dmaHandle,
      size,
      direction: DMA_BIDIRECTIONAL,
      paddr: phys,
      sgCallEnts: 0,
      sgMappedEnts: 0,
      mapErrChecked: true,
    });
    return alloc;
  }

  /** dma_free_coherent(). */
  dmaFreeCoherent(
    dev: DmaDevice,
    size: number,
    cpuAddr: CpuMapping | null,
    dmaHandle: number,
  ): void {
    this.debug.removeCoherent(dev, dmaHandle, size);
    const rec = this.#coherent.get(this.#key(dev, dmaHandle));
    if (rec === undefined) return;
    if (rec.alloc.cpuAddr !== cpuAddr) {
      this.m.violations.report({
        kind: "api-misuse",
        api: "dma-api",
        time: this.m.now,
        agent: dev.name,
        phys: rec.alloc.phys,
        len: size,
        message: "DMA-API: device driver frees DMA memory with different CPU address",
        hint: "pass dma_free_coherent() the CPU address dma_alloc_coherent() returned with this handle",
      });
    }
    this.#coherent.delete(this.#key(dev, dmaHandle));
    if (rec.alloc.cpuAddr) this.m.cpu.unmap(rec.alloc.cpuAddr);
    if (rec.window !== undefined) dev.removeWindow(rec.window);
    if (rec.iova !== undefined && dev.iommu) {
      dev.iommu.unmap(rec.iova, Math.ceil(rec.alloc.size / PAGE_SIZE) * PAGE_SIZE);
      dev.iommu.freeIova(rec.iova);
    }
    this.m.violations.unregister(rec.region);
    this.m.ownership.removeConsistent(rec.alloc.phys);
    this.#release(rec.fromCma, rec.alloc.phys, rec.pfnBlock);
  }

  /**
   * Driver unbind (dma_debug_device_change): reports every mapping and coherent buffer
   * the device still holds. Returns how many there were.
   */
  dmaReleaseDevice(dev: DmaDevice): number {
    return this.debug.checkDeviceRelease(dev);
  }

  // ---------------------------------------------------------------------------------
  // Internals

  #key(dev: DmaDevice, addr: number): string {
    return `${dev.name}@${addr}`;
  }

  #release(fromCma: boolean, phys: number, pfnBlock: number): void {
    if (fromCma) this.m.cma.free(phys);
    else this.m.pages.free(pfnBlock);
  }

  #checkArgs(dev: DmaDevice, phys: number, size: number, dir: number): asserts dir is DmaDirection {
    if (!validDirection(dir))
      throw new KernelError(
        "EINVAL",
        `${dev.name}: invalid DMA direction ${dir} (BUG_ON(!valid_dma_direction))`,
      );
    if (size <= 0) throw new KernelError("EINVAL", `${dev.name}: mapping of ${size} bytes`);
    this.m.memory.check(phys, size);
  }

  #mapOne(
    dev: DmaDevice,
    phys: number,
    size: number,
    dir: DmaDirection,
    attrs: number,
    type: DebugMapType,
  ): number {
    this.#checkArgs(dev, phys, size, dir);
    let s: StreamingMapping;
    try {
      s = this.#mapRanges(
        dev,
        [{ phys, len: size }],
        dir,
        attrs,
        type === "page" ? "dma_map_page" : "dma_map_single",
      );
    } catch (e) {
      if (e instanceof KernelError && e.code === "ENOMEM") return DMA_MAPPING_ERROR;
      throw e;
    }
    const addr = s.pieces[0]!.dmaAddr;
    this.debug.add({
      dev,
      type,
      devAddr: addr,
      size,
      direction: dir,
      paddr: phys,
      sgCallEnts: 0,
      sgMappedEnts: 0,
      mapErrChecked: false,
    });
    return addr;
  }

  #unmapOne(
    dev: DmaDevice,
    addr: number,
    size: number,
    dir: DmaDirection,
    attrs: number,
    type: DebugMapType,
  ): void {
    this.debug.remove(dev, type, addr, size, dir);
    const s = this.#streaming.get(this.#key(dev, addr));
    if (s === undefined) return;
    this.#teardown(s, dir, attrs, size);
  }

  #mapSg(dev: DmaDevice, sgt: SgTable, nents: number, dir: DmaDirection, attrs: number): number {
    if (nents <= 0 || nents > sgt.sgl.length)
      throw new KernelError("EINVAL", `dma_map_sg: nents ${nents}`);
    const entries = sgt.sgl.slice(0, nents);
    const ranges = entries.map((e) => ({ phys: e.page + e.offset, len: e.length }));
    for (const r of ranges) this.#checkArgs(dev, r.phys, r.len, dir);
    const s = this.#mapRanges(dev, ranges, dir, attrs, "dma_map_sg");
    // Fill in the DMA side: one segment per piece (direct), or merged runs (IOMMU).
    let seg = 0;
    /** Index of the CPU entry each DMA segment starts with. */
    const firstEntry: number[] = [];
    for (let i = 0; i < entries.length; i++) {
      const p = s.pieces[i]!;
      const prev = seg > 0 ? sgt.sgl[seg - 1]! : undefined;
      if (
        s.iova !== undefined &&
        prev !== undefined &&
        prev.dmaAddress + prev.dmaLength === p.dmaAddr
      ) {
        prev.dmaLength += p.len;
      } else {
        const e = sgt.sgl[seg]!;
        e.dmaAddress = p.dmaAddr;
        e.dmaLength = p.len;
        firstEntry[seg] = i;
        seg++;
      }
    }
    for (let i = seg; i < entries.length; i++) sgt.sgl[i]!.dmaLength = 0;
    // Every segment start is a key to the same mapping.
    for (let i = 0; i < seg; i++) {
      const e = sgt.sgl[i]!;
      this.#streaming.set(this.#key(dev, e.dmaAddress), s);
      this.debug.add({
        dev,
        type: "scatter-gather",
        devAddr: e.dmaAddress,
        size: e.dmaLength,
        direction: dir,
        paddr: ranges[firstEntry[i]!]!.phys,
        sgCallEnts: nents,
        sgMappedEnts: seg,
        mapErrChecked: true,
      });
    }
    return seg;
  }

  /** Maps CPU ranges for a device (direct with swiotlb, or IOMMU) and records ownership. */
  #mapRanges(
    dev: DmaDevice,
    ranges: readonly PhysRange[],
    dir: DmaDirection,
    attrs: number,
    call: string,
  ): StreamingMapping {
    const m = this.m;
    const sync = !dev.coherent && (attrs & DMA_ATTR_SKIP_CPU_SYNC) === 0;
    const pieces: Piece[] = [];
    const windows: number[] = [];
    let iova: StreamingMapping["iova"];
    const winDir: WindowDirection =
      dir === DMA_TO_DEVICE
        ? "to-device"
        : dir === DMA_FROM_DEVICE
          ? "from-device"
          : "bidirectional";
    if (dev.iommu !== undefined) {
      // dma-iommu: sync the CPU side, then map every range into one IOVA block.
      if (sync) archSyncDmaForDevice(m, ranges, dir);
      const spans = ranges.map((r) => {
        const first = Math.floor(r.phys / PAGE_SIZE) * PAGE_SIZE;
        const end = Math.ceil((r.phys + r.len) / PAGE_SIZE) * PAGE_SIZE;
        return { first, bytes: end - first };
      });
      const total = spans.reduce((n, sp) => n + sp.bytes, 0);
      const base = dev.iommu.allocIova(total);
      const prot =
        dir === DMA_TO_DEVICE
          ? IOMMU_READ
          : dir === DMA_FROM_DEVICE
            ? IOMMU_WRITE
            : IOMMU_READ | IOMMU_WRITE;
      let at = base;
      ranges.forEach((r, i) => {
        const sp = spans[i]!;
        dev.iommu!.map(at, sp.first, sp.bytes, prot);
        pieces.push({
          phys: r.phys,
          len: r.len,
          dmaAddr: at + (r.phys - sp.first),
          bounce: undefined,
        });
        at += sp.bytes;
      });
      iova = { base, size: total };
      m.costs.charge("iommu", 0, ranges.length, total);
    } else {
      const bounced: number[] = [];
      try {
        for (const r of ranges) {
          let target = r.phys;
          let bounce: number | undefined;
          const direct = r.phys - dev.config.dmaOffset;
          if (this.forceBounce || direct < 0 || direct + r.len - 1 > dev.dmaMask) {
            // dma_capable() failed: bounce through swiotlb (copy first, then sync the slot).
            bounce = this.swiotlb.map(r.phys, r.len, dir, dev.name);
            bounced.push(bounce);
            target = bounce;
          }
          if (sync) archSyncDmaForDevice(m, [{ phys: target, len: r.len }], dir);
          const dmaAddr = target - dev.config.dmaOffset;
          pieces.push({ phys: r.phys, len: r.len, dmaAddr, bounce });
        }
        // One window per run of DMA-adjacent entries: a device may run one access across
        // entries that happen to follow one another (dma-contig's single segment over
        // udmabuf's per-page scatterlist of contiguous pages, or of consecutive slots).
        // (The windows written out field by field: an object spread followed by more
        // fields costs V8 some microseconds: 9 µs in tracked DMA's map.)
        let run: { dmaAddr: number; len: number } | undefined;
        for (const p of pieces) {
          if (run !== undefined && run.dmaAddr + run.len === p.dmaAddr) run.len += p.len;
          else {
            if (run !== undefined)
              windows.push(
                dev.addWindow({
                  dmaAddr: run.dmaAddr,
                  len: run.len,
                  direction: winDir,
                  label: call,
                }),
              );
            run = { dmaAddr: p.dmaAddr, len: p.len };
          }
        }
        if (run !== undefined)
          windows.push(
            dev.addWindow({ dmaAddr: run.dmaAddr, len: run.len, direction: winDir, label: call }),
          );
      } catch (e) {
        for (const b of bounced) this.swiotlb.unmap(b, dir, true);
        for (const w of windows) dev.removeWindow(w);
        throw e;
      }
    }
    const first = pieces[0]!;
    const fn = call === "dma_map_sg" ? "sg" : call === "dma_map_page" ? "single" : "single";
    const args = `${dev.name}, ${hex(first.dmaAddr)}, ${ranges.reduce((n, r) => n + r.len, 0)}, ${directionName(dir)}`;
    const forCpu = `dma_sync_${fn}_for_cpu(${args}) or dma_unmap_${fn === "sg" ? "sg" : "single"}()`;
    const forDevice = `dma_sync_${fn}_for_device(${args})`;
    const owned = m.ownership.add({
      device: dev.name,
      label: `${call}(${args})`,
      direction: directionName(dir),
      deviceReadsOnly: dir === DMA_TO_DEVICE,
      ranges,
      giveBackCall: forCpu,
      deviceCoherent: dev.coherent,
      mapInvalidated: sync && archMapInvalidates(m, dir),
    });
    const region = m.violations.register(`${call} ${dev.name} ${hex(first.dmaAddr)}`, ranges, {
      "stale-cpu-read": `the CPU read before ${forCpu}${dir === DMA_TO_DEVICE ? " (and the mapping is DMA_TO_DEVICE: the device should not have written it)" : ""}`,
      "stale-device-read": `the device read before ${forDevice} made the CPU's writes visible`,
      "dirty-line-under-dma": `${forDevice} (or the map itself) must clean the CPU's dirty lines before the device writes`,
      "lost-device-write": `${forDevice} must clean dirty lines before the DMA, and the CPU must not write while the device owns the buffer`,
    });
    const sharedLines = registerSharedLines(m, `${call}(${args})`, ranges);
    const s: StreamingMapping = { dev, dir, pieces, iova, windows, owned, region, sharedLines };
    this.#streaming.set(this.#key(dev, first.dmaAddr), s);
    this.#traceOwner(s);
    return s;
  }

  /** A hand-over of a streaming mapping: to the checker's table and, when tracing, the trace. */
  #setOwner(s: StreamingMapping, owner: StreamingOwner): void {
    this.m.ownership.setOwner(s.owned, owner);
    this.#traceOwner(s);
  }

  /**
   * The mapping's owner as an ownership span (named after the device, or "cpu") on the
   * track "BUFFER / DEVICE" of the buffer its first page belongs to, else on a track
   * named after the mapping call: the DMA API's rule that the device owns the buffer
   * between dma_map_* or dma_sync_*_for_device and dma_unmap_* or dma_sync_*_for_cpu.
   */
  #traceOwner(s: StreamingMapping): void {
    const trace = this.m.trace;
    if (!trace.enabled) return;
    const owner = s.owned.owner === "device" ? s.dev.name : "cpu";
    const phys = s.pieces[0]!.phys;
    trace.own(
      s,
      owner,
      this.m.now,
      () => {
        const buf = trace.bufferAt(phys);
        return buf !== undefined ? `${buf}${MAPPING_TRACK_SEPARATOR}${s.dev.name}` : s.owned.label;
      },
      { mapping: s.owned.label },
    );
  }

  #find(dev: DmaDevice, addr: number): StreamingMapping | undefined {
    const exact = this.#streaming.get(this.#key(dev, addr));
    if (exact !== undefined) return exact;
    for (const s of this.#streaming.values()) {
      if (s.dev !== dev) continue;
      for (const p of s.pieces) if (addr >= p.dmaAddr && addr < p.dmaAddr + p.len) return s;
    }
    return undefined;
  }

  /** Syncs the part of `s` at `[addr, addr+size)` in device address space. */
  #syncRange(
    s: StreamingMapping,
    addr: number,
    size: number,
    dir: DmaDirection,
    toCpu: boolean,
  ): void {
    const end = addr + size;
    for (const p of s.pieces) {
      const a = Math.max(addr, p.dmaAddr);
      const b = Math.min(end, p.dmaAddr + p.len);
      if (a >= b) continue;
      this.#syncPiece(s.dev, p, a - p.dmaAddr, b - a, dir, toCpu);
    }
  }

  /** dma_direct_sync_single_for_cpu/device (and the IOMMU equivalents) on one piece. */
  #syncPiece(
    dev: DmaDevice,
    p: Piece,
    off: number,
    len: number,
    dir: DmaDirection,
    toCpu: boolean,
  ): void {
    const target = (p.bounce ?? p.phys) + off;
    const r = [{ phys: target, len }];
    if (toCpu) {
      if (!dev.coherent) archSyncDmaForCpu(this.m, r, dir);
      if (p.bounce !== undefined) this.swiotlb.syncForCpu(target, len, dir);
    } else {
      if (p.bounce !== undefined) this.swiotlb.syncForDevice(target, len, dir);
      if (!dev.coherent) archSyncDmaForDevice(this.m, r, dir);
    }
  }

  #syncSg(
    dev: DmaDevice,
    sgt: SgTable,
    nents: number,
    dir: DmaDirection,
    toCpu: boolean,
    budget = Infinity,
  ): void {
    let left = budget;
    const seen = new Set<StreamingMapping>();
    for (let i = 0; i < sgt.nents; i++) {
      const e = sgt.sgl[i]!;
      if (e.dmaLength === 0) continue;
      this.debug.checkSync(dev, e.dmaAddress, e.dmaLength, dir, toCpu);
      const s = this.#find(dev, e.dmaAddress);
      if (s === undefined || seen.has(s)) continue;
      seen.add(s);
      if (this.m.trace.enabled)
        this.m.trace.instant(
          "cpu",
          "dma-api",
          toCpu ? "dma_sync_sg_for_cpu" : "dma_sync_sg_for_device",
          this.m.now,
          { dev: dev.name, mapping: s.owned.label },
        );
      // Given to the CPU before a swiotlb copy back, which is the CPU's own access.
      if (toCpu) this.#setOwner(s, "cpu");
      // The kernel walks the CPU-side entries; so do we (only the first `nents`).
      for (const p of s.pieces.slice(0, nents)) {
        const n = Math.min(p.len, left);
        if (n <= 0) break;
        this.#syncPiece(dev, p, 0, n, dir, toCpu);
        left -= n;
      }
      this.#setOwner(s, toCpu ? "cpu" : "device");
    }
  }

  /** Unmap: sync for the CPU (unless skipped), drop bounce slots, IOVA, windows, ownership. */
  #teardown(s: StreamingMapping, dir: DmaDirection, attrs: number, size?: number): void {
    const dev = s.dev;
    const skip = (attrs & DMA_ATTR_SKIP_CPU_SYNC) !== 0;
    // The CPU owns the buffer again: the swiotlb copy back below is its own access.
    this.#setOwner(s, "cpu");
    for (const p of s.pieces) {
      // A wrong size on unmap really syncs the wrong amount, as the kernel would.
      const len = size !== undefined && s.pieces.length === 1 ? Math.min(size, p.len) : p.len;
      if (!dev.coherent && !skip)
        archSyncDmaForCpu(this.m, [{ phys: p.bounce ?? p.phys, len }], dir);
      if (p.bounce !== undefined) this.swiotlb.unmap(p.bounce, dir, skip);
      this.#streaming.delete(this.#key(dev, p.dmaAddr));
    }
    if (s.iova !== undefined && dev.iommu) {
      dev.iommu.unmap(s.iova.base, s.iova.size);
      dev.iommu.freeIova(s.iova.base);
    }
    for (const w of s.windows) dev.removeWindow(w);
    this.m.ownership.remove(s.owned.id);
    this.m.trace.disown(s, this.m.now);
    this.m.violations.unregister(s.region);
    if (s.sharedLines !== undefined) this.m.violations.unregister(s.sharedLines);
  }
}
