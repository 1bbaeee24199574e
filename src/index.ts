/**
 * dmabuf: the Linux dma-buf buffer-sharing system as an executable model.
 *
 * Layers, each depending only on those above it in this list:
 * - machine: memory, CPU caches, devices, IOMMU, clock, checker shadow state
 * - dma: the kernel's DMA mapping API on that machine
 * - vfs: files, fd tables, memfd
 * - dma-buf: the framework, fences, reservations, sync_file, heaps, udmabuf
 * - kernel: one simulated kernel with processes
 * - uapi: the userspace interface (one contract, a simulated backend, typed ioctls)
 * - scenarios: runnable demonstrations built on all of it
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
export { bufinfo, type DmaBufStatus, dmaBufStatus } from "./dma-buf/debugfs.js";
export {
  DmaBuf,
  DmaBufAttachment,
  type DmaBufAttachOps,
  type DmaBufConfig,
  DmaBufCore,
  type DmaBufExportInfo,
  type DmaBufOps,
  dmaBufExport,
  dmaBufFd,
  dmaBufGet,
} from "./dma-buf/dma-buf.js";
export {
  DmaFence,
  DmaFenceCb,
  type DmaFenceOps,
  dmaFenceGetStub,
  FenceContextAllocator,
  type FenceEnv,
} from "./dma-buf/dma-fence.js";
export { DmaFenceArray } from "./dma-buf/dma-fence-array.js";
export { DmaFenceChain } from "./dma-buf/dma-fence-chain.js";
export { DmaHeap, type DmaHeapOps } from "./dma-buf/dma-heap.js";
export {
  DMA_RESV_USAGE_BOOKKEEP,
  DMA_RESV_USAGE_KERNEL,
  DMA_RESV_USAGE_READ,
  DMA_RESV_USAGE_WRITE,
  DmaResv,
  type DmaResvUsage,
} from "./dma-buf/dma-resv.js";
export { SwSyncTimeline } from "./dma-buf/sw-sync.js";
export { SyncFile } from "./dma-buf/sync-file.js";
export { ACCEL_MAJOR, accelDevicePath } from "./drivers/accel/drm-accel.js";
export {
  SimNpu,
  type SimnpuOptions,
  type SimnpuParams,
  simnpuCompute,
  simnpuOutputGeometry,
  simnpuProbe,
} from "./drivers/accel/simnpu/simnpu.js";
export {
  type ScanoutRecord,
  SimDisplay,
  type SimDisplayOptions,
  simdisplayMode,
  simdisplayProbe,
} from "./drivers/gpu/drm/simdisplay/simdisplay.js";
export {
  bt601ToXrgb,
  SimGpu,
  type SimgpuOptions,
  type SimgpuTransformParams,
  simgpuProbe,
  simgpuRowBytes,
  simgpuTransform,
} from "./drivers/gpu/drm/simgpu/simgpu.js";
export { Vgem, type VgemOptions, vgemProbe } from "./drivers/gpu/drm/vgem/vgem.js";
export { type DriverHost, driverDeviceName, freeDevnodePath } from "./drivers/host.js";
export {
  type M2mDriverOptions,
  type M2mPixFormat,
  M2mTestDevice,
} from "./drivers/media/test-drivers/m2m-common.js";
export {
  type Simenc,
  type SimencOptions,
  simencCodedFormat,
  simencDecode,
  simencEncode,
  simencProbe,
} from "./drivers/media/test-drivers/simenc.js";
export {
  VIM2M_FORMATS,
  type Vim2m,
  type Vim2mOptions,
  vim2mProbe,
  vim2mProcess,
  vim2mTryFmt,
} from "./drivers/media/test-drivers/vim2m.js";
export {
  type Vivid,
  VividCapture,
  type VividOptions,
  VividOutput,
  vividProbe,
} from "./drivers/media/test-drivers/vivid/vivid.js";
export { vividTestPattern } from "./drivers/media/test-drivers/vivid/vivid-tpg.js";
export {
  DST_QUEUE_OFF_BASE,
  V4l2M2mCtx,
  V4l2M2mDev,
  type V4l2M2mOps,
} from "./drivers/media/v4l2-core/v4l2-mem2mem.js";
export { ERRNO, type ErrnoName, errnoName, KernelError } from "./errno.js";
export * from "./include/uapi/dma-buf.js";
export * from "./include/uapi/dma-heap.js";
export * from "./include/uapi/drm.js";
export * from "./include/uapi/drm-fourcc.js";
export * from "./include/uapi/drm-mode.js";
export * from "./include/uapi/fcntl.js";
export * from "./include/uapi/ioctl.js";
export * from "./include/uapi/simenc.js";
export * from "./include/uapi/simgpu-drm.js";
export * from "./include/uapi/simnpu-accel.js";
export * from "./include/uapi/sync-file.js";
export * from "./include/uapi/udmabuf.js";
export * from "./include/uapi/vgem-drm.js";
export * from "./include/uapi/videodev2.js";
export { Kernel, type KernelOptions, SW_SYNC_PATH } from "./kernel/kernel.js";
export { Process, UserFault, type UserMapping } from "./kernel/process.js";
export { crc32, crc32Le } from "./lib/crc32.js";
export { type CacheCounters, type CacheGeometry, CpuCache } from "./machine/cache.js";
export { type ClockBudget, type Ns, type ScheduleOptions, VirtualClock } from "./machine/clock.js";
export { type CostCategory, CostLedger, type CostModel } from "./machine/cost.js";
export { Cpu, type CpuMapping, type MemAttr } from "./machine/cpu.js";
export { type DeviceConfig, DmaDevice } from "./machine/device.js";
export { IOMMU_READ, IOMMU_WRITE, IommuDomain } from "./machine/iommu.js";
export { Machine, type MachineOptions } from "./machine/machine.js";
export { BusError, PAGE_SIZE, PhysicalMemory } from "./machine/memory.js";
export { SimulationError, type SimulationErrorKind } from "./machine/outcome.js";
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
export { type PipelineHooks, runPipeline } from "./pipelines/run.js";
export * from "./pipelines/types.js";
export { renderRunHtml, renderSweepHtml } from "./report/html.js";
export { type JsonReport, toJsonReport } from "./report/json.js";
export {
  type Cheapest,
  type Crossover,
  cheapestStrategy,
  meanFrameCosts,
  rowSharingNs,
  SHARING_COST_CATEGORIES,
  SHARING_COST_DEFINITION,
  sharingNs,
  totalNs,
  wholeCacheCrossover,
} from "./report/sharing-cost.js";
export type { SweepReport, SweepRow } from "./report/sweep-types.js";
export { formatRunReport } from "./report/terminal.js";
export { toChromeTrace, traceJson } from "./report/trace.js";
export {
  defineScenario,
  loadScenarioFile,
  runScenario,
  type Scenario,
  ScenarioError,
  scenarioToSpec,
} from "./scenarios/scenario.js";
export { runStaleDataCase, runStaleDataDemo, type StaleDataCase } from "./scenarios/stale-data.js";
export { sweepCsv, sweepJson } from "./sweep/csv.js";
export { cartesianGrid, type GridPoint, parseVary, type VaryAxis } from "./sweep/grid.js";
export { mergeShards, parseShard, type ShardSpec, shardIndices } from "./sweep/shard.js";
export { runSweep, type SweepOptions, type SweepTask } from "./sweep/sweep.js";
export * as accel from "./uapi/accel.js";
export * as drm from "./uapi/drm.js";
export * as uapi from "./uapi/lib.js";
export { LinuxUapi, openLinuxUapi } from "./uapi/linux.js";
export { SimUapi } from "./uapi/sim.js";
export type { Mapping, PollRequest, Uapi, UserBuffer } from "./uapi/uapi.js";
export * as v4l2 from "./uapi/v4l2.js";
