/**
 * sw_sync as a file (drivers/dma-buf/sw_sync.c: sw_sync_debugfs_fops): each open of
 * /sys/kernel/debug/sync/sw_sync is a new software timeline; its ioctls create fences
 * on it as sync_file fds, advance it, and read a fence's deadline. Tests use it to have
 * fences they signal by hand.
 */

import { KernelError } from "../errno.js";
import { CStruct } from "../include/uapi/struct.js";
import {
  SIZEOF_SW_SYNC_CREATE_FENCE_DATA,
  SIZEOF_SW_SYNC_GET_DEADLINE,
  SW_SYNC_GET_DEADLINE,
  SW_SYNC_IOC_CREATE_FENCE,
  SW_SYNC_IOC_INC,
} from "../include/uapi/sync-file.js";
import { File, type FileOperations } from "../vfs/file.js";
import type { FenceEnv } from "./dma-fence.js";
import { SwSyncTimeline } from "./sw-sync.js";
import { SyncFile } from "./sync-file.js";
import { syncFileFdReply, syncFileGetFence } from "./sync-file-fd.js";

interface SwSyncHandle {
  readonly timeline: SwSyncTimeline;
  readonly env: FenceEnv;
}

/** sw_sync_debugfs_open(): a fresh timeline. */
export function swSyncOpen(env: FenceEnv, flags: number): File<SwSyncHandle> {
  return new File(
    swSyncFops,
    { timeline: new SwSyncTimeline(env, "sw_sync"), env },
    flags,
    "sw_sync",
  );
}

/** sw_sync_debugfs_fops. */
export const swSyncFops: FileOperations = {
  name: "sw_sync",
  release(file) {
    (file.privateData as SwSyncHandle).timeline.release();
  },
  unlockedIoctl(file, cmd, arg, current) {
    const { timeline, env } = file.privateData as SwSyncHandle;
    switch (cmd) {
      case SW_SYNC_IOC_CREATE_FENCE:
        // sw_sync_ioctl_create_fence: the fd first, so a full table creates no sync_pt.
        return syncFileFdReply(current, env, 36, arg, () => {
          const data = new CStruct(current.copyFromUser(arg, SIZEOF_SW_SYNC_CREATE_FENCE_DATA));
          const pt = timeline.createFence(data.u32(0));
          try {
            return { data, sf: SyncFile.create(pt) };
          } finally {
            pt.put();
          }
        });
      case SW_SYNC_IOC_INC: {
        timeline.inc(new CStruct(current.copyFromUser(arg, 4)).u32(0));
        return 0;
      }
      case SW_SYNC_GET_DEADLINE: {
        const data = new CStruct(current.copyFromUser(arg, SIZEOF_SW_SYNC_GET_DEADLINE));
        if (data.u64(0) !== 0 || data.u32(8) !== 0) {
          throw new KernelError(
            "EINVAL",
            "SW_SYNC_GET_DEADLINE: deadline_ns and pad must be zero on input",
          );
        }
        const fence = syncFileGetFence(current.files, data.s32(12));
        if (fence === undefined)
          throw new KernelError(
            "EINVAL",
            `SW_SYNC_GET_DEADLINE: fd ${data.s32(12)} is not a sync_file`,
          );
        try {
          data.setU64(0, Math.round(timeline.getDeadline(fence)));
        } finally {
          fence.put();
        }
        current.copyToUser(arg, data.bytes);
        return 0;
      }
      default:
        throw new KernelError("ENOTTY", `sw_sync: unknown ioctl 0x${cmd.toString(16)}`);
    }
  },
};
