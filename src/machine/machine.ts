/**
 * A whole simulated machine: RAM, the CPU and its caches, the bus, DMA devices, the
 * page allocators and the checker, on one virtual clock, built from a profile.
 *
 * Memory layout at boot (low to high): the swiotlb bounce pool (it must be reachable by
 * 32-bit devices), the contiguous area for CMA, then everything else for the page
 * allocator.
 */

import { SystemBus } from "./bus.js";
import { CpuCache } from "./cache.js";
import { type Ns, VirtualClock } from "./clock.js";
import { CoherencyShadow, OwnershipTracker } from "./coherency.js";
import { ContiguousArea } from "./contiguous.js";
import { CostLedger } from "./cost.js";
import { Cpu } from "./cpu.js";
import { type DeviceConfig, DmaDevice } from "./device.js";
import { FaultInjection, shrinkLength } from "./fault-inject.js";
import { IommuDomain } from "./iommu.js";
import { PAGE_SIZE, PhysicalMemory } from "./memory.js";
import { PageAllocator } from "./page-alloc.js";
import {
  assertProfileWithinLimits,
  type Profile,
  type ProfileOverrides,
  resolveProfile,
} from "./profiles.js";
import { SpeculativeFills } from "./speculation.js";
import { TraceRecorder } from "./trace.js";
import { type PhysRange, ViolationLog } from "./violations.js";

/** swiotlb slot size: IO_TLB_SIZE = 1 << IO_TLB_SHIFT = 2 KiB (include/linux/swiotlb.h). */
export const IO_TLB_SIZE = 2048;

export type MaintenanceOp = "clean" | "invalidate" | "flush";

export interface MachineOptions {
  /** Profile name or a full profile (default "arm64"). */
  readonly profile?: string | Profile;
  readonly overrides?: ProfileOverrides;
  /** Record a timeline for traces (default false). */
  readonly trace?: boolean;
}

export class Machine {
  readonly profile: Profile;
  readonly clock = new VirtualClock();
  readonly memory: PhysicalMemory;
  readonly shadow = new CoherencyShadow();
  readonly violations = new ViolationLog();
  readonly ownership = new OwnershipTracker();
  readonly costs = new CostLedger();
  readonly trace = new TraceRecorder();
  /** Fault injection and the record of every maintenance and sync call (fault-inject.ts). */
  readonly faults = new FaultInjection();
  readonly cache: CpuCache;
  readonly bus: SystemBus;
  readonly cpu: Cpu;
  /** The buddy allocator for ordinary pages (the system heap allocates here). */
  readonly pages: PageAllocator;
  /** The contiguous area (CMA). */
  readonly cma: ContiguousArea;
  /** The swiotlb bounce-buffer pool, in IO_TLB_SIZE slots (undefined if disabled). */
  readonly swiotlb: ContiguousArea | undefined;
  /** The CPU's speculative line fills during DMA (undefined when the profile has none). */
  readonly speculation: SpeculativeFills | undefined;
  readonly #devices = new Map<string, DmaDevice>();

  constructor(options: MachineOptions = {}) {
    const p = options.profile ?? "arm64";
    this.profile = typeof p === "string" ? resolveProfile(p, options.overrides) : p;
    const prof = this.profile;
    // Before any host memory is taken: a 1 PiB RAM or a 64 GiB cache is a named error.
    assertProfileWithinLimits(prof);
    this.trace.enabled = options.trace ?? false;
    this.clock.trace = this.trace;
    this.memory = new PhysicalMemory(prof.ram.base, prof.ram.size);
    this.cache = new CpuCache(prof.cache, this.memory, this.shadow);
    this.bus = new SystemBus(this.memory, this.cache, this.shadow, this.violations, this.clock);
    this.cpu = new Cpu(
      this.memory,
      this.cache,
      this.shadow,
      this.ownership,
      this.violations,
      this.clock,
      this.costs,
      prof.costs,
      this.trace,
    );
    const rate = prof.speculativeFillRate ?? 0;
    this.speculation = rate > 0 ? new SpeculativeFills(this, rate) : undefined;
    this.speculation?.install();
    let next = prof.ram.base;
    const take = (bytes: number): number => {
      const at = next;
      const rounded = Math.ceil(bytes / PAGE_SIZE) * PAGE_SIZE;
      if (at + rounded > prof.ram.base + prof.ram.size) {
        throw new RangeError(
          `machine: RAM of ${prof.ram.size} bytes is too small for the reserved areas`,
        );
      }
      next += rounded;
      return at;
    };
    this.swiotlb =
      prof.swiotlbBytes > 0
        ? new ContiguousArea(
            "swiotlb",
            take(prof.swiotlbBytes),
            Math.floor(prof.swiotlbBytes / IO_TLB_SIZE),
            IO_TLB_SIZE,
          )
        : undefined;
    this.cma = new ContiguousArea(
      "cma",
      take(prof.cmaBytes),
      Math.floor(prof.cmaBytes / PAGE_SIZE),
      PAGE_SIZE,
    );
    const firstPfn = next / PAGE_SIZE;
    this.pages = new PageAllocator(
      firstPfn,
      (prof.ram.base + prof.ram.size - next) / PAGE_SIZE,
      prof.seed,
    );
  }

  /** Adds a DMA master; unspecified fields come from the profile's device defaults. */
  addDevice(name: string, config: Partial<Omit<DeviceConfig, "name">> = {}): DmaDevice {
    if (this.#devices.has(name))
      throw new RangeError(`machine: a device named '${name}' exists already`);
    const full: DeviceConfig = { ...this.profile.device, ...config, name };
    const dev = new DmaDevice(full, this.bus, this.costs, this.trace);
    if (full.iommu) {
      // The aperture starts above zero so a DMA handle of 0 is never valid.
      const top = Math.min(2 ** full.dmaBits, 2 ** 40);
      dev.iommu = new IommuDomain(name, 0x10_0000, top - 0x10_0000);
    }
    this.#devices.set(name, dev);
    return dev;
  }

  device(name: string): DmaDevice {
    const d = this.#devices.get(name);
    if (d === undefined) throw new RangeError(`machine: no device named '${name}'`);
    return d;
  }

  get devices(): readonly DmaDevice[] {
    return [...this.#devices.values()];
  }

  /**
   * The run is over: host memory goes back to pools the next machine takes from (DRAM
   * chunks, the cache's line data and slot state, the per-line shadow arrays, the CPU's
   * per-page mapping counts). Host page faults on fresh frame-sized memory cost more
   * than a run's own work, and a sweep or the main job boots a machine per run.
   * Nothing may use this machine afterwards.
   */
  release(): void {
    this.memory.release();
    this.cache.release();
    this.cpu.release();
    this.shadow.memEpoch.release();
  }

  /** Virtual time now. */
  get now(): Ns {
    return this.clock.now;
  }

  /**
   * Cache maintenance over physical ranges, as the architecture's DMA code issues it.
   * Applies the profile's policy: by line, or by set/way over the whole cache once the
   * ranges add up to the threshold (invalidation always goes by line: invalidating the
   * whole cache would throw away other owners' dirty data). Charges the time to the CPU.
   * Returns the virtual time it took.
   */
  maintain(op: MaintenanceOp, ranges: readonly PhysRange[], why = ""): Ns {
    if (!this.faults.armed) return this.#maintain(op, ranges, why);
    // Maintenance inside a DMA API or dma-buf call belongs to that call's site; a
    // driver's own maintenance (zeroing, shmem flush) is a site of its own.
    const total = ranges.reduce((n, r) => n + r.len, 0);
    const d = this.faults.inCall ? undefined : this.faults.consult(`cache_${op}`, { bytes: total });
    try {
      if (d?.action === "omit") return 0;
      const todo =
        d?.action === "shrink"
          ? ranges.map((r) => ({ phys: r.phys, len: shrinkLength(r.len, this.cache.line) }))
          : ranges;
      const lines = this.cache.validLines;
      const { writebacks, discardedDirty } = this.cache.counters;
      const ns = this.#maintain(op, todo, why);
      const c = this.cache.counters;
      const dirty = c.writebacks - writebacks + (c.discardedDirty - discardedDirty);
      const dropped = Math.max(0, lines - this.cache.validLines);
      this.faults.noteMaintenance(
        todo.reduce((n, r) => n + r.len, 0),
        Math.max(dropped, dirty),
        dirty,
        todo,
      );
      return ns;
    } finally {
      this.faults.leave(d?.token);
    }
  }

  #maintain(op: MaintenanceOp, ranges: readonly PhysRange[], why: string): Ns {
    const cache = this.cache;
    const cm = this.profile.costs;
    const pol = this.profile.maintenance;
    const before = cache.snapshotCounters();
    const total = ranges.reduce((n, r) => n + r.len, 0);
    if (total === 0) return 0;
    const whole =
      pol.kind === "whole-cache-above" &&
      (op !== "invalidate" || pol.invalidateWhole === true) &&
      total >= pol.thresholdBytes;
    let barriers = 0;
    if (whole) {
      if (op === "clean") cache.cleanAll();
      else cache.flushAll();
      this.#reportMaintenanceFindings();
      barriers = 1;
    } else {
      for (const r of ranges) {
        if (op === "clean") cache.cleanRange(r.phys, r.len);
        else if (op === "invalidate") cache.invalidateRange(r.phys, r.len);
        else cache.flushRange(r.phys, r.len);
        this.#reportMaintenanceFindings();
        barriers++;
      }
    }
    const c = cache.counters;
    const ns =
      (c.lineOps - before.lineOps) * cm.lineOpNs +
      (c.setWayOps - before.setWayOps) * cm.setWayOpNs +
      ((c.writebacks - before.writebacks) * cache.line) / cm.dramBytesPerNs +
      barriers * cm.rangeOpNs;
    const start = this.clock.now;
    this.costs.charge("cache-maintenance", ns, 1, total);
    this.trace.span("cpu", "cache", `${whole ? `${op} all` : op} ${why}`.trim(), start, ns, {
      bytes: total,
      whole,
      writebacks: c.writebacks - before.writebacks,
    });
    this.clock.advance(ns);
    return ns;
  }

  #reportMaintenanceFindings(): void {
    const lost = this.cache.findings.lostWrite;
    if (lost !== undefined) this.cpu.reportLostWrite(lost.phys, lost.lines, lost.epoch);
  }
}
