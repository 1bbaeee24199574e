/**
 * Open files and their operations (include/linux/fs.h: struct file, struct
 * file_operations; fs/file_table.c: fget/fput).
 *
 * Every dma-buf, sync_file, heap device and memfd is a file. A file lives as long as
 * something holds a reference: an fd in some process, an mmap, a driver that called
 * dma_buf_get(). When the last reference goes, `release` runs exactly once.
 */

import { KernelError } from "../errno.js";
import type { MemAttr } from "../machine/cpu.js";
import type { PhysRange } from "../machine/violations.js";
import type { FdTable } from "./fdtable.js";
import { ANON_INODE_INO, MNT_ID } from "./mount.js";

/** copy_from_user / copy_to_user against the calling process's memory. */
export interface UserAccess {
  /** copy_from_user(): `len` bytes at user address `addr`; EFAULT if not mapped. */
  copyFromUser(addr: number, len: number): Uint8Array;
  /** copy_to_user(): EFAULT if not mapped. */
  copyToUser(addr: number, bytes: Uint8Array): void;
  /** strndup_user(): a NUL-terminated string of at most `max` bytes with its NUL (EINVAL if longer). */
  strndupUser(addr: number, max: number): string;
}

/**
 * The calling task (`current`): its fd table, for drivers that create fds
 * (dma_buf_fd, sync_file_install), and its memory, for ioctl arguments.
 */
export interface Current extends UserAccess {
  readonly pid: number;
  readonly comm: string;
  readonly files: FdTable;
  /**
   * pin_user_pages(): the pages behind [addr, addr+len) of the caller's mappings, held
   * until `unpin` (V4L2 USERPTR). EFAULT when the range is not mapped (or not writable
   * and `write` is asked). Optional: tasks without device-reachable memory lack it.
   */
  pinUserPages?(addr: number, len: number, write: boolean): { pages: number[]; unpin(): void };
  /**
   * The fd the ioctl in progress was made on (the system call's first argument; a
   * driver sees only the file, which every fd of a dma-buf shares). Undefined outside
   * an ioctl. The dma-buf's CPU-access bracket accounting counts per fd with it.
   */
  readonly ioctlFd?: number;
}

/**
 * A user mapping being set up by a driver's mmap (struct vm_area_struct). The driver
 * fills `ranges` with the physical pages backing [pgoff, pgoff + length) and sets the
 * cache attribute (vm_page_prot).
 */
export interface Vma {
  readonly length: number;
  /** Offset into the file, in pages (vm_pgoff). */
  pgoff: number;
  readonly prot: number;
  /** VM_SHARED: the mapping was made with MAP_SHARED. */
  readonly shared: boolean;
  /** Set by the driver: what the pages are. */
  ranges: PhysRange[];
  /** Set by the driver: pgprot_writecombine / pgprot_noncached, or cached by default. */
  attr: MemAttr;
  /** The file the mapping holds a reference on (vma_set_file may replace it). */
  file: File;
  /** Called at munmap (vm_ops->close). */
  close?: () => void;
}

/** What a driver implements for its files (struct file_operations). */
export interface FileOperations {
  /** The driver's name for introspection: "dmabuf", "sync_file", "dma_heap", ... */
  readonly name: string;
  /** Runs once when the last reference is dropped. */
  release?(file: File): void;
  /** unlocked_ioctl: `arg` is a user address (or a value, for commands that take one). */
  unlockedIoctl?(file: File, cmd: number, arg: number, current: Current): number;
  /** Fills in `vma`; throws KernelError on refusal. */
  mmap?(file: File, vma: Vma): void;
  llseek?(file: File, offset: number, whence: number): number;
  /** Readiness for the requested POLL* events, without blocking. */
  poll?(file: File, events: number): number;
  /**
   * read(2): up to `len` bytes at the file position (a DRM event, a CRC line). Blocking
   * readers wait on the virtual clock; with O_NONBLOCK and nothing ready, EAGAIN.
   * Files without `read` give EINVAL, as fs/read_write.c does when f_op has no read.
   */
  read?(file: File, len: number, current: Current): Uint8Array;
  /** write(2): returns the bytes taken (a debugfs control file, say). EINVAL without it. */
  write?(file: File, data: Uint8Array, current: Current): number;
  /** Lines for /proc/<pid>/fdinfo/<fd> after pos and flags. */
  showFdinfo?(file: File): string;
}

/** struct file. */
export class File<P = unknown> {
  #refs = 1;
  #released = false;
  /**
   * FMODE_PREAD | FMODE_PWRITE: set for files made by open(2) (do_dentry_open) and
   * memfd_create(2); pseudo files (dma-buf, sync_file) lack it, so pwrite gives ESPIPE.
   */
  positional = false;
  /** Set by a driver's open that calls nonseekable_open(): open(2) then grants no positional I/O. */
  nonseekable = false;
  /** f_pos: moved by the llseek implementations that keep a position (memfd), shown in fdinfo. */
  pos = 0;
  /** The mount the file lives on (mnt_id in fdinfo); anon_inodefs unless its creator says otherwise. */
  mntId: number = MNT_ID.anonInode;
  /** file_inode(file)->i_ino; the shared anon inode unless its creator says otherwise. */
  ino: number = ANON_INODE_INO;
  constructor(
    readonly ops: FileOperations,
    /** file->private_data. */
    readonly privateData: P,
    /** f_flags (O_ACCMODE | O_NONBLOCK ... as the opener gave them). */
    public flags: number,
    /** d_name, for /proc/<pid>/fd links: "dmabuf", "sync_file", "/dev/udmabuf", ... */
    readonly path: string,
  ) {}

  /** file_count(). */
  get count(): number {
    return this.#refs;
  }

  get released(): boolean {
    return this.#released;
  }

  /** get_file(). */
  get(): this {
    if (this.#released) throw new KernelError("EBADF", `get_file on released ${this.path}`);
    this.#refs++;
    return this;
  }

  /** fput(): drops one reference; the last one runs release. */
  put(): void {
    if (this.#released)
      throw new Error(`fput: ${this.path} already released (reference imbalance)`);
    if (--this.#refs === 0) {
      this.#released = true;
      this.ops.release?.(this);
    }
  }
}

/**
 * simple_read_from_buffer() (fs/libfs.c): up to `len` bytes of `bytes` from the reader's
 * position, which moves past them; empty at the end. For files whose whole text is known
 * (debugfs attributes, seq_files shown at once).
 */
export function simpleReadFromBuffer(
  reader: { pos: number },
  bytes: Uint8Array,
  len: number,
): Uint8Array {
  const out = bytes.slice(reader.pos, reader.pos + len);
  reader.pos += out.length;
  return out;
}
