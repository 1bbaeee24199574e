/** include/uapi/linux/dma-buf.h: the dma-buf fd's ioctls. */

import { _IOW, _IOWR } from "./ioctl.js";

export const DMA_BUF_SYNC_READ = 1 << 0;
export const DMA_BUF_SYNC_WRITE = 2 << 0;
export const DMA_BUF_SYNC_RW = DMA_BUF_SYNC_READ | DMA_BUF_SYNC_WRITE;
export const DMA_BUF_SYNC_START = 0 << 2;
export const DMA_BUF_SYNC_END = 1 << 2;
export const DMA_BUF_SYNC_VALID_FLAGS_MASK = DMA_BUF_SYNC_RW | DMA_BUF_SYNC_END;
export const DMA_BUF_NAME_LEN = 32;

/** struct dma_buf_sync { __u64 flags; } */
export const SIZEOF_DMA_BUF_SYNC = 8;
/** struct dma_buf_export_sync_file / dma_buf_import_sync_file { __u32 flags; __s32 fd; } */
export const SIZEOF_DMA_BUF_SYNC_FILE = 8;

export const DMA_BUF_BASE = "b";
export const DMA_BUF_IOCTL_SYNC = _IOW(DMA_BUF_BASE, 0, SIZEOF_DMA_BUF_SYNC);
/** DMA_BUF_SET_NAME takes a pointer; _A and _B are its 32- and 64-bit encodings. */
export const DMA_BUF_SET_NAME_A = _IOW(DMA_BUF_BASE, 1, 4);
export const DMA_BUF_SET_NAME_B = _IOW(DMA_BUF_BASE, 1, 8);
export const DMA_BUF_SET_NAME = DMA_BUF_SET_NAME_B;
export const DMA_BUF_IOCTL_EXPORT_SYNC_FILE = _IOWR(DMA_BUF_BASE, 2, SIZEOF_DMA_BUF_SYNC_FILE);
export const DMA_BUF_IOCTL_IMPORT_SYNC_FILE = _IOW(DMA_BUF_BASE, 3, SIZEOF_DMA_BUF_SYNC_FILE);
