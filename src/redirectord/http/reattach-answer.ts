import { mediaType } from '../../common/media-type.js';
import type { ResponseHead } from './stream-response.js';

/**
 * What a held stream does with the answer of a re-attach attempt. Pure; shared by the relay
 * proxy (stream-proxy.ts) and the listeners' feeds (fanout/mount-feed.ts): anything but 200 is
 * retried until the hold ends, a 200 of another content type ends the stream (its listener's
 * decoder was set up for the first one), a 200 of the same type continues it.
 */
export type ReattachAnswer =
  | { kind: 'continue' }
  | { kind: 'retry'; reason: string }
  | { kind: 'give-up'; reason: string };

export function reattachAnswer(res: ResponseHead, firstContentType: string | undefined): ReattachAnswer {
  if (res.status !== 200) return { kind: 'retry', reason: `upstream answered ${res.status}` };
  if (mediaType(res.headers.get('content-type')) !== mediaType(firstContentType)) return { kind: 'give-up', reason: 'the stream changed format' };
  return { kind: 'continue' };
}
