/**
 * A small XML reader for Icecast's own documents (/admin/stats, icecast.xml): elements,
 * attributes, text and the five predefined entities plus numeric references. No DTDs, no
 * namespaces: Icecast emits neither. Throws on malformed input so callers never trust a
 * half-parsed answer.
 */
export interface XmlElement {
  name: string;
  attributes: Record<string, string>;
  children: XmlElement[];
  /** Concatenated text directly inside this element (not its children's). */
  text: string;
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

export function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-zA-Z]+);/g, (whole, ref: string) => {
    if (ref.startsWith('#x')) return String.fromCodePoint(parseInt(ref.slice(2), 16));
    if (ref.startsWith('#')) return String.fromCodePoint(parseInt(ref.slice(1), 10));
    const v = ENTITIES[ref];
    if (v === undefined) throw new Error(`unknown XML entity ${whole}`);
    return v;
  });
}

const NAME = /[A-Za-z_:][-A-Za-z0-9_.:]*/y;
const ATTR = /\s+([A-Za-z_:][-A-Za-z0-9_.:]*)\s*=\s*("([^"]*)"|'([^']*)')/y;

export function parseXml(input: string): XmlElement {
  let pos = 0;
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;

  const fail = (why: string): never => {
    throw new Error(`invalid XML at offset ${pos}: ${why}`);
  };

  while (pos < input.length) {
    const lt = input.indexOf('<', pos);
    const chunk = lt === -1 ? input.slice(pos) : input.slice(pos, lt);
    if (chunk.length > 0) {
      const top = stack[stack.length - 1];
      if (top) top.text += decodeEntities(chunk);
      else if (chunk.trim() !== '') fail('text outside the root element');
    }
    if (lt === -1) break;
    pos = lt;
    if (input.startsWith('<?', pos)) {
      const end = input.indexOf('?>', pos);
      if (end === -1) fail('unterminated declaration');
      pos = end + 2;
    } else if (input.startsWith('<!--', pos)) {
      const end = input.indexOf('-->', pos);
      if (end === -1) fail('unterminated comment');
      pos = end + 3;
    } else if (input.startsWith('<![CDATA[', pos)) {
      const end = input.indexOf(']]>', pos);
      if (end === -1) fail('unterminated CDATA');
      const top = stack[stack.length - 1] ?? fail('CDATA outside the root element');
      top.text += input.slice(pos + 9, end);
      pos = end + 3;
    } else if (input.startsWith('<!', pos)) {
      fail('DTDs are not supported');
    } else if (input.startsWith('</', pos)) {
      NAME.lastIndex = pos + 2;
      const m = NAME.exec(input) ?? fail('bad closing tag');
      const top = stack.pop() ?? fail(`unexpected </${m[0]}>`);
      if (top.name !== m[0]) fail(`</${m[0]}> closes <${top.name}>`);
      pos = NAME.lastIndex;
      while (/\s/.test(input[pos] ?? '')) pos++;
      if (input[pos] !== '>') fail('bad closing tag');
      pos++;
    } else {
      NAME.lastIndex = pos + 1;
      const m = NAME.exec(input) ?? fail('bad tag name');
      pos = NAME.lastIndex;
      const el: XmlElement = { name: m[0], attributes: {}, children: [], text: '' };
      for (;;) {
        ATTR.lastIndex = pos;
        const a = ATTR.exec(input);
        if (!a) break;
        el.attributes[a[1]!] = decodeEntities(a[3] ?? a[4] ?? '');
        pos = ATTR.lastIndex;
      }
      while (/\s/.test(input[pos] ?? '')) pos++;
      const selfClosing = input.startsWith('/>', pos);
      if (!selfClosing && input[pos] !== '>') fail(`bad tag <${el.name}>`);
      pos += selfClosing ? 2 : 1;
      const parent = stack[stack.length - 1];
      if (parent) parent.children.push(el);
      else if (root) fail('more than one root element');
      else root = el;
      if (!selfClosing) stack.push(el);
    }
  }
  if (stack.length > 0) fail(`<${stack[stack.length - 1]!.name}> is not closed`);
  return root ?? fail('no root element');
}

export function child(el: XmlElement, name: string): XmlElement | undefined {
  return el.children.find((c) => c.name === name);
}

export function children(el: XmlElement, name: string): XmlElement[] {
  return el.children.filter((c) => c.name === name);
}

export function childText(el: XmlElement, name: string): string | undefined {
  return child(el, name)?.text;
}
