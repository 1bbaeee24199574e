/**
 * DMA-BUF heaps (drivers/dma-buf/dma-heap.c): named allocators userspace opens as
 * /dev/dma_heap/<name> and asks for buffers with DMA_HEAP_IOCTL_ALLOC.
 */

import { ensure, KernelError } from "../errno.js";
import {
  DMA_HEAP_IOCTL_ALLOC,
  DMA_HEAP_VALID_FD_FLAGS,
  DMA_HEAP_VALID_HEAP_FLAGS,
} from "../include/uapi/dma-heap.js";
import { _IOC_DIR, _IOC_NR, _IOC_SIZE, IOC_READ, IOC_WRITE } from "../include/uapi/ioctl.js";
import { CStruct } from "../include/uapi/struct.js";
import { PAGE_SIZE } from "../machine/memory.js";
import { type Current, File, type FileOperations } from "../vfs/file.js";
import { type DmaBuf, type DmaBufCore, dmaBufFd } from "./dma-buf.js";

/** struct dma_heap_ops. */
export interface DmaHeapOps {
  allocate(core: DmaBufCore, len: number, fdFlags: number, heapFlags: number): DmaBuf;
}

/** struct dma_heap. */
export class DmaHeap {
  constructor(
    readonly name: string,
    readonly ops: DmaHeapOps,
    readonly core: DmaBufCore,
  ) {}

  /** The device node userspace opens. */
  get path(): string {
    return `/dev/dma_heap/${this.name}`;
  }

  /** dma_heap_open(). */
  open(flags: number): File<DmaHeap> {
    const file = new File(dmaHeapFops, this, flags, this.path);
    file.nonseekable = true; // dma_heap_open(): nonseekable_open()
    return file;
  }

  /**
   * dma_heap_buffer_alloc(): page-aligns `len` (EINVAL when that leaves zero) and hands
   * the buffer to `current` as an fd.
   */
  bufferAlloc(current: Current, len: number, fdFlags: number, heapFlags: number): number {
    const aligned = Math.ceil(len / PAGE_SIZE) * PAGE_SIZE;
    ensure(
      Number.isFinite(aligned) && aligned > 0,
      "EINVAL",
      `dma-heap ${this.name}: length ${len}`,
    );
    const buf = this.ops.allocate(this.core, aligned, fdFlags, heapFlags);
    try {
      return dmaBufFd(buf, current, fdFlags);
    } catch (e) {
      buf.put();
      throw e;
    }
  }
}

/** The heaps of one kernel by name (dma_heap_add's list). */
export class DmaHeapRegistry {
  readonly #heaps = new Map<string, DmaHeap>();

  /** dma_heap_add(): EINVAL for an empty name, EEXIST for a taken one. */
  add(name: string, ops: DmaHeapOps, core: DmaBufCore): DmaHeap {
    ensure(name.length > 0, "EINVAL", "dma_heap_add: a heap needs a name");
    if (this.#heaps.has(name))
      throw new KernelError("EEXIST", `dma_heap_add: heap ${name} exists already`);
    const h = new DmaHeap(name, ops, core);
    this.#heaps.set(name, h);
    return h;
  }

  /** dma_heap_find(). */
  find(name: string): DmaHeap | undefined {
    return this.#heaps.get(name);
  }

  get names(): string[] {
    return [...this.#heaps.keys()].sort();
  }
}

const DMA_HEAP_IOCTL_CMDS = [DMA_HEAP_IOCTL_ALLOC];

/** dma_heap_ioctl_allocate(). */
function ioctlAllocate(heap: DmaHeap, data: CStruct, current: Current): void {
  const len = data.u64(0);
  const fd = data.u32(8);
  const fdFlags = data.u32(12);
  const heapFlags = data.u64(16);
  ensure(fd === 0, "EINVAL", "DMA_HEAP_IOCTL_ALLOC: fd must be 0 on input");
  ensure(
    (fdFlags & ~DMA_HEAP_VALID_FD_FLAGS) === 0,
    "EINVAL",
    `DMA_HEAP_IOCTL_ALLOC: fd_flags 0x${fdFlags.toString(16)} beyond O_CLOEXEC|O_ACCMODE`,
  );
  ensure(
    Number.isFinite(heapFlags) && (heapFlags & ~DMA_HEAP_VALID_HEAP_FLAGS) === 0 && heapFlags === 0,
    "EINVAL",
    `DMA_HEAP_IOCTL_ALLOC: heap_flags 0x${heapFlags.toString(16)} (none are defined)`,
  );
  data.setU32(8, heap.bufferAlloc(current, len, fdFlags, heapFlags));
}

/**
 * dma_heap_ioctl(): the command is matched by number only, and argument structs
 * smaller or larger than the kernel's are accepted (zero-extended or truncated), so
 * old and new userspace both work.
 */
export const dmaHeapFops: FileOperations = {
  name: "dma_heap",
  unlockedIoctl(file, ucmd, arg, current) {
    const heap = file.privateData as DmaHeap;
    const nr = _IOC_NR(ucmd);
    ensure(
      nr < DMA_HEAP_IOCTL_CMDS.length,
      "EINVAL",
      `dma_heap: ioctl number ${nr} is not defined`,
    );
    const kcmd = DMA_HEAP_IOCTL_CMDS[nr]!;
    const drvSize = _IOC_SIZE(kcmd);
    let inSize = _IOC_SIZE(ucmd);
    let outSize = inSize;
    if ((_IOC_DIR(ucmd) & _IOC_DIR(kcmd) & IOC_WRITE) === 0) inSize = 0;
    if ((_IOC_DIR(ucmd) & _IOC_DIR(kcmd) & IOC_READ) === 0) outSize = 0;
    const ksize = Math.max(inSize, outSize, drvSize);
    const kdata = new Uint8Array(ksize);
    if (inSize > 0) kdata.set(current.copyFromUser(arg, inSize));
    const s = new CStruct(kdata);
    if (kcmd !== DMA_HEAP_IOCTL_ALLOC) throw new KernelError("ENOTTY", "dma_heap: unknown ioctl");
    ioctlAllocate(heap, s, current);
    if (outSize > 0) current.copyToUser(arg, kdata.subarray(0, outSize));
    return 0;
  },
};
