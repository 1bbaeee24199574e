/**
 * GEM objects (drivers/gpu/drm/drm_gem.c): a reference-counted buffer object with a
 * reservation object, named per file by handles. A handle holds a reference; so does a
 * framebuffer, an mmap, a dma-buf exported from the object and a GPU job using it. The
 * object is freed at the last reference; the handle count decides when the flink name
 * and the object's cached dma-buf (obj->dma_buf) go.
 *
 * An imported object (drm_gem_prime_import) shares the dma-buf's reservation object, so
 * fences any driver adds to the buffer are seen by every device that uses it.
 */

import type { SgTable } from "../../../dma/scatterlist.js";
import type { DmaBuf, DmaBufAttachment } from "../../../dma-buf/dma-buf.js";
import { DmaResv } from "../../../dma-buf/dma-resv.js";
import { KernelError } from "../../../errno.js";
import type { CStruct } from "../../../include/uapi/struct.js";
import { PAGE_SIZE } from "../../../machine/memory.js";
import type { Vma } from "../../../vfs/file.js";
import type { DrmDevice } from "./drm-device.js";
import { DRIVER_GEM } from "./drm-driver.js";
import type { DrmFile } from "./drm-file.js";

/** struct drm_gem_object_funcs: what each kind of object (shmem, dma, imported) provides. */
export interface DrmGemObjectFuncs {
  /** free: give the backing storage back (and, for imports, drm_prime_gem_destroy). */
  free(obj: DrmGemObject): void;
  /** get_sg_table: the pages as a fresh, unmapped table (for PRIME export). */
  getSgTable?(obj: DrmGemObject): SgTable;
  /** mmap: fill `vma` (pgoff relative to the object) with pages and a cache attribute. */
  mmap?(obj: DrmGemObject, vma: Vma): void;
}

/** struct drm_gem_object. */
export class DrmGemObject<P = unknown> {
  #refs = 1;
  #freed = false;
  /** handle_count: handles in any file. */
  handleCount = 0;
  /** GEM_FLINK name, 0 if none. */
  name = 0;
  /** obj->dma_buf: the dma-buf exported from or imported into this object, cached while it has handles. */
  dmaBuf: DmaBuf | undefined;
  /** obj->import_attach and the table it was mapped with, for imported objects. */
  importAttach: DmaBufAttachment | undefined;
  importSgt: SgTable | undefined;
  /** obj->resv: its own, or the imported dma-buf's. */
  resv: DmaResv;
  /** Start page of the fake mmap offset (vma_node), once created. */
  vmaStart: number | undefined;
  /** Set when the object was created by DRM_IOCTL_MODE_CREATE_DUMB. */
  dumb = false;

  constructor(
    readonly dev: DrmDevice,
    readonly size: number,
    readonly funcs: DrmGemObjectFuncs,
    readonly priv: P,
    resv?: DmaResv,
  ) {
    this.resv = resv ?? new DmaResv(dev.host.fences);
  }

  get refcount(): number {
    return this.#refs;
  }

  get freed(): boolean {
    return this.#freed;
  }

  /** drm_gem_object_get(). */
  get(): this {
    if (this.#freed) throw new Error("drm_gem_object_get: object already freed");
    this.#refs++;
    return this;
  }

  /** drm_gem_object_put(): the last reference frees the object (drm_gem_object_free). */
  put(): void {
    if (this.#freed) throw new Error("drm_gem_object_put: object already freed");
    if (--this.#refs > 0) return;
    this.#freed = true;
    this.dev.freeMmapOffset(this);
    this.funcs.free(this);
    // drm_gem_object_release: an object's own reservation dies with it.
    if (this.importAttach === undefined) this.resv.fini();
  }
}

/** drm_gem_handle_create_tail(): a new handle in `file`, holding a reference. */
export function drmGemHandleCreate(file: DrmFile, obj: DrmGemObject): number {
  obj.get();
  obj.handleCount++;
  return file.allocHandle(obj);
}

/** drm_gem_object_lookup(): the object behind `handle`, or undefined (no new reference). */
export function drmGemObjectLookup(file: DrmFile, handle: number): DrmGemObject | undefined {
  return file.handles.get(handle);
}

/** drm_gem_object_lookup() for ioctls that answer a bad handle with ENOENT. */
export function drmGemLookupOrEnoent(file: DrmFile, handle: number, ioctl: string): DrmGemObject {
  const obj = file.handles.get(handle);
  if (obj === undefined) throw new KernelError("ENOENT", `${ioctl}: no GEM handle ${handle}`);
  return obj;
}

/**
 * drm_gem_object_release_handle(): drops the file's PRIME cache entry for the handle,
 * and at the last handle the flink name and the cached dma-buf reference
 * (drm_gem_object_handle_free, drm_gem_object_exported_dma_buf_free).
 */
function releaseHandle(file: DrmFile, handle: number, obj: DrmGemObject): void {
  const buf = file.prime.byHandle.get(handle);
  if (buf !== undefined) {
    file.prime.byHandle.delete(handle);
    file.prime.byBuf.delete(buf);
    buf.put();
  }
  if (--obj.handleCount === 0) {
    if (obj.name !== 0) {
      obj.dev.objectNames.delete(obj.name);
      obj.name = 0;
    }
    const db = obj.dmaBuf;
    if (db !== undefined) {
      obj.dmaBuf = undefined;
      db.put();
    }
  }
  obj.put();
}

/** drm_gem_handle_delete(): EINVAL for a handle the file does not have. */
export function drmGemHandleDelete(file: DrmFile, handle: number): void {
  const obj = file.handles.get(handle);
  if (obj === undefined)
    throw new KernelError("EINVAL", `drm_gem_handle_delete: no GEM handle ${handle}`);
  file.handles.delete(handle);
  releaseHandle(file, handle, obj);
}

/** drm_gem_release(): every handle of a closing file. */
export function drmGemReleaseFile(file: DrmFile): void {
  for (const [h, obj] of [...file.handles]) {
    file.handles.delete(h);
    releaseHandle(file, h, obj);
  }
}

function checkGem(dev: DrmDevice): void {
  if (!dev.hasFeature(DRIVER_GEM))
    throw new KernelError("EOPNOTSUPP", `${dev.driver.name} has no GEM`);
}

/** DRM_IOCTL_GEM_CLOSE (drm_gem_close_ioctl). */
export function drmGemCloseIoctl(dev: DrmDevice, data: CStruct, file: DrmFile): void {
  checkGem(dev);
  drmGemHandleDelete(file, data.u32(0));
}

/** DRM_IOCTL_GEM_FLINK (drm_gem_flink_ioctl): a global name; imported objects refuse (EINVAL). */
export function drmGemFlinkIoctl(dev: DrmDevice, data: CStruct, file: DrmFile): void {
  checkGem(dev);
  const obj = drmGemLookupOrEnoent(file, data.u32(0), "DRM_IOCTL_GEM_FLINK");
  if (obj.importAttach !== undefined)
    throw new KernelError("EINVAL", "DRM_IOCTL_GEM_FLINK: imported objects cannot be flinked");
  if (obj.name === 0) {
    let n = 1;
    while (dev.objectNames.has(n)) n++;
    dev.objectNames.set(n, obj);
    obj.name = n;
  }
  data.setU32(4, obj.name);
}

/** DRM_IOCTL_GEM_OPEN (drm_gem_open_ioctl): a handle for a flink name; ENOENT for none. */
export function drmGemOpenIoctl(dev: DrmDevice, data: CStruct, file: DrmFile): void {
  checkGem(dev);
  const obj = dev.objectNames.get(data.u32(0));
  if (obj === undefined)
    throw new KernelError("ENOENT", `DRM_IOCTL_GEM_OPEN: no object named ${data.u32(0)}`);
  data.setU32(4, drmGemHandleCreate(file, obj)).setU64(8, obj.size);
}

/**
 * drm_gem_mmap(): the fake offset picks the object (EINVAL if none), the file must hold
 * a handle to it (drm_vma_node_is_allowed: EACCES), the mapping must fit (EINVAL); the
 * object's mmap decides pages and cache attribute. The mapping holds a reference.
 */
export function drmGemMmap(file: DrmFile, vma: Vma): void {
  const pages = Math.ceil(vma.length / PAGE_SIZE);
  const obj = file.dev.lookupMmapOffset(vma.pgoff, pages);
  if (obj === undefined)
    throw new KernelError(
      "EINVAL",
      `drm_gem_mmap: no object at offset 0x${(vma.pgoff * PAGE_SIZE).toString(16)}`,
    );
  if (![...file.handles.values()].includes(obj))
    throw new KernelError("EACCES", "drm_gem_mmap: this file has no handle to the object");
  if (obj.size < vma.length)
    throw new KernelError(
      "EINVAL",
      `drm_gem_mmap: ${vma.length} bytes exceed the object's ${obj.size}`,
    );
  if (obj.funcs.mmap === undefined)
    throw new KernelError("EINVAL", "drm_gem_mmap: the object cannot be mapped");
  vma.pgoff -= obj.vmaStart!;
  obj.funcs.mmap(obj, vma);
  obj.get();
  vma.close = () => obj.put();
}
