/**
 * Linux errno values and the error type every layer raises for them.
 *
 * The numbers are Linux's (include/uapi/asm-generic/errno-base.h and errno.h), so a
 * model result and a real-kernel result compare equal.
 */

export const ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  EIO: 5,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  ENODEV: 19,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  ENOTTY: 25,
  EFBIG: 27,
  ENOSPC: 28,
  ESPIPE: 29,
  ERANGE: 34,
  ENOSYS: 38,
  /** Invalid request descriptor (media requests on a queue without them). */
  EBADR: 53,
  ENODATA: 61,
  ETIME: 62,
  EOVERFLOW: 75,
  EBADFD: 77,
  EOPNOTSUPP: 95,
  ENOBUFS: 105,
  ETIMEDOUT: 110,
  ECANCELED: 125,
} as const;

export type ErrnoName = keyof typeof ERRNO;

const NAMES = new Map<number, ErrnoName>(
  Object.entries(ERRNO).map(([k, v]) => [v, k as ErrnoName]),
);

/** The name of an errno number ("EINVAL"), or "E?<n>" if unknown. */
export function errnoName(n: number): string {
  return NAMES.get(Math.abs(n)) ?? `E?${n}`;
}

/**
 * An operation failed with an errno, like a kernel function returning -EINVAL or a
 * syscall returning -1 with errno set. `cause` says why, in words.
 */
export class KernelError extends Error {
  readonly errno: number;
  constructor(
    readonly code: ErrnoName,
    readonly why: string,
  ) {
    super(`${code}: ${why}`);
    this.name = "KernelError";
    this.errno = ERRNO[code];
  }
}

/** Throws KernelError(code, why) when `cond` is false. */
export function ensure(cond: boolean, code: ErrnoName, why: string): asserts cond {
  if (!cond) throw new KernelError(code, why);
}
