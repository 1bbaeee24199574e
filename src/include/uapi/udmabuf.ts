/** include/uapi/linux/udmabuf.h: turning memfd pages into a dma-buf. */

import { _IOW } from "./ioctl.js";

export const UDMABUF_FLAGS_CLOEXEC = 0x01;
/** struct udmabuf_create { __u32 memfd; __u32 flags; __u64 offset; __u64 size; } */
export const SIZEOF_UDMABUF_CREATE = 24;
/** struct udmabuf_create_item { __u32 memfd; __u32 __pad; __u64 offset; __u64 size; } */
export const SIZEOF_UDMABUF_CREATE_ITEM = 24;
/** struct udmabuf_create_list { __u32 flags; __u32 count; items follow } */
export const SIZEOF_UDMABUF_CREATE_LIST = 8;
export const UDMABUF_CREATE = _IOW("u", 0x42, SIZEOF_UDMABUF_CREATE);
export const UDMABUF_CREATE_LIST = _IOW("u", 0x43, SIZEOF_UDMABUF_CREATE_LIST);
