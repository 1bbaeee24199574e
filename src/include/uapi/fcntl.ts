/**
 * File flags, seals, mmap and poll constants as the x86-64/arm64 Linux ABI defines them
 * (include/uapi/asm-generic/fcntl.h, linux/memfd.h, asm-generic/mman-common.h,
 * asm-generic/poll.h, linux/fs.h).
 */

export const O_RDONLY = 0o0;
export const O_WRONLY = 0o1;
export const O_RDWR = 0o2;
export const O_ACCMODE = 0o3;
export const O_APPEND = 0o2000;
export const O_NONBLOCK = 0o4000;
/** x86-64's encoding (asm-generic); arm64 defines O_DIRECT 0o200000 and O_LARGEFILE 0o400000. */
export const O_DIRECT = 0o40000;
/** Set on every file a 64-bit open() or memfd_create() makes (force_o_largefile()); x86-64 encoding. */
export const O_LARGEFILE = 0o100000;
export const O_NOATIME = 0o1000000;
export const O_CLOEXEC = 0o2000000;

export const SEEK_SET = 0;
export const SEEK_CUR = 1;
export const SEEK_END = 2;

/** fcntl commands for seals (F_LINUX_SPECIFIC_BASE 1024 + 9, + 10). */
export const F_ADD_SEALS = 1033;
export const F_GET_SEALS = 1034;
export const F_GETFD = 1;
export const F_SETFD = 2;
export const F_GETFL = 3;
export const F_SETFL = 4;
export const FD_CLOEXEC = 1;
export const F_SEAL_SEAL = 0x0001;
export const F_SEAL_SHRINK = 0x0002;
export const F_SEAL_GROW = 0x0004;
export const F_SEAL_WRITE = 0x0008;
export const F_SEAL_FUTURE_WRITE = 0x0010;
/** Since 6.3: the file's exec bits cannot change (and on an executable memfd, W^X seals). */
export const F_SEAL_EXEC = 0x0020;

export const MFD_CLOEXEC = 0x0001;
export const MFD_ALLOW_SEALING = 0x0002;
export const MFD_HUGETLB = 0x0004;
/** Since 6.3: not executable, sealed with F_SEAL_EXEC (and sealing allowed). */
export const MFD_NOEXEC_SEAL = 0x0008;
export const MFD_EXEC = 0x0010;
/** MFD_HUGE_SHIFT/MFD_HUGE_MASK (linux/memfd.h, from asm-generic/hugetlb_encode.h). */
export const MFD_HUGE_SHIFT = 26;
export const MFD_HUGE_MASK = 0x3f;
/** MFD_HUGE_2MB: log2(2 MiB) << MFD_HUGE_SHIFT. */
export const MFD_HUGE_2MB = 21 << MFD_HUGE_SHIFT;

export const PROT_NONE = 0x0;
export const PROT_READ = 0x1;
export const PROT_WRITE = 0x2;
export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;

export const POLLIN = 0x0001;
export const POLLPRI = 0x0002;
export const POLLOUT = 0x0004;
export const POLLERR = 0x0008;
export const POLLHUP = 0x0010;
export const POLLNVAL = 0x0020;
