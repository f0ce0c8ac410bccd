const ENTITIES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}

/** XML 1.0 has the same five special characters; control characters are not allowed at all. */
export function escapeXml(value: unknown): string {
  return escapeHtml(value).replace(/[\x00-\x08\x0b\x0c\x0e-\x1f]/g, '');
}
