import type { RequestHead } from './request-head.js';
import { parseResponseHead } from './stream-response.js';
import { mediaType } from '../../common/media-type.js';

/**
 * Pure rules for keeping a source client across a change of upstream Icecast: which sessions
 * may be held, and what Icecast's answer to a source request says.
 */

/**
 * Formats a decoder picks up again at any byte offset (MP3 and ADTS AAC frames carry their own
 * sync word). Ogg, Opus and WebM need the stream headers sent once at the start, which a new
 * Icecast would never see, so those sources are closed and reconnect themselves.
 */
const RESUMABLE_TYPES = new Set(['audio/mpeg', 'audio/aac', 'audio/aacp']);

export function isResumableSourceType(contentType: string | undefined): boolean {
  if (!contentType) return false;
  return RESUMABLE_TYPES.has(mediaType(contentType));
}

/**
 * Whether a session that reached 200 may be held and re-sent to another Icecast: only the
 * audio-carrying requests (SOURCE, or PUT without body framing), never the probes and admin
 * requests that share the source path, and only for resumable formats.
 */
export function isHoldableSourceRequest(head: RequestHead): boolean {
  if (head.method !== 'SOURCE' && head.method !== 'PUT') return false;
  return isResumableSourceType(head.headers.get('content-type'));
}

export type SourceReply =
  | { kind: 'incomplete' }
  | { kind: 'invalid'; reason: string }
  /** The final answer; `end` is the offset just past its head (any interim heads included). */
  | { kind: 'final'; status: number; end: number };

/**
 * Icecast's answer to a source request, from the bytes it sent so far: interim heads
 * (`HTTP/1.1 100 Continue` for a PUT with `Expect: 100-continue`) are skipped, the first
 * final head decides. `maxBytes` bounds what is buffered before giving up.
 */
export function readSourceReply(buf: Buffer, maxBytes = 16_384): SourceReply {
  let at = 0;
  for (;;) {
    const parsed = parseResponseHead(buf.subarray(at));
    if (parsed.kind === 'incomplete') {
      return buf.length > maxBytes ? { kind: 'invalid', reason: 'answer head too large' } : { kind: 'incomplete' };
    }
    if (parsed.kind === 'invalid') return { kind: 'invalid', reason: parsed.reason };
    const end = at + parsed.head.headEnd;
    if (parsed.head.status >= 200) return { kind: 'final', status: parsed.head.status, end };
    at = end;
  }
}
