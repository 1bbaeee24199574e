/**
 * memfd: anonymous shared-memory files with seals (mm/memfd.c, mm/shmem.c).
 *
 * udmabuf turns memfd pages into a dma-buf, so the seals matter: udmabuf requires
 * F_SEAL_SHRINK (the pages it pins cannot be truncated away) and refuses F_SEAL_WRITE.
 * Pages are allocated on first use from the buddy allocator and cleared through the
 * kernel's cacheable linear map, as shmem does.
 */

import { ensure, KernelError } from "../errno.js";
import {
  F_ADD_SEALS,
  F_GET_SEALS,
  F_SEAL_FUTURE_WRITE,
  F_SEAL_GROW,
  F_SEAL_SEAL,
  F_SEAL_SHRINK,
  F_SEAL_WRITE,
  MFD_ALLOW_SEALING,
  MFD_CLOEXEC,
  O_ACCMODE,
  O_RDONLY,
  PROT_WRITE,
  SEEK_CUR,
  SEEK_END,
  SEEK_SET,
} from "../include/uapi/fcntl.js";
import type { Machine } from "../machine/machine.js";
import { PAGE_SIZE } from "../machine/memory.js";
import { File, type FileOperations, type Vma } from "./file.js";

const F_ALL_SEALS = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_FUTURE_WRITE;
/** MFD_NAME_MAX_LEN: NAME_MAX minus the "memfd:" prefix. */
export const MFD_NAME_MAX_LEN = 255 - 6;
const MFD_HUGETLB = 0x0004;
const MFD_NOEXEC_SEAL = 0x0008;
const MFD_EXEC = 0x0010;

/** The shmem inode: the pages, the size and the seals, shared by every user of them. */
export class ShmemInode {
  /** Page index -> physical address. */
  readonly #pages = new Map<number, number>();
  size = 0;
  seals: number;
  /** Live shared writable mappings (i_mmap_writable). */
  writableMappings = 0;
  /** References: the file plus every pin (udmabuf). The pages go when the last goes. */
  #refs = 1;

  constructor(
    readonly machine: Machine,
    readonly name: string,
    allowSealing: boolean,
  ) {
    this.seals = allowSealing ? 0 : F_SEAL_SEAL;
  }

  /** shmem_read_mapping_page(): the page at `index`, allocated and cleared on first use. */
  page(index: number): number {
    let phys = this.#pages.get(index);
    if (phys === undefined) {
      phys = this.machine.pages.alloc(0) * PAGE_SIZE;
      this.machine.cpu.zeroPhys(phys, PAGE_SIZE);
      this.#pages.set(index, phys);
    }
    return phys;
  }

  get residentPages(): number {
    return this.#pages.size;
  }

  /** Frees pages at and beyond `firstIndex` (truncate_inode_pages_range). */
  truncatePages(firstIndex: number): void {
    for (const [i, phys] of [...this.#pages]) {
      if (i >= firstIndex) {
        this.machine.pages.free(phys / PAGE_SIZE);
        this.#pages.delete(i);
      }
    }
  }

  pin(): void {
    this.#refs++;
  }

  unpin(): void {
    if (--this.#refs === 0) this.truncatePages(0);
  }
}

function inodeOf(file: File): ShmemInode {
  const p = file.privateData;
  if (!(p instanceof ShmemInode)) throw new KernelError("EINVAL", `${file.path} is not a memfd`);
  return p;
}

/** True if `file` is a shmem file (shmem_mapping()). */
export function isShmemFile(file: File): file is File<ShmemInode> {
  return file.ops === memfdFops;
}

/** The memfd's file operations. */
export const memfdFops: FileOperations = {
  name: "memfd",
  release(file) {
    inodeOf(file).unpin();
  },
  llseek(file, offset, whence) {
    const base =
      whence === SEEK_SET
        ? 0
        : whence === SEEK_END
          ? inodeOf(file).size
          : whence === SEEK_CUR
            ? 0
            : -1;
    ensure(base >= 0, "EINVAL", `lseek: whence ${whence} is not SEEK_SET, SEEK_CUR or SEEK_END`);
    ensure(base + offset >= 0, "EINVAL", `lseek: offset ${offset} gives a negative position`);
    return base + offset;
  },
  mmap(file, vma) {
    const ino = inodeOf(file);
    const writable = vma.shared && (vma.prot & PROT_WRITE) !== 0;
    if (writable && (ino.seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)) !== 0) {
      throw new KernelError("EPERM", "mmap: the memfd is sealed against writing (F_SEAL_WRITE)");
    }
    mapShmem(ino, vma);
    if (writable) {
      ino.writableMappings++;
      vma.close = () => {
        ino.writableMappings--;
      };
    }
  },
};

function mapShmem(ino: ShmemInode, vma: Vma): void {
  const first = vma.pgoff;
  const pages = Math.ceil(vma.length / PAGE_SIZE);
  const inFile = Math.max(0, Math.min(pages, Math.ceil(ino.size / PAGE_SIZE) - first));
  vma.ranges = [];
  for (let i = 0; i < inFile; i++) {
    const phys = ino.page(first + i);
    const last = vma.ranges[vma.ranges.length - 1];
    if (last !== undefined && last.phys + last.len === phys)
      vma.ranges[vma.ranges.length - 1] = { phys: last.phys, len: last.len + PAGE_SIZE };
    else vma.ranges.push({ phys, len: PAGE_SIZE });
  }
  vma.attr = "cached";
}

/** memfd_create(2). Returns the file; the caller installs the fd (MFD_CLOEXEC tells it how). */
export function memfdCreate(machine: Machine, name: string, flags: number): File<ShmemInode> {
  const known = MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB | MFD_NOEXEC_SEAL | MFD_EXEC;
  ensure((flags & ~known) === 0, "EINVAL", `memfd_create: unknown flags 0x${flags.toString(16)}`);
  ensure((flags & MFD_HUGETLB) === 0, "EINVAL", "memfd_create: MFD_HUGETLB is not modelled");
  ensure(
    new TextEncoder().encode(name).length <= MFD_NAME_MAX_LEN,
    "EINVAL",
    `memfd_create: name longer than ${MFD_NAME_MAX_LEN} bytes`,
  );
  const ino = new ShmemInode(machine, name, (flags & MFD_ALLOW_SEALING) !== 0);
  return new File(memfdFops, ino, 2 /* O_RDWR */, `/memfd:${name}`);
}

/** ftruncate(2) on a memfd, with the seal checks of shmem_setattr. */
export function shmemTruncate(file: File, length: number): void {
  const ino = inodeOf(file);
  ensure(Number.isInteger(length) && length >= 0, "EINVAL", `ftruncate: length ${length}`);
  ensure((file.flags & O_ACCMODE) !== O_RDONLY, "EINVAL", "ftruncate: file not open for writing");
  if (length < ino.size && (ino.seals & F_SEAL_SHRINK) !== 0)
    throw new KernelError(
      "EPERM",
      "ftruncate: the memfd is sealed against shrinking (F_SEAL_SHRINK)",
    );
  if (length > ino.size && (ino.seals & F_SEAL_GROW) !== 0)
    throw new KernelError("EPERM", "ftruncate: the memfd is sealed against growing (F_SEAL_GROW)");
  if (length < ino.size) ino.truncatePages(Math.ceil(length / PAGE_SIZE));
  ino.size = length;
}

/** pwrite(2) into a memfd through the kernel's linear map. */
export function shmemWrite(file: File, data: Uint8Array, offset: number): number {
  const ino = inodeOf(file);
  ensure((file.flags & O_ACCMODE) !== O_RDONLY, "EBADF", "write: file not open for writing");
  if ((ino.seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)) !== 0)
    throw new KernelError("EPERM", "write: the memfd is sealed against writing (F_SEAL_WRITE)");
  const end = offset + data.length;
  if (end > ino.size) {
    if ((ino.seals & F_SEAL_GROW) !== 0)
      throw new KernelError("EPERM", "write: would grow a memfd sealed with F_SEAL_GROW");
    ino.size = end;
  }
  for (let pos = offset; pos < end; ) {
    const index = Math.floor(pos / PAGE_SIZE);
    const inPage = pos - index * PAGE_SIZE;
    const n = Math.min(PAGE_SIZE - inPage, end - pos);
    ino.machine.cpu.writePhys(ino.page(index) + inPage, data, pos - offset, n);
    pos += n;
  }
  return data.length;
}

/** fcntl(F_ADD_SEALS / F_GET_SEALS) (memfd_fcntl). EINVAL for a file that is not a memfd. */
export function memfdFcntl(file: File, cmd: number, arg: number): number {
  if (!isShmemFile(file))
    throw new KernelError("EINVAL", `fcntl seals: ${file.path} is not a memfd`);
  const ino = inodeOf(file);
  if (cmd === F_GET_SEALS) return ino.seals;
  ensure(cmd === F_ADD_SEALS, "EINVAL", `fcntl: command ${cmd} is not a seal command`);
  if ((file.flags & O_ACCMODE) === O_RDONLY)
    throw new KernelError("EPERM", "F_ADD_SEALS: file not open for writing");
  ensure((arg & ~F_ALL_SEALS) === 0, "EINVAL", `F_ADD_SEALS: unknown seals 0x${arg.toString(16)}`);
  if ((ino.seals & F_SEAL_SEAL) !== 0)
    throw new KernelError(
      "EPERM",
      "F_ADD_SEALS: the memfd is sealed against more seals (F_SEAL_SEAL)",
    );
  if ((arg & F_SEAL_WRITE) !== 0 && (ino.seals & F_SEAL_WRITE) === 0 && ino.writableMappings > 0)
    throw new KernelError(
      "EBUSY",
      "F_ADD_SEALS: F_SEAL_WRITE while writable shared mappings exist",
    );
  ino.seals |= arg;
  return 0;
}
