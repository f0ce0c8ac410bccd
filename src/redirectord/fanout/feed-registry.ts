import type { Socket } from 'node:net';
import type { ListenerSession } from '../access/access-log-line.js';
import type { RequestHead } from '../http/request-head.js';
import { FanoutListener } from './fanout-listener.js';
import { MountFeed, type MountFeedOptions } from './mount-feed.js';
import { DEFAULT_SLOW_POLICY, type SlowPolicy } from './slow-listener.js';

export interface FeedRegistryOptions extends MountFeedOptions {
  /** How long a feed outlives its last listener (a player reconnecting finds it warm). 2 s. */
  lingerMs?: number;
  slow?: SlowPolicy;
  onSessionEnd?: (session: ListenerSession) => void;
}

/**
 * The feeds of this node, one per mount with listeners: the first listener of a mount starts
 * its feed, and the feed closes `lingerMs` after the last one left. The listener counts per
 * mount come from here: Icecast sees one listener per feed.
 */
export class FeedRegistry {
  private readonly feeds = new Map<string, MountFeed>();
  private readonly lingering = new Map<MountFeed, NodeJS.Timeout>();

  constructor(private readonly opts: FeedRegistryOptions) {}

  /** A listener of `mount` (a path, no query); `target` is what the access log names. */
  listen(client: Socket, head: RequestHead, mount: string, target: string): FanoutListener {
    const feed = this.feedOf(mount);
    const listener = new FanoutListener(client, head, target, {
      mount,
      log: this.opts.log,
      metrics: this.opts.metrics,
      slow: this.opts.slow ?? DEFAULT_SLOW_POLICY,
      onSessionEnd: this.opts.onSessionEnd,
      onGone: (l) => this.leave(feed, l),
    });
    const timer = this.lingering.get(feed);
    if (timer) {
      clearTimeout(timer);
      this.lingering.delete(feed);
    }
    feed.subscribe(listener);
    return listener;
  }

  /** Listeners per mount on this node (mounts without any are left out). */
  listenerCounts(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const [mount, feed] of this.feeds) if (feed.listeners > 0) counts.set(mount, feed.listeners);
    return counts;
  }

  /** Mounts whose feed holds (or is opening) a connection to Icecast: one each. */
  feedMounts(): Map<string, number> {
    return new Map([...this.feeds.keys()].map((mount) => [mount, 1]));
  }

  /** Upstream connections the feeds hold (Icecast counts each as one listener). */
  feedCount(): number {
    return this.feeds.size;
  }

  /** The master may have moved: feeds fed by (or asking) the old master's Icecast leave it. */
  masterMoved(reason: string): void {
    for (const feed of this.feeds.values()) feed.masterMoved(reason);
  }

  closeAll(reason: string): void {
    for (const feed of [...this.feeds.values()]) feed.close(reason);
  }

  private feedOf(mount: string): MountFeed {
    const existing = this.feeds.get(mount);
    if (existing && !existing.closed) return existing;
    const feed = new MountFeed(mount, this.opts);
    feed.onClosed = () => {
      clearTimeout(this.lingering.get(feed));
      this.lingering.delete(feed);
      if (this.feeds.get(mount) === feed) this.feeds.delete(mount);
      this.opts.metrics.gauge('stream_proxy.feeds', this.feeds.size);
    };
    this.feeds.set(mount, feed);
    this.opts.metrics.gauge('stream_proxy.feeds', this.feeds.size);
    return feed;
  }

  private leave(feed: MountFeed, listener: FanoutListener): void {
    feed.unsubscribe(listener);
    if (feed.listeners > 0 || feed.closed || this.lingering.has(feed)) return;
    const timer = setTimeout(() => {
      this.lingering.delete(feed);
      if (feed.listeners === 0) feed.close('no listener left');
    }, this.opts.lingerMs ?? 2000);
    timer.unref();
    this.lingering.set(feed, timer);
  }
}
