// Certificates, keys, CRLs, the API keys file, the device inventory and GeoIP databases are watched: a file
// replaced in place (cert-manager) or behind a projected volume's `..data` symlink swap triggers a reload
// within ~1 s, with no config change. Polling stat() once a second follows symlinks (an inotify watch on the
// file would keep watching the old inode after a swap) and costs a handful of syscalls; a reload happens only
// when the content really changed. A bad file fails that reload, so the last good material keeps serving.
import { createHash, X509Certificate } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import type { MaterialFile } from '../config/index.ts';

const SETTLE_MS = 250;

interface Seen {
  signature: string;
  hash: string | undefined;
}

export class MaterialWatch {
  readonly #files: () => readonly MaterialFile[];
  readonly #onChange: (changed: readonly MaterialFile[]) => void;
  readonly #seen = new Map<string, Seen>();
  #timer: NodeJS.Timeout | undefined;
  #busy = false;

  constructor(files: () => readonly MaterialFile[], onChange: (changed: readonly MaterialFile[]) => void) {
    this.#files = files;
    this.#onChange = onChange;
  }

  /** Records what the files hold now (no reload for that), then checks every intervalMs. */
  async start(intervalMs = 1000): Promise<void> {
    await this.#scan();
    this.#timer = setInterval(() => void this.#tick(), intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  async #tick(): Promise<void> {
    if (this.#busy) return; // a slow disk: never two scans at once
    this.#busy = true;
    try {
      const changed = await this.#scan();
      if (changed.length === 0) return;
      // Rotations write the certificate and the key one after the other: wait a moment for the pair.
      await new Promise((r) => setTimeout(r, SETTLE_MS));
      for (const f of await this.#scan()) if (!changed.some((c) => c.path === f.path)) changed.push(f);
      this.#onChange(changed);
    } finally {
      this.#busy = false;
    }
  }

  /** Files whose content differs from the last scan (a file first seen counts as its baseline). */
  async #scan(): Promise<MaterialFile[]> {
    const changed: MaterialFile[] = [];
    const current = this.#files();
    for (const f of current) {
      const signature = await statSignature(f.path);
      const seen = this.#seen.get(f.path);
      if (seen !== undefined && seen.signature === signature) continue;
      // A file missing mid-swap keeps its last hash: its reappearance with the same content is no change.
      const hash = signature === 'missing' ? seen?.hash : await contentHash(f.path);
      this.#seen.set(f.path, { signature, hash });
      if (seen !== undefined && hash !== undefined && hash !== seen.hash) changed.push(f);
    }
    const live = new Set(current.map((f) => f.path));
    for (const p of this.#seen.keys()) if (!live.has(p)) this.#seen.delete(p);
    return changed;
  }
}

async function statSignature(path: string): Promise<string> {
  try {
    const s = await stat(path); // follows symlinks: a swapped `..data` link shows as another inode
    return `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;
  } catch {
    return 'missing';
  }
}

async function contentHash(path: string): Promise<string | undefined> {
  try {
    return createHash('sha256').update(await readFile(path)).digest('base64url');
  } catch {
    return undefined;
  }
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * The earliest notAfter (ms since the epoch) among the certificates in each certificate file: a chain or a
 * CA bundle stops working when its first certificate expires. Unreadable files are left out.
 */
export async function certificateExpiries(files: readonly MaterialFile[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const f of files) {
    if (!f.certificates) continue;
    let text: string;
    try {
      text = await readFile(f.path, 'utf8');
    } catch {
      continue;
    }
    let earliest = Infinity;
    for (const pem of text.match(PEM_CERTIFICATE) ?? []) {
      try {
        earliest = Math.min(earliest, new X509Certificate(pem).validToDate.getTime());
      } catch {
        // not a certificate the config would accept either; the config error names it
      }
    }
    if (earliest !== Infinity) out.set(f.path, earliest);
  }
  return out;
}
