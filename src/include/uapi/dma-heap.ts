/** include/uapi/linux/dma-heap.h: allocating from /dev/dma_heap/<name>. */

import { O_ACCMODE, O_CLOEXEC } from "./fcntl.js";
import { _IOWR } from "./ioctl.js";

export const DMA_HEAP_VALID_FD_FLAGS = O_CLOEXEC | O_ACCMODE;
export const DMA_HEAP_VALID_HEAP_FLAGS = 0;

/** struct dma_heap_allocation_data { __u64 len; __u32 fd; __u32 fd_flags; __u64 heap_flags; } */
export const SIZEOF_DMA_HEAP_ALLOCATION_DATA = 24;
export const DMA_HEAP_IOC_MAGIC = "H";
export const DMA_HEAP_IOCTL_ALLOC = _IOWR(DMA_HEAP_IOC_MAGIC, 0, SIZEOF_DMA_HEAP_ALLOCATION_DATA);
