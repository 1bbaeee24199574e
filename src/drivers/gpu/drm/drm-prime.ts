/**
 * PRIME: GEM objects as dma-bufs and back (drivers/gpu/drm/drm_prime.c).
 *
 * Export (drm_gem_prime_handle_to_fd) wraps the object in a dma-buf that shares its
 * reservation object and holds a reference on it; the object caches the dma-buf while
 * it has handles, and the file caches handle <-> dma-buf, so exporting twice gives the
 * same buffer. Import (drm_gem_prime_fd_to_handle) looks in the file's cache first;
 * a dma-buf this device exported itself comes back as the same object
 * (drm_gem_prime_import_dev); anything else is attached to the importer's device and
 * mapped once, for the object's whole life, and wrapped by the driver's
 * gem_prime_import_sg_table.
 *
 * The dma-buf ops are drm_gem_prime_dmabuf_ops: the mapping is made with
 * DMA_ATTR_SKIP_CPU_SYNC and there is no begin/end_cpu_access, so DMA_BUF_IOCTL_SYNC on
 * a GEM dma-buf does no cache maintenance — which is why vgem and the shmem helpers map
 * write-combined for the CPU.
 */

import { DMA_ATTR_SKIP_CPU_SYNC, DMA_BIDIRECTIONAL } from "../../../dma/direction.js";
import { type DmaBuf, type DmaBufOps, dmaBufExport, dmaBufGet } from "../../../dma-buf/dma-buf.js";
import { KernelError } from "../../../errno.js";
import { DRM_CLOEXEC, DRM_RDWR } from "../../../include/uapi/drm.js";
import { O_ACCMODE } from "../../../include/uapi/fcntl.js";
import type { CStruct } from "../../../include/uapi/struct.js";
import type { DmaDevice } from "../../../machine/device.js";
import type { Current } from "../../../vfs/file.js";
import type { DrmDevice } from "./drm-device.js";
import type { DrmFile } from "./drm-file.js";
import { type DrmGemObject, drmGemHandleCreate, drmGemLookupOrEnoent } from "./drm-gem.js";

/** drm_gem_prime_dmabuf_ops. */
export const drmGemPrimeDmabufOps: DmaBufOps<DrmGemObject> = {
  mapDmaBuf(a, dir) {
    // drm_gem_map_dma_buf: the exporter's pages, mapped for the importer without CPU sync.
    const obj = a.dmabuf.priv;
    if (obj.funcs.getSgTable === undefined)
      throw new KernelError("ENOSYS", "drm_gem_map_dma_buf: the object has no get_sg_table");
    const sgt = obj.funcs.getSgTable(obj);
    obj.dev.host.dma.dmaMapSgtable(a.dev, sgt, dir, DMA_ATTR_SKIP_CPU_SYNC);
    return sgt;
  },
  unmapDmaBuf(a, sgt, dir) {
    a.dmabuf.priv.dev.host.dma.dmaUnmapSgtable(a.dev, sgt, dir, DMA_ATTR_SKIP_CPU_SYNC);
  },
  release(buf) {
    // drm_gem_dmabuf_release: the dma-buf's reference on the object.
    buf.priv.put();
  },
  mmap(buf, vma) {
    // drm_gem_dmabuf_mmap -> obj->funcs->mmap, pgoff relative to the object.
    const obj = buf.priv;
    if (obj.funcs.mmap === undefined)
      throw new KernelError("EINVAL", "drm_gem_dmabuf_mmap: the object cannot be mapped");
    obj.funcs.mmap(obj, vma);
  },
};

/** Whether `buf` was exported by drm_gem_prime_export (of any DRM device). */
export function isDrmGemDmaBuf(buf: DmaBuf): buf is DmaBuf<DrmGemObject> {
  return buf.ops === (drmGemPrimeDmabufOps as DmaBufOps<unknown>);
}

/** drm_gem_prime_export(): a dma-buf sharing the object's reservation, holding a reference on it. */
export function drmGemPrimeExport(obj: DrmGemObject, flags: number): DmaBuf<DrmGemObject> {
  const buf = dmaBufExport(obj.dev.host.dmaBuf, {
    // DEFINE_DMA_BUF_EXPORT_INFO in drm_prime.c: exp_name is KBUILD_MODNAME, "drm".
    expName: "drm",
    ops: drmGemPrimeDmabufOps,
    size: obj.size,
    flags: flags & O_ACCMODE,
    priv: obj,
    resv: obj.resv,
  });
  obj.get();
  return buf;
}

function primeAdd(file: DrmFile, buf: DmaBuf, handle: number): void {
  buf.get();
  file.prime.byBuf.set(buf, handle);
  file.prime.byHandle.set(handle, buf);
}

/**
 * drm_gem_prime_handle_to_fd(): the cached dma-buf (file cache, the import's own
 * dma-buf, or the object's export cache) or a new export; installs a new fd. As in
 * Linux since 6.10 the fd is reserved first (get_unused_fd_flags), so a full table
 * fails with EMFILE before anything is exported or cached; put_unused_fd on a bad handle.
 */
export function drmGemPrimeHandleToFd(
  file: DrmFile,
  handle: number,
  flags: number,
  current: Current,
): number {
  const fd = current.files.getUnusedFd((flags & DRM_CLOEXEC) !== 0);
  let buf: DmaBuf;
  try {
    buf = drmGemPrimeHandleToDmabuf(file, handle, flags);
  } catch (e) {
    current.files.putUnusedFd(fd);
    throw e;
  }
  current.files.fdInstall(fd, buf.file);
  return fd;
}

/** drm_gem_prime_handle_to_dmabuf(): the dma-buf for `handle`, with a new reference. */
function drmGemPrimeHandleToDmabuf(file: DrmFile, handle: number, flags: number): DmaBuf {
  const obj = drmGemLookupOrEnoent(file, handle, "DRM_IOCTL_PRIME_HANDLE_TO_FD");
  let buf = file.prime.byHandle.get(handle);
  if (buf !== undefined) return buf.get();
  if (obj.importAttach !== undefined) {
    // Re-export the original imported object.
    buf = obj.importAttach.dmabuf.get();
  } else if (obj.dmaBuf !== undefined) {
    buf = obj.dmaBuf.get();
  } else {
    // export_and_register_object(): the object keeps a reference while it has handles.
    buf = drmGemPrimeExport(obj, flags);
    obj.dmaBuf = buf.get();
  }
  primeAdd(file, buf, handle);
  return buf;
}

/**
 * drm_gem_prime_import_dev(): a dma-buf this device exported is its own object again
 * (a GEM reference, not a dma-buf one); anything else is attached to `attachDev`,
 * mapped bidirectionally and wrapped by the driver, sharing the dma-buf's reservation.
 */
export function drmGemPrimeImportDev(
  dev: DrmDevice,
  buf: DmaBuf,
  attachDev: DmaDevice,
): DrmGemObject {
  if (isDrmGemDmaBuf(buf) && buf.priv.dev === dev) return buf.priv.get();
  const importSg = dev.driver.gemPrimeImportSgTable;
  if (importSg === undefined)
    throw new KernelError("EINVAL", `${dev.driver.name}: no gem_prime_import_sg_table`);
  const attach = buf.attach(attachDev);
  buf.get();
  let sgt: ReturnType<DmaBuf["mapAttachment"]>;
  try {
    sgt = buf.mapAttachment(attach, DMA_BIDIRECTIONAL);
  } catch (e) {
    buf.detach(attach);
    buf.put();
    throw e;
  }
  let obj: DrmGemObject;
  try {
    obj = importSg(dev, attach, sgt);
  } catch (e) {
    buf.unmapAttachment(attach, sgt, DMA_BIDIRECTIONAL);
    buf.detach(attach);
    buf.put();
    throw e;
  }
  obj.importAttach = attach;
  obj.importSgt = sgt;
  obj.resv = buf.resv;
  return obj;
}

/** drm_gem_prime_import(): import for the DRM device's own DMA device. */
export function drmGemPrimeImport(dev: DrmDevice, buf: DmaBuf): DrmGemObject {
  return drmGemPrimeImportDev(dev, buf, dev.dmaDev);
}

/** drm_prime_gem_destroy(): what an imported object's free does with its attachment. */
export function drmPrimeGemDestroy(obj: DrmGemObject): void {
  const a = obj.importAttach;
  if (a === undefined) return;
  const buf = a.dmabuf;
  if (obj.importSgt !== undefined) buf.unmapAttachment(a, obj.importSgt, DMA_BIDIRECTIONAL);
  buf.detach(a);
  buf.put();
}

/**
 * drm_gem_prime_fd_to_handle(): the file's cached handle for this dma-buf, or a new
 * import (or the device's own object) under a new handle, cached both ways.
 */
export function drmGemPrimeFdToHandle(file: DrmFile, primeFd: number, current: Current): number {
  const dev = file.dev;
  const buf = dmaBufGet(current, primeFd);
  try {
    const cached = file.prime.byBuf.get(buf);
    if (cached !== undefined) return cached;
    const obj = dev.driver.gemPrimeImport
      ? dev.driver.gemPrimeImport(dev, buf)
      : drmGemPrimeImport(dev, buf);
    if (obj.dmaBuf === undefined) obj.dmaBuf = buf.get();
    const handle = drmGemHandleCreate(file, obj);
    obj.put();
    primeAdd(file, buf, handle);
    return handle;
  } finally {
    buf.put();
  }
}

/** DRM_IOCTL_PRIME_HANDLE_TO_FD: flags only DRM_CLOEXEC | DRM_RDWR (EINVAL). */
export function drmPrimeHandleToFdIoctl(
  _dev: DrmDevice,
  data: CStruct,
  file: DrmFile,
  current: Current,
): void {
  const flags = data.u32(4);
  if (flags & ~(DRM_CLOEXEC | DRM_RDWR))
    throw new KernelError("EINVAL", `DRM_IOCTL_PRIME_HANDLE_TO_FD: flags 0x${flags.toString(16)}`);
  data.setS32(8, drmGemPrimeHandleToFd(file, data.u32(0), flags, current));
}

/** DRM_IOCTL_PRIME_FD_TO_HANDLE. */
export function drmPrimeFdToHandleIoctl(
  _dev: DrmDevice,
  data: CStruct,
  file: DrmFile,
  current: Current,
): void {
  data.setU32(0, drmGemPrimeFdToHandle(file, data.s32(8), current));
}
