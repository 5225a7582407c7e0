/**
 * Protocol detection: peeks at the first byte of a new connection without consuming it. A TLS
 * record starts with 0x16 (handshake); anything else on a PERMISSIVE port is plaintext.
 */
import type { Socket } from 'node:net';

export type Detected = 'tls' | 'plaintext';

const TLS_HANDSHAKE = 0x16;

/** Resolves with the detected protocol, or `undefined` if the peer sent nothing in time or left. */
export function detectProtocol(socket: Socket, timeoutMs: number): Promise<Detected | undefined> {
  return new Promise((resolve) => {
    const done = (value: Detected | undefined): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      resolve(value);
    };
    const onData = (chunk: Buffer): void => {
      socket.pause();
      socket.unshift(chunk);
      done(chunk[0] === TLS_HANDSHAKE ? 'tls' : 'plaintext');
    };
    const onClose = (): void => done(undefined);
    const timer = setTimeout(() => done(undefined), timeoutMs);
    socket.on('data', onData);
    socket.once('close', onClose);
  });
}
