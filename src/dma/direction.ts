/**
 * DMA directions and attributes, with Linux's values (include/linux/dma-direction.h,
 * include/linux/dma-mapping.h).
 */

/** enum dma_data_direction. */
export const DmaDirection = {
  DMA_BIDIRECTIONAL: 0,
  DMA_TO_DEVICE: 1,
  DMA_FROM_DEVICE: 2,
  DMA_NONE: 3,
} as const;
export type DmaDirection = (typeof DmaDirection)[keyof typeof DmaDirection];

export const DMA_BIDIRECTIONAL = DmaDirection.DMA_BIDIRECTIONAL;
export const DMA_TO_DEVICE = DmaDirection.DMA_TO_DEVICE;
export const DMA_FROM_DEVICE = DmaDirection.DMA_FROM_DEVICE;
export const DMA_NONE = DmaDirection.DMA_NONE;

const NAMES = ["DMA_BIDIRECTIONAL", "DMA_TO_DEVICE", "DMA_FROM_DEVICE", "DMA_NONE"] as const;

export function directionName(d: number): string {
  return NAMES[d] ?? `DMA_?(${d})`;
}

/** valid_dma_direction(): NONE is not a valid direction for a mapping. */
export function validDirection(d: number): d is DmaDirection {
  return d === DMA_BIDIRECTIONAL || d === DMA_TO_DEVICE || d === DMA_FROM_DEVICE;
}

/** DMA_ATTR_* bits. */
export const DMA_ATTR_WEAK_ORDERING = 1 << 1;
export const DMA_ATTR_WRITE_COMBINE = 1 << 2;
export const DMA_ATTR_NO_KERNEL_MAPPING = 1 << 4;
export const DMA_ATTR_SKIP_CPU_SYNC = 1 << 5;
export const DMA_ATTR_FORCE_CONTIGUOUS = 1 << 6;
export const DMA_ATTR_ALLOC_SINGLE_PAGES = 1 << 7;
export const DMA_ATTR_NO_WARN = 1 << 8;
export const DMA_ATTR_PRIVILEGED = 1 << 9;

/** DMA_MAPPING_ERROR: the handle returned when a mapping fails (~0). */
export const DMA_MAPPING_ERROR = -1;
