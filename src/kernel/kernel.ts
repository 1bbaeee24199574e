/**
 * One simulated Linux kernel booted on one simulated machine: the DMA mapping API, the
 * dma-buf core with its fence contexts, the heaps, /dev/udmabuf, sw_sync, and the
 * processes that use them. Everything lives in this object, so two kernels in one
 * Node process share nothing and the same program always gives the same result.
 */

import { DmaMappingApi } from "../dma/mapping.js";
import { bufinfo } from "../dma-buf/debugfs.js";
import { type DmaBufConfig, DmaBufCore } from "../dma-buf/dma-buf.js";
import { FenceContextAllocator, type FenceEnv } from "../dma-buf/dma-fence.js";
import { DmaHeapRegistry } from "../dma-buf/dma-heap.js";
import { cmaHeapOps } from "../dma-buf/heaps/cma-heap.js";
import { systemHeapOps } from "../dma-buf/heaps/system-heap.js";
import { swSyncOpen } from "../dma-buf/sw-sync-fd.js";
import { UDMABUF_DEFAULTS, UdmabufDevice, type UdmabufParams } from "../dma-buf/udmabuf.js";
import type { DriverHost } from "../drivers/host.js";
import { KernelError } from "../errno.js";
import { Machine, type MachineOptions } from "../machine/machine.js";
import type { File } from "../vfs/file.js";
import { getNextIno, MNT_ID } from "../vfs/mount.js";
import { Process, type ProcessHost } from "./process.js";
import { swiotlbDebugfsFiles } from "./swiotlb-debugfs.js";

export interface KernelOptions extends MachineOptions {
  /** Use this machine instead of building one from `profile`. */
  readonly machine?: Machine;
  readonly dmaBuf?: Partial<DmaBufConfig>;
  readonly udmabuf?: Partial<UdmabufParams>;
  /** Register the CMA heap as /dev/dma_heap/cma (default true). */
  readonly cmaHeap?: boolean;
}

/** The path sw_sync lives at in debugfs. */
export const SW_SYNC_PATH = "/sys/kernel/debug/sync/sw_sync";

export class Kernel implements ProcessHost, DriverHost {
  readonly machine: Machine;
  readonly dma: DmaMappingApi;
  readonly fences: FenceEnv;
  readonly dmaBuf: DmaBufCore;
  readonly heaps = new DmaHeapRegistry();
  readonly udmabuf: UdmabufDevice;
  readonly #devnodes = new Map<string, (flags: number) => File>();
  /** The inode number of each device node opened so far. */
  readonly #devIno = new Map<string, number>();
  readonly #procs = new Map<number, Process>();
  #nextPid = 1;

  constructor(options: KernelOptions = {}) {
    this.machine = options.machine ?? new Machine(options);
    this.dma = new DmaMappingApi(this.machine);
    this.fences = { clock: this.machine.clock, contexts: new FenceContextAllocator() };
    this.dmaBuf = new DmaBufCore(this.machine, this.fences, options.dmaBuf);
    const sys = this.heaps.add("system", systemHeapOps(this.dma), this.dmaBuf);
    this.#devnodes.set(sys.path, (f) => sys.open(f));
    if (options.cmaHeap ?? true) {
      const cma = this.heaps.add("cma", cmaHeapOps(this.dma), this.dmaBuf);
      this.#devnodes.set(cma.path, (f) => cma.open(f));
    }
    // The misc device has a 64-bit mask and the platform's default coherency.
    const miscDev = this.machine.addDevice("udmabuf", { dmaBits: 64, iommu: false });
    this.udmabuf = new UdmabufDevice(this.dmaBuf, this.dma, miscDev, {
      ...UDMABUF_DEFAULTS,
      ...options.udmabuf,
    });
    this.#devnodes.set("/dev/udmabuf", (f) => this.udmabuf.open(f));
    this.#devnodes.set(SW_SYNC_PATH, (f) => swSyncOpen(this.fences, f));
    if (this.machine.swiotlb !== undefined)
      for (const [path, open] of swiotlbDebugfsFiles(this.machine.swiotlb))
        this.#devnodes.set(path, open);
  }

  /** Adds a device node (drivers call this at probe). EEXIST if the path is taken. */
  addDevnode(path: string, open: (flags: number) => File): void {
    if (this.#devnodes.has(path)) throw new KernelError("EEXIST", `${path} exists already`);
    this.#devnodes.set(path, open);
  }

  hasDevnode(path: string): boolean {
    return this.#devnodes.has(path);
  }

  /** Device nodes under `dir` (readdir of /dev/dma_heap, say). */
  listDevnodes(dir: string): string[] {
    const prefix = dir.endsWith("/") ? dir : `${dir}/`;
    return [...this.#devnodes.keys()]
      .filter((p) => p.startsWith(prefix) && !p.slice(prefix.length).includes("/"))
      .map((p) => p.slice(prefix.length))
      .sort();
  }

  openPath(path: string, flags: number): File {
    const open = this.#devnodes.get(path);
    if (open === undefined) throw new KernelError("ENOENT", `no such file: ${path}`);
    const file = open(flags);
    // A node of devtmpfs (or debugfs): one inode per path, numbered at its first open.
    file.mntId = path.startsWith("/sys/kernel/debug/") ? MNT_ID.debugfs : MNT_ID.devtmpfs;
    let ino = this.#devIno.get(path);
    if (ino === undefined) {
      ino = getNextIno(this.machine);
      this.#devIno.set(path, ino);
    }
    file.ino = ino;
    return file;
  }

  /** fork+exec of a new process. */
  spawn(comm: string): Process {
    const p = new Process(this, this.#nextPid++, comm);
    this.#procs.set(p.pid, p);
    return p;
  }

  reap(p: Process): void {
    this.#procs.delete(p.pid);
  }

  get processes(): readonly Process[] {
    return [...this.#procs.values()];
  }

  /** /sys/kernel/debug/dma_buf/bufinfo. */
  bufinfo(): string {
    return bufinfo(this.dmaBuf);
  }
}
