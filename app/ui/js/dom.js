// Building the page: elements from plain values (text is always set as text, never
// parsed as markup: DICOM values can hold anything), icons, and value formats.

const SVG = 'http://www.w3.org/2000/svg';

/**
 * h('a', {href, class, onclick}, child, [children], 'text') -> HTMLElement.
 * Attributes: on<event> listeners, class, dataset, style (object), boolean attributes
 * (true: present, false/null: absent), value/checked/selected as properties.
 */
export function h(tag, attributes, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      element.addEventListener(key.slice(2), value);
    } else if (key === 'class') {
      element.className = value;
    } else if (key === 'dataset') {
      Object.assign(element.dataset, value);
    } else if (key === 'style') {
      Object.assign(element.style, value);
    } else if (key === 'value' || key === 'checked' || key === 'selected' || key === 'indeterminate') {
      element[key] = value;
    } else {
      element.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(element, children);
  return element;
}

export function append(element, children) {
  for (const child of [children].flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

/** Replace the children of *element*. */
export function fill(element, ...children) {
  element.replaceChildren();
  return append(element, children);
}

export function icon(name, extraClass = '') {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('class', `icon ${extraClass}`.trim());
  svg.setAttribute('aria-hidden', 'true');
  const use = document.createElementNS(SVG, 'use');
  use.setAttribute('href', `#i-${name}`);
  svg.append(use);
  return svg;
}

/** A button with an icon; *label* is its text (or its aria-label when iconOnly). */
export function button(label, { icon: iconName, onclick, kind = '', iconOnly = false, title, type = 'button', ...rest } = {}) {
  const classes = [kind, iconOnly ? 'icon-only' : ''].filter(Boolean).join(' ');
  return h('button', {
    type, class: classes || null, onclick, title: title ?? (iconOnly ? label : null),
    'aria-label': iconOnly ? label : null, ...rest,
  }, iconName ? icon(iconName) : null, iconOnly ? null : label);
}

export function debounce(fn, ms) {
  let timer;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

// ---- DICOM values ------------------------------------------------------------------

/** 'YYYYMMDD' -> 'YYYY-MM-DD' (other values as they are). */
export function dicomDate(value) {
  if (!value) return '';
  const match = /^(\d{4})(\d{2})(\d{2})$/.exec(value.trim());
  return match ? `${match[1]}-${match[2]}-${match[3]}` : value;
}

/** 'HHMMSS.ffff' -> 'HH:MM:SS'. */
export function dicomTime(value) {
  if (!value) return '';
  const match = /^(\d{2})(\d{2})?(\d{2})?/.exec(value.trim());
  if (!match) return value;
  return [match[1], match[2], match[3]].filter(Boolean).join(':');
}

/** Orthanc's 'YYYYMMDDTHHMMSS[.ffffff]' -> 'YYYY-MM-DD HH:MM'. */
export function orthancStamp(value, withSeconds = false) {
  const match = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})/.exec(value ?? '');
  if (!match) return value ?? '';
  const time = withSeconds ? `${match[4]}:${match[5]}:${match[6]}` : `${match[4]}:${match[5]}`;
  return `${match[1]}-${match[2]}-${match[3]} ${time}`;
}

/** A person name: 'DOE^JOHN^^DR' -> 'DOE, JOHN' (family, given middle; other groups dropped). */
export function personName(value) {
  if (!value) return '';
  const [alphabetic] = value.split('=');
  const [family = '', given = '', middle = '', prefix = '', suffix = ''] = alphabetic.split('^');
  const rest = [prefix, given, middle, suffix].filter(Boolean).join(' ');
  return family && rest ? `${family}, ${rest}` : (family || rest || value);
}

export function bytes(value) {
  const number = Number(value);
  if (!Number.isFinite(number)) return '';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let size = number;
  let unit = 0;
  while (size >= 1000 && unit < units.length - 1) { size /= 1000; unit += 1; }
  return `${size >= 100 || unit === 0 ? Math.round(size) : size.toFixed(1)} ${units[unit]}`;
}

export const integer = value => (value === undefined || value === null || value === '')
  ? '' : Number(value).toLocaleString('en-US');

/** DICOM 'YYYYMMDD' from an <input type=date> value 'YYYY-MM-DD'. */
export const toDicomDate = value => (value || '').replaceAll('-', '');

/** A date N days ago, as <input type=date> wants it. */
export function daysAgo(days) {
  const date = new Date(Date.now() - days * 86_400_000);
  const pad = n => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}
