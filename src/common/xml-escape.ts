const XML_ENTITIES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
};

/**
 * Text for XML 1.0 element content or a quoted attribute value: the five special characters
 * escaped, and the control characters XML 1.0 forbids even escaped (C0 but tab, LF and CR)
 * removed, with DEL, which it discourages and no player or Icecast config needs; so are U+FFFE,
 * U+FFFF and lone surrogates, which are no XML characters either (a client's UTF-8 can carry the
 * first two).
 */
export function escapeXml(value: unknown): string {
  return String(value)
    .replace(/[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]|[\ud800-\udfff]/gu, '')
    .replace(/[&<>"']/g, (c) => XML_ENTITIES[c]!);
}
