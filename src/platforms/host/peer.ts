/**
 * Who is on the other end of a local unix socket, from the kernel's point of view.
 *
 * Node.js exposes neither SO_PEERCRED nor SCM_CREDENTIALS, so Ward asks the kernel's socket
 * diagnostics (sock_diag, via iproute2's `ss -xp`) for the peer inode of our socket and the
 * process holding it, then double-checks in /proc that this pid really holds that socket, and
 * reads uid/gid from /proc/<pid>/status. Any ambiguity (fd passed to several processes, pid gone)
 * fails closed with ERR_PLATFORM_PEER_UNKNOWN. See docs/adr/0055-host-peer-credentials.md.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, readlink, readdir, stat } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { PlatformError } from '../errors.js';

export interface PeerProcess {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
  /** Path of the executable as the kernel reports it (`/proc/<pid>/exe`). */
  readonly exePath: string;
  /** SHA-256 hex of the executable's bytes, read through /proc/<pid>/exe. */
  readonly exeSha256: string;
  /** Process start time in clock ticks since boot (field 22 of /proc/<pid>/stat): pid-reuse guard. */
  readonly startTime: string;
}

const peerUnknown = (message: string, cause?: unknown): PlatformError =>
  new PlatformError('ERR_PLATFORM_PEER_UNKNOWN', message, cause === undefined ? {} : { cause });

/** The inode of the socket behind a connected net.Socket (`socket:[N]` in /proc/self/fd). */
export async function socketInode(socket: Socket, procRoot = '/proc'): Promise<number> {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw peerUnknown('socket has no file descriptor (not a unix socket?)');
  const link = await readlink(`${procRoot}/self/fd/${fd}`).catch((e: unknown) => {
    throw peerUnknown('cannot read own socket fd', e);
  });
  const m = /^socket:\[(\d+)\]$/.exec(link);
  if (m === null) throw peerUnknown('fd is not a socket');
  return Number(m[1]);
}

export interface SsRow {
  readonly localInode: number;
  readonly peerInode: number;
  readonly pids: readonly number[];
}

/**
 * Parses `ss -xpnH` output (iproute2): `u_str ESTAB 0 0 <path|*> <inode> <peer|*> <peerInode> users:(("name",pid=N,fd=M),...)`.
 * Untrusted-ish (process names are user-chosen), so parsing anchors on the numeric columns.
 */
export function parseSsUnix(output: string): SsRow[] {
  const rows: SsRow[] = [];
  for (const line of output.split('\n')) {
    const usersAt = line.indexOf(' users:((');
    const head = (usersAt === -1 ? line : line.slice(0, usersAt)).trim().split(/\s+/);
    if (head.length < 8 || !head[0]!.startsWith('u_')) continue;
    const localInode = Number(head[5]);
    const peerInode = Number(head[7]);
    if (!Number.isSafeInteger(localInode) || !Number.isSafeInteger(peerInode)) continue;
    const pids = usersAt === -1 ? [] : [...line.slice(usersAt).matchAll(/,pid=(\d+),fd=\d+\)/g)].map((m) => Number(m[1]));
    rows.push({ localInode, peerInode, pids: [...new Set(pids)] });
  }
  return rows;
}

function runSs(): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('ss', ['-xpnH'], { timeout: 5000, maxBuffer: 32 * 1024 * 1024 }, (error, stdout) => {
      if (error) reject(peerUnknown('ss (iproute2) failed', error));
      else resolve(stdout);
    });
  });
}

async function startTimeOf(pid: number, procRoot: string): Promise<string> {
  const stat = await readFile(`${procRoot}/${pid}/stat`, 'utf8');
  // comm (field 2) may contain spaces and parens: fields after the last ')' are fixed.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const start = fields[19];
  if (start === undefined || !/^\d+$/.test(start)) throw peerUnknown('unreadable /proc stat');
  return start;
}

async function holdsSocket(pid: number, inode: number, procRoot: string): Promise<boolean> {
  const fds = await readdir(`${procRoot}/${pid}/fd`);
  for (const fd of fds) {
    const link = await readlink(`${procRoot}/${pid}/fd/${fd}`).catch(() => '');
    if (link === `socket:[${inode}]`) return true;
  }
  return false;
}

const hashCache = new Map<string, string>();

/** SHA-256 of a process's executable, cached by (device, inode, size, mtime). */
export async function executableSha256(pid: number, procRoot = '/proc'): Promise<string> {
  const exe = `${procRoot}/${pid}/exe`;
  const st = await stat(exe);
  const key = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
  const cached = hashCache.get(key);
  if (cached !== undefined) return cached;
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(exe)) hash.update(chunk as Buffer);
  const digest = hash.digest('hex');
  if (hashCache.size > 1024) hashCache.clear();
  hashCache.set(key, digest);
  return digest;
}

/** uid, gid, executable and its hash for `pid`, guarded against pid reuse during the read. */
export async function describeProcess(pid: number, procRoot = '/proc'): Promise<PeerProcess> {
  try {
    const before = await startTimeOf(pid, procRoot);
    const status = await readFile(`${procRoot}/${pid}/status`, 'utf8');
    const uid = /^Uid:\s+(\d+)\s+(\d+)/m.exec(status);
    const gid = /^Gid:\s+(\d+)\s+(\d+)/m.exec(status);
    if (uid === null || gid === null) throw peerUnknown('unreadable /proc status');
    const exePath = await readlink(`${procRoot}/${pid}/exe`);
    const exeSha256 = await executableSha256(pid, procRoot);
    const after = await startTimeOf(pid, procRoot);
    if (before !== after) throw peerUnknown('process changed while it was being read');
    // Effective ids decide what the process may do, so they are what Ward reports.
    return Object.freeze({ pid, uid: Number(uid[2]), gid: Number(gid[2]), exePath, exeSha256, startTime: before });
  } catch (error) {
    if (error instanceof PlatformError) throw error;
    throw peerUnknown(`process ${pid} could not be read`, error);
  }
}

/**
 * The process on the other end of a connected unix socket. Call it right after accept, before
 * reading anything the peer sent.
 */
export async function resolveUnixPeer(socket: Socket, options: { procRoot?: string; ss?: () => Promise<string> } = {}): Promise<PeerProcess> {
  const procRoot = options.procRoot ?? '/proc';
  const ours = await socketInode(socket, procRoot);
  const rows = parseSsUnix(await (options.ss ?? runSs)());
  const mine = rows.find((r) => r.localInode === ours);
  if (mine === undefined || mine.peerInode === 0) throw peerUnknown('socket is not connected');
  const peer = rows.find((r) => r.localInode === mine.peerInode);
  if (peer === undefined || peer.pids.length === 0) throw peerUnknown('peer process not visible (different namespace or insufficient privilege)');
  if (peer.pids.length !== 1) throw peerUnknown('peer socket is shared by several processes');
  const pid = peer.pids[0]!;
  const described = await describeProcess(pid, procRoot);
  if (!(await holdsSocket(pid, mine.peerInode, procRoot).catch(() => false))) throw peerUnknown('peer process no longer holds the socket');
  return described;
}
