/**
 * Serving certificate and key from files, reloaded when they change, without a restart: the
 * operator (or cert-manager) rotates the Secret, the kubelet swaps the mounted files, and new
 * connections get the new certificate while open ones finish on the old.
 *
 * Polling with fs.watchFile (stat follows the Secret volume's symlinks) rather than fs.watch:
 * the kubelet replaces files by an atomic symlink swap of `..data`, which inotify on the file
 * path misses. A half-written pair (new cert, old key) fails to load and the old pair stays until
 * the next change completes it.
 */
import { X509Certificate, createHash } from 'node:crypto';
import { fs } from '../builtins/index.js';
import { createSecureContext } from 'node:tls';
import { WeftError, errorMessage } from '../errors/index.js';
import type { Logger } from '../log/index.js';

export interface KeyPair {
  cert: Buffer;
  key: Buffer;
}

export class CertReloader {
  private current: KeyPair | undefined;
  private watching = false;
  /** When the certificate in use expires (for /readyz and logs). */
  notAfter: string | undefined;
  reloads = 0;

  constructor(
    private readonly certFile: string,
    private readonly keyFile: string,
    private readonly log: Logger,
    private readonly intervalMs = 1000,
  ) {}

  get pair(): KeyPair | undefined {
    return this.current;
  }

  /** Reads and checks the pair (the key must match the cert); throws WEFT_TLS_UNREADABLE. */
  load(): KeyPair {
    let pair: KeyPair;
    try {
      pair = { cert: fs.readFileSync(this.certFile), key: fs.readFileSync(this.keyFile) };
      createSecureContext(pair);
      this.notAfter = new X509Certificate(pair.cert).validTo;
    } catch (err) {
      throw new WeftError('WEFT_TLS_UNREADABLE', `${this.certFile} / ${this.keyFile}: ${errorMessage(err)}`, {
        cause: err,
      });
    }
    this.current = pair;
    return pair;
  }

  /** Calls `onChange` with each new valid pair; keeps the old one when the new one is broken. */
  watch(onChange: (pair: KeyPair) => void): void {
    if (this.watching) return;
    this.watching = true;
    const reload = (): void => {
      try {
        const before = this.current && fingerprint(this.current.cert);
        const pair = this.load();
        if (fingerprint(pair.cert) === before) return;
        this.reloads++;
        onChange(pair);
        this.log.info('Reloaded serving certificate', {
          fingerprint: fingerprint(pair.cert),
          notAfter: this.notAfter,
        });
      } catch (err) {
        this.log.warn('Serving certificate not reloaded; keeping the previous one', {
          error: errorMessage(err),
        });
      }
    };
    fs.watchFile(this.certFile, { interval: this.intervalMs, persistent: false }, reload);
    fs.watchFile(this.keyFile, { interval: this.intervalMs, persistent: false }, reload);
  }

  stop(): void {
    fs.unwatchFile(this.certFile);
    fs.unwatchFile(this.keyFile);
    this.watching = false;
  }
}

function fingerprint(cert: Buffer): string {
  return createHash('sha256').update(cert).digest('hex').slice(0, 16);
}
