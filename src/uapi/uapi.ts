/**
 * The userspace interface as one TypeScript contract: the system calls a program uses
 * to share buffers (open, ioctl, mmap, poll, memfd...). Two backends implement it: the
 * simulated kernel (./sim.ts) and, later, the real Linux kernel through FFI. Typed
 * wrappers for each ioctl (./lib.ts) sit on top and are shared by both, so a program —
 * or the conformance suite — runs unchanged on either.
 *
 * Errors are thrown as KernelError carrying the errno name and number.
 */

/** One mmap of a buffer. */
export interface Mapping {
  readonly addr: number;
  readonly length: number;
  /**
   * Loads `len` bytes at `offset`: a new array, or the first `len` bytes of `into` (a
   * buffer the program reuses, as read(2) fills the buffer it is given).
   */
  read(offset: number, len: number, into?: Uint8Array): Uint8Array;
  write(offset: number, data: Uint8Array): void;
  fill(offset: number, len: number, value: number): void;
}

/** A block of ordinary process memory for ioctl arguments (malloc). */
export interface UserBuffer {
  /** The user address to pass to ioctl. */
  readonly addr: number;
  /** The bytes, read and written in place. */
  readonly bytes: Uint8Array;
}

export interface PollRequest {
  readonly fd: number;
  readonly events: number;
}

/** The system calls. */
export interface Uapi {
  /** "sim" or "linux". */
  readonly backend: string;
  open(path: string, flags: number): number;
  close(fd: number): void;
  dup(fd: number): number;
  /** ioctl(2) with `arg` a user address (from {@link alloc}) or a plain value. Returns the ioctl's non-negative result. */
  ioctl(fd: number, cmd: number, arg: number): number;
  mmap(length: number, prot: number, flags: number, fd: number, offset: number): Mapping;
  munmap(map: Mapping): void;
  lseek(fd: number, offset: number, whence: number): number;
  /** poll(2): revents per request; `timeoutMs` < 0 waits forever. */
  poll(fds: readonly PollRequest[], timeoutMs: number): number[];
  memfdCreate(name: string, flags: number): number;
  ftruncate(fd: number, length: number): void;
  pwrite(fd: number, data: Uint8Array, offset: number): number;
  /** read(2): at most `len` bytes (fewer at a record boundary, as DRM events and debugfs give). */
  read(fd: number, len: number): Uint8Array;
  /** write(2): the number of bytes written. */
  write(fd: number, data: Uint8Array): number;
  fcntl(fd: number, cmd: number, arg?: number): number;
  /** Entries of a directory of device nodes (readdir of /dev/dma_heap). */
  readdir(path: string): string[];
  alloc(len: number): UserBuffer;
  free(buf: UserBuffer): void;
}
