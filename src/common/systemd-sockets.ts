/**
 * Listening sockets handed over by systemd socket activation (sd_listen_fds): `LISTEN_PID` names
 * this process, `LISTEN_FDS` counts the descriptors from 3 on, `LISTEN_FDNAMES` names them
 * (`FileDescriptorName=` in the .socket unit). A restart of the daemon then refuses nothing: the
 * socket stays open in systemd, and connections wait in its backlog until the new process
 * accepts. Pure: the caller passes the environment and its pid.
 */
export interface InheritedSocket {
  fd: number;
  name: string;
}

/** First descriptor systemd passes (after stdin, stdout, stderr). */
const SD_LISTEN_FDS_START = 3;
const MAX_INHERITED = 64;

export function inheritedSockets(env: Readonly<Record<string, string | undefined>>, pid: number): InheritedSocket[] {
  // Another process's descriptors (the variables leaked through a fork): not ours to use.
  if (env['LISTEN_PID'] !== String(pid)) return [];
  const count = Number(env['LISTEN_FDS']);
  if (!Number.isInteger(count) || count < 1 || count > MAX_INHERITED) return [];
  const names = (env['LISTEN_FDNAMES'] ?? '').split(':');
  return Array.from({ length: count }, (_, i) => ({ fd: SD_LISTEN_FDS_START + i, name: names[i] || 'unknown' }));
}

/** The socket named `name`, or the only one when there is exactly one and it carries no name. */
export function inheritedSocket(sockets: readonly InheritedSocket[], name: string): InheritedSocket | undefined {
  return sockets.find((s) => s.name === name) ?? (sockets.length === 1 && sockets[0]!.name === 'unknown' ? sockets[0] : undefined);
}
