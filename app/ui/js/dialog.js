// Modal dialogs (<dialog>: focus kept inside, Escape closes) and toasts (a polite live
// region: screen readers announce them without moving the focus).

import { button, h, icon } from './dom.js';

/**
 * Open a modal form. *body* is an element or a list of them (fields named as the form's
 * inputs); *onSubmit(form)* runs when the user confirms: what it answers resolves the
 * promise and closes the dialog; an exception is shown in the dialog, which stays open.
 * Resolves null when the user cancels.
 */
export function openDialog({ title, body, submitLabel = 'OK', submitKind = 'primary',
  cancelLabel = 'Cancel', onSubmit = () => true, wide = false, describe }) {
  return new Promise(resolve => {
    const titleId = `dialog-title-${Math.random().toString(36).slice(2)}`;
    const error = h('div', { class: 'error-box', role: 'alert', hidden: true });
    const submit = button(submitLabel, { kind: submitKind, type: 'submit' });
    const cancel = button(cancelLabel, { onclick: () => close(null) });
    const form = h('form', { class: 'dialog', method: 'dialog', novalidate: true },
      h('div', { class: 'dialog-head' }, h('h2', { id: titleId }, title),
        describe ? h('p', { class: 'muted' }, describe) : null),
      h('div', { class: 'dialog-body' }, body, error),
      h('div', { class: 'dialog-foot' }, cancel, submit));
    const dialog = h('dialog', { 'aria-labelledby': titleId }, form);
    if (wide) dialog.style.width = 'min(760px, calc(100vw - 32px))';
    let settled = false;
    function close(value) {
      if (settled) return;
      settled = true;
      dialog.close();
      dialog.remove();
      resolve(value);
    }
    dialog.addEventListener('cancel', event => { event.preventDefault(); close(null); });
    form.addEventListener('submit', async event => {
      event.preventDefault();
      error.hidden = true;
      submit.disabled = cancel.disabled = true;
      const label = submit.lastChild.textContent;
      submit.lastChild.textContent = 'Working…';
      try {
        const value = await onSubmit(form);
        if (value !== undefined && value !== false) close(value);
      } catch (failure) {
        error.textContent = failure?.message ?? String(failure);
        error.hidden = false;
      } finally {
        if (!settled) {
          submit.disabled = cancel.disabled = false;
          submit.lastChild.textContent = label;
        }
      }
    });
    document.body.append(dialog);
    dialog.showModal();
    const first = form.querySelector('.dialog-body input:not([type=hidden]):not([disabled]), .dialog-body select, .dialog-body textarea');
    (first ?? submit).focus();
  });
}

export function confirmDialog({ title, text, confirmLabel = 'Delete', kind = 'danger solid' }) {
  return openDialog({ title, body: h('p', {}, text), submitLabel: confirmLabel, submitKind: kind })
    .then(value => value === true);
}

// ---- toasts -------------------------------------------------------------------------

/** Show a toast; answers {update({title, text, progress, kind}), close(delayMs)}. */
export function toast({ title, text = '', kind = '', progress = null, timeout = 0 }) {
  const region = document.getElementById('toasts');
  const titleText = h('span', {}, title);
  const textLine = h('p', {}, text);
  const bar = h('span');
  const meter = h('div', { class: 'progress', role: 'progressbar', 'aria-valuemin': 0,
    'aria-valuemax': 100, hidden: progress === null }, bar);
  const element = h('div', { class: `toast ${kind}` },
    h('div', { class: 'toast-title' }, titleText,
      button('Dismiss', { icon: 'x', kind: 'ghost small', iconOnly: true, onclick: () => handle.close() })),
    textLine, meter);
  region.append(element);
  // At most four at once: the oldest finished ones go first.
  const finished = [...region.children].filter(t => t !== element
    && (t.classList.contains('ok') || t.classList.contains('bad') || t.querySelector('.progress[hidden]')));
  while (region.children.length > 4 && finished.length) finished.shift().remove();
  let timer = null;
  const handle = {
    element,
    update({ title: newTitle, text: newText, progress: value, kind: newKind } = {}) {
      if (newTitle !== undefined) titleText.textContent = newTitle;
      if (newText !== undefined) textLine.textContent = newText;
      if (newKind !== undefined) element.className = `toast ${newKind}`;
      if (value !== undefined && value !== null) {
        meter.hidden = false;
        bar.style.width = `${Math.max(0, Math.min(100, value))}%`;
        meter.setAttribute('aria-valuenow', String(Math.round(value)));
        meter.classList.toggle('done', newKind === 'ok');
        meter.classList.toggle('failed', newKind === 'bad');
      }
    },
    close(delay = 0) {
      clearTimeout(timer);
      timer = setTimeout(() => element.remove(), delay);
    },
  };
  handle.update({ progress });
  if (timeout) handle.close(timeout);
  return handle;
}

export const notify = (title, text = '', kind = 'ok') => toast({ title, text, kind, timeout: 6000 });
export const notifyError = (title, failure) =>
  toast({ title, text: failure?.message ?? String(failure), kind: 'bad', timeout: 12000 });

export function emptyState(iconName, text, ...extra) {
  return h('div', { class: 'empty-state' }, icon(iconName), h('div', {}, text), ...extra);
}

export function errorBox(failure) {
  return h('div', { class: 'error-box', role: 'alert' }, failure?.message ?? String(failure));
}
