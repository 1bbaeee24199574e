/**
 * struct drm_device and struct drm_driver (include/drm/drm_drv.h, drm_drv.c): one DRM
 * device with its minors — /dev/dri/cardN (primary) and, for DRIVER_RENDER drivers,
 * /dev/dri/renderD(128+N) — its debugfs directory /sys/kernel/debug/dri/<minor>/, the
 * fake-offset space for mmap (drm_vma_manager), the flink name table and, for KMS
 * drivers, the mode configuration.
 *
 * Minor numbers are handed out per kernel in probe order, as drm_minor_alloc does, one
 * range per minor type (primary 0..63, render 128..191): every device takes the next
 * card number, and only DRIVER_RENDER devices take a render number, so vgem, simgpu,
 * simdisplay and a second simgpu probed in that order are card0/renderD128,
 * card1/renderD129, card2 and card3/renderD130. A DRIVER_COMPUTE_ACCEL device
 * (drivers/accel/drm_accel.c) gets only an accel minor, /dev/accel/accelN from its own
 * range, and its debugfs directory is /sys/kernel/debug/accel/N.
 */

import type { SgTable } from "../../../dma/scatterlist.js";
import type { DmaBuf, DmaBufAttachment } from "../../../dma-buf/dma-buf.js";
import { KernelError } from "../../../errno.js";
import type { CStruct } from "../../../include/uapi/struct.js";
import type { DmaDevice } from "../../../machine/device.js";
import type { Current } from "../../../vfs/file.js";
import { File } from "../../../vfs/file.js";
import type { DriverHost } from "../../host.js";
import { DrmFile, type DrmMinorType, drmFops } from "./drm-file.js";
import type { DrmGemObject } from "./drm-gem.js";
import type { DrmModeConfig } from "./drm-mode.js";

export {
  DRIVER_ATOMIC,
  DRIVER_COMPUTE_ACCEL,
  DRIVER_GEM,
  DRIVER_MODESET,
  DRIVER_RENDER,
  DRM_AUTH,
  DRM_MASTER,
  DRM_RENDER_ALLOW,
  DRM_ROOT_ONLY,
} from "./drm-driver.js";

import { accelDevicePath } from "../../accel/drm-accel.js";
import { DRIVER_COMPUTE_ACCEL, DRIVER_RENDER } from "./drm-driver.js";

/** The first render minor (renderD128). */
export const DRM_RENDER_MINOR_BASE = 128;

/** drm_ioctl_t: the handler gets the kernel copy of the argument struct. */
export type DrmIoctlFunc = (dev: DrmDevice, data: CStruct, file: DrmFile, current: Current) => void;

/** struct drm_ioctl_desc (DRM_IOCTL_DEF / DRM_IOCTL_DEF_DRV). */
export interface DrmIoctlDesc {
  readonly cmd: number;
  readonly flags: number;
  readonly func: DrmIoctlFunc;
  readonly name: string;
}

/** The reply of a driver's dumb_create. */
export interface DrmDumbReply {
  readonly handle: number;
  readonly pitch: number;
  readonly size: number;
}

/** struct drm_driver: what a driver plugs into the core. */
export interface DrmDriver {
  readonly name: string;
  readonly desc: string;
  readonly date: string;
  readonly major: number;
  readonly minor: number;
  readonly patchlevel: number;
  /** DRIVER_* bits. */
  readonly features: number;
  /** Driver-private ioctls, index = nr - DRM_COMMAND_BASE. */
  readonly ioctls?: readonly (DrmIoctlDesc | undefined)[];
  /** drm_driver.open: per-file setup. */
  open?(file: DrmFile): void;
  /** drm_driver.postclose: per-file teardown, after the GEM handles are gone. */
  postclose?(file: DrmFile): void;
  /** drm_driver.dumb_create (args already checked by drm_mode_create_dumb). */
  dumbCreate?(file: DrmFile, width: number, height: number, bpp: number): DrmDumbReply;
  /** drm_driver.gem_prime_import_sg_table: wrap an importer's mapped table in an object. */
  gemPrimeImportSgTable?(dev: DrmDevice, attach: DmaBufAttachment, sgt: SgTable): DrmGemObject;
  /** drm_driver.gem_prime_import; the default is drm_gem_prime_import. */
  gemPrimeImport?(dev: DrmDevice, buf: DmaBuf): DrmGemObject;
}

/** DRM_FILE_PAGE_OFFSET_START on 64-bit: fake mmap offsets start at 4 GiB. */
export const DRM_FILE_PAGE_OFFSET_START = 0x10_0000;
/** DRM_FILE_PAGE_OFFSET_SIZE on 64-bit, in pages. */
export const DRM_FILE_PAGE_OFFSET_SIZE = 0xf_ffff * 256;

/** The next free minor of each type, per kernel (drm_minors_idr). */
const minorCounters = new WeakMap<DriverHost, { primary: number; render: number; accel: number }>();

/** struct drm_device. Create with {@link drmDevAlloc}, then {@link DrmDevice.register}. */
export class DrmDevice {
  /** N of cardN (the primary minor), or of accelN for an accel device. */
  readonly index: number;
  /** The device's main node: /dev/dri/cardN, or /dev/accel/accelN for DRIVER_COMPUTE_ACCEL. */
  readonly primaryPath: string;
  /** Which minor primaryPath is. */
  readonly primaryType: "primary" | "accel";
  /** /dev/dri/renderD(128+N), for DRIVER_RENDER drivers. */
  readonly renderPath: string | undefined;
  /** /sys/kernel/debug/dri/<minor>. */
  readonly debugfsRoot: string;
  /** The KMS state, for DRIVER_MODESET drivers. */
  mode: DrmModeConfig | undefined;
  /** The current DRM master (drm_master), if any. */
  master: DrmFile | undefined;
  readonly files = new Set<DrmFile>();
  /** drm_vma_offset_manager: start page -> object. */
  readonly vmaNodes = new Map<number, DrmGemObject>();
  /** object_name_idr (GEM_FLINK names). */
  readonly objectNames = new Map<number, DrmGemObject>();
  #registered = false;

  constructor(
    readonly host: DriverHost,
    readonly driver: DrmDriver,
    /** The device DMA-buf attachments are made for (drm_device.dev). */
    readonly dmaDev: DmaDevice,
  ) {
    let c = minorCounters.get(host);
    if (c === undefined) {
      c = { primary: 0, render: DRM_RENDER_MINOR_BASE, accel: 0 };
      minorCounters.set(host, c);
    }
    if (driver.features & DRIVER_COMPUTE_ACCEL) {
      // drm_dev_init: an accel device has the accel minor and no other.
      this.index = c.accel++;
      this.primaryType = "accel";
      this.primaryPath = accelDevicePath(this.index);
      this.renderPath = undefined;
      this.debugfsRoot = `/sys/kernel/debug/accel/${this.index}`;
      return;
    }
    this.index = c.primary++;
    this.primaryType = "primary";
    this.primaryPath = `/dev/dri/card${this.index}`;
    this.renderPath = driver.features & DRIVER_RENDER ? `/dev/dri/renderD${c.render++}` : undefined;
    this.debugfsRoot = `/sys/kernel/debug/dri/${this.index}`;
  }

  /** drm_core_check_feature(). */
  hasFeature(f: number): boolean {
    return (this.driver.features & f) !== 0;
  }

  /** drm_dev_register(): the minors appear in /dev/dri. */
  register(): void {
    if (this.#registered) throw new Error(`drm_dev_register: ${this.primaryPath} twice`);
    this.host.addDevnode(this.primaryPath, (flags) => this.open(this.primaryType, flags));
    if (this.renderPath !== undefined)
      this.host.addDevnode(this.renderPath, (flags) => this.open("render", flags));
    this.#registered = true;
  }

  /** drm_open(): a new drm_file; the first opener of the primary node becomes master. */
  open(type: DrmMinorType, flags: number): File<DrmFile> {
    const df = new DrmFile(this, type);
    const file = new File(
      drmFops,
      df,
      flags,
      type === "render" ? this.renderPath! : this.primaryPath,
    );
    df.file = file;
    if (type === "primary" && this.master === undefined) {
      this.master = df;
      df.isMaster = true;
    }
    this.files.add(df);
    this.driver.open?.(df);
    return file;
  }

  /** drm_gem_create_mmap_offset(): reserves a fake offset range for `obj` (idempotent). */
  createMmapOffset(obj: DrmGemObject): number {
    if (obj.vmaStart === undefined) {
      obj.vmaStart = this.#bestFitVmaHole(Math.ceil(obj.size / 4096));
      this.vmaNodes.set(obj.vmaStart, obj);
    }
    return obj.vmaStart * 4096;
  }

  /**
   * drm_vma_offset_add() -> drm_mm_insert_node() (DRM_MM_INSERT_BEST): the smallest free
   * range of the offset space that fits, at its low end (the lowest such range on a
   * tie), so offsets freed with their objects are used again.
   */
  #bestFitVmaHole(pages: number): number {
    const nodes = [...this.vmaNodes].map(([start, o]) => ({
      start,
      end: start + Math.ceil(o.size / 4096),
    }));
    nodes.sort((a, b) => a.start - b.start);
    let best: { start: number; size: number } | undefined;
    let cursor = DRM_FILE_PAGE_OFFSET_START;
    const consider = (start: number, end: number): void => {
      const size = end - start;
      if (size >= pages && (best === undefined || size < best.size)) best = { start, size };
    };
    for (const n of nodes) {
      consider(cursor, n.start);
      cursor = n.end;
    }
    consider(cursor, DRM_FILE_PAGE_OFFSET_START + DRM_FILE_PAGE_OFFSET_SIZE);
    if (best === undefined)
      throw new KernelError("ENOSPC", "drm_vma_offset_add: the fake mmap offset space is full");
    return best.start;
  }

  /** drm_vma_offset_lookup_locked(): the object whose range holds [pgoff, pgoff+pages). */
  lookupMmapOffset(pgoff: number, pages: number): DrmGemObject | undefined {
    for (const [start, obj] of this.vmaNodes) {
      const n = Math.ceil(obj.size / 4096);
      if (pgoff >= start && pgoff + pages <= start + n) return obj;
    }
    return undefined;
  }

  /** drm_gem_free_mmap_offset(). */
  freeMmapOffset(obj: DrmGemObject): void {
    if (obj.vmaStart !== undefined) this.vmaNodes.delete(obj.vmaStart);
    obj.vmaStart = undefined;
  }
}
