// Building the page's DOM. Everything from the runner is put in as text (textContent), never as
// markup: no innerHTML anywhere.

/** An element with attributes (strings; `class`, `data-*`, `hidden`, `disabled`…), children and event handlers (`on*`). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) {
      continue;
    }
    if (name.startsWith('on') && typeof value === 'function') {
      node.addEventListener(name.slice(2), value);
    } else {
      node.setAttribute(name, value === true ? '' : String(value));
    }
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) {
      continue;
    }
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** A table from column definitions `{ name, title, value(row) → text or Node }`; each cell carries `data-field`. */
export function table(columns, rows, rowAttrs = () => ({})) {
  return el('table', {},
    el('thead', {}, el('tr', {}, columns.map(c => el('th', { scope: 'col' }, c.title)))),
    el('tbody', {}, rows.map(row => el('tr', rowAttrs(row), columns.map(c => el('td', { 'data-field': c.name }, c.value(row)))))));
}

/** A value as indented JSON in a <pre>. */
export function json(value, attrs = {}) {
  return el('pre', { class: 'json', ...attrs }, JSON.stringify(value, null, 2));
}

/** Unix ms as an ISO time, or a dash. */
export function time(ms) {
  return typeof ms === 'number' && ms > 0 ? new Date(ms).toISOString().replace('.000Z', 'Z') : '–';
}

/** A number or a dash for null/undefined. */
export function num(value, digits) {
  if (value === null || value === undefined) {
    return '–';
  }
  return digits === undefined ? String(value) : Number(value).toFixed(digits);
}

/** Replaces what a container shows. */
export function show(container, ...children) {
  container.replaceChildren();
  append(container, children);
}

/** A status line: kind is `ok`, `fail` or `info`. */
export function note(kind, text, attrs = {}) {
  return el('p', { class: `note ${kind}`, ...attrs }, text);
}
