/**
 * struct sync_file: a fence packaged for userspace, the kernel side of a sync_file fd
 * (drivers/dma-buf/sync_file.c, include/linux/sync_file.h,
 * include/uapi/linux/sync_file.h).
 *
 * A sync_file holds one fence (often a dma_fence_array from a merge). Its name is the
 * one given at merge time, or else "<driver>-<timeline><context>-<seqno>" of the fence,
 * both cut to 31 bytes (char name[32]). SYNC_IOC_FILE_INFO reports the sync_file's name
 * and status and, per leaf fence (dma_fence_unwrap), the timeline ("obj_name") and
 * driver names, status and signal timestamp; its rules: flags or pad non-zero → EINVAL;
 * num_fences 0 → only the count (and the whole fence's status) is reported; num_fences
 * smaller than the count → EINVAL. With fences reported, the status is 1 only if every
 * leaf has signalled without error, the first error or 0 otherwise. poll() reports
 * EPOLLIN once the fence has signalled; the first poll enables signalling and hooks the
 * file's wait queue to the fence.
 *
 * This is the kernel object; file descriptors and the ioctl plumbing belong to the uAPI
 * layer. Errors an ioctl would return are thrown as KernelError.
 */

import { KernelError } from "../errno.js";
import type { Ns } from "../machine/clock.js";
import { type DmaFence, DmaFenceCb, type FenceEnv } from "./dma-fence.js";
import { dmaFenceUnwrap, dmaFenceUnwrapMerge } from "./dma-fence-unwrap.js";

/** Size of the name fields of the sync_file uAPI structs (char name[32]). */
export const SYNC_NAME_LEN = 32;
/** EPOLLIN, the readiness poll() reports for a signalled sync_file. */
export const EPOLLIN = 0x1;

/**
 * strscpy(dst, src, size): `src` cut so that it and its NUL fit in `size` bytes (UTF-8,
 * never splitting a character).
 */
export function strscpy(src: string, size = SYNC_NAME_LEN): string {
  const enc = new TextEncoder();
  if (enc.encode(src).length <= size - 1) return src;
  let out = "";
  let bytes = 0;
  for (const ch of src) {
    const n = enc.encode(ch).length;
    if (bytes + n > size - 1) break;
    out += ch;
    bytes += n;
  }
  return out;
}

/** struct sync_fence_info. */
export interface SyncFenceInfo {
  /** obj_name: the fence's timeline name. */
  readonly objName: string;
  readonly driverName: string;
  /** 0 active, 1 signalled, < 0 error. */
  readonly status: number;
  readonly flags: number;
  /** Signal time in (virtual) ns, 0 while active. */
  readonly timestampNs: number;
}

/** The input fields of struct sync_file_info for SYNC_IOC_FILE_INFO. */
export interface SyncFileInfoRequest {
  readonly flags?: number;
  readonly pad?: number;
  /** How many sync_fence_info entries the caller has room for; 0 asks for the count. */
  readonly numFences: number;
}

/** struct sync_file_info as returned, with the sync_fence_info array it points to. */
export interface SyncFileInfo {
  readonly name: string;
  readonly status: number;
  readonly flags: number;
  readonly numFences: number;
  /** The entries written to sync_fence_info (empty when numFences was 0 on input). */
  readonly fenceInfo: readonly SyncFenceInfo[];
}

/** sync_fill_fence_info(). */
function fillFenceInfo(fence: DmaFence): SyncFenceInfo {
  const status = fence.getStatus();
  return {
    objName: strscpy(fence.timelineName),
    driverName: strscpy(fence.driverName),
    status,
    flags: 0,
    timestampNs: fence.isSignaled() ? (fence.timestamp ?? 0) : 0,
  };
}

/** struct sync_file and the functions of sync_file.c. */
export class SyncFile {
  readonly fence: DmaFence;
  #userName = "";
  #pollEnabled = false;
  #waitQueue: (() => void)[] = [];
  readonly #cb = new DmaFenceCb(() => this.#wakeUpAll());
  #released = false;

  private constructor(fence: DmaFence) {
    this.fence = fence;
  }

  /** sync_file_create(fence): a sync_file holding (a reference to) `fence`. */
  static create(fence: DmaFence): SyncFile {
    return new SyncFile(fence.get());
  }

  /**
   * sync_file_merge(name, a, b): a new sync_file whose fence is
   * dma_fence_unwrap_merge(a->fence, b->fence), named `name` (cut to 31 bytes).
   */
  static merge(env: FenceEnv, name: string, a: SyncFile, b: SyncFile): SyncFile {
    const file = new SyncFile(dmaFenceUnwrapMerge(env, a.fence, b.fence));
    file.#userName = strscpy(name);
    return file;
  }

  /** sync_file_get_fence(): the fence, with a new reference. */
  getFence(): DmaFence {
    return this.fence.get();
  }

  /** sync_file_get_name(): the merge name, or "driver-timeline<context>-<seqno>". */
  get name(): string {
    if (this.#userName !== "") return this.#userName;
    const f = this.fence;
    return strscpy(`${f.driverName}-${f.timelineName}${f.context}-${f.seqno}`);
  }

  /** The leaf fences, as SYNC_IOC_FILE_INFO counts them (dma_fence_unwrap_for_each). */
  leafFences(): DmaFence[] {
    return [...dmaFenceUnwrap(this.fence)];
  }

  /**
   * sync_file_ioctl_fence_info() (SYNC_IOC_FILE_INFO). Throws KernelError EINVAL for
   * non-zero flags/pad or too small a num_fences.
   */
  info(req: SyncFileInfoRequest): SyncFileInfo {
    if ((req.flags ?? 0) !== 0 || (req.pad ?? 0) !== 0) {
      throw new KernelError("EINVAL", "SYNC_IOC_FILE_INFO: flags and pad must be zero");
    }
    const leaves = this.leafFences();
    if (req.numFences === 0) {
      return {
        name: this.name,
        status: this.fence.getStatus(),
        flags: 0,
        numFences: leaves.length,
        fenceInfo: [],
      };
    }
    if (req.numFences < leaves.length) {
      throw new KernelError(
        "EINVAL",
        `SYNC_IOC_FILE_INFO: room for ${req.numFences} fences, the sync_file has ${leaves.length}`,
      );
    }
    let status = 1;
    const fenceInfo = leaves.map((f) => {
      const fi = fillFenceInfo(f);
      status = status <= 0 ? status : fi.status;
      return fi;
    });
    return { name: this.name, status, flags: 0, numFences: leaves.length, fenceInfo };
  }

  /**
   * sync_file_poll(): EPOLLIN if the fence has signalled, else 0. `wake`, if given, joins
   * the file's wait queue (poll_wait) and is called once when the fence signals. The
   * first poll enables signalling on the fence.
   */
  poll(wake?: () => void): number {
    if (this.#released) throw new Error("sync_file_poll: sync_file already released");
    if (wake !== undefined) this.#waitQueue.push(wake);
    if (!this.#pollEnabled && !this.fence.hasCallback(this.#cb)) {
      this.#pollEnabled = true;
      if (this.fence.addCallback(this.#cb) < 0) this.#wakeUpAll();
    }
    return this.fence.isSignaled() ? EPOLLIN : 0;
  }

  /** wake_up_all(&sync_file->wq). */
  #wakeUpAll(): void {
    const waiters = this.#waitQueue;
    this.#waitQueue = [];
    for (const w of waiters) w();
  }

  /**
   * sync_file_ioctl_set_deadline() (SYNC_IOC_SET_DEADLINE): dma_fence_set_deadline on
   * the fence; pad must be zero (EINVAL).
   */
  setDeadline(deadlineNs: Ns, pad = 0): void {
    if (pad !== 0) throw new KernelError("EINVAL", "SYNC_IOC_SET_DEADLINE: pad must be zero");
    this.fence.setDeadline(deadlineNs);
  }

  /** sync_file_release(): the last fput; unhooks poll and drops the fence reference. */
  release(): void {
    if (this.#released) throw new Error("sync_file_release: released twice");
    this.#released = true;
    if (this.#pollEnabled) this.fence.removeCallback(this.#cb);
    this.#waitQueue = [];
    this.fence.put();
  }
}
