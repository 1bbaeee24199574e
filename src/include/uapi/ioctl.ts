/**
 * ioctl command encoding (include/uapi/asm-generic/ioctl.h).
 *
 * A command packs direction, argument size, a type character and a number, so a
 * driver can tell from the command alone how many bytes to copy from and to userspace.
 */

export const IOC_NONE = 0;
export const IOC_WRITE = 1;
export const IOC_READ = 2;

const NRSHIFT = 0;
const TYPESHIFT = 8;
const SIZESHIFT = 16;
const DIRSHIFT = 30;

/** _IOC(dir, type, nr, size). Returns an unsigned 32-bit number. */
export function _IOC(dir: number, type: string | number, nr: number, size: number): number {
  const t = typeof type === "string" ? type.charCodeAt(0) : type;
  return ((dir << DIRSHIFT) | (size << SIZESHIFT) | (t << TYPESHIFT) | (nr << NRSHIFT)) >>> 0;
}
/** _IO(type, nr): no argument. */
export const _IO = (type: string, nr: number): number => _IOC(IOC_NONE, type, nr, 0);
/** _IOR(type, nr, size): the kernel writes `size` bytes back. */
export const _IOR = (type: string, nr: number, size: number): number =>
  _IOC(IOC_READ, type, nr, size);
/** _IOW(type, nr, size): the kernel reads `size` bytes. */
export const _IOW = (type: string, nr: number, size: number): number =>
  _IOC(IOC_WRITE, type, nr, size);
/** _IOWR(type, nr, size): both. */
export const _IOWR = (type: string, nr: number, size: number): number =>
  _IOC(IOC_READ | IOC_WRITE, type, nr, size);

export const _IOC_NR = (cmd: number): number => (cmd >>> NRSHIFT) & 0xff;
export const _IOC_TYPE = (cmd: number): number => (cmd >>> TYPESHIFT) & 0xff;
export const _IOC_SIZE = (cmd: number): number => (cmd >>> SIZESHIFT) & 0x3fff;
export const _IOC_DIR = (cmd: number): number => (cmd >>> DIRSHIFT) & 0x3;
