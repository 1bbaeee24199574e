/**
 * dmabuf: the Linux dma-buf buffer-sharing system as an executable model.
 *
 * Layers, each depending only on those above it in this list:
 * - machine: memory, CPU caches, devices, IOMMU, clock, checker shadow state
 * - dma: the kernel's DMA mapping API on that machine
 * - scenarios: runnable demonstrations built on both
 */

export {
  DMA_ATTR_NO_KERNEL_MAPPING,
  DMA_ATTR_SKIP_CPU_SYNC,
  DMA_BIDIRECTIONAL,
  DMA_FROM_DEVICE,
  DMA_MAPPING_ERROR,
  DMA_NONE,
  DMA_TO_DEVICE,
  DmaDirection,
  directionName,
} from "./dma/direction.js";
export { type CoherentAllocation, DmaMappingApi } from "./dma/mapping.js";
export { type Scatterlist, SgTable, sgAllocTableFromPages } from "./dma/scatterlist.js";
export { ERRNO, type ErrnoName, errnoName, KernelError } from "./errno.js";
export { type CacheCounters, type CacheGeometry, CpuCache } from "./machine/cache.js";
export { type Ns, VirtualClock } from "./machine/clock.js";
export { type CostCategory, CostLedger, type CostModel } from "./machine/cost.js";
export { Cpu, type CpuMapping, type MemAttr } from "./machine/cpu.js";
export { type DeviceConfig, DmaDevice } from "./machine/device.js";
export { IOMMU_READ, IOMMU_WRITE, IommuDomain } from "./machine/iommu.js";
export { Machine, type MachineOptions } from "./machine/machine.js";
export { BusError, PAGE_SIZE, PhysicalMemory } from "./machine/memory.js";
export {
  PROFILES,
  type Profile,
  type ProfileOverrides,
  resolveProfile,
} from "./machine/profiles.js";
export {
  formatViolation,
  type Violation,
  type ViolationKind,
  ViolationLog,
} from "./machine/violations.js";
export { runStaleDataCase, runStaleDataDemo, type StaleDataCase } from "./scenarios/stale-data.js";
