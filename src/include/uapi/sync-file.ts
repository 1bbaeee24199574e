/**
 * include/uapi/linux/sync_file.h, and the sw_sync debugfs interface
 * (drivers/dma-buf/sw_sync.c, which userspace copies into its own headers).
 */

import { _IOW, _IOWR } from "./ioctl.js";

/** struct sync_merge_data { char name[32]; __s32 fd2; __s32 fence; __u32 flags; __u32 pad; } */
export const SIZEOF_SYNC_MERGE_DATA = 48;
/** struct sync_fence_info { char obj_name[32]; char driver_name[32]; __s32 status; __u32 flags; __u64 timestamp_ns; } */
export const SIZEOF_SYNC_FENCE_INFO = 80;
/** struct sync_file_info { char name[32]; __s32 status; __u32 flags; __u32 num_fences; __u32 pad; __u64 sync_fence_info; } */
export const SIZEOF_SYNC_FILE_INFO = 56;
export const SYNC_IOC_MAGIC = ">";
export const SYNC_IOC_MERGE = _IOWR(SYNC_IOC_MAGIC, 3, SIZEOF_SYNC_MERGE_DATA);
export const SYNC_IOC_FILE_INFO = _IOWR(SYNC_IOC_MAGIC, 4, SIZEOF_SYNC_FILE_INFO);

/** struct sw_sync_create_fence_data { __u32 value; char name[32]; __s32 fence; } */
export const SIZEOF_SW_SYNC_CREATE_FENCE_DATA = 40;
/** struct sw_sync_get_deadline { __u64 deadline_ns; __u32 pad; __s32 fence_fd; } */
export const SIZEOF_SW_SYNC_GET_DEADLINE = 16;
export const SW_SYNC_IOC_MAGIC = "W";
export const SW_SYNC_IOC_CREATE_FENCE = _IOWR(
  SW_SYNC_IOC_MAGIC,
  0,
  SIZEOF_SW_SYNC_CREATE_FENCE_DATA,
);
export const SW_SYNC_IOC_INC = _IOW(SW_SYNC_IOC_MAGIC, 1, 4);
export const SW_SYNC_GET_DEADLINE = _IOWR(SW_SYNC_IOC_MAGIC, 2, SIZEOF_SW_SYNC_GET_DEADLINE);

/** struct sync_set_deadline { __u64 deadline_ns; __u64 pad; } */
export const SIZEOF_SYNC_SET_DEADLINE = 16;
export const SYNC_IOC_SET_DEADLINE = _IOW(SYNC_IOC_MAGIC, 5, SIZEOF_SYNC_SET_DEADLINE);
