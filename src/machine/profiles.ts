/**
 * Architecture profiles: the data that makes a simulated machine a Cortex-A9 SoC, an
 * arm64 phone, an x86 server or a RISC-V board. Profiles are plain data; every field
 * can be overridden (see {@link resolveProfile}). Figures and their sources are listed
 * in docs/profiles.md; where a figure is an estimate it says so there.
 */

import type { CacheGeometry } from "./cache.js";
import type { CostModel } from "./cost.js";
import type { MemAttr } from "./cpu.js";

/** The architecture whose DMA cache-maintenance rules apply (src/dma/arch.ts). */
export type Arch = "arm" | "arm64" | "x86_64" | "riscv64";

/**
 * How range maintenance is carried out: always line by line, or by set/way on the whole
 * cache once the range reaches a threshold (as arch/arm/mm/cache-l2x0.c does at the L2
 * size, and drm_cache.c's wbinvd fallback does on x86).
 */
export interface MaintenancePolicy {
  readonly kind: "per-line" | "whole-cache-above";
  /** Range size (bytes) from which the whole cache is cleaned/flushed instead. */
  readonly thresholdBytes: number;
  /**
   * Whether invalidations above the threshold also go to the whole cache, as a flush
   * (clean + invalidate by set/way). Linux never does this on ARM (outer_inv_range is
   * always by line: invalidating everything would discard other owners' dirty data);
   * a flush of everything is safe, and it is what x86's wbinvd amounts to. The
   * "whole-cache" strategy sets it to ask what whole-cache maintenance of every range
   * would cost. Default false.
   */
  readonly invalidateWhole?: boolean;
}

export interface DeviceDefaults {
  readonly coherent: boolean;
  readonly dmaBits: number;
  readonly bandwidthBytesPerNs: number;
  readonly setupNs: number;
  readonly iommu: boolean;
  readonly dmaOffset: number;
}

export interface Profile {
  readonly name: string;
  readonly title: string;
  readonly arch: Arch;
  readonly description: string;
  readonly ram: { readonly base: number; readonly size: number };
  readonly cache: CacheGeometry;
  readonly costs: CostModel;
  readonly maintenance: MaintenancePolicy;
  /** Attribute of dma_alloc_coherent's CPU mapping for a non-coherent device (pgprot_dmacoherent). */
  readonly coherentAttr: MemAttr;
  /**
   * Fraction of the cache lines a non-coherent device writes under a streaming mapping
   * that the CPU pulls into its cache speculatively during the transfer (0: never). The
   * architecture's rule, not a tuning knob: ARM and RISC-V may prefetch any cacheable
   * line, so their DMA code invalidates after DMA_FROM_DEVICE (src/machine/speculation.ts).
   */
  readonly speculativeFillRate: number;
  /**
   * Whether arch_sync_dma_for_device does the same whatever the direction: mainline
   * arm64 and RISC-V clean for every direction (arch/arm64/mm/dma-mapping.c), 32-bit ARM
   * invalidates a DMA_FROM_DEVICE buffer instead (v7_dma_map_area), and so does arm64
   * with raspberrypi/linux PR 6995 ("Fix arch_sync_dma_for_device to respect dir
   * parameter"). x86's clflush has no variant: true there, and false is refused.
   */
  readonly forDeviceIgnoresDirection: boolean;
  /** swiotlb pool size in bytes (0 to disable bouncing). */
  readonly swiotlbBytes: number;
  /** Contiguous memory area for the CMA heap, bytes. */
  readonly cmaBytes: number;
  /** Defaults for devices added to the machine. */
  readonly device: DeviceDefaults;
  /** Seed for boot-time page scattering. */
  readonly seed: number;
  readonly sources: readonly string[];
}

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

export const PROFILES: Readonly<Record<string, Profile>> = {
  "cortex-a9": {
    name: "cortex-a9",
    title: "32-bit ARM Cortex-A9 SoC, 512 KiB PL310 L2, non-coherent DMA",
    arch: "arm",
    description:
      "The SoC of the 2011 thread: ARMv7 Cortex-A9 with 32-byte lines, 32 KiB L1D and a 512 KiB PL310 outer cache. Devices do not snoop; every DMA buffer needs cache maintenance by the driver.",
    ram: { base: 0x1000_0000, size: 1 * GiB },
    cache: {
      lineSize: 32,
      levels: [
        { name: "L1D", sizeBytes: 32 * KiB, ways: 4 },
        { name: "L2", sizeBytes: 512 * KiB, ways: 8 },
      ],
      replacement: "plru",
    },
    costs: {
      hitNs: [4, 20],
      dramBytesPerNs: 1.2,
      uncachedReadNs: 30,
      uncachedWriteNs: 12,
      uncachedAccessBytes: 4,
      wcWriteBytesPerNs: 0.6,
      lineOpNs: 15,
      rangeOpNs: 200,
      setWayOpNs: 6,
    },
    maintenance: { kind: "whole-cache-above", thresholdBytes: 512 * KiB },
    coherentAttr: "writecombine",
    speculativeFillRate: 1 / 32,
    forDeviceIgnoresDirection: false,
    swiotlbBytes: 4 * MiB,
    cmaBytes: 64 * MiB,
    device: {
      coherent: false,
      dmaBits: 32,
      bandwidthBytesPerNs: 0.8,
      setupNs: 2000,
      iommu: false,
      dmaOffset: 0,
    },
    seed: 1,
    sources: [
      "ARM Cortex-A9 TRM r4p1 (32-byte lines, 4-way L1D)",
      "ARM PL310 (L2C-310) TRM; arch/arm/mm/cache-l2x0.c (whole-cache flush when the range reaches l2x0_size)",
      "arch/arm/mm/dma-mapping.c, arch/arm/mm/cache-v7.S",
    ],
  },
  arm64: {
    name: "arm64",
    title: "arm64 SoC (Cortex-A72-like), 1 MiB L2, non-coherent DMA by default",
    arch: "arm64",
    description:
      "A 64-bit ARM application processor with 64-byte lines, 32 KiB L1D and 1 MiB L2; RAM extends above 4 GiB so 32-bit devices bounce through swiotlb. Devices are non-coherent unless marked dma-coherent.",
    ram: { base: 0x4000_0000, size: 4 * GiB },
    cache: {
      lineSize: 64,
      levels: [
        { name: "L1D", sizeBytes: 32 * KiB, ways: 2 },
        { name: "L2", sizeBytes: 1 * MiB, ways: 16 },
      ],
      replacement: "plru",
    },
    costs: {
      hitNs: [2, 8],
      dramBytesPerNs: 5.5,
      uncachedReadNs: 17,
      uncachedWriteNs: 6,
      uncachedAccessBytes: 4,
      wcWriteBytesPerNs: 2,
      lineOpNs: 2.5,
      rangeOpNs: 50,
      setWayOpNs: 3,
    },
    maintenance: { kind: "per-line", thresholdBytes: Number.POSITIVE_INFINITY },
    coherentAttr: "writecombine",
    speculativeFillRate: 1 / 32,
    forDeviceIgnoresDirection: true,
    swiotlbBytes: 64 * MiB,
    cmaBytes: 256 * MiB,
    device: {
      coherent: false,
      dmaBits: 32,
      bandwidthBytesPerNs: 4,
      setupNs: 1000,
      iommu: false,
      dmaOffset: 0,
    },
    seed: 1,
    sources: [
      "ARM Cortex-A72 TRM (64-byte lines, 32 KiB 2-way L1D, 512 KiB-4 MiB 16-way L2)",
      "arch/arm64/mm/dma-mapping.c (clean to PoC for device, invalidate for CPU)",
      "Raspberry Pi 4 STREAM copy 5.5 GB/s; uncached reads ~236 MB/s (udmabuf issue #120)",
    ],
  },
  "x86-64": {
    name: "x86-64",
    title: "x86-64 server, 16 MiB L3, DMA-coherent",
    arch: "x86_64",
    description:
      "A PC or server: PCIe devices snoop the caches, so streaming DMA needs no maintenance at all; clflush exists for the few cases (GPU write-combined paths) that need it.",
    ram: { base: 0, size: 16 * GiB },
    cache: {
      lineSize: 64,
      levels: [
        { name: "L1D", sizeBytes: 32 * KiB, ways: 8 },
        { name: "L2", sizeBytes: 1 * MiB, ways: 16 },
        { name: "L3", sizeBytes: 16 * MiB, ways: 16 },
      ],
      replacement: "lru",
    },
    costs: {
      hitNs: [1, 3, 10],
      dramBytesPerNs: 20,
      uncachedReadNs: 60,
      uncachedWriteNs: 10,
      uncachedAccessBytes: 8,
      wcWriteBytesPerNs: 10,
      lineOpNs: 1,
      rangeOpNs: 20,
      setWayOpNs: 0.6,
    },
    maintenance: { kind: "per-line", thresholdBytes: Number.POSITIVE_INFINITY },
    coherentAttr: "uncached",
    speculativeFillRate: 0,
    forDeviceIgnoresDirection: true,
    swiotlbBytes: 64 * MiB,
    cmaBytes: 256 * MiB,
    device: {
      coherent: true,
      dmaBits: 64,
      bandwidthBytesPerNs: 12,
      setupNs: 500,
      iommu: false,
      dmaOffset: 0,
    },
    seed: 1,
    sources: [
      "Intel SDM vol. 3 (clflush/clflushopt per line; wbinvd whole cache)",
      "drivers/gpu/drm/drm_cache.c (clflush per line, wbinvd fallback)",
      "AMD xdna-driver PR 1541: ~16 us per MiB of range synced on a Ryzen host",
    ],
  },
  "x86-64-64m": {
    name: "x86-64-64m",
    title: "x86-64 with a 64 MiB last-level cache, DMA-coherent",
    arch: "x86_64",
    description:
      "The 'larger caches than on ARM, e.g. 64MB instead of 512KB' machine of the 2011 thread: flushing the whole cache throws away far more useful data than on a small ARM L2.",
    ram: { base: 0, size: 16 * GiB },
    cache: {
      lineSize: 64,
      levels: [
        { name: "L1D", sizeBytes: 32 * KiB, ways: 8 },
        { name: "L2", sizeBytes: 1 * MiB, ways: 16 },
        { name: "L3", sizeBytes: 64 * MiB, ways: 16 },
      ],
      replacement: "lru",
    },
    costs: {
      hitNs: [1, 3, 12],
      dramBytesPerNs: 20,
      uncachedReadNs: 60,
      uncachedWriteNs: 10,
      uncachedAccessBytes: 8,
      wcWriteBytesPerNs: 10,
      lineOpNs: 1,
      rangeOpNs: 20,
      setWayOpNs: 0.6,
    },
    maintenance: { kind: "per-line", thresholdBytes: Number.POSITIVE_INFINITY },
    coherentAttr: "uncached",
    speculativeFillRate: 0,
    forDeviceIgnoresDirection: true,
    swiotlbBytes: 64 * MiB,
    cmaBytes: 256 * MiB,
    device: {
      coherent: true,
      dmaBits: 64,
      bandwidthBytesPerNs: 12,
      setupNs: 500,
      iommu: false,
      dmaOffset: 0,
    },
    seed: 1,
    sources: ["as x86-64, with a 64 MiB L3 (the seed thread's 64 MB example)"],
  },
  riscv64: {
    name: "riscv64",
    title: "RISC-V board (U74-like), 2 MiB L2, non-coherent DMA",
    arch: "riscv64",
    description:
      "A RISC-V SoC whose devices do not snoop; cache maintenance uses the Zicbom cbo.clean / cbo.inval / cbo.flush instructions per line.",
    ram: { base: 0x4000_0000, size: 4 * GiB },
    cache: {
      lineSize: 64,
      levels: [
        { name: "L1D", sizeBytes: 32 * KiB, ways: 8 },
        { name: "L2", sizeBytes: 2 * MiB, ways: 16 },
      ],
      replacement: "plru",
    },
    costs: {
      hitNs: [2, 12],
      dramBytesPerNs: 3,
      uncachedReadNs: 25,
      uncachedWriteNs: 8,
      uncachedAccessBytes: 4,
      wcWriteBytesPerNs: 1.5,
      lineOpNs: 3,
      rangeOpNs: 40,
      setWayOpNs: 4,
    },
    maintenance: { kind: "per-line", thresholdBytes: Number.POSITIVE_INFINITY },
    coherentAttr: "uncached",
    speculativeFillRate: 1 / 32,
    forDeviceIgnoresDirection: true,
    swiotlbBytes: 64 * MiB,
    cmaBytes: 256 * MiB,
    device: {
      coherent: false,
      dmaBits: 32,
      bandwidthBytesPerNs: 2,
      setupNs: 1000,
      iommu: false,
      dmaOffset: 0,
    },
    seed: 1,
    sources: [
      "SiFive U74 core complex manual (64-byte lines, 32 KiB 8-way L1D, 2 MiB L2)",
      "arch/riscv/mm/dma-noncoherent.c (Zicbom clean/inval/flush)",
    ],
  },
};

/** A partial profile: any field may be given, nested objects merge field by field. */
export type ProfileOverrides = {
  readonly [K in keyof Profile]?: Profile[K] extends readonly unknown[]
    ? Profile[K]
    : Profile[K] extends object
      ? Partial<Profile[K]>
      : Profile[K];
};

/** Looks up a profile by name and applies overrides. Throws with the known names on a typo. */
export function resolveProfile(name: string, overrides: ProfileOverrides = {}): Profile {
  const base = PROFILES[name];
  if (base === undefined) {
    throw new RangeError(`unknown profile '${name}' (known: ${Object.keys(PROFILES).join(", ")})`);
  }
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(overrides)) {
    if (v === undefined) continue;
    const cur = out[k];
    out[k] =
      cur !== null &&
      typeof cur === "object" &&
      !Array.isArray(cur) &&
      typeof v === "object" &&
      !Array.isArray(v)
        ? { ...cur, ...v }
        : v;
  }
  return out as unknown as Profile;
}

// ---------------------------------------------------------------------------------------
// Limits: what a simulated machine may be, checked before anything is built.

/**
 * The bounds every profile field must respect. They keep a machine buildable and a run
 * finite on the host: RAM and caches are host typed arrays (RAM lazily, the outer cache
 * level's data eagerly), and a DMA or DRAM rate near zero makes one transfer take
 * longer than any run budget. Real hardware sits well inside each bound.
 */
export const PROFILE_LIMITS = {
  /** Physical addresses: 48 bits (arm64's and x86-64's usual PA size; also safe integers). */
  maxPhysAddress: 2 ** 48,
  /** RAM: 4 MiB to 1 TiB, whole pages. Untouched RAM costs the host nothing. */
  minRamBytes: 4 * MiB,
  /** What the reserved areas (swiotlb, CMA) must leave of RAM for everything else. */
  minFreeRamBytes: 1 * MiB,
  maxRamBytes: 1024 * GiB,
  /** One cache level: at most 256 MiB (four times the largest profile's 64 MiB). */
  maxCacheLevelBytes: 256 * MiB,
  /** Rates (DMA, DRAM, write-combining), bytes per ns: 1 MB/s to 10 TB/s. */
  minBytesPerNs: 1e-3,
  maxBytesPerNs: 1e4,
  /** Any fixed cost or per-operation cost, ns: at most 1 s. */
  maxCostNs: 1e9,
} as const;

/** One field of a profile outside its limits: `field` is the profile path ("ram.size"). */
export interface ProfileIssue {
  readonly field: string;
  readonly problem: string;
}

/** Bytes in the largest binary unit that divides them: "64 GiB", "1.5 MiB". */
export function formatBytes(n: number): string {
  for (const [unit, size] of [
    ["TiB", 1024 * GiB],
    ["GiB", GiB],
    ["MiB", MiB],
    ["KiB", KiB],
  ] as const) {
    if (n >= size) return `${Number((n / size).toPrecision(4))} ${unit}`;
  }
  return `${n} bytes`;
}

/**
 * Checks every size, count and rate of a profile against {@link PROFILE_LIMITS} and
 * its own consistency (reserved areas within RAM). Returns every problem, in field
 * order; an empty list means the machine can be built.
 */
export function checkProfile(p: Profile): ProfileIssue[] {
  const out: ProfileIssue[] = [];
  const L = PROFILE_LIMITS;
  const bad = (field: string, problem: string): void => {
    out.push({ field, problem });
  };
  const { base, size } = p.ram;
  if (!Number.isSafeInteger(base) || base < 0 || base % 4096 !== 0)
    bad("ram.base", `expected a page-aligned (4 KiB) address; got ${base}`);
  else if (base >= L.maxPhysAddress)
    bad("ram.base", `expected an address below 2^48 (256 TiB); got 0x${base.toString(16)}`);
  if (!Number.isSafeInteger(size) || size % 4096 !== 0)
    bad("ram.size", `expected a whole number of 4 KiB pages; got ${size}`);
  else if (size < L.minRamBytes || size > L.maxRamBytes)
    bad(
      "ram.size",
      `expected ${formatBytes(L.minRamBytes)} to ${formatBytes(L.maxRamBytes)} of RAM; got ${formatBytes(size)}`,
    );
  else if (Number.isSafeInteger(base) && base < L.maxPhysAddress && base + size > L.maxPhysAddress)
    bad("ram.size", `RAM would end above 2^48 (256 TiB): 0x${(base + size).toString(16)}`);
  p.cache.levels.forEach((lv, i) => {
    if (!(lv.ways >= 1)) bad(`cache.levels[${i}].ways`, `expected at least 1 way; got ${lv.ways}`);
    if (!(lv.sizeBytes > 0) || lv.sizeBytes > L.maxCacheLevelBytes)
      bad(
        `cache.levels[${i}].sizeBytes`,
        `expected a cache level of at most ${formatBytes(L.maxCacheLevelBytes)}; got ${formatBytes(lv.sizeBytes)}`,
      );
  });
  const ramOk = out.length === 0;
  for (const [field, v] of [
    ["swiotlbBytes", p.swiotlbBytes],
    ["cmaBytes", p.cmaBytes],
  ] as const) {
    if (!Number.isSafeInteger(v) || v < 0) bad(field, `expected a size in bytes; got ${v}`);
  }
  const reserved = p.swiotlbBytes + p.cmaBytes;
  if (ramOk && out.length === 0 && reserved + L.minFreeRamBytes > size)
    bad(
      p.cmaBytes >= p.swiotlbBytes ? "cmaBytes" : "swiotlbBytes",
      `swiotlb (${formatBytes(p.swiotlbBytes)}) and CMA (${formatBytes(p.cmaBytes)}) leave less than ${formatBytes(L.minFreeRamBytes)} of the ${formatBytes(size)} of RAM`,
    );
  const rate = (field: string, v: number): void => {
    if (!(v >= L.minBytesPerNs && v <= L.maxBytesPerNs))
      bad(
        field,
        `expected ${L.minBytesPerNs} to ${L.maxBytesPerNs} bytes per ns (1 MB/s to 10 TB/s); got ${v}`,
      );
  };
  const cost = (field: string, v: number): void => {
    if (!(v >= 0 && v <= L.maxCostNs)) bad(field, `expected 0 to 1e9 ns (1 s); got ${v}`);
  };
  rate("costs.dramBytesPerNs", p.costs.dramBytesPerNs);
  rate("costs.wcWriteBytesPerNs", p.costs.wcWriteBytesPerNs);
  p.costs.hitNs.forEach((v, i) => {
    cost(`costs.hitNs[${i}]`, v);
  });
  for (const k of [
    "uncachedReadNs",
    "uncachedWriteNs",
    "lineOpNs",
    "rangeOpNs",
    "setWayOpNs",
  ] as const)
    cost(`costs.${k}`, p.costs[k]);
  if (
    !(
      Number.isInteger(p.costs.uncachedAccessBytes) &&
      p.costs.uncachedAccessBytes >= 1 &&
      p.costs.uncachedAccessBytes <= 4096
    )
  )
    bad(
      "costs.uncachedAccessBytes",
      `expected 1 to 4096 bytes; got ${p.costs.uncachedAccessBytes}`,
    );
  if (p.arch === "x86_64" && p.forDeviceIgnoresDirection === false)
    bad(
      "forDeviceIgnoresDirection",
      "cannot take effect on x86_64: clflush writes back and invalidates whatever the direction (drivers/gpu/drm/drm_cache.c); there is no direction to respect",
    );
  const spec = p.speculativeFillRate ?? 0;
  if (!(spec >= 0 && spec <= 1))
    bad("speculativeFillRate", `expected a fraction of lines from 0 to 1; got ${spec}`);
  rate("device.bandwidthBytesPerNs", p.device.bandwidthBytesPerNs);
  cost("device.setupNs", p.device.setupNs);
  if (!(Number.isInteger(p.device.dmaBits) && p.device.dmaBits >= 24 && p.device.dmaBits <= 64))
    bad("device.dmaBits", `expected 24 to 64 bits; got ${p.device.dmaBits}`);
  return out;
}

/** Throws a RangeError naming every field of `p` outside its limits. */
export function assertProfileWithinLimits(p: Profile): void {
  const issues = checkProfile(p);
  if (issues.length > 0)
    throw new RangeError(
      `profile ${p.name}: ${issues.map((i) => `${i.field}: ${i.problem}`).join("; ")}`,
    );
}
