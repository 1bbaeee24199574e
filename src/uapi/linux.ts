/**
 * The real-kernel backend of the userspace interface: the same {@link Uapi} contract as
 * the simulator (./sim.ts), implemented by calling glibc's system-call wrappers through
 * koffi. A program, or the conformance suite, runs unchanged on the model and on Linux.
 *
 * Memory follows the simulator's semantics: {@link LinuxUapi.alloc} is calloc'd process
 * memory whose `bytes` is a live view (koffi.view), so an ioctl writes into it and the
 * caller sees the result, just as copy_to_user() into the simulator's UserMemory does;
 * a {@link Mapping}'s read/write/fill go to the real mmap'd pages. Failed calls throw
 * KernelError with the errno name from koffi.errno(), so `expectErrno` and every
 * KernelError check work identically on both backends.
 *
 * Native code cannot be fenced like the model: the wrappers check what would otherwise
 * crash node (access outside a mapping, writes to a read-only mapping, use after munmap)
 * and throw {@link LinuxUserFault}; a SIGBUS from touching pages past the end of a
 * shrunk memfd cannot be caught and still kills the process, as it would a C program.
 */

import { readdirSync } from "node:fs";
import { createRequire } from "node:module";
import type * as Koffi from "koffi";
import { ERRNO, type ErrnoName, errnoName, KernelError } from "../errno.js";
import { readBuffer } from "../lib/bytes.js";
import type { Mapping, PollRequest, Uapi, UserBuffer } from "./uapi.js";

type KoffiModule = typeof Koffi;
type Ptr = bigint;

/** (void *)-1, as koffi returns a failed mmap (pointers are BigInt in koffi 3). */
const MAP_FAILED = 0xffff_ffff_ffff_ffffn;
const PROT_WRITE = 0x2;
const PROT_READ = 0x1;
/** sizeof(struct pollfd) on every Linux ABI: int fd; short events; short revents. */
const SIZEOF_POLLFD = 8;

/** The libc entry points, typed (koffi's own declarations are `any`). */
interface Libc {
  open(path: string, flags: number, mode: "int", modeValue: number): number;
  close(fd: number): number;
  dup(fd: number): number;
  ioctl(fd: number, req: number, arg: number | bigint): number;
  mmap(addr: null, length: number, prot: number, flags: number, fd: number, off: number): Ptr;
  munmap(addr: Ptr, length: number): number;
  lseek(fd: number, off: number, whence: number): number;
  poll(fds: Ptr, nfds: number, timeout: number): number;
  memfd_create(name: string, flags: number): number;
  ftruncate(fd: number, length: number): number;
  pwrite(fd: number, buf: Uint8Array, count: number, off: number): number;
  read(fd: number, buf: Uint8Array, count: number): number;
  write(fd: number, buf: Uint8Array, count: number): number;
  fcntl(fd: number, cmd: number, argType: "int", arg: number): number;
  calloc(n: number, size: number): Ptr;
  free(p: Ptr): void;
}

let bound: { koffi: KoffiModule; libc: Libc } | undefined;

/** Loads koffi and binds libc once per process; a clear error when either is impossible. */
function bindLibc(): { koffi: KoffiModule; libc: Libc } {
  if (bound !== undefined) return bound;
  if (process.platform !== "linux") {
    throw new Error(
      `LinuxUapi needs Linux (this is ${process.platform}); use SimUapi, or run on a Linux host or VM`,
    );
  }
  let koffi: KoffiModule;
  try {
    // Loaded on demand, so importing this module never fails where koffi has no binary.
    koffi = createRequire(import.meta.url)("koffi") as KoffiModule;
  } catch (e) {
    throw new Error(
      `LinuxUapi: cannot load koffi (${(e as Error).message}); is node_modules/koffi and its prebuilt @koromix/koffi-${process.platform}-${process.arch} package installed?`,
    );
  }
  const lib = koffi.load("libc.so.6");
  const f = (proto: string) => lib.func(proto);
  // ioctl is variadic in libc; a fixed prototype whose third argument is 64 bits wide
  // carries both a user address and a plain integer argument (x86-64/arm64 pass either
  // in the same register). open and fcntl stay variadic: their optional argument is an int.
  const libc = {
    open: f("int open(const char *path, int flags, ...)"),
    close: f("int close(int fd)"),
    dup: f("int dup(int fd)"),
    ioctl: f("int ioctl(int fd, unsigned long req, uint64_t arg)"),
    mmap: f("void *mmap(void *addr, size_t length, int prot, int flags, int fd, int64_t off)"),
    munmap: f("int munmap(void *addr, size_t length)"),
    lseek: f("int64_t lseek(int fd, int64_t off, int whence)"),
    poll: f("int poll(void *fds, unsigned long nfds, int timeout)"),
    memfd_create: f("int memfd_create(const char *name, unsigned int flags)"),
    ftruncate: f("int ftruncate(int fd, int64_t length)"),
    pwrite: f("int64_t pwrite(int fd, const void *buf, size_t count, int64_t off)"),
    read: f("int64_t read(int fd, void *buf, size_t count)"),
    write: f("int64_t write(int fd, const void *buf, size_t count)"),
    fcntl: f("int fcntl(int fd, int cmd, ...)"),
    calloc: f("void *calloc(size_t n, size_t size)"),
    free: f("void free(void *p)"),
  } as unknown as Libc;
  bound = { koffi, libc };
  return bound;
}

/**
 * A SIGSEGV the wrapper caught before native code could take it: an access outside a
 * mapping, a write to a mapping without PROT_WRITE, or use of an unmapped Mapping.
 * (The simulator throws its UserFault for the same accesses.)
 */
export class LinuxUserFault extends Error {
  readonly signal = "SIGSEGV";
  constructor(why: string) {
    super(`SIGSEGV: ${why}`);
    this.name = "LinuxUserFault";
  }
}

/** One real mmap: reads and writes go through a koffi.view over the mapped pages. */
class LinuxMapping implements Mapping {
  #bytes: Uint8Array | null;
  constructor(
    readonly ptr: Ptr,
    readonly length: number,
    readonly prot: number,
    view: ArrayBuffer,
  ) {
    this.#bytes = new Uint8Array(view);
  }
  get addr(): number {
    return Number(this.ptr);
  }
  get mapped(): boolean {
    return this.#bytes !== null;
  }
  #span(offset: number, len: number, write: boolean): Uint8Array {
    const b = this.#bytes;
    if (b === null) throw new LinuxUserFault("access to an unmapped Mapping");
    if (!Number.isInteger(offset) || offset < 0 || len < 0 || offset + len > this.length) {
      throw new LinuxUserFault(`access ${offset}+${len} outside a ${this.length}-byte mapping`);
    }
    if (write && (this.prot & PROT_WRITE) === 0)
      throw new LinuxUserFault("write to a mapping without PROT_WRITE");
    if (!write && (this.prot & PROT_READ) === 0)
      throw new LinuxUserFault("read from a mapping without PROT_READ");
    return b;
  }
  read(offset: number, len: number, into?: Uint8Array): Uint8Array {
    const b = this.#span(offset, len, false);
    if (into === undefined) return b.slice(offset, offset + len);
    const out = readBuffer(into, len);
    out.set(b.subarray(offset, offset + len));
    return out;
  }
  write(offset: number, data: Uint8Array): void {
    this.#span(offset, data.length, true).set(data, offset);
  }
  fill(offset: number, len: number, value: number): void {
    this.#span(offset, len, true).fill(value, offset, offset + len);
  }
  /** Drops the view: the pages are gone once munmap returns. */
  detach(): void {
    this.#bytes = null;
  }
}

interface Allocation extends UserBuffer {
  readonly ptr: Ptr;
}

/**
 * The userspace interface of the running Linux kernel (backend "linux"): every call is
 * the glibc wrapper of the same system call, and errors are thrown as KernelError.
 */
export class LinuxUapi implements Uapi {
  readonly backend = "linux";
  readonly #koffi: KoffiModule;
  readonly #libc: Libc;
  readonly #maps = new Map<number, LinuxMapping>();
  readonly #allocs = new Map<number, Allocation>();

  constructor() {
    const { koffi, libc } = bindLibc();
    this.#koffi = koffi;
    this.#libc = libc;
  }

  /** The errno of the last failed call as a KernelError (names outside src/errno.ts kept too). */
  #fail(call: string): never {
    const n = this.#koffi.errno();
    const name = errnoName(n);
    if (name in ERRNO) throw new KernelError(name as ErrnoName, `${call} failed`);
    const osName = Object.entries(this.#koffi.os.errno).find(([, v]) => v === n)?.[0] ?? name;
    // An errno the model does not know: still a KernelError, carrying the real name.
    const e = new KernelError("EIO", `${call} failed`);
    Object.assign(e, { code: osName, errno: n, message: `${osName}: ${call} failed` });
    throw e;
  }

  #check(r: number, call: string): number {
    if (r < 0) this.#fail(call);
    return r;
  }

  /** open(2). */
  open(path: string, flags: number): number {
    return this.#check(this.#libc.open(path, flags, "int", 0), `open(${path})`);
  }
  /** close(2). */
  close(fd: number): void {
    this.#check(this.#libc.close(fd), `close(${fd})`);
  }
  /** dup(2). */
  dup(fd: number): number {
    return this.#check(this.#libc.dup(fd), `dup(${fd})`);
  }
  /** ioctl(2): `arg` is a user address from {@link alloc} or a plain value. */
  ioctl(fd: number, cmd: number, arg: number): number {
    const a = arg < 0 ? BigInt.asUintN(64, BigInt(arg)) : arg;
    return this.#check(
      this.#libc.ioctl(fd, cmd >>> 0, a),
      `ioctl(${fd}, 0x${(cmd >>> 0).toString(16)})`,
    );
  }
  /** mmap(2) at an address the kernel picks. */
  mmap(length: number, prot: number, flags: number, fd: number, offset: number): Mapping {
    const p = this.#libc.mmap(null, length, prot, flags, fd, offset);
    if (p === MAP_FAILED || p === 0n) this.#fail(`mmap(fd ${fd}, ${length}@${offset})`);
    const m = new LinuxMapping(p, length, prot, this.#koffi.view(p, length));
    this.#maps.set(m.addr, m);
    return m;
  }
  /** munmap(2) of a whole Mapping from {@link mmap}. */
  munmap(map: Mapping): void {
    const m = this.#maps.get(map.addr);
    if (m === undefined) throw new Error(`munmap: 0x${map.addr.toString(16)} is not mapped`);
    m.detach();
    this.#maps.delete(map.addr);
    this.#check(this.#libc.munmap(m.ptr, m.length), "munmap");
  }
  /** lseek(2). */
  lseek(fd: number, offset: number, whence: number): number {
    return this.#check(Number(this.#libc.lseek(fd, offset, whence)), `lseek(${fd})`);
  }
  /** poll(2): revents per request. Blocks the thread, as the synchronous contract asks. */
  poll(fds: readonly PollRequest[], timeoutMs: number): number[] {
    const buf = this.alloc(Math.max(1, fds.length) * SIZEOF_POLLFD);
    try {
      const v = new DataView(buf.bytes.buffer, buf.bytes.byteOffset, buf.bytes.byteLength);
      fds.forEach((r, i) => {
        v.setInt32(i * SIZEOF_POLLFD, r.fd, true);
        v.setInt16(i * SIZEOF_POLLFD + 4, r.events, true);
      });
      const t = timeoutMs < 0 ? -1 : Math.floor(timeoutMs);
      this.#check(this.#libc.poll((buf as Allocation).ptr, fds.length, t), "poll");
      return fds.map((_, i) => v.getUint16(i * SIZEOF_POLLFD + 6, true));
    } finally {
      this.free(buf);
    }
  }
  /** memfd_create(2). */
  memfdCreate(name: string, flags: number): number {
    return this.#check(this.#libc.memfd_create(name, flags), "memfd_create");
  }
  /** ftruncate(2). */
  ftruncate(fd: number, length: number): void {
    this.#check(this.#libc.ftruncate(fd, length), `ftruncate(${fd})`);
  }
  /** pwrite(2). */
  pwrite(fd: number, data: Uint8Array, offset: number): number {
    // A loff_t is an integer: a fractional or NaN offset cannot be passed (koffi would
    // truncate it), so it is refused as the kernel refuses a negative one.
    if (!Number.isSafeInteger(offset))
      throw new KernelError("EINVAL", `pwrite(${fd}): offset ${offset} is not an integer`);
    return this.#check(Number(this.#libc.pwrite(fd, data, data.length, offset)), `pwrite(${fd})`);
  }
  /** read(2): at most `len` bytes. */
  read(fd: number, len: number): Uint8Array {
    const buf = new Uint8Array(len);
    const n = this.#check(Number(this.#libc.read(fd, buf, len)), `read(${fd})`);
    return buf.slice(0, n);
  }
  /** write(2). */
  write(fd: number, data: Uint8Array): number {
    return this.#check(Number(this.#libc.write(fd, data, data.length)), `write(${fd})`);
  }
  /** fcntl(2) with an int argument (F_GETFD, F_SETFD, F_ADD_SEALS, F_GET_SEALS...). */
  fcntl(fd: number, cmd: number, arg = 0): number {
    return this.#check(this.#libc.fcntl(fd, cmd, "int", arg), `fcntl(${fd}, ${cmd})`);
  }
  /** readdir(3) of a directory (without "." and ".."), sorted like the simulator's. */
  readdir(path: string): string[] {
    try {
      return readdirSync(path).sort();
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? "EIO";
      if (code in ERRNO) throw new KernelError(code as ErrnoName, `readdir(${path}) failed`);
      throw e;
    }
  }
  /** calloc(3): zeroed process memory; `bytes` is a live view of it. */
  alloc(len: number): UserBuffer {
    const size = Math.max(1, len);
    const ptr = this.#libc.calloc(1, size);
    if (ptr === 0n) throw new KernelError("ENOMEM", `calloc(${size})`);
    const a: Allocation = {
      ptr,
      addr: Number(ptr),
      bytes: new Uint8Array(this.#koffi.view(ptr, size)),
    };
    this.#allocs.set(a.addr, a);
    return a;
  }
  /** free(3) of a block from {@link alloc}. */
  free(buf: UserBuffer): void {
    const a = this.#allocs.get(buf.addr);
    if (a === undefined) throw new Error(`free: 0x${buf.addr.toString(16)} was not allocated`);
    this.#allocs.delete(buf.addr);
    this.#libc.free(a.ptr);
  }
  /** Unmaps and frees whatever a caller left behind (fds are the caller's to close). */
  dispose(): { mappings: number; allocations: number } {
    const left = { mappings: this.#maps.size, allocations: this.#allocs.size };
    for (const m of [...this.#maps.values()]) this.munmap(m);
    for (const a of [...this.#allocs.values()]) this.free(a);
    return left;
  }
}

/**
 * The real kernel's userspace interface for this process. Throws a clear Error when
 * not on Linux or when koffi (or its prebuilt binary) cannot be loaded.
 */
export function openLinuxUapi(): LinuxUapi {
  return new LinuxUapi();
}
