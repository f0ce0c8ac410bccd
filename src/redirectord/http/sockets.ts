import type { Socket } from 'node:net';

/**
 * Writes a final answer and closes: waits briefly for the peer's FIN (unread input would
 * otherwise turn the close into a reset that can eat the answer), then destroys.
 */
export function answerAndClose(socket: Socket, bytes: Buffer, graceMs = 2000): void {
  if (socket.destroyed) return;
  socket.removeAllListeners('data');
  socket.on('error', () => socket.destroy());
  socket.end(bytes);
  socket.resume();
  const timer = setTimeout(() => socket.destroy(), graceMs);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
  socket.once('end', () => {
    if (socket.writableFinished) socket.destroy();
    else socket.once('finish', () => socket.destroy());
  });
}
