/**
 * struct drm_file and the DRM fd's file operations (drivers/gpu/drm/drm_file.c): the
 * per-open GEM handle table, the PRIME caches, the event queue userspace reads with
 * read(2) (drm_read: whole events only, blocking on the virtual clock unless
 * O_NONBLOCK, then EAGAIN), poll (drm_poll), and release (drm_release: framebuffers,
 * handles, the driver's postclose, master).
 */

import type { DmaBuf } from "../../../dma-buf/dma-buf.js";
import { KernelError } from "../../../errno.js";
import { O_NONBLOCK, POLLIN } from "../../../include/uapi/fcntl.js";
import { SimulationError } from "../../../machine/outcome.js";
import type { File, FileOperations } from "../../../vfs/file.js";
import type { DrmDevice } from "./drm-device.js";
import { type DrmGemObject, drmGemMmap, drmGemReleaseFile } from "./drm-gem.js";
import { drmIoctl } from "./drm-ioctl.js";
import { type DrmFramebuffer, drmFbRelease } from "./drm-mode.js";

/** Which node the file was opened on (enum drm_minor_type). */
export type DrmMinorType = "primary" | "render" | "accel";

/** EPOLLRDNORM. */
const POLLRDNORM = 0x40;
/** drm_file.event_space starts at 4 KiB. */
export const DRM_EVENT_SPACE = 4096;

/** struct drm_prime_file_private: the two directions of the per-file PRIME cache. */
export class DrmPrimeFilePrivate {
  readonly byBuf = new Map<DmaBuf, number>();
  readonly byHandle = new Map<number, DmaBuf>();
}

/** struct drm_file. */
export class DrmFile {
  /** object_idr: handle -> object. */
  readonly handles = new Map<number, DrmGemObject>();
  readonly prime = new DrmPrimeFilePrivate();
  /** Framebuffers created through this file (drm_file.fbs). */
  readonly fbs: DrmFramebuffer[] = [];
  /** Events sent and not yet read, oldest first. */
  readonly events: Uint8Array[] = [];
  /** drm_file.event_space: bytes left for reserved and queued events. */
  eventSpace = DRM_EVENT_SPACE;
  /** Processes are root in the model, so every primary client is authenticated. */
  authenticated = true;
  isMaster = false;
  /** file->driver_priv. */
  driverPriv: unknown;
  closed = false;
  /** The struct file this drm_file is the private data of. */
  file!: File<DrmFile>;

  constructor(
    readonly dev: DrmDevice,
    readonly minorType: DrmMinorType,
  ) {}

  /** drm_is_render_client(). */
  get isRenderClient(): boolean {
    return this.minorType === "render";
  }

  /** idr_alloc(&object_idr, obj, 1, 0): the lowest free handle. */
  allocHandle(obj: DrmGemObject): number {
    let h = 1;
    while (this.handles.has(h)) h++;
    this.handles.set(h, obj);
    return h;
  }

  /** drm_event_reserve_init(): takes `len` bytes of event space; ENOMEM when full. */
  reserveEvent(len: number): void {
    if (this.eventSpace < len)
      throw new KernelError("ENOMEM", "drm_event_reserve_init: the file's event space is full");
    this.eventSpace -= len;
  }

  /** drm_event_cancel_free(): gives the reservation back. */
  cancelEvent(len: number): void {
    this.eventSpace += len;
  }

  /** drm_send_event(): queues a reserved event (dropped if the file was closed meanwhile). */
  sendEvent(bytes: Uint8Array): void {
    if (this.closed) return;
    this.events.push(bytes);
  }
}

function drmFileOf(file: File): DrmFile {
  if (file.ops !== drmFops) throw new KernelError("EBADF", `${file.path} is not a DRM file`);
  return file.privateData as DrmFile;
}

/** drm_read(): as many whole events as fit in `len` bytes. */
function drmRead(file: File, len: number): Uint8Array {
  const df = drmFileOf(file);
  if (df.events.length === 0) {
    if (file.flags & O_NONBLOCK) throw new KernelError("EAGAIN", "drm_read: no event pending");
    const clock = df.dev.host.machine.clock;
    if (!clock.runUntilCondition(() => df.events.length > 0)) {
      throw new SimulationError(
        "would-block-forever",
        `drm_read on ${file.path} would block forever: nothing scheduled can ever send an event`,
      );
    }
  }
  const out: Uint8Array[] = [];
  let n = 0;
  while (df.events.length > 0) {
    const e = df.events[0]!;
    // put_back_event: an event that does not fit stays queued for the next read.
    if (e.length > len - n) break;
    df.events.shift();
    df.eventSpace += e.length;
    out.push(e);
    n += e.length;
  }
  const r = new Uint8Array(n);
  let off = 0;
  for (const e of out) {
    r.set(e, off);
    off += e.length;
  }
  return r;
}

/** drm_release(): drm_fb_release, drm_gem_release, postclose, prime cache, master. */
function drmRelease(file: File): void {
  const df = drmFileOf(file);
  const dev = df.dev;
  df.closed = true;
  if (dev.mode !== undefined) drmFbRelease(df);
  drmGemReleaseFile(df);
  dev.driver.postclose?.(df);
  if (dev.master === df) dev.master = undefined;
  dev.files.delete(df);
}

/** The DRM fd's file_operations (DEFINE_DRM_GEM_FOPS). */
export const drmFops: FileOperations = {
  name: "drm",
  release: drmRelease,
  unlockedIoctl(file, cmd, arg, current) {
    return drmIoctl(drmFileOf(file), cmd, arg, current);
  },
  mmap(file, vma) {
    drmGemMmap(drmFileOf(file), vma);
  },
  poll(file, events) {
    const df = drmFileOf(file);
    return df.events.length > 0 ? (POLLIN | POLLRDNORM) & events : 0;
  },
  read(file, len) {
    return drmRead(file, len);
  },
  showFdinfo(file) {
    const df = drmFileOf(file);
    return `drm-driver:\t${df.dev.driver.name}\ndrm-client-id:\t${df.dev.index}\n`;
  },
};
