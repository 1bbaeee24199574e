#!/usr/bin/env node
/**
 * The conformance suite (test/conformance/suite.ts) against a real Linux kernel booted in
 * QEMU, and against the model on this host, side by side.
 *
 * From a fresh machine: installs QEMU, busybox-static, xz and cpio when missing (as root,
 * with apt-get), downloads Debian's 6.12 kernel package (cached under .cache/kernel/),
 * unpacks it with dpkg -x, builds an initramfs (busybox, node and the libraries ldd lists,
 * the compiled project with koffi, the vivid and vgem modules and their dependencies,
 * and an init script), boots it under TCG, reads the per-case results from the serial
 * console, runs the same cases on the simulator (x86-64 and arm64 profiles) and prints
 * one line per case. Results are also written to .cache/kernel/results.json.
 *
 * Exit status: 0 when every case the kernel passes also passes on the model; 1 when the
 * model fails a case the kernel passes. When QEMU cannot run here (no qemu and no way to
 * install it, no network for the kernel package, boot timeout) it prints
 * "kernel conformance: skipped: <why>" and exits 0.
 *
 * Options: --timeout <seconds> for the VM (default 400, or $KERNEL_CONFORMANCE_TIMEOUT),
 * --no-sim to skip the simulator run, --json to print the results JSON instead of the table.
 */

import { spawn, spawnSync } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { basename, dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const CACHE = join(ROOT, ".cache", "kernel");
const BUILD = join(CACHE, "dist");
const RESULTS_JSON = join(CACHE, "results.json");
const CONSOLE_LOG = join(CACHE, "console.log");
const CONSOLE_LOG_HIGHMEM = join(CACHE, "console-highmem.log");
/**
 * The second, short boot for the suites that need RAM above 4 GiB (the swiotlb bounce of
 * a 32-bit importer, test/conformance/swiotlb-cases.ts): 5 GiB, of which QEMU's pc machine
 * puts 3.5 GiB below 4 GiB and 1.5 GiB above; x86-64 then sets up swiotlb
 * (pci_swiotlb_detect: max_pfn above 4 GiB) and serves user and hugetlb pages from
 * ZONE_NORMAL, above 4 GiB, first. The main boot keeps 1 GiB: there the 1 MiB system-heap
 * buffer vivid's 32-bit queue imports is reachable without bouncing (swiotlb could not
 * bounce it: 256 KiB at most per mapping).
 */
const HIGHMEM_BOOT = { memoryMiB: 5120, suites: ["swiotlb"] };
const APT_PACKAGES = {
  "qemu-system-x86_64": "qemu-system-x86",
  busybox: "busybox-static",
  xz: "xz-utils",
  cpio: "cpio",
};
/** The modules loaded in the VM, with their parameters (dependencies come first, found from modinfo). */
const MODULES = [
  // dma-contig allocator (videobuf2-dma-contig) for the one instance: what SoC camera drivers use.
  { name: "vivid", params: "n_devs=1 allocators=1" },
  { name: "vgem", params: "" },
];
/** 2 MiB huge pages reserved in the VM for the hugetlb cases. */
const HUGE_PAGES = 16;

const argv = process.argv.slice(2);
const optValue = (name) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const TIMEOUT_S = Number(optValue("--timeout") ?? process.env.KERNEL_CONFORMANCE_TIMEOUT ?? 400);
const RUN_SIM = !argv.includes("--no-sim");
const PRINT_JSON = argv.includes("--json");

const t0 = Date.now();
const log = (msg) => {
  if (!PRINT_JSON) process.stdout.write(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}\n`);
};

class Skip extends Error {}
const skip = (why) => {
  throw new Skip(why);
};

/** Runs a command; returns { status, stdout, stderr }. */
function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: "utf8", maxBuffer: 256 * 1024 * 1024, ...opts });
  return { status: r.error ? -1 : r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}
const which = (cmd) => {
  const r = run("sh", ["-c", `command -v ${cmd}`]);
  return r.status === 0 ? r.stdout.trim() : undefined;
};
const isRoot = () => typeof process.getuid === "function" && process.getuid() === 0;

// ---------------------------------------------------------------------------
// Host tools

function ensureTools() {
  const missing = Object.keys(APT_PACKAGES).filter((t) => which(t) === undefined);
  if (missing.length === 0) return;
  const pkgs = missing.map((t) => APT_PACKAGES[t]);
  if (!isRoot() || which("apt-get") === undefined) {
    skip(
      `missing ${missing.join(", ")}; install: apt-get install -y --no-install-recommends ${pkgs.join(" ")}`,
    );
  }
  log(`installing ${pkgs.join(" ")}`);
  const install = () =>
    run("apt-get", ["install", "-y", "--no-install-recommends", ...pkgs], {
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    });
  let r = install();
  if (r.status !== 0) {
    run("apt-get", ["update"]);
    r = install();
  }
  const still = Object.keys(APT_PACKAGES).filter((t) => which(t) === undefined);
  if (still.length > 0)
    skip(`could not install ${pkgs.join(" ")}: ${r.stderr.trim().split("\n").pop()}`);
}

// ---------------------------------------------------------------------------
// The kernel package: apt-get download, dpkg -x, cached

const DEB_RE = /^linux-image-(6\.12\.\d+)\+deb\d+-amd64(-unsigned)?_.*_amd64\.deb$/;
const PKG_RE = /^(linux-image-(6\.12\.\d+)\+deb\d+-amd64(?:-unsigned)?) - /;

const versionKey = (v) =>
  v
    .split(".")
    .map((n) => n.padStart(6, "0"))
    .join(".");

function findKernelDeb() {
  mkdirSync(CACHE, { recursive: true });
  const cached = readdirSync(CACHE)
    .filter((f) => DEB_RE.test(f))
    .sort((a, b) => versionKey(DEB_RE.exec(b)[1]).localeCompare(versionKey(DEB_RE.exec(a)[1])));
  if (cached.length > 0) return join(CACHE, cached[0]);
  if (which("apt-get") === undefined || which("apt-cache") === undefined) {
    skip("no apt-get/apt-cache to fetch Debian's linux-image-6.12 package");
  }
  const search = () =>
    run("apt-cache", ["search", "linux-image-6.12"])
      .stdout.split("\n")
      .map((l) => PKG_RE.exec(l))
      .filter((m) => m !== null)
      // Newest first; the signed package before -unsigned at the same version.
      .sort((a, b) => versionKey(b[2]).localeCompare(versionKey(a[2])) || a[1].length - b[1].length)
      .map((m) => m[1]);
  let names = search();
  if (names.length === 0 && isRoot()) {
    run("apt-get", ["update"]);
    names = search();
  }
  if (names.length === 0)
    skip(
      "apt-cache search finds no linux-image-6.12.*-amd64 (Debian bookworm with security updates needed)",
    );
  log(`downloading ${names[0]}`);
  const r = run("apt-get", ["download", names[0]], { cwd: CACHE });
  const got = readdirSync(CACHE).find((f) => DEB_RE.test(f));
  if (got === undefined)
    skip(`apt-get download ${names[0]} failed (no network?): ${r.stderr.trim().split("\n").pop()}`);
  return join(CACHE, got);
}

function extractKernel(deb) {
  const dir = join(CACHE, basename(deb, ".deb"));
  const marker = join(dir, ".extracted");
  if (!existsSync(marker)) {
    if (which("dpkg") === undefined) skip("no dpkg to unpack the kernel package");
    log(`dpkg -x ${basename(deb)}`);
    rmSync(dir, { recursive: true, force: true });
    const r = run("dpkg", ["-x", deb, dir]);
    if (r.status !== 0) skip(`dpkg -x failed: ${r.stderr.trim()}`);
    writeFileSync(marker, "");
  }
  const boot = join(dir, "boot");
  const vmlinuz = readdirSync(boot).find((f) => f.startsWith("vmlinuz-"));
  if (vmlinuz === undefined) skip(`no vmlinuz in ${basename(deb)}`);
  const release = vmlinuz.slice("vmlinuz-".length);
  const modDir = [join(dir, "lib/modules", release), join(dir, "usr/lib/modules", release)].find(
    existsSync,
  );
  if (modDir === undefined) skip(`no modules for ${release} in ${basename(deb)}`);
  return { dir, vmlinuz: join(boot, vmlinuz), release, modDir };
}

// ---------------------------------------------------------------------------
// Modules: the dependency order modules.dep would give, read from each module's
// .modinfo "depends=" (the Debian package ships no modules.dep: depmod makes it at install).

function listModules(modDir) {
  const byName = new Map();
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else {
        const m = /^(.+)\.ko(\.xz|\.zst|\.gz)?$/.exec(e.name);
        if (m) byName.set(m[1].replaceAll("-", "_"), p);
      }
    }
  };
  walk(join(modDir, "kernel"));
  return byName;
}

/** The module file's bytes, decompressed (busybox insmod reads plain .ko only). */
function moduleBytes(path) {
  if (path.endsWith(".ko")) return readFileSync(path);
  const tool = path.endsWith(".xz") ? "xz" : path.endsWith(".zst") ? "zstd" : "gzip";
  const r = spawnSync(tool, ["-dc", path], { maxBuffer: 512 * 1024 * 1024 });
  if (r.status !== 0) skip(`${tool} -dc ${basename(path)} failed`);
  return r.stdout;
}

function modinfoDepends(bytes) {
  const s = bytes.toString("latin1");
  const i = s.indexOf("\0depends=");
  if (i < 0) return [];
  const v = s.slice(i + "\0depends=".length, s.indexOf("\0", i + 1));
  return v === "" ? [] : v.split(",").map((n) => n.replaceAll("-", "_"));
}

/** Decompresses `wanted` and their dependencies into `outDir`; returns load order (deps first). */
function resolveModules(modDir, wanted, outDir) {
  const files = listModules(modDir);
  const order = [];
  const seen = new Set();
  const visit = (name) => {
    if (seen.has(name)) return;
    seen.add(name);
    const path = files.get(name);
    if (path === undefined) skip(`module ${name} not found in ${relative(CACHE, modDir)}`);
    const bytes = moduleBytes(path);
    for (const dep of modinfoDepends(bytes)) visit(dep);
    writeFileSync(join(outDir, `${name}.ko`), bytes);
    order.push(name);
  };
  for (const w of wanted) visit(w);
  return order;
}

// ---------------------------------------------------------------------------
// sw_sync: Debian's kernel is built without CONFIG_SW_SYNC, so the kernel's own
// drivers/dma-buf/sw_sync.c and sync_debug.c (from linux-source-6.12) are built here as an
// out-of-tree module against the matching linux-headers and linux-kbuild packages, cached
// beside the kernel package, and loaded in the VM before the suite runs.

/** Host tools the module build needs, with the Debian package providing each. */
const BUILD_APT_PACKAGES = {
  "x86_64-linux-gnu-gcc-12": "gcc-12",
  make: "make",
  tar: "tar",
  xz: "xz-utils",
};
/** Shared libraries kbuild's prebuilt tools (fixdep, modpost, objtool) link against. */
const BUILD_APT_LIBS = ["libelf1", "libssl3", "zlib1g"];

/**
 * The glue the two files need outside the tree: a module licence, and sync_file_get_name(),
 * which sync_debug.c's debugfs "info" file calls but sync_file.c does not export (same
 * behaviour as drivers/dma-buf/sync_file.c's).
 */
const SW_SYNC_GLUE = `// SPDX-License-Identifier: GPL-2.0-only
/* Generated by the dmabuf project's scripts/kernel-conformance.mjs. */
#include <linux/module.h>
#include <linux/sync_file.h>
#include <linux/dma-fence.h>
#include "sync_debug.h"

/* As drivers/dma-buf/sync_file.c's, which is not exported. */
char *sync_file_get_name(struct sync_file *sync_file, char *buf, int len)
{
	struct dma_fence *fence = sync_file->fence;

	if (sync_file->user_name[0])
		strscpy(buf, sync_file->user_name, len);
	else
		snprintf(buf, len, "%s-%s%llu-%lld", fence->ops->get_driver_name(fence),
			 fence->ops->get_timeline_name(fence), fence->context, fence->seqno);
	return buf;
}

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("sw_sync (drivers/dma-buf/sw_sync.c, sync_debug.c) built out of tree");
`;

/**
 * The modules built here from linux-source-6.12, each in its own directory laid out as in
 * the tree: `sources` maps a member of the source tarball to its file name in that
 * directory, `files` are written as given.
 *
 * sw_sync (drivers/dma-buf/Makefile: CONFIG_SW_SYNC): sw_sync.c is renamed sw_sync_core.c
 * so the module can be called sw_sync. sync_trace.h names TRACE_INCLUDE_PATH
 * ../../drivers/dma-buf (relative to the tree's include/trace), hence the include/trace
 * directory two levels above. sync_debug.c uses late_initcall() without including
 * linux/module.h (in the tree it is built in).
 *
 * vim2m (drivers/media/test-drivers/Makefile: CONFIG_VIDEO_VIM2M): Debian builds neither
 * vim2m nor the mem2mem framework it needs (CONFIG_V4L2_MEM2MEM_DEV, which would put
 * drivers/media/v4l2-core/v4l2-mem2mem.c into videodev). The module therefore carries its
 * own copy of v4l2-mem2mem.c, built from the same tree; everything else it uses (videodev,
 * videobuf2, the media controller) is exported by the packaged modules vivid already loads.
 */
const OUT_OF_TREE_MODULES = [
  {
    name: "sw_sync",
    dir: "drivers/dma-buf",
    sources: {
      "drivers/dma-buf/sw_sync.c": "sw_sync_core.c",
      "drivers/dma-buf/sync_debug.c": "sync_debug.c",
      "drivers/dma-buf/sync_debug.h": "sync_debug.h",
      "drivers/dma-buf/sync_trace.h": "sync_trace.h",
    },
    files: {
      "sw_sync_glue.c": SW_SYNC_GLUE,
      Kbuild: `obj-m := sw_sync.o
sw_sync-y := sw_sync_core.o sync_debug.o sw_sync_glue.o
ccflags-y := -I$(src) -I$(src)/../../include/trace
CFLAGS_sync_debug.o := -include linux/module.h
`,
    },
    extraDirs: ["include/trace"],
  },
  {
    name: "vim2m",
    dir: "drivers/media/test-drivers",
    sources: {
      "drivers/media/test-drivers/vim2m.c": "vim2m_core.c",
      "drivers/media/v4l2-core/v4l2-mem2mem.c": "v4l2-mem2mem.c",
    },
    files: {
      // Both files declare a "debug" module parameter: in one module the second would be
      // a duplicate sysfs file and the load fails, so the framework's is renamed.
      Kbuild: `obj-m := vim2m.o
vim2m-y := vim2m_core.o v4l2-mem2mem.o
CFLAGS_v4l2-mem2mem.o := -Ddebug=v4l2_mem2mem_debug
`,
    },
    extraDirs: [],
  },
];

function ensureBuildTools() {
  const missing = Object.keys(BUILD_APT_PACKAGES).filter((t) => which(t) === undefined);
  if (missing.length === 0) return;
  const pkgs = [...missing.map((t) => BUILD_APT_PACKAGES[t]), ...BUILD_APT_LIBS];
  if (!isRoot() || which("apt-get") === undefined)
    skip(`missing ${missing.join(", ")} (apt-get install -y ${pkgs.join(" ")})`);
  log(`installing ${pkgs.join(" ")}`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const install = () =>
    run("apt-get", ["install", "-y", "--no-install-recommends", ...pkgs], { env });
  let r = install();
  if (r.status !== 0) {
    run("apt-get", ["update"]);
    r = install();
  }
  const still = Object.keys(BUILD_APT_PACKAGES).filter((t) => which(t) === undefined);
  if (still.length > 0)
    skip(`could not install ${pkgs.join(" ")}: ${r.stderr.trim().split("\n").pop()}`);
}

/** apt-get download of `name` (`name=version` first) into `dir`; the .deb's path. */
function aptDownload(name, version, dir) {
  const find = () => readdirSync(dir).find((f) => f.startsWith(`${name}_`) && f.endsWith(".deb"));
  if (find() === undefined) {
    let r = run("apt-get", ["download", `${name}=${version}`], { cwd: dir });
    if (r.status !== 0 && find() === undefined)
      r = run("apt-get", ["download", name], { cwd: dir });
    if (find() === undefined)
      skip(`apt-get download ${name} failed: ${r.stderr.trim().split("\n").pop()}`);
  }
  return join(dir, find());
}

/** The cached module file of `name` for `kernel`. */
const cachedModule = (kernel, name) => join(CACHE, `${name}-${kernel.release}.ko`);

/**
 * The out-of-tree modules for `kernel` (OUT_OF_TREE_MODULES), each built once and cached
 * as .cache/kernel/<name>-<release>.ko. The Debian packages they are built from are kept
 * in .cache/kernel/debs, so building a module added later downloads nothing again. Returns
 * { built: [{ name, path }], skipped: { name: why } }: a module that cannot be built is
 * skipped (its cases then show as not supported), never fatal.
 */
function buildModules(kernel, deb) {
  const built = [];
  const skipped = {};
  const todo = [];
  for (const spec of OUT_OF_TREE_MODULES) {
    const cached = cachedModule(kernel, spec.name);
    if (existsSync(cached)) built.push({ name: spec.name, path: cached });
    else todo.push(spec);
  }
  if (todo.length === 0) return { built, skipped };
  try {
    const { headers, tarball, work } = prepareKernelTree(kernel, deb);
    for (const spec of todo) {
      try {
        built.push({ name: spec.name, path: buildOneModule(kernel, spec, headers, tarball, work) });
      } catch (e) {
        if (!(e instanceof Skip)) throw e;
        skipped[spec.name] = e.message;
      }
    }
    rmSync(work, { recursive: true, force: true });
  } catch (e) {
    if (!(e instanceof Skip)) throw e;
    for (const spec of todo) skipped[spec.name] ??= e.message;
  }
  return { built, skipped };
}

/**
 * The build tools and the unpacked linux-headers, linux-kbuild and linux-source packages
 * at the kernel package's version (downloaded into .cache/kernel/debs once).
 */
function prepareKernelTree(kernel, deb) {
  ensureBuildTools();
  // linux-image-<abi>-amd64[-unsigned]_<version>_amd64.deb
  const m = /^linux-image-(6\.12\.\d+\+deb\d+)-amd64(?:-unsigned)?_([^_]+)_amd64\.deb$/.exec(
    basename(deb),
  );
  if (m === null) skip(`cannot read the ABI and version from ${basename(deb)}`);
  const [, abi, version] = m;
  const debs = join(CACHE, "debs");
  mkdirSync(debs, { recursive: true });
  const work = join(CACHE, "module-build");
  rmSync(work, { recursive: true, force: true });
  log(
    `linux-source-6.12, linux-headers-${kernel.release} and linux-kbuild-${abi} (cached in .cache/kernel/debs)`,
  );
  const pkgs = [
    `linux-headers-${kernel.release}`,
    `linux-headers-${abi}-common`,
    `linux-kbuild-${abi}`,
    "linux-source-6.12",
  ].map((name) => aptDownload(name, version, debs));
  const root = join(work, "root");
  mkdirSync(root, { recursive: true });
  for (const p of pkgs) {
    const r = run("dpkg", ["-x", p, root]);
    if (r.status !== 0) skip(`dpkg -x ${basename(p)} failed: ${r.stderr.trim()}`);
  }
  const src = join(root, "usr/src");
  // The headers' Makefile includes the common one by its installed absolute path.
  const headers = join(src, `linux-headers-${kernel.release}`);
  const makefile = join(headers, "Makefile");
  writeFileSync(
    makefile,
    readFileSync(makefile, "utf8").replace(/^include \/usr\/src\//m, `include ${src}/`),
  );
  const tarball = readdirSync(src).find((f) => /^linux-source-6\.12\.tar\.(xz|bz2|gz)$/.test(f));
  if (tarball === undefined) skip("linux-source-6.12 holds no linux-source-6.12.tar.*");
  return { headers, tarball: join(src, tarball), work };
}

/** Extracts `spec`'s sources from the tarball, writes its files, runs kbuild; the cached .ko. */
function buildOneModule(kernel, spec, headers, tarball, work) {
  const top = join(work, `mod-${spec.name}`);
  const mod = join(top, spec.dir);
  mkdirSync(mod, { recursive: true });
  for (const d of spec.extraDirs) mkdirSync(join(top, d), { recursive: true });
  const members = Object.keys(spec.sources);
  log(`extracting ${members.join(", ")} from ${basename(tarball)}`);
  const x = run("tar", [
    "-xf",
    tarball,
    "-C",
    work,
    ...members.map((f) => `linux-source-6.12/${f}`),
  ]);
  if (x.status !== 0) skip(`tar could not extract the ${spec.name} sources: ${x.stderr.trim()}`);
  for (const [member, as] of Object.entries(spec.sources))
    copyFileSync(join(work, "linux-source-6.12", member), join(mod, as));
  for (const [name, text] of Object.entries(spec.files)) writeFileSync(join(mod, name), text);
  log(`building ${spec.name}.ko against linux-headers-${kernel.release}`);
  // No BTF for the module: pahole is not needed and the VM does not use it.
  const b = run("make", ["-C", headers, `M=${mod}`, "CONFIG_DEBUG_INFO_BTF_MODULES=", "modules"]);
  const ko = join(mod, `${spec.name}.ko`);
  if (b.status !== 0 || !existsSync(ko)) {
    const tail = `${b.stdout}${b.stderr}`.trim().split("\n").slice(-6).join(" | ");
    skip(`make modules failed: ${tail}`);
  }
  const cached = cachedModule(kernel, spec.name);
  copyFileSync(ko, cached);
  return cached;
}

// ---------------------------------------------------------------------------
// The project, compiled, and the initramfs

function compileProject() {
  const tsc = join(ROOT, "node_modules/typescript/bin/tsc");
  if (!existsSync(tsc)) skip("node_modules/typescript missing: run npm ci first");
  log("compiling the project (tsc)");
  // Type errors elsewhere do not stop tsc emitting; what matters is that the runner exists.
  const r = run(process.execPath, [tsc, "-p", join(ROOT, "tsconfig.json"), "--outDir", BUILD]);
  const runner = join(BUILD, "test/conformance/runner.js");
  if (!existsSync(runner))
    throw new Error(`tsc did not produce ${runner}:\n${r.stdout}${r.stderr}`);
}

/** The shared libraries `ldd` lists for `bin`, with the dynamic loader. */
function lddLibs(bin) {
  const r = run("ldd", [bin]);
  if (r.status !== 0) return [];
  const libs = [];
  for (const line of r.stdout.split("\n")) {
    const m = /=>\s+(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m) libs.push(m[1]);
  }
  return libs;
}

function copyInto(stage, hostPath, guestPath = hostPath) {
  const dst = join(stage, guestPath);
  mkdirSync(dirname(dst), { recursive: true });
  copyFileSync(hostPath, dst);
  chmodSync(dst, statSync(hostPath).mode & 0o777);
}

function initScript(modules) {
  const insmods = modules
    .map(({ name, params }) => {
      const what = params === "" ? name : `${name} ${params}`;
      return [
        `if insmod /lib/dmabuf-modules/${name}.ko${params === "" ? "" : ` ${params}`}; then info "insmod ${what}: ok";`,
        `else info "insmod ${what}: FAILED"; fi`,
      ].join(" ");
    })
    .join("\n");
  return `#!/bin/busybox sh
# Generated by scripts/kernel-conformance.mjs: runs the conformance suite, then powers off.
/bin/busybox --install -s /bin
export PATH=/bin:/usr/bin HOME=/tmp NO_COLOR=1 NODE_DISABLE_COLORS=1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t debugfs debugfs /sys/kernel/debug
mount -t tmpfs tmpfs /tmp
dmesg -n 1
info() { echo "@@DMABUF-INFO $*"; }
info "uname -r: $(uname -r)"
echo ${HUGE_PAGES} > /proc/sys/vm/nr_hugepages
${insmods}
info "ls /dev/video*: $(ls /dev/video* 2>&1 | tr '\\n' ' ')"
info "ls /dev/dri: $(ls /dev/dri 2>&1 | tr '\\n' ' ')"
info "ls /dev/dma_heap: $(ls /dev/dma_heap 2>&1 | tr '\\n' ' ')"
info "ls /sys/kernel/debug/sync: $(ls /sys/kernel/debug/sync 2>&1 | tr '\\n' ' ')"
info "ls /dev/udmabuf /dev/media* /dev/v4l-*: $(ls /dev/udmabuf /dev/media* /dev/v4l-* 2>&1 | tr '\\n' ' ')"
info "other V4L2 nodes: $(ls /dev/vbi* /dev/radio* /dev/swradio* 2>&1 | tr '\\n' ' ')"
for v in /sys/class/video4linux/video*; do [ -e "$v/name" ] && info "$(basename $v): $(cat $v/name)"; done
info "vivid allocators: $(cat /sys/module/vivid/parameters/allocators 2>&1)"
for d in /sys/kernel/debug/dri/*/name; do [ -e "$d" ] && info "$d: $(cat $d)"; done
info "HugePages_Free: $(grep HugePages_Free /proc/meminfo | tr -s ' ' | cut -d' ' -f2)"
info "MemTotal: $(grep MemTotal /proc/meminfo | tr -s ' ' | cut -d' ' -f2) kB"
# dmabuf_suite=S on the kernel command line (passed to init as an environment variable)
# runs only suite S: the second boot of the highmem suites.
cd /app && node dist/test/conformance/runner.js --backend linux \${dmabuf_suite:+--suite "$dmabuf_suite"}
info "runner exit status $?"
dmesg | grep -iE 'vivid|vgem|udmabuf|dma_heap|dma-buf|sw_sync|BUG|WARNING' | head -40 | sed 's/^/@@DMABUF-INFO dmesg: /'
poweroff -f
`;
}

/** `extra`: modules built here ({ name, path }), loaded after the packaged ones. */
function buildInitramfs(kernel, extra = []) {
  const stage = join(CACHE, "initramfs");
  rmSync(stage, { recursive: true, force: true });
  for (const d of [
    "bin",
    "usr/bin",
    "proc",
    "sys",
    "dev",
    "tmp",
    "lib/dmabuf-modules",
    "app/node_modules/@koromix",
  ]) {
    mkdirSync(join(stage, d), { recursive: true });
  }
  // busybox (static from busybox-static; a dynamic one brings its libraries).
  const busybox = ["/bin/busybox", "/usr/bin/busybox"].find(existsSync) ?? which("busybox");
  copyInto(stage, busybox, "/bin/busybox");
  // node and its libraries.
  copyInto(stage, process.execPath, "/usr/bin/node");
  for (const lib of new Set([...lddLibs(busybox), ...lddLibs(process.execPath)]))
    copyInto(stage, lib);
  // Modules.
  const order = resolveModules(
    kernel.modDir,
    MODULES.map((m) => m.name),
    join(stage, "lib/dmabuf-modules"),
  );
  const params = new Map(MODULES.map((m) => [m.name, m.params]));
  const modules = order.map((name) => ({ name, params: params.get(name) ?? "" }));
  for (const { name, path } of extra) {
    copyFileSync(path, join(stage, "lib/dmabuf-modules", `${name}.ko`));
    modules.push({ name, params: "" });
  }
  // The compiled project: only what the runner imports from (src and the suite), and koffi.
  const app = join(stage, "app");
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "dmabuf-vm", type: "module" }));
  const jsOnly = (src) => !src.endsWith(".map") && !src.endsWith(".d.ts");
  cpSync(join(BUILD, "src"), join(app, "dist/src"), { recursive: true, filter: jsOnly });
  cpSync(join(BUILD, "test/conformance"), join(app, "dist/test/conformance"), {
    recursive: true,
    filter: jsOnly,
  });
  const nm = join(ROOT, "node_modules");
  cpSync(join(nm, "koffi"), join(app, "node_modules/koffi"), {
    recursive: true,
    filter: (s) => !/\/koffi\/(doc|vendor|lib)(\/|$)/.test(s),
  });
  const prebuilt = join(nm, "@koromix/koffi-linux-x64");
  if (!existsSync(join(prebuilt, "linux_x64/koffi.node")))
    skip("no @koromix/koffi-linux-x64 prebuilt koffi binary in node_modules");
  cpSync(prebuilt, join(app, "node_modules/@koromix/koffi-linux-x64"), {
    recursive: true,
    filter: (s) => !s.includes("musl_"),
  });
  writeFileSync(join(stage, "init"), initScript(modules), { mode: 0o755 });
  // cpio -o -H newc, from the staging directory.
  const list = run("find", ["."], { cwd: stage }).stdout;
  const out = join(CACHE, "initramfs.cpio");
  const r = spawnSync("cpio", ["-o", "-H", "newc", "--quiet", "-O", out], {
    cwd: stage,
    input: list,
  });
  if (r.status !== 0) throw new Error(`cpio failed: ${r.stderr}`);
  rmSync(stage, { recursive: true, force: true });
  return { path: out, modules, bytes: statSync(out).size };
}

// ---------------------------------------------------------------------------
// Boot

/** Boots the VM: 1 GiB and every suite, or `opts` (memory, the one suite, the console log). */
function boot(kernel, initramfs, opts = {}) {
  const memoryMiB = opts.memoryMiB ?? 1024;
  const consoleLog = opts.consoleLog ?? CONSOLE_LOG;
  const suiteArg = opts.suite !== undefined ? ` dmabuf_suite=${opts.suite}` : "";
  const args = [
    "-accel",
    "tcg",
    "-cpu",
    "max",
    "-m",
    String(memoryMiB),
    "-nographic",
    "-no-reboot",
    "-kernel",
    kernel.vmlinuz,
    "-initrd",
    initramfs.path,
    "-append",
    // no_timer_check: on a loaded host, TCG can be too slow for check_timer(), which then
    // panics with "IO-APIC + timer doesn't work" before the suite starts.
    `console=ttyS0 panic=-1 quiet no_timer_check${suiteArg}`,
  ];
  log(
    `booting Linux ${kernel.release} under TCG with ${memoryMiB} MiB${opts.suite !== undefined ? ` for the ${opts.suite} suite` : ""} (timeout ${TIMEOUT_S} s)`,
  );
  return new Promise((done) => {
    const q = spawn("qemu-system-x86_64", args, { stdio: ["ignore", "pipe", "pipe"] });
    const chunks = [];
    let err = "";
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      q.kill("SIGKILL");
    }, TIMEOUT_S * 1000);
    q.stdout.on("data", (d) => {
      chunks.push(d);
    });
    q.stderr.on("data", (d) => {
      err += d.toString("latin1");
    });
    q.on("error", (e) => {
      clearTimeout(timer);
      done({
        out: Buffer.concat(chunks).toString("utf8"),
        err: `${err}${e.message}`,
        timedOut,
        status: -1,
      });
    });
    q.on("close", (status) => {
      clearTimeout(timer);
      const out = Buffer.concat(chunks).toString("utf8");
      writeFileSync(consoleLog, out);
      done({ out, err, timedOut, status });
    });
  });
}

// ---------------------------------------------------------------------------
// Results

/** Text without ANSI escape sequences and control characters other than newlines. */
function stripTerminal(text) {
  const noEscapes = text
    .split(String.fromCharCode(27))
    .map((part, i) => (i === 0 ? part : part.replace(/^\[[0-9;?]*[A-Za-z]/, "")))
    .join("");
  return [...noEscapes].filter((ch) => ch === "\n" || ch.charCodeAt(0) >= 32).join("");
}

async function loadRunner() {
  return import(join(BUILD, "test/conformance/runner.js"));
}

/** The suite on the simulator, in a child process (started while the VM boots). */
function runSim(runner, backend) {
  return new Promise((done, fail) => {
    const child = spawn(
      process.execPath,
      [join(BUILD, "test/conformance/runner.js"), "--backend", backend],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    const out = [];
    const err = [];
    child.stdout.on("data", (d) => out.push(d));
    child.stderr.on("data", (d) => err.push(d));
    child.on("error", fail);
    child.on("close", () => {
      const parsed = runner.parseConformanceOutput(Buffer.concat(out).toString("utf8"));
      if (parsed.complete) done(parsed);
      else
        fail(
          new Error(
            `simulator run (${backend}) did not complete:\n${Buffer.concat(err).toString("utf8")}`,
          ),
        );
    });
  });
}

const SHORT = { pass: "PASS", fail: "FAIL", unsupported: "n/a", missing: "—" };

function compare(runner, kernelRun, simRuns) {
  const byKey = (results) => new Map(results.map((r) => [runner.caseKey(r), r]));
  const k = byKey(kernelRun.results);
  const sims = Object.fromEntries(Object.entries(simRuns).map(([b, p]) => [b, byKey(p.results)]));
  // Every case either side knows, in the suite's order (the simulator runs them all).
  const keys = [...new Set([...Object.values(sims).flatMap((m) => [...m.keys()]), ...k.keys()])];
  const rows = keys.map((key) => {
    const kr = k.get(key);
    const simResults = Object.fromEntries(Object.entries(sims).map(([b, m]) => [b, m.get(key)]));
    const kernel = kr?.status ?? "missing";
    const modelFails = Object.entries(simResults).filter(([, r]) => r?.status === "fail");
    return {
      key,
      kernel,
      kernelDetail: kr?.detail,
      sim: Object.fromEntries(
        Object.entries(simResults).map(([b, r]) => [b, r?.status ?? "missing"]),
      ),
      simDetail: Object.fromEntries(modelFails.map(([b, r]) => [b, r.detail])),
      regression: kernel === "pass" && modelFails.length > 0,
    };
  });
  return rows;
}

function printTable(rows, simBackends, kernelRun, initramfs, kernel) {
  const w = (s, n) => s.padEnd(n);
  const lines = [];
  lines.push("");
  lines.push(`Conformance: model (${simBackends.join(", ")}) vs Linux ${kernel.release} in QEMU`);
  lines.push(`${simBackends.map((b) => w(b, 11)).join("")}${w("kernel", 8)}case`);
  for (const r of rows) {
    lines.push(
      `${simBackends.map((b) => w(SHORT[r.sim[b]], 11)).join("")}${w(SHORT[r.kernel], 8)}${r.key}`,
    );
  }
  const count = (f) => rows.filter(f).length;
  lines.push("");
  for (const b of simBackends) {
    lines.push(
      `${b}: ${count((r) => r.sim[b] === "pass")} pass, ${count((r) => r.sim[b] === "fail")} fail, ${count((r) => r.sim[b] === "unsupported")} n/a`,
    );
  }
  lines.push(
    `kernel: ${count((r) => r.kernel === "pass")} pass, ${count((r) => r.kernel === "fail")} fail, ${count((r) => r.kernel === "unsupported")} not supported by this kernel, ${count((r) => r.kernel === "missing")} no result`,
  );
  const allMissing = Object.entries(kernelRun.header?.missing ?? {});
  const supplied = kernelRun.suppliedByHighmem ?? new Set();
  const missing = allMissing.filter(([c]) => !supplied.has(c));
  if (missing.length > 0)
    lines.push(`  kernel lacks: ${missing.map(([c, why]) => `${c} (${why})`).join("; ")}`);
  if (supplied.size > 0)
    lines.push(
      `  the ${HIGHMEM_BOOT.memoryMiB} MiB boot supplied what the main boot lacks: ${[...supplied].join(", ")}`,
    );
  const kfails = rows.filter((r) => r.kernel === "fail");
  if (kfails.length > 0) {
    lines.push("", "Failing on the kernel (the case's expectation differs from Linux):");
    for (const r of kfails) lines.push(`  ${r.key}\n      kernel: ${r.kernelDetail}`);
  }
  const mfails = rows.filter((r) => Object.keys(r.simDetail).length > 0);
  if (mfails.length > 0) {
    lines.push("", "Failing on the model:");
    for (const r of mfails) {
      lines.push(`  ${r.key} (kernel: ${SHORT[r.kernel]})`);
      for (const [b, d] of Object.entries(r.simDetail)) lines.push(`      ${b}: ${d}`);
    }
  }
  if (kernelRun.info.length > 0) {
    lines.push("", "VM:");
    for (const i of kernelRun.info) lines.push(`  ${i}`);
  }
  lines.push(
    "",
    `initramfs ${(initramfs.bytes / 1048576).toFixed(0)} MiB, modules: ${initramfs.modules.map((m) => m.name).join(" ")}`,
  );
  process.stdout.write(`${lines.join("\n")}\n`);
}

/**
 * The second boot (HIGHMEM_BOOT): runs only its suites and puts their results in place
 * of the main boot's (there they are "not supported": no RAM above 4 GiB). Returns what
 * it did, for results.json; a failed boot leaves the main boot's rows as they are.
 */
async function highmemBoot(runner, kernel, initramfs, kernelRun) {
  const inSuites = (r) => HIGHMEM_BOOT.suites.includes(r.suite);
  if (!kernelRun.results.some(inSuites)) return { ran: false, why: "no case of its suites" };
  const results = [];
  const info = [];
  let why;
  for (const suite of HIGHMEM_BOOT.suites) {
    const vm = await boot(kernel, initramfs, {
      memoryMiB: HIGHMEM_BOOT.memoryMiB,
      suite,
      consoleLog: CONSOLE_LOG_HIGHMEM,
    });
    const run = runner.parseConformanceOutput(vm.out);
    if (run.header === undefined || !run.complete) {
      why = `the ${HIGHMEM_BOOT.memoryMiB} MiB boot for ${suite} ${vm.timedOut ? "timed out" : `ended (status ${vm.status})`} before its suite completed (console in ${relative(ROOT, CONSOLE_LOG_HIGHMEM)})`;
      log(why);
      continue;
    }
    results.push(...run.results.filter(inSuites));
    // What the main boot lacked but this one had: its cases ran here, so the summary must not
    // call it missing.
    for (const cap of Object.keys(kernelRun.header?.missing ?? {}))
      if (!(cap in (run.header.missing ?? {}))) kernelRun.suppliedByHighmem.add(cap);
    info.push(...run.info.map((i) => `${HIGHMEM_BOOT.memoryMiB} MiB boot: ${i}`));
  }
  const byKey = new Map(results.map((r) => [runner.caseKey(r), r]));
  kernelRun.results = kernelRun.results.map((r) => byKey.get(runner.caseKey(r)) ?? r);
  kernelRun.info.push(...info.filter((i) => /MemTotal|HugePages|runner exit/.test(i)));
  log(
    `${HIGHMEM_BOOT.memoryMiB} MiB boot: ${results.length} results (${HIGHMEM_BOOT.suites.join(", ")})`,
  );
  return {
    ran: true,
    memoryMiB: HIGHMEM_BOOT.memoryMiB,
    suites: HIGHMEM_BOOT.suites,
    results: results.length,
    ...(why ? { why } : {}),
  };
}

async function main() {
  if (process.platform !== "linux" || process.arch !== "x64") {
    skip(`needs an x86-64 Linux host (this is ${process.platform}/${process.arch})`);
  }
  ensureTools();
  const deb = findKernelDeb();
  const kernel = extractKernel(deb);
  compileProject();
  const runner = await loadRunner();
  const { built: extra, skipped: modulesSkipped } = buildModules(kernel, deb);
  for (const [name, why] of Object.entries(modulesSkipped)) log(`${name} module: skipped: ${why}`);
  log("building the initramfs");
  const initramfs = buildInitramfs(kernel, extra);
  log(
    `initramfs ${(initramfs.bytes / 1048576).toFixed(0)} MiB; modules ${initramfs.modules.map((m) => m.name).join(" ")}`,
  );
  const simBackends = RUN_SIM ? ["sim-x86-64", "sim-arm64"] : [];
  const simPending = Promise.all(simBackends.map((b) => runSim(runner, b)));
  // Reported once the VM is done, so a skip below does not leave it unobserved.
  simPending.catch(() => {});
  const vm = await boot(kernel, initramfs);
  const kernelRun = runner.parseConformanceOutput(vm.out);
  kernelRun.suppliedByHighmem = new Set();
  if (kernelRun.header === undefined) {
    // The last lines of the console, without terminal escapes (the firmware clears the screen).
    const tail = stripTerminal(vm.out)
      .split("\n")
      .filter((l) => l.trim() !== "")
      .slice(-10)
      .map((l) => `  | ${l}`)
      .join("\n");
    if (vm.timedOut)
      skip(
        `boot timeout after ${TIMEOUT_S} s before the suite started (console in ${relative(ROOT, CONSOLE_LOG)}):\n${tail}`,
      );
    skip(`QEMU exited (status ${vm.status}) before the suite started: ${vm.err.trim() || tail}`);
  }
  log(
    `kernel run ${kernelRun.complete ? "complete" : vm.timedOut ? "cut short by the timeout" : "incomplete"}: ${kernelRun.results.length} results`,
  );
  const highmem = await highmemBoot(runner, kernel, initramfs, kernelRun);
  const simResults = await simPending;
  const simRuns = Object.fromEntries(simBackends.map((b, i) => [b, simResults[i]]));
  const rows = compare(runner, kernelRun, simRuns);
  const regressions = rows.filter((r) => r.regression);
  const report = {
    kernel: kernel.release,
    package: basename(deb),
    date: new Date().toISOString(),
    complete: kernelRun.complete,
    timedOut: vm.timedOut,
    capabilities: kernelRun.header.capabilities,
    missing: kernelRun.header.missing ?? {},
    suppliedByHighmemBoot: [...kernelRun.suppliedByHighmem],
    info: kernelRun.info,
    highmemBoot: highmem,
    modules: initramfs.modules,
    modulesSkipped,
    seconds: Math.round((Date.now() - t0) / 100) / 10,
    rows,
  };
  writeFileSync(RESULTS_JSON, `${JSON.stringify(report, null, 2)}\n`);
  if (PRINT_JSON) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else printTable(rows, simBackends, kernelRun, initramfs, kernel);
  if (!PRINT_JSON)
    for (const [name, why] of Object.entries(modulesSkipped))
      process.stdout.write(`${name} module: skipped: ${why}\n`);
  log(`results in ${relative(ROOT, RESULTS_JSON)}, console in ${relative(ROOT, CONSOLE_LOG)}`);
  if (regressions.length > 0) {
    process.stdout.write(
      `\nkernel conformance: FAILED: the model fails ${regressions.length} case(s) the kernel passes:\n${regressions.map((r) => `  ${r.key}`).join("\n")}\n`,
    );
    return 1;
  }
  // A case the kernel fails is a case whose expectation is not Linux's.
  const kernelFails = rows.filter((r) => r.kernel === "fail");
  if (kernelFails.length > 0) {
    process.stdout.write(
      `\nkernel conformance: FAILED: ${kernelFails.length} case(s) fail on Linux (the suite expects something else than the kernel does):\n${kernelFails.map((r) => `  ${r.key}`).join("\n")}\n`,
    );
    return 1;
  }
  process.stdout.write(
    `kernel conformance: ok (the model and the kernel agree on every case the kernel runs)\n`,
  );
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    if (e instanceof Skip) {
      process.stdout.write(`kernel conformance: skipped: ${e.message}\n`);
      process.exitCode = 0;
    } else {
      process.stderr.write(`kernel conformance: error: ${e.stack ?? e}\n`);
      process.exitCode = 2;
    }
  },
);
