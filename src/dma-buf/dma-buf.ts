/**
 * The dma-buf framework (drivers/dma-buf/dma-buf.c, include/linux/dma-buf.h,
 * Documentation/driver-api/dma-buf.rst).
 *
 * An exporter wraps its buffer in a DmaBuf with a set of ops; the buffer is a file, so
 * it travels as an fd and lives as long as a reference does. Importers attach their
 * device and map the attachment to get a scatter-gather table of addresses their device
 * can use; the CPU brackets its access with begin/end_cpu_access so the exporter can do
 * the cache maintenance. Implicit synchronisation lives in the buffer's reservation
 * object (dma_resv).
 *
 * Errors that Linux returns as ERR_PTR/negative errno are thrown as KernelError; the
 * WARN_ON() cases are also reported to the checker as api-misuse, because in a running
 * kernel they are a splat in dmesg that a driver author must act on.
 */

import type { DmaDirection } from "../dma/direction.js";
import {
  DMA_BIDIRECTIONAL,
  DMA_FROM_DEVICE,
  DMA_TO_DEVICE,
  directionName,
} from "../dma/direction.js";
import type { SgTable } from "../dma/scatterlist.js";
import { ensure, KernelError } from "../errno.js";
import {
  DMA_BUF_IOCTL_EXPORT_SYNC_FILE,
  DMA_BUF_IOCTL_IMPORT_SYNC_FILE,
  DMA_BUF_IOCTL_SYNC,
  DMA_BUF_NAME_LEN,
  DMA_BUF_SET_NAME_A,
  DMA_BUF_SET_NAME_B,
  DMA_BUF_SYNC_END,
  DMA_BUF_SYNC_READ,
  DMA_BUF_SYNC_RW,
  DMA_BUF_SYNC_VALID_FLAGS_MASK,
  DMA_BUF_SYNC_WRITE,
  SIZEOF_DMA_BUF_SYNC,
  SIZEOF_DMA_BUF_SYNC_FILE,
} from "../include/uapi/dma-buf.js";
import {
  O_ACCMODE,
  O_CLOEXEC,
  O_NONBLOCK,
  POLLIN,
  POLLOUT,
  SEEK_END,
  SEEK_SET,
} from "../include/uapi/fcntl.js";
import { CStruct } from "../include/uapi/struct.js";
import type { CpuMapping } from "../machine/cpu.js";
import type { DmaDevice } from "../machine/device.js";
import { flipDirection, injectFault } from "../machine/fault-inject.js";
import type { Machine } from "../machine/machine.js";
import { PAGE_SIZE } from "../machine/memory.js";
import type { PhysRange } from "../machine/violations.js";
import type { Current, FileOperations, Vma } from "../vfs/file.js";
import { File } from "../vfs/file.js";
import { MNT_ID } from "../vfs/mount.js";
import {
  type DmaFence,
  dmaFenceGetStub,
  type FenceEnv,
  MAX_SCHEDULE_TIMEOUT,
} from "./dma-fence.js";
import { dmaFenceUnwrap } from "./dma-fence-unwrap.js";
import {
  DMA_RESV_USAGE_KERNEL,
  DMA_RESV_USAGE_READ,
  DMA_RESV_USAGE_WRITE,
  DmaResv,
  dmaResvUsageRw,
} from "./dma-resv.js";
import { SyncFile } from "./sync-file.js";
import { syncFileFdReply, syncFileGetFence } from "./sync-file-fd.js";

/**
 * The exporter's operations (struct dma_buf_ops). `mapDmaBuf`, `unmapDmaBuf` and
 * `release` are mandatory; `pin` and `unpin` come as a pair and make the exporter
 * dynamic (it may move the buffer while nobody has it pinned).
 */
export interface DmaBufOps<P = unknown> {
  /** The core keeps the first mapping per attachment and hands it out again (cache_sgt_mapping). */
  readonly cacheSgtMapping?: boolean;
  attach?(buf: DmaBuf<P>, attach: DmaBufAttachment<P>): void;
  detach?(buf: DmaBuf<P>, attach: DmaBufAttachment<P>): void;
  pin?(attach: DmaBufAttachment<P>): void;
  unpin?(attach: DmaBufAttachment<P>): void;
  mapDmaBuf(attach: DmaBufAttachment<P>, dir: DmaDirection): SgTable;
  unmapDmaBuf(attach: DmaBufAttachment<P>, sgt: SgTable, dir: DmaDirection): void;
  release(buf: DmaBuf<P>): void;
  beginCpuAccess?(buf: DmaBuf<P>, dir: DmaDirection): void;
  endCpuAccess?(buf: DmaBuf<P>, dir: DmaDirection): void;
  beginCpuAccessPartial?(buf: DmaBuf<P>, dir: DmaDirection, offset: number, len: number): void;
  endCpuAccessPartial?(buf: DmaBuf<P>, dir: DmaDirection, offset: number, len: number): void;
  mmap?(buf: DmaBuf<P>, vma: Vma): void;
  vmap?(buf: DmaBuf<P>): CpuMapping;
  vunmap?(buf: DmaBuf<P>, map: CpuMapping): void;
}

/** The importer's operations for a dynamic attachment (struct dma_buf_attach_ops). */
export interface DmaBufAttachOps<P = unknown> {
  readonly allowPeer2peer?: boolean;
  /** The exporter is about to move the buffer: drop mappings, map again before use. */
  moveNotify(attach: DmaBufAttachment<P>): void;
}

/** struct dma_buf_export_info (DEFINE_DMA_BUF_EXPORT_INFO fills exp_name with the module name). */
export interface DmaBufExportInfo<P> {
  readonly expName: string;
  readonly ops: DmaBufOps<P>;
  readonly size: number;
  /** File flags for the buffer's file (O_ACCMODE, O_NONBLOCK kept; O_CLOEXEC is per fd). */
  readonly flags: number;
  readonly priv: P;
  /** Share a reservation object with the exporter's own buffer object (GEM, TTM). */
  readonly resv?: DmaResv;
}

/** Kernel build options that change dma-buf behaviour. */
export interface DmaBufConfig {
  /** CONFIG_DMABUF_MOVE_NOTIFY: dynamic exporters are not pinned by mapping. Default off, as in most distributions. */
  readonly moveNotify: boolean;
}

/**
 * The framework's global state (db_list, the dmabuf pseudo filesystem's inode numbers),
 * owned by one simulated kernel so two machines in one process never share it.
 */
export class DmaBufCore {
  readonly #list = new Set<DmaBuf>();
  #ino = 0;
  readonly config: DmaBufConfig;

  constructor(
    readonly machine: Machine,
    readonly fences: FenceEnv,
    config: Partial<DmaBufConfig> = {},
  ) {
    this.config = { moveNotify: false, ...config };
  }

  /** Live buffers, oldest first (debugfs walks db_list newest first; we sort for reports). */
  get buffers(): readonly DmaBuf[] {
    return [...this.#list];
  }

  /** @internal */
  _add(buf: DmaBuf): number {
    this.#list.add(buf);
    return ++this.#ino;
  }

  /** @internal dma_buf_file_release(): off db_list. */
  _remove(buf: DmaBuf): void {
    this.#list.delete(buf);
  }

  /** Reports a WARN_ON-class misuse to the checker. */
  warn(agent: string, message: string, hint: string, phys = -1, len = 0): void {
    this.machine.violations.report({
      kind: "api-misuse",
      api: "dma-buf",
      time: this.machine.now,
      agent,
      phys,
      len,
      message,
      hint,
    });
  }
}

/** dma_buf_attachment_is_dynamic(). */
export function dmaBufAttachmentIsDynamic(attach: DmaBufAttachment): boolean {
  return attach.importerOps !== undefined;
}

/** dma_buf_is_dynamic(): the exporter can move the buffer (it has pin/unpin). */
export function dmaBufIsDynamic(buf: DmaBuf): boolean {
  return buf.ops.pin !== undefined;
}

/** struct dma_buf_attachment: one device's view of a buffer. */
export class DmaBufAttachment<P = unknown> {
  /** The exporter's per-attachment data (attach->priv). */
  priv: unknown = undefined;
  /** The cached mapping, when the core keeps one (attach->sgt). */
  sgt: SgTable | undefined;
  dir: DmaDirection = DMA_BIDIRECTIONAL;
  /** Mappings handed out and not yet unmapped (for leak reports). */
  liveMappings = 0;
  /** Set once detached; later use is misuse. */
  detached = false;

  constructor(
    readonly dmabuf: DmaBuf<P>,
    readonly dev: DmaDevice,
    readonly importerOps: DmaBufAttachOps<P> | undefined,
    readonly importerPriv: unknown,
  ) {}

  get peer2peer(): boolean {
    return this.importerOps?.allowPeer2peer ?? false;
  }
}

/** struct dma_buf. Create with {@link dmaBufExport}. */
export class DmaBuf<P = unknown> {
  readonly file: File<DmaBuf<P>>;
  readonly resv: DmaResv;
  /** The exporter's private data (dmabuf->priv). */
  readonly priv: P;
  readonly ops: DmaBufOps<P>;
  readonly size: number;
  readonly expName: string;
  /** Inode number in the dmabuf pseudo filesystem, unique per buffer. */
  readonly ino: number;
  /** Set by DMA_BUF_SET_NAME; shown in debugfs and fdinfo. */
  name: string | undefined;
  readonly attachments: DmaBufAttachment<P>[] = [];
  /**
   * DMA_BUF_IOCTL_SYNC brackets seen on this buffer: STARTs, ENDs, and per fd
   * ("pid:fd") the direction of the START still open. Each fd brackets on its own: two
   * fds of one buffer (two processes, or a program holding an exported and an imported
   * fd) may each have a bracket open. The bracket checks (libdrmtap issue 43: two STARTs
   * and one END per frame).
   */
  readonly cpuAccessBrackets: {
    starts: number;
    ends: number;
    readonly open: Map<string, DmaDirection>;
  } = {
    starts: 0,
    ends: 0,
    open: new Map(),
  };
  /** Every DMA_BUF_IOCTL_SYNC on the buffer, in order, with its fd (the reports' per-fd, per-frame balance view). */
  readonly cpuAccessLog: {
    readonly time: number;
    readonly end: boolean;
    readonly dir: DmaDirection;
    /** The fd the ioctl was made on (-1 when not known), and the process. */
    readonly fd: number;
    readonly pid: number;
  }[] = [];
  #vmapCount = 0;
  #vmapPtr: CpuMapping | undefined;
  /** The buffer's pages in the trace's name registry (when tracing), for the DMA API and CPU events. */
  #tracePages: number | undefined;
  /** Key of the CPU-access bracket's ownership span. */
  readonly #cpuAccess = {};
  /** The reservation object is the buffer's own, not the exporter's (dmabuf->resv == &dmabuf[1]). */
  readonly #ownsResv: boolean;

  /** @internal use dmaBufExport(). */
  constructor(
    readonly core: DmaBufCore,
    info: DmaBufExportInfo<P>,
  ) {
    this.priv = info.priv;
    this.ops = info.ops;
    this.size = info.size;
    this.expName = info.expName;
    this.resv = info.resv ?? new DmaResv(core.fences);
    this.#ownsResv = info.resv === undefined;
    this.ino = core._add(this as DmaBuf);
    this.file = new File(dmaBufFops, this, info.flags & (O_ACCMODE | O_NONBLOCK), "dmabuf");
    // dma_buf_getfile(): an inode of dma_buf_mnt numbered by the dmabuf_inode counter.
    this.file.mntId = MNT_ID.dmabuf;
    this.file.ino = this.ino;
  }

  /** The buffer's track in a trace: its DMA_BUF_SET_NAME name, else "dmabuf" and its inode. */
  get traceTrack(): string {
    return this.name ?? `dmabuf${this.ino}`;
  }

  /** Tells the trace which pages are this buffer's (learnt from a map or an mmap). */
  #nameInTrace(ranges: readonly PhysRange[]): void {
    const trace = this.core.machine.trace;
    if (!trace.enabled || ranges.length === 0) return;
    if (this.#tracePages !== undefined) trace.forgetBuffer(this.#tracePages);
    this.#tracePages = trace.nameBuffer(ranges, () => this.traceTrack);
  }

  /** The CPU holds the buffer between begin_cpu_access and end_cpu_access: a span on its track. */
  #traceCpuAccess(dir: DmaDirection | undefined): void {
    const trace = this.core.machine.trace;
    if (!trace.enabled) return;
    const now = this.core.machine.now;
    if (dir === undefined) trace.disown(this.#cpuAccess, now);
    else
      trace.own(this.#cpuAccess, "cpu access", now, () => this.traceTrack, {
        dir: directionName(dir),
      });
  }

  get vmappingCounter(): number {
    return this.#vmapCount;
  }

  /** dma_buf_get()'s reference, for kernel users: get_file(). */
  get(): this {
    this.file.get();
    return this;
  }

  /** dma_buf_put(): drops a reference; the last one releases the buffer. */
  put(): void {
    this.file.put();
  }

  /**
   * dma_buf_dynamic_attach() / dma_buf_attach(): adds `dev` to the buffer's attachments.
   * When exactly one side is dynamic the mapping is made now and cached, as Linux does
   * to keep the reservation lock out of the static side's way.
   */
  attach(
    dev: DmaDevice,
    importerOps?: DmaBufAttachOps<P>,
    importerPriv?: unknown,
  ): DmaBufAttachment<P> {
    if (importerOps !== undefined && typeof importerOps.moveNotify !== "function") {
      throw new KernelError("EINVAL", "dma_buf_dynamic_attach: importer ops without move_notify");
    }
    const a = new DmaBufAttachment<P>(this, dev, importerOps, importerPriv);
    this.ops.attach?.(this, a);
    this.resv.lock();
    this.attachments.push(a);
    this.resv.unlock();
    if (dmaBufAttachmentIsDynamic(a) !== dmaBufIsDynamic(this)) {
      const dynamicExporter = dmaBufIsDynamic(this);
      if (dynamicExporter) this.resv.lock();
      try {
        if (dynamicExporter) this.ops.pin!(a);
        try {
          a.sgt = this.#mapInternal(a, DMA_BIDIRECTIONAL);
          a.dir = DMA_BIDIRECTIONAL;
        } catch (e) {
          if (dynamicExporter) this.ops.unpin!(a);
          throw e;
        }
      } catch (e) {
        if (dynamicExporter) this.resv.unlock();
        this.detach(a);
        throw e;
      }
      if (dynamicExporter) this.resv.unlock();
    }
    return a;
  }

  /** dma_buf_detach(): unmaps a cached mapping, removes the attachment. */
  detach(a: DmaBufAttachment<P>): void {
    if (a.dmabuf !== this || a.detached) {
      this.core.warn(
        a.dev.name,
        "dma_buf_detach: attachment is not attached to this buffer",
        "detach each attachment once, from the buffer it was made on",
      );
      return;
    }
    if (a.liveMappings > 0) {
      this.core.warn(
        a.dev.name,
        `dma_buf_detach: ${a.dev.name} detaches with ${a.liveMappings} mapping(s) still live`,
        "call dma_buf_unmap_attachment() for every dma_buf_map_attachment() before dma_buf_detach()",
      );
    }
    if (a.sgt !== undefined) {
      const dyn = dmaBufIsDynamic(this);
      if (dyn) this.resv.lock();
      this.ops.unmapDmaBuf(a, a.sgt, a.dir);
      a.sgt = undefined;
      if (dyn) {
        this.ops.unpin!(a);
        this.resv.unlock();
      }
    }
    this.resv.lock();
    this.attachments.splice(this.attachments.indexOf(a), 1);
    this.resv.unlock();
    this.ops.detach?.(this, a);
    a.detached = true;
  }

  /** dma_buf_pin(): dynamic importers only, reservation lock held. */
  pin(a: DmaBufAttachment<P>): void {
    this.#warnNotDynamic(a, "dma_buf_pin");
    this.resv.assertHeld("dma_buf_pin");
    this.ops.pin?.(a);
  }

  /** dma_buf_unpin(). */
  unpin(a: DmaBufAttachment<P>): void {
    this.#warnNotDynamic(a, "dma_buf_unpin");
    this.resv.assertHeld("dma_buf_unpin");
    this.ops.unpin?.(a);
  }

  /**
   * dma_buf_map_attachment(): the buffer's pages mapped for the attached device, as a
   * table of DMA addresses. EBUSY when a cached mapping exists in another direction.
   */
  mapAttachment(a: DmaBufAttachment<P>, dir: DmaDirection): SgTable {
    this.#checkAttached(a, "dma_buf_map_attachment");
    if (dmaBufAttachmentIsDynamic(a)) this.resv.assertHeld("dma_buf_map_attachment");
    if (a.sgt !== undefined) {
      if (a.dir !== dir && a.dir !== DMA_BIDIRECTIONAL) {
        throw new KernelError(
          "EBUSY",
          `dma_buf_map_attachment: ${a.dev.name} has a cached mapping for another direction`,
        );
      }
      return a.sgt;
    }
    const pinHere = dmaBufIsDynamic(this) && !this.core.config.moveNotify;
    if (dmaBufIsDynamic(this)) this.resv.assertHeld("dma_buf_map_attachment");
    if (pinHere) this.ops.pin!(a);
    let sgt: SgTable;
    try {
      sgt = this.#mapInternal(a, dir);
    } catch (e) {
      if (pinHere) this.ops.unpin!(a);
      throw e;
    }
    if (this.ops.cacheSgtMapping) {
      a.sgt = sgt;
      a.dir = dir;
    } else {
      a.liveMappings++;
    }
    if (this.core.machine.trace.enabled) {
      this.#nameInTrace(
        sgt.sgl.slice(0, sgt.origNents).map((e) => ({ phys: e.page + e.offset, len: e.length })),
      );
      this.core.machine.trace.instant(
        this.traceTrack,
        "dma-buf",
        "dma_buf_map_attachment",
        this.core.machine.now,
        { dev: a.dev.name, dir: directionName(dir) },
      );
    }
    return sgt;
  }

  /** dma_buf_unmap_attachment(). A cached mapping stays until detach. */
  unmapAttachment(a: DmaBufAttachment<P>, sgt: SgTable, dir: DmaDirection): void {
    this.#checkAttached(a, "dma_buf_unmap_attachment");
    if (dmaBufAttachmentIsDynamic(a)) this.resv.assertHeld("dma_buf_unmap_attachment");
    if (a.sgt === sgt) return;
    if (a.liveMappings === 0) {
      this.core.warn(
        a.dev.name,
        `dma_buf_unmap_attachment: ${a.dev.name} unmaps a table it has no live mapping for`,
        "unmap exactly the table dma_buf_map_attachment() returned, once",
      );
      return;
    }
    a.liveMappings--;
    this.ops.unmapDmaBuf(a, sgt, dir);
    if (this.core.machine.trace.enabled)
      this.core.machine.trace.instant(
        this.traceTrack,
        "dma-buf",
        "dma_buf_unmap_attachment",
        this.core.machine.now,
        { dev: a.dev.name, dir: directionName(dir) },
      );
    if (dmaBufIsDynamic(this) && !this.core.config.moveNotify) this.ops.unpin!(a);
  }

  /** dma_buf_move_notify(): tells every dynamic importer to drop its mappings. */
  moveNotify(): void {
    this.resv.assertHeld("dma_buf_move_notify");
    for (const a of this.attachments) a.importerOps?.moveNotify(a);
  }

  /**
   * dma_buf_begin_cpu_access(): the exporter makes the buffer coherent for the CPU in
   * `dir`, then the core waits for the implicit fences (writers for a read, everyone
   * for a write).
   */
  beginCpuAccess(dir: DmaDirection): void {
    this.#traceCpuAccess(dir);
    if (this.core.machine.trace.enabled)
      this.core.machine.trace.instant(
        this.traceTrack,
        "dma-buf",
        "dma_buf_begin_cpu_access",
        this.core.machine.now,
        { dir: directionName(dir) },
      );
    this.ops.beginCpuAccess?.(this, dir);
    this.#waitImplicit(dir);
  }

  /** dma_buf_begin_cpu_access_partial() (Android common kernel): only [offset, offset+len). */
  beginCpuAccessPartial(dir: DmaDirection, offset: number, len: number): void {
    this.#traceCpuAccess(dir);
    this.ops.beginCpuAccessPartial?.(this, dir, offset, len);
    this.#waitImplicit(dir);
  }

  /** dma_buf_end_cpu_access(): the exporter hands the CPU's writes back to the devices. */
  endCpuAccess(dir: DmaDirection): void {
    this.ops.endCpuAccess?.(this, dir);
    if (this.core.machine.trace.enabled)
      this.core.machine.trace.instant(
        this.traceTrack,
        "dma-buf",
        "dma_buf_end_cpu_access",
        this.core.machine.now,
        { dir: directionName(dir) },
      );
    this.#traceCpuAccess(undefined);
  }

  /** dma_buf_end_cpu_access_partial(). */
  endCpuAccessPartial(dir: DmaDirection, offset: number, len: number): void {
    this.ops.endCpuAccessPartial?.(this, dir, offset, len);
    this.#traceCpuAccess(undefined);
  }

  /**
   * dma_buf_mmap(): sets up `vma` on the buffer from page `pgoff`. EINVAL without an
   * exporter mmap or past the end; EOVERFLOW when pgoff + pages wraps.
   */
  mmap(vma: Vma, pgoff: number): void {
    ensure(
      this.ops.mmap !== undefined,
      "EINVAL",
      `dma_buf_mmap: exporter ${this.expName} has no mmap`,
    );
    const pages = Math.ceil(vma.length / PAGE_SIZE);
    ensure(pgoff + pages <= Number.MAX_SAFE_INTEGER, "EOVERFLOW", "dma_buf_mmap: offset overflows");
    ensure(
      pgoff + pages <= Math.floor(this.size / PAGE_SIZE),
      "EINVAL",
      `dma_buf_mmap: pages ${pgoff}..${pgoff + pages} exceed the buffer's ${this.size} bytes`,
    );
    if (vma.file !== this.file) {
      this.file.get();
      vma.file.put();
      vma.file = this.file;
    }
    vma.pgoff = pgoff;
    this.resv.lock();
    try {
      this.ops.mmap(this, vma);
    } finally {
      this.resv.unlock();
    }
    this.#nameInTrace(vma.ranges);
  }

  /**
   * dma_buf_vmap(): a kernel virtual mapping of the whole buffer, reference counted so
   * the exporter maps once. EINVAL when the exporter has no vmap.
   */
  vmap(): CpuMapping {
    ensure(
      this.ops.vmap !== undefined,
      "EINVAL",
      `dma_buf_vmap: exporter ${this.expName} has no vmap`,
    );
    if (this.#vmapCount > 0) {
      this.#vmapCount++;
      return this.#vmapPtr!;
    }
    this.resv.lock();
    try {
      this.#vmapPtr = this.ops.vmap(this);
    } finally {
      this.resv.unlock();
    }
    this.#vmapCount = 1;
    return this.#vmapPtr;
  }

  /** dma_buf_vunmap(): the exporter unmaps when the count drops to zero. */
  vunmap(map: CpuMapping): void {
    if (this.#vmapCount === 0 || map !== this.#vmapPtr) {
      // BUG_ON() in Linux: the kernel would oops.
      throw new KernelError("EINVAL", "dma_buf_vunmap: BUG: not the buffer's live vmap");
    }
    if (--this.#vmapCount === 0) {
      this.resv.lock();
      try {
        this.ops.vunmap?.(this, map);
      } finally {
        this.resv.unlock();
      }
      this.#vmapPtr = undefined;
    }
  }

  /** DMA_BUF_SET_NAME (dma_buf_set_name): any time, up to DMA_BUF_NAME_LEN-1 bytes. */
  setName(name: string): void {
    this.name = name;
  }

  /** dma_buf_export_sync_file(): the fences a reader (or writer) would wait for, as one fence. */
  exportFence(write: boolean): DmaFence {
    return this.resv.getSingleton(dmaResvUsageRw(write)) ?? dmaFenceGetStub(this.core.fences);
  }

  /** The per-file release: called once the last reference goes (dma_buf_release). */
  _release(): void {
    this.core._remove(this as DmaBuf);
    if (this.attachments.length > 0) {
      this.core.warn(
        this.attachments[0]!.dev.name,
        `dma_buf_release: ${this.describe()} freed with ${this.attachments.length} attachment(s)`,
        "dma_buf_detach() every attachment before dropping the last reference",
      );
    }
    if (this.#vmapCount > 0)
      throw new Error(`dma_buf_release: BUG: ${this.describe()} still vmapped`);
    this.ops.release(this);
    if (this.#tracePages !== undefined) this.core.machine.trace.forgetBuffer(this.#tracePages);
    // dma_buf_release(): an embedded reservation object dies with the buffer and drops
    // its fences; one shared with the exporter's object is the exporter's to finish.
    if (this.#ownsResv) this.resv.fini();
  }

  /**
   * The CPU is about to read (or write) the buffer through an mmap: every fence it must
   * wait for should have signalled, the writers' for a read, every job's for a write.
   * Linux does not check (userspace waits: DMA_BUF_IOCTL_SYNC(START) waits on the
   * implicit fences, dma_buf_begin_cpu_access -> dma_resv_wait_timeout; or poll() on the
   * dma-buf or on a sync_file from DMA_BUF_IOCTL_EXPORT_SYNC_FILE); the model reports an
   * access that did not, because what it sees is the memory before the job.
   */
  checkCpuAccessFences(write: boolean, label: string): void {
    const usage = write ? DMA_RESV_USAGE_READ : DMA_RESV_USAGE_WRITE;
    let pending: DmaFence | undefined;
    for (const e of this.resv.fencesUnlocked(usage)) {
      pending = e.fence;
      break;
    }
    if (pending === undefined) return;
    const m = this.core.machine;
    m.violations.report({
      kind: "cpu-access-before-fence",
      time: m.now,
      agent: "cpu",
      phys: -1,
      len: 0,
      message: `the CPU ${write ? "wrote" : "read"} ${this.name ?? this.expName} (${this.describe()}) through ${label} before the fence of the job ${write ? "using" : "writing"} it signalled (${pending.driverName} ${pending.timelineName} seq ${pending.seqno}): ${write ? "the job may still read the old bytes or read torn data" : "it read what the buffer held before the job wrote it"}`,
      hint: `wait for the job before touching the buffer: DMA_BUF_IOCTL_SYNC(DMA_BUF_SYNC_START) waits on the buffer's implicit fences (dma_resv), or take them as a sync_file with DMA_BUF_IOCTL_EXPORT_SYNC_FILE (or use the job's out-fence) and poll() it before the access`,
    });
  }

  describe(): string {
    return `dma-buf ${this.ino} (${this.expName}${this.name ? `:${this.name}` : ""}, ${this.size} bytes)`;
  }

  #mapInternal(a: DmaBufAttachment<P>, dir: DmaDirection): SgTable {
    const sgt = this.ops.mapDmaBuf(a, dir);
    if (!dmaBufAttachmentIsDynamic(a)) {
      // Static importers cannot wait themselves: the core waits for the kernel fences (moves).
      const r = this.resv.waitTimeout(DMA_RESV_USAGE_KERNEL, true, MAX_SCHEDULE_TIMEOUT);
      if (r < 0) {
        this.ops.unmapDmaBuf(a, sgt, dir);
        throw new KernelError(
          "EINTR",
          "dma_buf_map_attachment: interrupted waiting for kernel fences",
        );
      }
    }
    return sgt;
  }

  #waitImplicit(dir: DmaDirection): void {
    const write = dir === DMA_BIDIRECTIONAL || dir === DMA_TO_DEVICE;
    const r = this.resv.waitTimeout(dmaResvUsageRw(write), true, MAX_SCHEDULE_TIMEOUT);
    if (r < 0) throw new KernelError("EINTR", "dma_buf_begin_cpu_access: wait interrupted");
  }

  #checkAttached(a: DmaBufAttachment<P>, fn: string): void {
    if (a.dmabuf !== this || a.detached) {
      throw new KernelError(
        "EINVAL",
        `${fn}: the attachment is not attached to ${this.describe()}`,
      );
    }
  }

  #warnNotDynamic(a: DmaBufAttachment<P>, fn: string): void {
    if (!dmaBufAttachmentIsDynamic(a)) {
      this.core.warn(
        a.dev.name,
        `${fn}: ${a.dev.name} is not a dynamic importer`,
        "only importers attached with dma_buf_dynamic_attach() may pin",
      );
    }
  }
}

/**
 * dma_buf_export(): wraps the exporter's buffer. EINVAL when a mandatory op is missing
 * or pin/unpin come alone, as the WARN_ONs in Linux.
 */
export function dmaBufExport<P>(core: DmaBufCore, info: DmaBufExportInfo<P>): DmaBuf<P> {
  const o = info.ops;
  if (
    typeof o.mapDmaBuf !== "function" ||
    typeof o.unmapDmaBuf !== "function" ||
    typeof o.release !== "function"
  ) {
    throw new KernelError(
      "EINVAL",
      `dma_buf_export(${info.expName}): map_dma_buf, unmap_dma_buf and release are mandatory`,
    );
  }
  if (o.cacheSgtMapping && (o.pin !== undefined || o.unpin !== undefined)) {
    throw new KernelError(
      "EINVAL",
      `dma_buf_export(${info.expName}): cache_sgt_mapping with pin/unpin`,
    );
  }
  if ((o.pin === undefined) !== (o.unpin === undefined)) {
    throw new KernelError(
      "EINVAL",
      `dma_buf_export(${info.expName}): pin and unpin come as a pair`,
    );
  }
  ensure(info.size > 0, "EINVAL", `dma_buf_export(${info.expName}): size ${info.size}`);
  return new DmaBuf(core, info);
}

/** is_dma_buf_file(). */
export function isDmaBufFile(file: File): file is File<DmaBuf> {
  return file.ops === dmaBufFops;
}

/** dma_buf_fd(): installs the buffer's file as a new fd of `current`, taking over the caller's reference. */
export function dmaBufFd(buf: DmaBuf, current: Current, flags: number): number {
  return current.files.install(buf.file, (flags & O_CLOEXEC) !== 0);
}

/** dma_buf_get(): the buffer behind `fd`, with a new reference. EBADF for a closed fd, EINVAL for a non-dma-buf. */
export function dmaBufGet(current: Current, fd: number): DmaBuf {
  const file = current.files.lookup(fd);
  if (!isDmaBufFile(file))
    throw new KernelError("EINVAL", `dma_buf_get: fd ${fd} is not a dma-buf`);
  file.get();
  return file.privateData;
}

function bufOf(file: File): DmaBuf {
  if (!isDmaBufFile(file)) throw new KernelError("EBADF", `${file.path} is not a dma-buf`);
  return file.privateData;
}

function syncDirection(flags: number): DmaDirection {
  switch (flags & DMA_BUF_SYNC_RW) {
    case DMA_BUF_SYNC_READ:
      return DMA_FROM_DEVICE;
    case DMA_BUF_SYNC_WRITE:
      return DMA_TO_DEVICE;
    case DMA_BUF_SYNC_RW:
      return DMA_BIDIRECTIONAL;
    default:
      throw new KernelError(
        "EINVAL",
        "DMA_BUF_IOCTL_SYNC: neither DMA_BUF_SYNC_READ nor DMA_BUF_SYNC_WRITE set",
      );
  }
}

function ioctlSync(buf: DmaBuf, arg: number, current: Current): number {
  const s = new CStruct(current.copyFromUser(arg, SIZEOF_DMA_BUF_SYNC));
  // sync.flags is a __u64: test every bit (JS bitwise operators would see only the low 32).
  const raw = s.view.getBigUint64(0, true);
  if ((raw & ~BigInt(DMA_BUF_SYNC_VALID_FLAGS_MASK)) !== 0n) {
    throw new KernelError("EINVAL", `DMA_BUF_IOCTL_SYNC: unknown flags 0x${raw.toString(16)}`);
  }
  const flags = Number(raw);
  const dir = syncDirection(flags);
  const end = (flags & DMA_BUF_SYNC_END) !== 0;
  // A fault point of its own: the userspace bracket (omit = a lost END or a missing
  // START, flip = READ for WRITE, repeat = two STARTs).
  injectFault(
    buf.core.machine.faults,
    end ? "DMA_BUF_IOCTL_SYNC(END)" : "DMA_BUF_IOCTL_SYNC(START)",
    { dir, bytes: buf.size, whole: true, repeatable: true },
    (a) => {
      const d = a === "flip" ? flipDirection(dir) : dir;
      checkBracket(buf, end, d, current);
      if (end) endCpuAccessChecked(buf, d);
      else buf.beginCpuAccess(d);
    },
  );
  return 0;
}

/**
 * DMA_BUF_IOCTL_SYNC(END): the exporter's end_cpu_access, watching the cache for dirty
 * lines it discards. An exporter syncs for the device with its mapping's direction, not
 * the ioctl's; for a DMA_FROM_DEVICE mapping 32-bit ARM invalidates
 * (arch/arm/mm/cache-v7.S, v7_dma_map_area; arm64 too with raspberrypi/linux PR 6995),
 * so whatever the CPU wrote inside its access is thrown away: a lost CPU write.
 */
function endCpuAccessChecked(buf: DmaBuf, dir: DmaDirection): void {
  const m = buf.core.machine;
  const before = m.cache.counters.discardedDirty;
  buf.endCpuAccess(dir);
  const lost = m.cache.counters.discardedDirty - before;
  if (lost === 0) return;
  m.violations.report({
    kind: "lost-cpu-write",
    time: m.now,
    agent: "cpu",
    phys: -1,
    len: lost * m.cache.line,
    message: `DMA_BUF_IOCTL_SYNC(END|${syncName(dir)}) on ${buf.name ?? buf.expName} (${buf.describe()}): the exporter synced the buffer for the device with its mapping's direction, DMA_FROM_DEVICE, which this architecture makes an invalidate, and discarded ${lost} dirty line(s) the CPU wrote inside its access: the CPU's writes never reach memory`,
    hint: "map a buffer the CPU writes for a device to read DMA_BIDIRECTIONAL: for V4L2 capture buffers the CPU writes in place, the driver sets videobuf2's q->bidirectional (graph.devices.NAME.bidirectional); end_cpu_access syncs with the mapping's direction, whatever DMA_BUF_SYNC_WRITE says",
  });
}

const syncName = (dir: DmaDirection): string =>
  dir === DMA_FROM_DEVICE ? "READ" : dir === DMA_TO_DEVICE ? "WRITE" : "RW";

/**
 * The userspace brackets must pair up: START, the CPU's access, END with the same
 * flags (include/uapi/linux/dma-buf.h). Linux does not check; the model reports a
 * second START before the END (an END lost, or two STARTs per frame), an END without a
 * START, and an END whose direction differs from its START's.
 */
function checkBracket(buf: DmaBuf, end: boolean, dir: DmaDirection, current: Current): void {
  const b = buf.cpuAccessBrackets;
  const fd = current.ioctlFd ?? -1;
  buf.cpuAccessLog.push({ time: buf.core.machine.now, end, dir, fd, pid: current.pid });
  const key = `${current.pid}:${fd}`;
  const open = b.open.get(key);
  const who = `DMA_BUF_IOCTL_SYNC on ${buf.name ?? buf.expName} (${buf.describe()}) fd ${fd}`;
  if (!end) {
    b.starts++;
    if (open !== undefined)
      buf.core.warn(
        "cpu",
        `${who}: START(${syncName(dir)}) while the START(${syncName(open)}) before it on this fd was never ended: two STARTs and no END between`,
        "pair every DMA_BUF_SYNC_START with one DMA_BUF_SYNC_END with the same flags after the CPU's access; an END lost on one path leaves the CPU's writes unflushed (libdrmtap issue 43)",
      );
    b.open.set(key, dir);
    return;
  }
  b.ends++;
  b.open.delete(key);
  if (open === undefined)
    buf.core.warn(
      "cpu",
      `${who}: END(${syncName(dir)}) without a START before it on this fd`,
      "call DMA_BUF_SYNC_START before the CPU's access and DMA_BUF_SYNC_END once after it",
    );
  else if (open !== dir)
    buf.core.warn(
      "cpu",
      `${who}: END(${syncName(dir)}) closes a START(${syncName(open)}): the exporter maintains the cache for the END's direction, not for what the CPU did`,
      "give DMA_BUF_SYNC_END the same READ/WRITE flags as its START (WRITE or RW when the CPU wrote)",
    );
}

/** The flags both sync-file ioctls take: READ, WRITE or both, nothing else (EINVAL). */
function syncFileIoctlFlags(s: CStruct, ioctl: string): number {
  const flags = s.u32(0);
  if ((flags & ~DMA_BUF_SYNC_RW) !== 0 || (flags & DMA_BUF_SYNC_RW) === 0) {
    throw new KernelError(
      "EINVAL",
      `${ioctl}: flags 0x${flags.toString(16)} must be READ, WRITE or both`,
    );
  }
  return flags;
}

function ioctlExportSyncFile(buf: DmaBuf, arg: number, current: Current): number {
  const s = new CStruct(current.copyFromUser(arg, SIZEOF_DMA_BUF_SYNC_FILE));
  const flags = syncFileIoctlFlags(s, "DMA_BUF_IOCTL_EXPORT_SYNC_FILE");
  // dma_buf_export_sync_file: the fd before dma_resv_get_singleton, whose fence array
  // takes a fence context, so EMFILE leaves nothing behind.
  return syncFileFdReply(current, buf.core.fences, 4, arg, () => {
    const fence = buf.exportFence((flags & DMA_BUF_SYNC_WRITE) !== 0);
    try {
      return { data: s, sf: SyncFile.create(fence) };
    } finally {
      fence.put();
    }
  });
}

function ioctlImportSyncFile(buf: DmaBuf, arg: number, current: Current): number {
  const s = new CStruct(current.copyFromUser(arg, SIZEOF_DMA_BUF_SYNC_FILE));
  const flags = syncFileIoctlFlags(s, "DMA_BUF_IOCTL_IMPORT_SYNC_FILE");
  const fence = syncFileGetFence(current.files, s.s32(4));
  if (fence === undefined) {
    throw new KernelError(
      "EINVAL",
      `DMA_BUF_IOCTL_IMPORT_SYNC_FILE: fd ${s.s32(4)} is not a sync_file`,
    );
  }
  const usage = flags & DMA_BUF_SYNC_WRITE ? DMA_RESV_USAGE_WRITE : DMA_RESV_USAGE_READ;
  // A merged sync_file holds an array: the reservation object takes its leaves.
  const leaves = [...dmaFenceUnwrap(fence)];
  try {
    if (leaves.length > 0) {
      buf.resv.lock();
      try {
        const r = buf.resv.reserveFences(leaves.length);
        if (r < 0)
          throw new KernelError("ENOMEM", "DMA_BUF_IOCTL_IMPORT_SYNC_FILE: no room for the fences");
        for (const f of leaves) buf.resv.addFence(f, usage);
      } finally {
        buf.resv.unlock();
      }
    }
  } finally {
    fence.put();
  }
  return 0;
}

/** The dma-buf file's operations (dma_buf_fops). */
export const dmaBufFops: FileOperations = {
  name: "dmabuf",
  release(file) {
    bufOf(file)._release();
  },
  llseek(file, offset, whence) {
    const buf = bufOf(file);
    // Only discovering the size is supported; SEEK_SET(0) keeps the idiom working.
    let base: number;
    if (whence === SEEK_END) base = buf.size;
    else if (whence === SEEK_SET) base = 0;
    else
      throw new KernelError(
        "EINVAL",
        `dma-buf lseek: whence ${whence} (only SEEK_END and SEEK_SET)`,
      );
    ensure(offset === 0, "EINVAL", `dma-buf lseek: offset ${offset} (only 0)`);
    return base;
  },
  mmap(file, vma) {
    // dma_buf_mmap_internal: the same checks as dma_buf_mmap, at the vma's own offset.
    bufOf(file).mmap(vma, vma.pgoff);
  },
  poll(file, events) {
    // EPOLLIN: the last writer is done; EPOLLOUT: every reader and writer is done.
    const buf = bufOf(file);
    let ready = 0;
    if (events & POLLOUT && buf.resv.testSignaled(dmaResvUsageRw(true))) ready |= POLLOUT;
    if (events & POLLIN && buf.resv.testSignaled(dmaResvUsageRw(false))) ready |= POLLIN;
    return ready;
  },
  unlockedIoctl(file, cmd, arg, current) {
    const buf = bufOf(file);
    switch (cmd) {
      case DMA_BUF_IOCTL_SYNC:
        return ioctlSync(buf, arg, current);
      case DMA_BUF_SET_NAME_A:
      case DMA_BUF_SET_NAME_B:
        buf.setName(current.strndupUser(arg, DMA_BUF_NAME_LEN));
        return 0;
      case DMA_BUF_IOCTL_EXPORT_SYNC_FILE:
        return ioctlExportSyncFile(buf, arg, current);
      case DMA_BUF_IOCTL_IMPORT_SYNC_FILE:
        return ioctlImportSyncFile(buf, arg, current);
      default:
        throw new KernelError("ENOTTY", `dma-buf: unknown ioctl 0x${cmd.toString(16)}`);
    }
  },
  showFdinfo(file) {
    const buf = bufOf(file);
    const lines = [`size:\t${buf.size}`, `count:\t${file.count}`, `exp_name:\t${buf.expName}`];
    if (buf.name !== undefined) lines.push(`name:\t${buf.name}`);
    return `${lines.join("\n")}\n`;
  },
};
