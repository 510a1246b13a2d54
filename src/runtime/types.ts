/**
 * The contract between holdfast's core and the platform it runs on.
 *
 * Everything the lock and the repository need from the operating system goes through one
 * {@linkcode RuntimeAdapter}. The core never touches `Deno` or a `node:` module; the Deno and
 * Node adapters (in `src/runtime/deno/` and `src/runtime/node/`) implement this interface and
 * run one shared conformance suite, so they cannot drift apart.
 *
 * Every call is synchronous on purpose: the operations are microseconds of kernel work, and
 * an async call costs ~30 us of scheduling in Deno (see the project's facts), several times the
 * syscall itself. Waiting is done with timers in the core, never by blocking here.
 *
 * Failures are thrown as {@linkcode FsError} (see `fs_error.ts`) carrying the POSIX code, the
 * operation and the path, whatever the runtime.
 *
 * @module
 */

/** Flags for {@linkcode RuntimeAdapter.open}. Unset flags are false. */
export interface OpenOptions {
  /** Open for reading. */
  read?: boolean;
  /** Open for writing. */
  write?: boolean;
  /** Create the file if missing (O_CREAT). */
  create?: boolean;
  /** With `create`: fail with `EEXIST` if the path exists, symlink or not (O_CREAT|O_EXCL). */
  exclusive?: boolean;
  /** Truncate to zero length on open (O_TRUNC). */
  truncate?: boolean;
  /** Refuse to open a symlink at the final path component (O_NOFOLLOW): fails with `ELOOP`. */
  noFollow?: boolean;
  /**
   * Permission bits for a created file. The adapter applies them exactly, whatever the
   * process umask, so a file meant to be 0600 is never 0644 nor 0400.
   */
  mode?: number;
  /**
   * With `create`: the group a created file is given (fchown of the new descriptor), e.g. a
   * group whose members share it. Default: the system's choice. Ignored on Windows. A group
   * the process may not give fails with `EPERM`.
   */
  gid?: number;
}

/** What `stat`/`lstat` report, reduced to the fields holdfast relies on. */
export interface FileInfo {
  /** A regular file. */
  readonly isFile: boolean;
  /** A directory. */
  readonly isDirectory: boolean;
  /** A symbolic link (only from `lstat`). */
  readonly isSymlink: boolean;
  /** Size in bytes. */
  readonly size: number;
  /** Permission bits only (`mode & 0o7777`); 0 where the platform has none (Windows). */
  readonly mode: number;
  /** Last modification, in ms since the epoch. */
  readonly mtimeMs: number;
  /** Inode number, 0 where the platform has none. */
  readonly ino: number;
  /** The device the file lives on. */
  readonly dev: number;
  /** Hard link count, 1 where the platform cannot tell. */
  readonly nlink: number;
  /**
   * The owner's user id. 0 where the platform has no POSIX owners (Windows; Node reports 0
   * there as well), so it means nothing there: check {@linkcode RuntimeAdapter.uid} first.
   */
  readonly uid: number;
  /** The owner's group id; 0 where the platform has no POSIX owners (Windows). */
  readonly gid: number;
}

/** An open file. Closing twice is harmless. */
export interface FileHandle {
  /** Writes all of `data` at `position` (or at the current offset); returns bytes written. */
  write(data: Uint8Array, position?: number): number;
  /** Reads up to `buffer.length` bytes at `position` (or the current offset); 0 at end of file. */
  read(buffer: Uint8Array, position?: number): number;
  /** Flushes data and metadata to stable storage (fsync). */
  sync(): void;
  /** Sets the file length. */
  truncate(length: number): void;
  /** Status of the open file itself (fstat): immune to the path being swapped. */
  stat(): FileInfo;
  /** Closes the file; closing twice is harmless. */
  close(): void;
}

/** Options for {@linkcode RuntimeAdapter.mkdir}. */
export interface MkdirOptions {
  /**
   * Permission bits (setgid and sticky included), applied exactly whatever the umask to every
   * directory the call creates, and to no other. Default 0o700. Ignored on Windows.
   */
  mode?: number;
  /**
   * The group every directory the call creates is given (fchown), e.g. a group whose members
   * share it. Default: the system's choice (the process's group, or the parent's under
   * setgid). Ignored on Windows. A group the process may not give fails with `EPERM`.
   */
  gid?: number;
  /**
   * Create missing parents; an existing directory (or symlink to one) is then not an error,
   * and keeps its mode and group.
   */
  recursive?: boolean;
}

/**
 * A process as the operating system knows it: the PID plus, where the platform tells it, the
 * start time of that process, so that a PID reused by a new process is not mistaken for the
 * old one.
 */
export interface ProcessIdentity {
  /** The process id. */
  readonly pid: number;
  /** Clock ticks since boot (`/proc/<pid>/stat` field 22 on Linux); undefined where unknown. */
  readonly startTime?: number;
}

/** A kernel advisory lock held by this process; released by the OS if the process dies. */
export interface KernelLockHandle {
  /** The inode of the file the lock is on, as it was when its descriptor was opened. */
  readonly ino: number;
  /** Releases the lock. Calling it again does nothing. */
  release(): void;
}

/**
 * The kernel advisory lock a runtime can offer, behind one shape.
 *
 * `kind` names the primitive. `"fcntl"` locks (taken through SQLite's `BEGIN EXCLUSIVE`, which
 * both Node and Deno ship as `node:sqlite`) exclude across processes and runtimes and vanish
 * with the process. They have one sharp edge the caller must respect: if this process opens
 * and then closes the locked file through any other descriptor, the kernel drops the lock.
 */
export interface KernelLock {
  /** Which primitive this is; `"unsupported"` when the runtime offers none. */
  readonly kind: "fcntl" | "unsupported";
  /**
   * Tries once to take the lock on `path` exclusively, without waiting. Returns a handle when
   * taken, `undefined` when another process (or another handle of this process) holds it.
   * The file must exist and be empty or a SQLite database.
   *
   * When `knownIno` is given, the caller has just seen that inode at `path`, and a descriptor
   * this process already keeps open on it is used without looking the path up again. Either
   * way the handle's `ino` says which file was locked: a caller that needs the lock to be on
   * the file now at `path` compares it with a look at the path taken after the lock.
   *
   * @throws {FsError} when the file cannot be opened or is not lockable; with code
   * `ENOTSUP` when `kind` is `"unsupported"`.
   */
  tryLock(path: string, knownIno?: number): KernelLockHandle | undefined;
  /**
   * Tries once to take a shared lock on `path`, without waiting: any number of shared holders
   * (in any process, this one included) coexist, and none while an exclusive one holds. Each
   * call that succeeds is one hold, released by its handle or by the death of the process.
   * `undefined` when an exclusive holder has it. Absent where shared locks are not offered.
   *
   * @throws {FsError} as {@linkcode tryLock}.
   */
  tryLockShared?(path: string): KernelLockHandle | undefined;
  /**
   * The inode of the descriptor this process keeps open for locking `path`, if any: a
   * `tryLock(path, ino)` through it costs no path lookup. Never throws, never touches the disk.
   */
  openInode?(path: string): number | undefined;
}

/** Filesystem facts for {@linkcode RuntimeAdapter.statfs}. */
export interface FsStats {
  /**
   * `statfs().f_type`: on Linux the filesystem's magic number (ext4 0xEF53, NFS 0x6969, ...);
   * on macOS and the BSDs an index the kernel assigns at boot, which names nothing by itself;
   * 0 on Windows.
   */
  readonly type: number;
  /**
   * The filesystem's name as the mount table gives it (Linux `/proc/self/mountinfo`:
   * `"ext4"`, `"fuse.sshfs"`, `"virtiofs"`, `"9p"`; macOS and the BSDs `mount`: `"apfs"`,
   * `"nfs"`, `"smbfs"`), when the adapter could read it.
   */
  readonly typeName?: string;
  /**
   * macOS and the BSDs: whether the mount table flags the filesystem `local` (`MNT_LOCAL`),
   * when the adapter could read it. Undefined elsewhere.
   */
  readonly local?: boolean;
}

/**
 * What a liveness check found: `"dead"` only on positive proof (no such process, a zombie, a
 * start time that differs: a reused PID), `"unknown"` when the process table could not be read
 * (permissions, a sandbox without `/proc`, `hidepid`, ...). `detail` says why, for messages.
 */
export interface LivenessReport {
  /** The verdict. */
  readonly state: "alive" | "dead" | "unknown";
  /** Why, when the verdict is `"dead"` or `"unknown"`. */
  readonly detail?: string;
}

/** Handle returned by {@linkcode RuntimeAdapter.watch}. */
export interface Watcher {
  /** Stops watching. */
  close(): void;
}

/** Everything holdfast's core needs from the platform. */
export interface RuntimeAdapter {
  /** Which runtime this adapter drives. */
  readonly runtime: "deno" | "node" | "bun";
  /** The runtime's version string, e.g. `"2.9.6"` or `"24.21.0"`. */
  readonly version: string;
  /** `"linux"`, `"darwin"`, `"windows"`, ... */
  readonly platform: string;

  // ---- filesystem ----
  /** Opens (or creates) a file. @throws {FsError} */
  open(path: string, options: OpenOptions): FileHandle;
  /** Reads a whole file without following a symlink at `path`. @throws {FsError} */
  readFile(path: string): Uint8Array;
  /** Atomic replace of `to` by `from` (same filesystem). @throws {FsError} */
  rename(from: string, to: string): void;
  /** Hard link; fails with `EEXIST` if `to` exists. @throws {FsError} */
  link(from: string, to: string): void;
  /** Removes a file. @throws {FsError} */
  unlink(path: string): void;
  /**
   * Creates a directory (and with `recursive` its missing parents), setting `mode` and `gid`
   * on each directory it creates without ever following a symlink: through a descriptor of
   * the new directory opened with O_DIRECTORY|O_NOFOLLOW, once an lstat of the path and an
   * fstat of that descriptor agree that it is the same real directory, owned by this
   * process's uid (when {@linkcode RuntimeAdapter.uid} knows it). If anything else took the
   * new directory's place meanwhile, the call fails and changes no other file's mode or
   * group. On Windows, a plain mkdir (no modes).
   *
   * @throws {FsError} `EEXIST` when the path exists (without `recursive`), or when what sits
   *   at a directory just created is not that directory; `ELOOP` when a symlink took its
   *   place; `EPERM` when `gid` may not be given; the OS's code otherwise.
   */
  mkdir(path: string, options?: MkdirOptions): void;
  /** Names in a directory, without `.` and `..`. @throws {FsError} */
  readDir(path: string): string[];
  /** Follows symlinks. @throws {FsError} */
  stat(path: string): FileInfo;
  /** Does not follow a final symlink. @throws {FsError} */
  lstat(path: string): FileInfo;
  /**
   * {@linkcode RuntimeAdapter.lstat}, but `undefined` for a path that does not exist (`ENOENT`,
   * or `ENOTDIR`: a component is a file) instead of an error: a thrown error captures a stack, which costs more than the system call
   * where a missing file is the common answer (a free pidfile lock). Optional: callers fall
   * back to `lstat`.
   * @throws {FsError} for anything but a missing path.
   */
  lstatIfExists?(path: string): FileInfo | undefined;
  /** Sets permission bits exactly. @throws {FsError} */
  chmod(path: string, mode: number): void;
  /** Sets access and modification times (ms since the epoch). @throws {FsError} */
  utimes(path: string, atimeMs: number, mtimeMs: number): void;
  /**
   * Makes a directory's entries durable (fsync on the directory). A filesystem that cannot
   * fsync directories (EINVAL, ENOTSUP, EISDIR, Windows) is not an error. @throws {FsError}
   */
  syncDir(path: string): void;
  /** Facts about the filesystem holding `path`. @throws {FsError} */
  statfs(path: string): FsStats;
  /** Absolute, symlink-free form of an existing path. @throws {FsError} */
  realPath(path: string): string;
  /** The target a symlink holds, as written in it (relative targets stay relative). @throws {FsError} */
  readLink(path: string): string;
  /** The current working directory. */
  cwd(): string;
  /**
   * Calls `onChange` when `path` (a file, or any entry of a directory, whose name is then
   * passed when known) may have changed. `kind` is `"rename"` when an entry appeared, vanished
   * or moved (a watched file that did is watched no more) and `"change"` for content or
   * attributes. Best effort: a platform without file watching, or a path that cannot be
   * watched, returns `undefined` and callers poll.
   *
   * The watch may hold `path` open while it runs (macOS and the BSDs: libuv's kqueue backend
   * opens the watched file), and closing it then closes that descriptor, which by POSIX drops
   * every fcntl lock this process holds on the file. Callers must never watch a file this
   * process may lock, except where `platform` is `"linux"` (inotify opens nothing).
   */
  watch(
    path: string,
    onChange: (name?: string, kind?: "change" | "rename") => void,
  ): Watcher | undefined;

  // ---- process facts ----
  /** This process's PID. */
  readonly pid: number;
  /**
   * This process's effective user id, the owner of what it creates; `undefined` where it
   * cannot be known: on Windows (no POSIX owners), and under Deno without the `sys`
   * permission for `uid` (`--allow-sys=uid`, or `-A`), which is queried, never prompted for.
   * Never throws.
   */
  uid(): number | undefined;
  /** This machine's host name, or undefined where it may not be read (Deno without `--allow-sys`). */
  hostname(): string | undefined;
  /**
   * An identifier of the current boot (Linux: `/proc/sys/kernel/random/boot_id`), or undefined
   * where the platform has none or it cannot be read.
   */
  bootId(): string | undefined;
  /**
   * This process's PID namespace (Linux: the inode number of `/proc/self/ns/pid`), or
   * undefined where the platform has none or it cannot be read. Two processes' PIDs can only
   * be compared when their namespaces are the same (containers have their own).
   */
  pidNamespace(): string | undefined;
  /**
   * The identity of process `pid` (default: this process), or undefined if it provably does
   * not exist. Where the start time cannot be read, it is left out.
   */
  processIdentity(pid?: number): ProcessIdentity | undefined;
  /**
   * Whether the process named by `identity`, in this PID namespace, is still running:
   * `"dead"` only on proof (no such process, a zombie, a live process whose start time differs
   * from `identity.startTime`: a reused PID), `"unknown"` when that cannot be told. Never
   * throws.
   */
  liveness(identity: ProcessIdentity): LivenessReport;
  /**
   * Lets the process exit even while `timer` (as returned by `setTimeout`/`setInterval`) is
   * pending, so a background lease or health check never keeps a program alive.
   */
  unrefTimer(timer: unknown): void;
  /** Reads an environment variable; undefined if unset or not permitted. */
  env(name: string): string | undefined;

  // ---- kernel lock ----
  /** The kernel advisory lock this runtime offers. */
  readonly kernelLock: KernelLock;
}
