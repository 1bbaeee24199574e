/**
 * A process's file-descriptor table (fs/file.c: alloc_fd, fd_install, close_fd,
 * dup, the close-on-exec bit). An fd can be reserved before its file exists
 * (get_unused_fd_flags), so an ioctl that commits work (arms a job, publishes a fence)
 * fails with EMFILE before that point instead of after it.
 */

import { KernelError } from "../errno.js";
import type { File } from "./file.js";

/** RLIMIT_NOFILE's usual soft limit. */
export const DEFAULT_NOFILE = 1024;

interface Slot {
  /** undefined while the fd is reserved (get_unused_fd_flags) and not installed yet. */
  file: File | undefined;
  cloexec: boolean;
}

export class FdTable {
  readonly #slots: (Slot | undefined)[] = [];

  constructor(readonly limit = DEFAULT_NOFILE) {}

  /** get_unused_fd_flags() + fd_install(): the lowest free fd takes over the caller's reference. EMFILE when full. */
  install(file: File, cloexec = false): number {
    const fd = this.getUnusedFd(cloexec);
    this.fdInstall(fd, file);
    return fd;
  }

  /**
   * get_unused_fd_flags() (fs/file.c, alloc_fd): reserves the lowest free fd, with its
   * close-on-exec bit, without a file behind it: lookups and close() see EBADF until
   * {@link fdInstall}, and the number is not handed out again until then or
   * {@link putUnusedFd}. EMFILE when the table is full.
   */
  getUnusedFd(cloexec = false): number {
    let fd = this.#slots.indexOf(undefined);
    if (fd < 0) fd = this.#slots.length;
    if (fd >= this.limit) {
      throw new KernelError("EMFILE", `all ${this.limit} file descriptors are in use`);
    }
    this.#slots[fd] = { file: undefined, cloexec };
    return fd;
  }

  /** fd_install() (fs/file.c): `file` (the caller's reference) behind the fd {@link getUnusedFd} reserved. Cannot fail. */
  fdInstall(fd: number, file: File): void {
    const s = this.#reserved(fd, "fd_install");
    s.file = file;
  }

  /** put_unused_fd() (fs/file.c): gives back a reserved fd that was never installed. */
  putUnusedFd(fd: number): void {
    this.#reserved(fd, "put_unused_fd");
    this.#slots[fd] = undefined;
    this.#trim();
  }

  /** The slot of a reserved, not installed fd; anything else is a kernel bug (BUG_ON in fd_install). */
  #reserved(fd: number, what: string): Slot {
    const s = Number.isInteger(fd) && fd >= 0 ? this.#slots[fd] : undefined;
    if (s === undefined || s.file !== undefined)
      throw new Error(`${what}: fd ${fd} was not reserved by get_unused_fd_flags`);
    return s;
  }

  /** fget() without taking a reference: EBADF if `fd` is not open. */
  lookup(fd: number): File {
    const s = Number.isInteger(fd) && fd >= 0 ? this.#slots[fd] : undefined;
    if (s?.file === undefined) throw new KernelError("EBADF", `fd ${fd} is not open`);
    return s.file;
  }

  /** fget(): a new reference the caller must put. */
  fget(fd: number): File {
    return this.lookup(fd).get();
  }

  has(fd: number): boolean {
    return Number.isInteger(fd) && fd >= 0 && this.#slots[fd]?.file !== undefined;
  }

  cloexec(fd: number): boolean {
    this.lookup(fd);
    return this.#slots[fd]!.cloexec;
  }

  setCloexec(fd: number, on: boolean): void {
    this.lookup(fd);
    this.#slots[fd]!.cloexec = on;
  }

  /** close(): drops the fd's reference. */
  close(fd: number): void {
    const file = this.lookup(fd);
    this.#slots[fd] = undefined;
    this.#trim();
    file.put();
  }

  #trim(): void {
    while (this.#slots.length > 0 && this.#slots[this.#slots.length - 1] === undefined)
      this.#slots.pop();
  }

  /** dup(): a new fd for the same open file, close-on-exec clear. */
  dup(fd: number): number {
    const file = this.lookup(fd);
    file.get();
    try {
      return this.install(file, false);
    } catch (e) {
      file.put();
      throw e;
    }
  }

  /** Every open fd, ascending. */
  fds(): number[] {
    const out: number[] = [];
    this.#slots.forEach((s, i) => {
      if (s?.file !== undefined) out.push(i);
    });
    return out;
  }

  /** exit_files(): closes everything. */
  closeAll(): void {
    for (const fd of this.fds()) this.close(fd);
  }
}
