/**
 * Which filesystem a file lives on, as /proc/<pid>/fdinfo shows it: the mount's id
 * (struct mount.mnt_id, fs/namespace.c mnt_alloc_id) and the inode number
 * (inode->i_ino). The model has no mount table; each pseudo filesystem the model's
 * files live on gets one fixed id, in the order Linux mounts them at boot (devtmpfs and
 * proc for the nodes userspace opens, then the kernel-internal mounts: shmem's shm_mnt,
 * anon_inodefs, hugetlbfs, dmabuf's dma_buf_mnt). Linux's numbers depend on the boot;
 * what holds on every boot, and what the conformance suite checks, is which files share
 * a mount and which share an inode.
 */

/** The mount ids of the filesystems the model's files live on. */
export const MNT_ID = {
  devtmpfs: 2,
  proc: 3,
  debugfs: 4,
  /** shm_mnt (mm/shmem.c shmem_init): memfds. */
  shm: 8,
  /** anon_inode_mnt (fs/anon_inodes.c): sync_files, DRM and V4L2 event files. */
  anonInode: 10,
  /** hugetlbfs's internal mount for MFD_HUGETLB memfds (fs/hugetlbfs/inode.c). */
  hugetlbfs: 12,
  /** dma_buf_mnt (drivers/dma-buf/dma-buf.c dma_buf_init). */
  dmabuf: 14,
} as const;

/**
 * anon_inode_inode's number: every anon_inode_getfile() file (a sync_file, say) shares
 * this one inode (fs/anon_inodes.c), so they all show the same "ino".
 */
export const ANON_INODE_INO = 1;

/** get_next_ino() per kernel (keyed by the machine or kernel that owns the inodes). */
const nextIno = new WeakMap<object, number>();

/**
 * get_next_ino() (fs/inode.c): a new inode number for shmem and devtmpfs inodes, counted
 * per `owner` (the simulated machine) so runs are deterministic. Starts above
 * ANON_INODE_INO, which boot took first.
 */
export function getNextIno(owner: object): number {
  const ino = (nextIno.get(owner) ?? ANON_INODE_INO) + 1;
  nextIno.set(owner, ino);
  return ino;
}
