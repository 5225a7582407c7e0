/**
 * Protocol detection on PERMISSIVE ports: peeks at the first bytes of a new connection without
 * consuming them. A TLS record starts with 0x16 (handshake); on HTTP ports a plaintext
 * connection that starts with the HTTP/2 connection preface is h2c with prior knowledge
 * (RFC 9113 §3.3); anything else is plaintext.
 */
import type { Socket } from 'node:net';

export type Detected = 'tls' | 'h2c' | 'plaintext';

const TLS_HANDSHAKE = 0x16;

/** The HTTP/2 client connection preface (RFC 9113 §3.4). */
export const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/**
 * Resolves with the detected protocol, or `undefined` if the peer sent nothing in time or left.
 * With `h2c`, bytes that are a strict prefix of the preface are read on until they match it in
 * full (`h2c`) or stop matching (`plaintext`); a peer that stops mid-preface until the timeout
 * is plaintext.
 */
export function detectProtocol(socket: Socket, timeoutMs: number, options: { h2c?: boolean } = {}): Promise<Detected | undefined> {
  return new Promise((resolve) => {
    let seen: Buffer | undefined;
    const done = (value: Detected | undefined): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      if (seen !== undefined) {
        socket.pause();
        socket.unshift(seen);
      }
      resolve(value);
    };
    const onData = (chunk: Buffer): void => {
      seen = seen === undefined ? chunk : Buffer.concat([seen, chunk]);
      if (seen[0] === TLS_HANDSHAKE) return done('tls');
      if (options.h2c !== true) return done('plaintext');
      const n = Math.min(seen.length, H2_PREFACE.length);
      if (seen.compare(H2_PREFACE, 0, n, 0, n) !== 0) return done('plaintext');
      if (n === H2_PREFACE.length) done('h2c');
    };
    const onClose = (): void => done(undefined);
    const timer = setTimeout(() => done(seen === undefined ? undefined : 'plaintext'), timeoutMs);
    socket.on('data', onData);
    socket.once('close', onClose);
  });
}
