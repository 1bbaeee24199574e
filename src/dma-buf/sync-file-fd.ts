/**
 * sync_file as a file (drivers/dma-buf/sync_file.c: sync_file_fops,
 * sync_file_ioctl_merge, sync_file_ioctl_fence_info, sync_file_get_fence): the fd
 * userspace holds, its ioctls with Linux's argument checks and errno, and poll.
 */

import { KernelError } from "../errno.js";
import { O_RDONLY, POLLIN } from "../include/uapi/fcntl.js";
import { CStruct } from "../include/uapi/struct.js";
import {
  SIZEOF_SYNC_FENCE_INFO,
  SIZEOF_SYNC_FILE_INFO,
  SIZEOF_SYNC_MERGE_DATA,
  SIZEOF_SYNC_SET_DEADLINE,
  SYNC_IOC_FILE_INFO,
  SYNC_IOC_MERGE,
  SYNC_IOC_SET_DEADLINE,
} from "../include/uapi/sync-file.js";
import type { FdTable } from "../vfs/fdtable.js";
import { type Current, File, type FileOperations } from "../vfs/file.js";
import type { DmaFence, FenceEnv } from "./dma-fence.js";
import { SyncFile } from "./sync-file.js";

/** A sync_file's file private data: the object and the kernel whose fence contexts merges use. */
interface SyncFileHandle {
  readonly sf: SyncFile;
  readonly env: FenceEnv;
}

function handleOf(file: File): SyncFileHandle {
  if (file.ops !== syncFileFops) throw new KernelError("EINVAL", `${file.path} is not a sync_file`);
  return file.privateData as SyncFileHandle;
}

/** sync_file_create()'s file: `sf` as an anon_inode "sync_file", O_RDONLY; its release drops the sync_file. */
export function syncFileFile(sf: SyncFile, env: FenceEnv): File {
  return new File(syncFileFops, { sf, env }, O_RDONLY, "sync_file");
}

/**
 * The shape every fence-returning ioctl shares (sw_sync_ioctl_create_fence,
 * sync_file_ioctl_merge, dma_buf_export_sync_file): get_unused_fd_flags(O_CLOEXEC)
 * first, so a full table fails with EMFILE before anything is created; then `make`
 * reads its argument and builds the sync_file, the fd goes into the struct at
 * `fdOffset`, the struct is copied back to `arg`, and only then fd_install. Any
 * failure gives the fd back (put_unused_fd) and drops the sync_file.
 */
export function syncFileFdReply(
  current: Current,
  env: FenceEnv,
  fdOffset: number,
  arg: number,
  make: () => { data: CStruct; sf: SyncFile },
): number {
  const fd = current.files.getUnusedFd(true);
  let file: File | undefined;
  try {
    const { data, sf } = make();
    file = syncFileFile(sf, env);
    data.setS32(fdOffset, fd);
    current.copyToUser(arg, data.bytes);
  } catch (e) {
    file?.put();
    current.files.putUnusedFd(fd);
    throw e;
  }
  current.files.fdInstall(fd, file);
  return 0;
}

/** sync_file_fdget(): the sync_file behind `fd`, or undefined if `fd` is not one. */
export function syncFileFdget(files: FdTable, fd: number): SyncFile | undefined {
  if (!files.has(fd)) return undefined;
  const file = files.lookup(fd);
  return file.ops === syncFileFops ? (file.privateData as SyncFileHandle).sf : undefined;
}

/** sync_file_get_fence(): the fence of the sync_file at `fd` with a new reference, or undefined. */
export function syncFileGetFence(files: FdTable, fd: number): DmaFence | undefined {
  return syncFileFdget(files, fd)?.getFence();
}

/** sync_file_ioctl_merge: the fd is reserved before the argument is read (EMFILE first, as in Linux). */
function ioctlMerge({ sf, env }: SyncFileHandle, arg: number, current: Current): number {
  return syncFileFdReply(current, env, 36, arg, () => {
    const data = new CStruct(current.copyFromUser(arg, SIZEOF_SYNC_MERGE_DATA));
    if (data.u32(40) !== 0 || data.u32(44) !== 0)
      throw new KernelError("EINVAL", "SYNC_IOC_MERGE: flags and pad must be zero");
    const other = syncFileFdget(current.files, data.s32(32));
    if (other === undefined)
      throw new KernelError("ENOENT", `SYNC_IOC_MERGE: fd2 ${data.s32(32)} is not a sync_file`);
    return { data, sf: SyncFile.merge(env, data.cstr(0, 32), sf, other) };
  });
}

function ioctlFileInfo({ sf }: SyncFileHandle, arg: number, current: Current): number {
  const data = new CStruct(current.copyFromUser(arg, SIZEOF_SYNC_FILE_INFO));
  const info = sf.info({ flags: data.u32(36), pad: data.u32(44), numFences: data.u32(40) });
  if (info.fenceInfo.length > 0) {
    const arr = new CStruct(new Uint8Array(info.fenceInfo.length * SIZEOF_SYNC_FENCE_INFO));
    info.fenceInfo.forEach((fi, i) => {
      const o = i * SIZEOF_SYNC_FENCE_INFO;
      arr.setCstr(o, 32, fi.objName).setCstr(o + 32, 32, fi.driverName);
      arr
        .setS32(o + 64, fi.status)
        .setU32(o + 68, fi.flags)
        .setU64(o + 72, Math.round(fi.timestampNs));
    });
    current.copyToUser(data.u64(48), arr.bytes);
  }
  data.setCstr(0, 32, info.name).setS32(32, info.status).setU32(40, info.numFences);
  current.copyToUser(arg, data.bytes);
  return 0;
}

/** sync_file_fops. */
export const syncFileFops: FileOperations = {
  name: "sync_file",
  release(file) {
    handleOf(file).sf.release();
  },
  poll(file, events) {
    return handleOf(file).sf.poll() & events & POLLIN;
  },
  unlockedIoctl(file, cmd, arg, current) {
    const h = handleOf(file);
    switch (cmd) {
      case SYNC_IOC_MERGE:
        return ioctlMerge(h, arg, current);
      case SYNC_IOC_FILE_INFO:
        return ioctlFileInfo(h, arg, current);
      case SYNC_IOC_SET_DEADLINE: {
        const d = new CStruct(current.copyFromUser(arg, SIZEOF_SYNC_SET_DEADLINE));
        h.sf.setDeadline(d.u64(0), d.u64(8));
        return 0;
      }
      default:
        throw new KernelError("ENOTTY", `sync_file: unknown ioctl 0x${cmd.toString(16)}`);
    }
  },
};
