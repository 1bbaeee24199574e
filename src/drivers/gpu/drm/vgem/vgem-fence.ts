/**
 * vgem's fences (drivers/gpu/drm/vgem/vgem_fence.c): DRM_IOCTL_VGEM_FENCE_ATTACH puts an
 * unsignalled fence on a GEM object's reservation object — as a writer with
 * VGEM_FENCE_WRITE, else as a reader — and returns an id; DRM_IOCTL_VGEM_FENCE_SIGNAL
 * signals it. Each fence has its own context (seqno 1), driver "vgem", timeline
 * "unbound", and expires by itself 10 s after creation (VGEM_FENCE_TIMEOUT) on the
 * virtual clock.
 *
 * Errnos as vgem_fence.c: attach EINVAL for unknown flags or a non-zero pad, ENOENT for
 * a bad handle, EBUSY when a conflicting fence is unsignalled (a writer conflicts with
 * everything, a reader with writers: dma_resv_usage_rw); signal EINVAL for non-zero
 * flags, ENOENT for an id never handed out or already signalled through the ioctl
 * (idr_replace leaves the id allocated but empty), ETIMEDOUT for a fence that expired.
 * Closing the file signals every fence still held.
 */

import { DmaFence, type DmaFenceOps } from "../../../../dma-buf/dma-fence.js";
import {
  DMA_RESV_USAGE_READ,
  DMA_RESV_USAGE_WRITE,
  dmaResvUsageRw,
} from "../../../../dma-buf/dma-resv.js";
import { KernelError } from "../../../../errno.js";
import { VGEM_FENCE_WRITE } from "../../../../include/uapi/vgem-drm.js";
import type { ClockEvent } from "../../../../machine/clock.js";
import type { DrmFile } from "../drm-file.js";
import { drmGemLookupOrEnoent } from "../drm-gem.js";

/** VGEM_FENCE_TIMEOUT: 10 * HZ, in virtual ns. */
export const VGEM_FENCE_TIMEOUT_NS = 10_000_000_000;

const timers = new WeakMap<DmaFence, ClockEvent>();

/** vgem_fence_ops. */
const vgemFenceOps: DmaFenceOps = {
  getDriverName: () => "vgem",
  getTimelineName: () => "unbound",
  release(fence) {
    // timer_delete_sync(): an expired-or-not timer never outlives its fence.
    const t = timers.get(fence);
    if (t !== undefined) fence.clock.cancel(t);
  },
};

/** struct vgem_file's fence idr. */
export class VgemFile {
  /** id -> fence, or null once signalled through the ioctl (the id stays taken). */
  readonly fences = new Map<number, DmaFence | null>();

  /** idr_alloc(&fence_idr, fence, 1, 0): the lowest id never used. */
  alloc(fence: DmaFence): number {
    let id = 1;
    while (this.fences.has(id)) id++;
    this.fences.set(id, fence);
    return id;
  }
}

/** vgem_fence_create(): a new fence on its own context, expiring after 10 s. */
function vgemFenceCreate(file: DrmFile): DmaFence {
  const env = file.dev.host.fences;
  const fence = new DmaFence(vgemFenceOps, env.clock, env.contexts.alloc(1), 1);
  const timer = env.clock.after(VGEM_FENCE_TIMEOUT_NS, "vgem fence timeout", () => {
    fence.signal();
  });
  timers.set(fence, timer);
  return fence;
}

function vfileOf(file: DrmFile): VgemFile {
  return file.driverPriv as VgemFile;
}

/** vgem_fence_attach_ioctl(). Returns the fence id (drm_vgem_fence_attach.out_fence). */
export function vgemFenceAttach(file: DrmFile, handle: number, flags: number, pad: number): number {
  if (flags & ~VGEM_FENCE_WRITE)
    throw new KernelError(
      "EINVAL",
      `DRM_IOCTL_VGEM_FENCE_ATTACH: unknown flags 0x${flags.toString(16)}`,
    );
  if (pad !== 0) throw new KernelError("EINVAL", "DRM_IOCTL_VGEM_FENCE_ATTACH: pad must be 0");
  const obj = drmGemLookupOrEnoent(file, handle, "DRM_IOCTL_VGEM_FENCE_ATTACH");
  const fence = vgemFenceCreate(file);
  const write = (flags & VGEM_FENCE_WRITE) !== 0;
  const resv = obj.resv;
  if (!resv.testSignaled(dmaResvUsageRw(write))) {
    fence.signal();
    fence.put();
    throw new KernelError(
      "EBUSY",
      `DRM_IOCTL_VGEM_FENCE_ATTACH: a conflicting ${write ? "" : "write "}fence is still unsignalled`,
    );
  }
  resv.lock();
  try {
    resv.reserveFences(1);
    resv.addFence(fence, write ? DMA_RESV_USAGE_WRITE : DMA_RESV_USAGE_READ);
  } finally {
    resv.unlock();
  }
  return vfileOf(file).alloc(fence);
}

/** vgem_fence_signal_ioctl(). */
export function vgemFenceSignal(file: DrmFile, id: number, flags: number): void {
  if (flags !== 0) throw new KernelError("EINVAL", "DRM_IOCTL_VGEM_FENCE_SIGNAL: flags must be 0");
  const vf = vfileOf(file);
  const fence = vf.fences.get(id);
  if (fence === undefined || fence === null)
    throw new KernelError("ENOENT", `DRM_IOCTL_VGEM_FENCE_SIGNAL: no fence ${id}`);
  vf.fences.set(id, null);
  const expired = fence.isSignaled();
  fence.signal();
  fence.put();
  if (expired)
    throw new KernelError("ETIMEDOUT", `DRM_IOCTL_VGEM_FENCE_SIGNAL: fence ${id} had expired`);
}

/** vgem_fence_close(): every fence still held is signalled and released. */
export function vgemFenceClose(file: DrmFile): void {
  const vf = vfileOf(file);
  for (const f of vf.fences.values()) {
    if (f === null) continue;
    f.signal();
    f.put();
  }
  vf.fences.clear();
}
