/**
 * A process's file-descriptor table (fs/file.c: alloc_fd, fd_install, close_fd,
 * dup, the close-on-exec bit).
 */

import { KernelError } from "../errno.js";
import type { File } from "./file.js";

/** RLIMIT_NOFILE's usual soft limit. */
export const DEFAULT_NOFILE = 1024;

interface Slot {
  readonly file: File;
  cloexec: boolean;
}

export class FdTable {
  readonly #slots: (Slot | undefined)[] = [];

  constructor(readonly limit = DEFAULT_NOFILE) {}

  /** get_unused_fd_flags() + fd_install(): the lowest free fd takes over the caller's reference. EMFILE when full. */
  install(file: File, cloexec = false): number {
    let fd = this.#slots.indexOf(undefined);
    if (fd < 0) fd = this.#slots.length;
    if (fd >= this.limit) {
      throw new KernelError("EMFILE", `all ${this.limit} file descriptors are in use`);
    }
    this.#slots[fd] = { file, cloexec };
    return fd;
  }

  /** fget() without taking a reference: EBADF if `fd` is not open. */
  lookup(fd: number): File {
    const s = Number.isInteger(fd) && fd >= 0 ? this.#slots[fd] : undefined;
    if (s === undefined) throw new KernelError("EBADF", `fd ${fd} is not open`);
    return s.file;
  }

  /** fget(): a new reference the caller must put. */
  fget(fd: number): File {
    return this.lookup(fd).get();
  }

  has(fd: number): boolean {
    return Number.isInteger(fd) && fd >= 0 && this.#slots[fd] !== undefined;
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
    while (this.#slots.length > 0 && this.#slots[this.#slots.length - 1] === undefined)
      this.#slots.pop();
    file.put();
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
      if (s !== undefined) out.push(i);
    });
    return out;
  }

  /** exit_files(): closes everything. */
  closeAll(): void {
    for (const fd of this.fds()) this.close(fd);
  }
}
