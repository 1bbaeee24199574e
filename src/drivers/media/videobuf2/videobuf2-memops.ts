/**
 * What the videobuf2 allocators share (drivers/media/common/videobuf2/videobuf2-memops.c):
 * pinning a USERPTR range (vb2_create_framevec), the mmap reference counting of
 * vb2_common_vm_ops, and — the model's own addition — naming each buffer's memory for
 * the checker with advice in V4L2 terms, so a coherency bug caused by a lying cache
 * hint is reported with the flag that caused it.
 */

import { DMA_TO_DEVICE, type DmaDirection } from "../../../dma/direction.js";
import type { DmaMappingApi } from "../../../dma/mapping.js";
import type { SgTable } from "../../../dma/scatterlist.js";
import { KernelError } from "../../../errno.js";
import { V4L2_MEMORY_DMABUF } from "../../../include/uapi/videodev2.js";
import type { DmaDevice } from "../../../machine/device.js";
import type { PhysRange, ViolationKind } from "../../../machine/violations.js";
import type { Current, Vma } from "../../../vfs/file.js";
import type { Vb2Buffer } from "./videobuf2-core.js";
import { memoryName } from "./videobuf2-core.js";

/** Pinned user pages (struct frame_vector). */
export interface Vb2FrameVector {
  /** Physical address of each page, in order. */
  readonly pages: readonly number[];
  /** vb2_destroy_framevec(): unpin. */
  release(): void;
}

/**
 * vb2_create_framevec(): pins the pages behind [vaddr, vaddr+size) of the calling
 * process (pin_user_pages_fast). EFAULT when the range is not mapped, or — in the model —
 * not backed by pages a device can reach (ordinary malloc memory is host memory here;
 * use an mmap of a memfd).
 */
export function vb2CreateFramevec(
  current: Current,
  vaddr: number,
  size: number,
  write: boolean,
): Vb2FrameVector {
  if (current.pinUserPages === undefined)
    throw new KernelError("EFAULT", "USERPTR: the calling task cannot pin user pages");
  const pinned = current.pinUserPages(vaddr, size, write);
  return { pages: pinned.pages, release: () => pinned.unpin() };
}

/**
 * vb2_common_vm_ops: a user mapping holds a reference on the buffer (vm_open) and drops
 * it at munmap (vm_close), so REQBUFS(0) can orphan a mapped buffer safely.
 */
export function vb2CommonVmOpen(vma: Vma, get: () => void, put: () => void): void {
  get();
  const prev = vma.close;
  vma.close = () => {
    prev?.();
    put();
  };
}

/** Advice per violation kind, in V4L2 terms, for one buffer's memory. */
export function vb2BufferAdvice(vb: Vb2Buffer): Partial<Record<ViolationKind, string>> {
  const q = vb.queue;
  if (vb.memory === 4 /* V4L2_MEMORY_DMABUF */) {
    return {
      "stale-cpu-read":
        "V4L2_MEMORY_DMABUF: read the buffer after VIDIOC_DQBUF and bracket CPU access with DMA_BUF_IOCTL_SYNC on the dma-buf fd (the exporter does the cache maintenance)",
      "cpu-access-device-owned":
        "V4L2_MEMORY_DMABUF: the CPU touched the buffer while the importer's mapping owns it: from VIDIOC_QBUF to VIDIOC_DQBUF the driver has it, and after VIDIOC_DQBUF videobuf2 keeps the attachment mapped (Linux 6.12 __vb2_dqbuf), so the CPU has it only between DMA_BUF_IOCTL_SYNC(DMA_BUF_SYNC_START) and DMA_BUF_IOCTL_SYNC(DMA_BUF_SYNC_END) on the dma-buf fd",
      "stale-device-read":
        "V4L2_MEMORY_DMABUF: end CPU writes with DMA_BUF_IOCTL_SYNC(DMA_BUF_SYNC_END) before VIDIOC_QBUF",
    };
  }
  if (q.dmaDir === DMA_TO_DEVICE) {
    return {
      "stale-device-read":
        "the device read an output buffer whose CPU writes were still in the cache: do not set V4L2_BUF_FLAG_NO_CACHE_CLEAN on a buffer the CPU wrote (videobuf2 then skips dma_sync_sgtable_for_device at VIDIOC_QBUF)",
      "cpu-access-device-owned":
        "the CPU wrote a V4L2 output buffer between VIDIOC_QBUF and VIDIOC_DQBUF, while the driver owns it",
    };
  }
  // An MMAP buffer's pages were zeroed through the cache at VIDIOC_REQBUFS (__GFP_ZERO,
  // dma_direct_alloc_pages' memset); Linux leaves the clean to the first QBUF's prepare.
  const zeroed =
    vb.memory === 1 /* V4L2_MEMORY_MMAP */
      ? "; or the kernel zeroed the fresh buffer through the cache at VIDIOC_REQBUFS and its first VIDIOC_QBUF carried V4L2_BUF_FLAG_NO_CACHE_CLEAN, which skips the only clean videobuf2 does (vb2_dma_sg_prepare / vb2_dc_prepare): clean what the allocation zeroed, or never hint NO_CACHE_CLEAN on a buffer's first QBUF"
      : "";
  return {
    "stale-cpu-read":
      "the CPU read a capture buffer whose cache was not invalidated: do not set V4L2_BUF_FLAG_NO_CACHE_INVALIDATE on a buffer the CPU reads (videobuf2 skips dma_sync_sgtable_for_cpu at VIDIOC_DQBUF), and read it only between VIDIOC_DQBUF and the next VIDIOC_QBUF",
    "cpu-access-device-owned":
      "the CPU touched a V4L2 capture buffer the driver owns: between VIDIOC_QBUF and VIDIOC_DQBUF it is the device's, and with V4L2_BUF_FLAG_NO_CACHE_INVALIDATE set VIDIOC_DQBUF does not hand it back (videobuf2 skips dma_sync_sgtable_for_cpu)",
    "dirty-line-under-dma": `the CPU wrote a capture buffer and its dirty lines were not cleaned before the device wrote: do not write a queued buffer, and do not set V4L2_BUF_FLAG_NO_CACHE_CLEAN on a buffer the CPU wrote (videobuf2 skips dma_sync_sgtable_for_device at VIDIOC_QBUF)${zeroed}`,
    "lost-device-write": `a dirty CPU line was written back over the frame the device captured: do not write a queued capture buffer, and do not set V4L2_BUF_FLAG_NO_CACHE_CLEAN on a buffer the CPU wrote${zeroed}`,
  };
}

/**
 * Registers one plane's memory with the checker under a V4L2 label ("vivid-vid-cap
 * buffer 2 (MMAP)"), with the advice both as hints and as notes: notes are appended
 * even when a user mmap of the same pages is the innermost region.
 */
export function vb2RegisterMemory(vb: Vb2Buffer, ranges: readonly PhysRange[]): number {
  const advice = vb2BufferAdvice(vb);
  // The trace names the queue's own memory after the buffer for as long as the queue
  // has it (an imported dma-buf is named by the dma-buf framework when mapped).
  const q = vb.queue;
  if (vb.memory !== V4L2_MEMORY_DMABUF)
    q.machine.trace.nameBuffer(ranges, () => (q.bufs[vb.index] === vb ? vb.traceTrack : undefined));
  return vb.queue.machine.violations.register(
    `${vb.queue.name} buffer ${vb.index} (${memoryName(vb.memory)})`,
    ranges,
    advice,
    advice,
  );
}

/**
 * dma_get_cache_alignment(): ARCH_DMA_MINALIGN where the architecture defines it (128 on
 * arm64, the L1 line on 32-bit ARM and RISC-V), 1 on x86. USERPTR must be aligned to it.
 */
export function dmaGetCacheAlignment(arch: string, lineSize: number): number {
  if (arch === "x86_64") return 1;
  if (arch === "arm64") return 128;
  return lineSize;
}

/**
 * An importer's attachment to an exported vb2 buffer (struct vb2_dc_attachment,
 * struct vb2_dma_sg_attachment): its own copy of the buffer's table — one table cannot
 * be mapped for several devices at once — mapped for one direction at a time and kept
 * mapped until detach, as both allocators' map_dma_buf do.
 */
export class Vb2ExportAttachment {
  #dir: DmaDirection | undefined;

  constructor(
    readonly sgt: SgTable,
    /** DMA attributes of the mapping (dma-contig maps with DMA_ATTR_SKIP_CPU_SYNC). */
    readonly attrs: number,
    /** The allocator's name for error messages ("vb2-dc", "vb2-dma-sg"). */
    readonly who: string,
  ) {}

  /** map_dma_buf: the table mapped for `dir`, remapped if another direction was mapped. */
  map(api: DmaMappingApi, dev: DmaDevice, dir: DmaDirection): SgTable {
    if (this.#dir === dir) return this.sgt;
    this.unmap(api, dev);
    try {
      api.dmaMapSgtable(dev, this.sgt, dir, this.attrs);
    } catch (e) {
      if (e instanceof KernelError)
        throw new KernelError("EIO", `${this.who}: failed to map scatterlist`);
      throw e;
    }
    this.#dir = dir;
    return this.sgt;
  }

  /** The unmap done at detach (or before a remap for another direction). */
  unmap(api: DmaMappingApi, dev: DmaDevice): void {
    if (this.#dir === undefined) return;
    api.dmaUnmapSgtable(dev, this.sgt, this.#dir, this.attrs);
    this.#dir = undefined;
  }
}
