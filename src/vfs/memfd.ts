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
  F_SEAL_EXEC,
  F_SEAL_FUTURE_WRITE,
  F_SEAL_GROW,
  F_SEAL_SEAL,
  F_SEAL_SHRINK,
  F_SEAL_WRITE,
  MFD_ALLOW_SEALING,
  MFD_CLOEXEC,
  MFD_EXEC,
  MFD_HUGE_MASK,
  MFD_HUGE_SHIFT,
  MFD_HUGETLB,
  MFD_NOEXEC_SEAL,
  O_ACCMODE,
  O_LARGEFILE,
  O_RDONLY,
  O_RDWR,
  PROT_WRITE,
  SEEK_CUR,
  SEEK_END,
  SEEK_SET,
} from "../include/uapi/fcntl.js";
import type { Machine } from "../machine/machine.js";
import { PAGE_SIZE } from "../machine/memory.js";
import { File, type FileOperations, type Vma } from "./file.js";
import { getNextIno, MNT_ID } from "./mount.js";

/** F_ALL_SEALS (mm/memfd.c). */
const F_ALL_SEALS =
  F_SEAL_SEAL | F_SEAL_EXEC | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_FUTURE_WRITE;
/** MFD_NAME_MAX_LEN: NAME_MAX minus the "memfd:" prefix. */
export const MFD_NAME_MAX_LEN = 255 - 6;
/** MFD_ALL_FLAGS (mm/memfd.c). */
const MFD_ALL_FLAGS = MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB | MFD_NOEXEC_SEAL | MFD_EXEC;
/** The one huge page size modelled: 2 MiB (order 9), the x86-64 and arm64 (4 KiB granule) default. */
export const HPAGE_ORDER = 9;
export const HPAGE_SIZE = PAGE_SIZE << HPAGE_ORDER;
const HPAGE_SHIFT = 21;

/**
 * The shmem (or, with MFD_HUGETLB, hugetlbfs) inode: the pages, the size and the seals,
 * shared by every user of them.
 */
export class ShmemInode {
  /** Page index -> physical address (hugetlb: huge page index -> its first byte). */
  readonly #pages = new Map<number, number>();
  size = 0;
  seals: number;
  /** Any of the 0111 bits in i_mode: memfds are executable unless MFD_NOEXEC_SEAL. */
  exec = true;
  /** Live shared writable mappings (i_mmap_writable). */
  writableMappings = 0;
  /** Pages held by pins (udmabuf's memfd_pin_folios): F_SEAL_WRITE waits for them, then EBUSY. */
  pins = 0;
  /** References: the file plus every pin (udmabuf). The pages go when the last goes. */
  #refs = 1;

  constructor(
    readonly machine: Machine,
    readonly name: string,
    allowSealing: boolean,
    /** A hugetlbfs inode (MFD_HUGETLB): 2 MiB pages, no write(2), sizes in whole huge pages. */
    readonly hugetlb = false,
  ) {
    this.seals = allowSealing ? 0 : F_SEAL_SEAL;
  }

  /** The inode's page size: PAGE_SIZE, or the huge page size. */
  get pageSize(): number {
    return this.hugetlb ? HPAGE_SIZE : PAGE_SIZE;
  }

  /**
   * shmem_read_mapping_page(): the 4 KiB page at `index`, allocated and cleared on first
   * use (hugetlb: the whole huge page around it, from a 2 MiB block).
   */
  page(index: number): number {
    if (!Number.isInteger(index) || index < 0)
      throw new KernelError("EINVAL", `memfd: page index ${index}`);
    if (!this.hugetlb) return this.#folio(index, 0);
    const sub = index & ((1 << HPAGE_ORDER) - 1);
    return this.#folio(index >> HPAGE_ORDER, HPAGE_ORDER) + sub * PAGE_SIZE;
  }

  #folio(index: number, order: number): number {
    let phys = this.#pages.get(index);
    if (phys === undefined) {
      phys = this.machine.pages.alloc(order) * PAGE_SIZE;
      this.machine.cpu.zeroPhys(phys, PAGE_SIZE << order);
      this.#pages.set(index, phys);
    }
    return phys;
  }

  /** Resident 4 KiB pages. */
  get residentPages(): number {
    return this.#pages.size << (this.hugetlb ? HPAGE_ORDER : 0);
  }

  /** Frees pages at and beyond the 4 KiB page `firstIndex` (truncate_inode_pages_range). */
  truncatePages(firstIndex: number): void {
    const first = this.hugetlb ? Math.ceil(firstIndex / (1 << HPAGE_ORDER)) : firstIndex;
    for (const [i, phys] of [...this.#pages]) {
      if (i >= first) {
        this.machine.pages.free(phys / PAGE_SIZE);
        this.#pages.delete(i);
      }
    }
  }

  pin(): void {
    this.#refs++;
    this.pins++;
  }

  unpin(): void {
    this.pins--;
    this.release();
  }

  /** Drops the file's reference (or a pin's); the last frees the pages. */
  release(): void {
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
    inodeOf(file).release();
  },
  /** shmem_file_llseek → generic_file_llseek_size: moves f_pos. */
  llseek(file, offset, whence) {
    const base =
      whence === SEEK_SET
        ? 0
        : whence === SEEK_END
          ? inodeOf(file).size
          : whence === SEEK_CUR
            ? file.pos
            : -1;
    ensure(base >= 0, "EINVAL", `lseek: whence ${whence} is not SEEK_SET, SEEK_CUR or SEEK_END`);
    ensure(base + offset >= 0, "EINVAL", `lseek: offset ${offset} gives a negative position`);
    file.pos = base + offset;
    return file.pos;
  },
  mmap(file, vma) {
    const ino = inodeOf(file);
    const writable = vma.shared && (vma.prot & PROT_WRITE) !== 0;
    // memfd_check_seals_mmap(): only shared writable mappings are refused; a private
    // one is copy-on-write and never reaches the file.
    if (writable && (ino.seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)) !== 0) {
      throw new KernelError(
        "EPERM",
        "mmap: the memfd is sealed against writing (F_SEAL_WRITE or F_SEAL_FUTURE_WRITE)",
      );
    }
    // hugetlbfs_file_mmap(): the offset must be huge-page aligned.
    if (ino.hugetlb && (vma.pgoff * PAGE_SIZE) % HPAGE_SIZE !== 0)
      throw new KernelError("EINVAL", "mmap: offset into a hugetlb memfd is not huge-page aligned");
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
  // A hugetlb mapping is a whole number of huge pages (ksys_mmap_pgoff aligns the length).
  const length = ino.hugetlb ? Math.ceil(vma.length / HPAGE_SIZE) * HPAGE_SIZE : vma.length;
  const pages = Math.ceil(length / PAGE_SIZE);
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

/**
 * memfd_create(2) (mm/memfd.c), with vm.memfd_noexec at its default 0: flags checked
 * (huge page size bits only with MFD_HUGETLB), MFD_EXEC with MFD_NOEXEC_SEAL refused, a
 * name of at most MFD_NAME_MAX_LEN bytes. Seals start as F_SEAL_SEAL; MFD_ALLOW_SEALING
 * clears it; MFD_NOEXEC_SEAL clears it too, drops the exec bits and adds F_SEAL_EXEC. The
 * file's f_flags are O_RDWR | O_LARGEFILE. Returns the file; the caller installs the fd
 * (MFD_CLOEXEC tells it how).
 */
export function memfdCreate(machine: Machine, name: string, flags: number): File<ShmemInode> {
  const hugetlb = (flags & MFD_HUGETLB) !== 0;
  const allowed = hugetlb ? MFD_ALL_FLAGS | (MFD_HUGE_MASK << MFD_HUGE_SHIFT) : MFD_ALL_FLAGS;
  ensure((flags & ~allowed) === 0, "EINVAL", `memfd_create: unknown flags 0x${flags.toString(16)}`);
  ensure(
    (flags & (MFD_EXEC | MFD_NOEXEC_SEAL)) !== (MFD_EXEC | MFD_NOEXEC_SEAL),
    "EINVAL",
    "memfd_create: MFD_EXEC and MFD_NOEXEC_SEAL together",
  );
  ensure(
    new TextEncoder().encode(name).length <= MFD_NAME_MAX_LEN,
    "EINVAL",
    `memfd_create: name longer than ${MFD_NAME_MAX_LEN} bytes`,
  );
  if (hugetlb) {
    // hugetlb_file_setup() -> hstate_sizelog(): 0 is the default size; the model has only 2 MiB.
    const log = (flags >>> MFD_HUGE_SHIFT) & MFD_HUGE_MASK;
    ensure(
      log === 0 || log === HPAGE_SHIFT,
      "EINVAL",
      `memfd_create: huge page size 2^${log} is not modelled (only 2 MiB)`,
    );
  }
  const noexec = (flags & MFD_NOEXEC_SEAL) !== 0;
  const ino = new ShmemInode(machine, name, noexec || (flags & MFD_ALLOW_SEALING) !== 0, hugetlb);
  if (noexec) {
    ino.exec = false;
    ino.seals |= F_SEAL_EXEC;
  }
  const file = new File(memfdFops, ino, O_RDWR | O_LARGEFILE, `/memfd:${name}`);
  file.positional = true;
  // shmem_file_setup() on shm_mnt, or hugetlb_file_setup() on hugetlbfs's mount.
  file.mntId = hugetlb ? MNT_ID.hugetlbfs : MNT_ID.shm;
  file.ino = getNextIno(machine);
  return file;
}

/**
 * ftruncate(2) on a memfd: EINVAL for a negative or fractional length, or a file not
 * open for writing (do_sys_ftruncate); the seal checks of shmem_setattr; a hugetlb
 * memfd takes only whole huge pages (hugetlbfs_setattr).
 */
export function shmemTruncate(file: File, length: number): void {
  const ino = inodeOf(file);
  ensure(Number.isInteger(length) && length >= 0, "EINVAL", `ftruncate: length ${length}`);
  ensure((file.flags & O_ACCMODE) !== O_RDONLY, "EINVAL", "ftruncate: file not open for writing");
  if (ino.hugetlb && length % HPAGE_SIZE !== 0)
    throw new KernelError(
      "EINVAL",
      `ftruncate: ${length} is not a multiple of the 2 MiB huge page size (hugetlb memfd)`,
    );
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

/**
 * pwrite(2) into a memfd through the kernel's linear map (shmem_file_write_iter). The
 * offset was checked by the caller. A hugetlbfs file has no write: EINVAL. The seals are
 * checked per chunk, as generic_perform_write() calls shmem_write_begin(): shmem maps
 * allow large folios, so a chunk is the 2 MiB-aligned window (MAX_PAGECACHE_ORDER) the
 * write is in. F_SEAL_WRITE/F_SEAL_FUTURE_WRITE refuse the write; F_SEAL_GROW refuses the
 * first chunk that would grow the file, and what the chunks before it wrote is returned
 * (EPERM only when nothing was).
 */
export function shmemWrite(file: File, data: Uint8Array, offset: number): number {
  const ino = inodeOf(file);
  ensure((file.flags & O_ACCMODE) !== O_RDONLY, "EBADF", "write: file not open for writing");
  if (ino.hugetlb)
    throw new KernelError("EINVAL", "write: a hugetlb memfd has no write (hugetlbfs); use mmap");
  const end = offset + data.length;
  let pos = offset;
  while (pos < end) {
    const chunkEnd = Math.min(end, (Math.floor(pos / HPAGE_SIZE) + 1) * HPAGE_SIZE);
    const refusal =
      (ino.seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)) !== 0
        ? "the memfd is sealed against writing (F_SEAL_WRITE or F_SEAL_FUTURE_WRITE)"
        : (ino.seals & F_SEAL_GROW) !== 0 && chunkEnd > ino.size
          ? "would grow a memfd sealed with F_SEAL_GROW"
          : undefined;
    if (refusal !== undefined) {
      if (pos > offset) break;
      throw new KernelError("EPERM", `write: ${refusal}`);
    }
    while (pos < chunkEnd) {
      const index = Math.floor(pos / PAGE_SIZE);
      const inPage = pos - index * PAGE_SIZE;
      const n = Math.min(PAGE_SIZE - inPage, chunkEnd - pos);
      ino.machine.cpu.writePhys(ino.page(index) + inPage, data, pos - offset, n);
      pos += n;
    }
    if (pos > ino.size) ino.size = pos;
  }
  return pos - offset;
}

/**
 * fcntl(F_ADD_SEALS / F_GET_SEALS) (memfd_fcntl, memfd_add_seals). EINVAL for a file
 * that is not a memfd. F_SEAL_EXEC on an executable memfd adds the write, shrink and
 * grow seals too (W^X). F_SEAL_WRITE is refused with EBUSY while a shared writable
 * mapping exists (mapping_deny_writable) or pages are pinned (memfd_wait_for_pins).
 */
export function memfdFcntl(file: File, cmd: number, arg: number): number {
  if (!isShmemFile(file))
    throw new KernelError("EINVAL", `fcntl seals: ${file.path} is not a memfd`);
  const ino = inodeOf(file);
  if (cmd === F_GET_SEALS) return ino.seals;
  ensure(cmd === F_ADD_SEALS, "EINVAL", `fcntl: command ${cmd} is not a seal command`);
  if ((file.flags & O_ACCMODE) === O_RDONLY)
    throw new KernelError("EPERM", "F_ADD_SEALS: file not open for writing");
  let seals = arg >>> 0;
  ensure(
    (seals & ~F_ALL_SEALS) === 0,
    "EINVAL",
    `F_ADD_SEALS: unknown seals 0x${seals.toString(16)}`,
  );
  if ((ino.seals & F_SEAL_SEAL) !== 0)
    throw new KernelError(
      "EPERM",
      "F_ADD_SEALS: the memfd is sealed against more seals (F_SEAL_SEAL)",
    );
  if ((seals & F_SEAL_EXEC) !== 0 && ino.exec)
    seals |= F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_FUTURE_WRITE;
  if ((seals & F_SEAL_WRITE) !== 0 && (ino.seals & F_SEAL_WRITE) === 0) {
    if (ino.writableMappings > 0)
      throw new KernelError(
        "EBUSY",
        "F_ADD_SEALS: F_SEAL_WRITE while writable shared mappings exist",
      );
    if (ino.pins > 0)
      throw new KernelError(
        "EBUSY",
        "F_ADD_SEALS: F_SEAL_WRITE while pages are pinned (a udmabuf holds them)",
      );
  }
  ino.seals |= seals;
  return 0;
}
