import { escapeXml } from '../../common/xml-escape.js';

/**
 * Playlists point at the stream's public URL (through the balancer), so a player that saved
 * one is sent to a live node each time it starts playing.
 */
export interface PlaylistFormat {
  extension: 'm3u' | 'pls' | 'xspf';
  contentType: string;
  render(streamUrl: string, title: string): string;
}

/** Titles go on one line in the line-based formats. */
function oneLine(s: string): string {
  return s.replace(/[\r\n]+/g, ' ');
}

export const m3u: PlaylistFormat = {
  extension: 'm3u',
  contentType: 'audio/x-mpegurl',
  render: (url, title) => `#EXTM3U\n#EXTINF:-1,${oneLine(title)}\n${oneLine(url)}\n`,
};

export const pls: PlaylistFormat = {
  extension: 'pls',
  contentType: 'audio/x-scpls',
  render: (url, title) =>
    `[playlist]\nNumberOfEntries=1\nFile1=${oneLine(url)}\nTitle1=${oneLine(title)}\nLength1=-1\nVersion=2\n`,
};

export const xspf: PlaylistFormat = {
  extension: 'xspf',
  contentType: 'application/xspf+xml',
  render: (url, title) =>
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    '<playlist version="1" xmlns="http://xspf.org/ns/0/">\n' +
    '  <trackList>\n' +
    `    <track><location>${escapeXml(url)}</location><title>${escapeXml(title)}</title></track>\n` +
    '  </trackList>\n' +
    '</playlist>\n',
};

export const PLAYLIST_FORMATS: readonly PlaylistFormat[] = [m3u, pls, xspf];
