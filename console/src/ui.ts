/**
 * What every page shares: calling the API as the signed-in token (a 401 ends the
 * session), errors in words where they happened, a confirmation dialog, buttons that say
 * they are busy, and the scope checkboxes.
 */
import { ApiError, request } from './api.js';
import { h, replaceChildren, uniqueId } from './dom.js';
import { endSession, session } from './session.js';

export const KNOWN_SCOPES = ['agents:read', 'agents:write', 'tokens:read', 'audit:read', 'webhooks:read', 'webhooks:write', 'admin:orgs'] as const;

export async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const signedIn = session();
  if (!signedIn) throw new ApiError(401, 'UNAUTHORIZED', 'You are signed out.');
  try {
    return await request<T>(method, path, { token: signedIn.token, json: body });
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) endSession(error.message);
    throw error;
  }
}

export function messageOf(error: unknown): string {
  if (error instanceof ApiError) return error.message;
  return error instanceof Error && error.message ? error.message : 'Something went wrong in the console. Reload the page and sign in again.';
}

/** A region that shows an error, in words, to everyone and to screen readers. */
export function errorRegion(): HTMLParagraphElement & { show(error: unknown): void; clear(): void } {
  const region = h('p', { class: 'error', role: 'alert', hidden: true }) as HTMLParagraphElement & { show(error: unknown): void; clear(): void };
  region.show = (error) => {
    region.textContent = messageOf(error);
    region.hidden = false;
  };
  region.clear = () => {
    region.textContent = '';
    region.hidden = true;
  };
  return region;
}

/** Announces a success politely (the live region in the page's header). */
export function announce(message: string): void {
  const status = document.getElementById('status');
  if (!status) return;
  status.textContent = '';
  window.setTimeout(() => (status.textContent = message), 50);
}

/** A button that runs `action`, disabled and saying so while it runs; its failure goes to `errors`. */
export function actionButton(label: string, action: () => Promise<void>, errors: ReturnType<typeof errorRegion>, attributes: Record<string, string> = {}): HTMLButtonElement {
  const button = h('button', { type: 'button', ...attributes }, label);
  button.addEventListener('click', async () => {
    errors.clear();
    button.disabled = true;
    button.setAttribute('aria-busy', 'true');
    try {
      await action();
    } catch (error) {
      errors.show(error);
    } finally {
      button.disabled = false;
      button.removeAttribute('aria-busy');
    }
  });
  return button;
}

/** Runs a form's submit through `action`, with its errors shown in the form. */
export function onSubmit(form: HTMLFormElement, errors: ReturnType<typeof errorRegion>, action: () => Promise<void>): void {
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    errors.clear();
    const submit = form.querySelector<HTMLButtonElement>('button[type=submit]');
    if (submit) submit.disabled = true;
    try {
      await action();
    } catch (error) {
      errors.show(error);
    } finally {
      if (submit) submit.disabled = false;
    }
  });
}

/** A modal confirmation: resolves true only when the person chose `confirmLabel`. */
function confirmAction(title: string, text: string, confirmLabel: string): Promise<boolean> {
  return new Promise((resolve) => {
    const titleId = uniqueId('dialog-title');
    const dialog = h('dialog', { class: 'confirm', 'aria-labelledby': titleId });
    const close = (answer: boolean) => {
      dialog.close();
      dialog.remove();
      resolve(answer);
    };
    replaceChildren(
      dialog,
      h('h2', { id: titleId }, title),
      h('p', {}, text),
      h(
        'div',
        { class: 'actions' },
        h('button', { type: 'button', class: 'danger', onClick: () => close(true) }, confirmLabel),
        h('button', { type: 'button', autofocus: true, onClick: () => close(false) }, 'Cancel'),
      ),
    );
    dialog.addEventListener('cancel', () => close(false));
    document.body.append(dialog);
    dialog.showModal();
  });
}

export interface Confirmation {
  readonly title: string;
  readonly text: string;
  /** The dialog's button that goes ahead. */
  readonly confirm: string;
}

/** A button (a danger's, unless `attributes` say otherwise) whose action runs once the person confirmed it in a dialog. */
export function confirmedButton(label: string, confirmation: Confirmation, action: () => Promise<void>, errors: ReturnType<typeof errorRegion>, attributes: Record<string, string> = {}): HTMLButtonElement {
  return actionButton(label, async () => {
    if (await confirmAction(confirmation.title, confirmation.text, confirmation.confirm)) await action();
  }, errors, { class: 'danger', ...attributes });
}

/** A secret shown once: selectable, with a copy button, and the warning that it will not be shown again. */
export function secretOnce(label: string, secret: string): HTMLElement {
  const output = h('input', { type: 'text', readonly: true, value: secret, class: 'secret', 'aria-label': label, spellcheck: 'false' });
  const copied = h('span', { role: 'status', class: 'hint' });
  const copy = h('button', { type: 'button' }, 'Copy');
  copy.addEventListener('click', async () => {
    output.select();
    try {
      await navigator.clipboard.writeText(secret);
      copied.textContent = 'Copied.';
    } catch {
      copied.textContent = 'Selected: press Ctrl+C (⌘C) to copy.';
    }
  });
  return h(
    'div',
    { class: 'secret-once', role: 'group', 'aria-label': label },
    h('p', {}, h('strong', {}, `${label}: shown once. `), 'Copy it now: it is not stored in a form anyone can read back, and this page forgets it when you leave.'),
    h('div', { class: 'inline' }, output, copy, copied),
  );
}

/** Checkboxes for scopes, in a fieldset; `selected()` reads the choice. */
export function scopePicker(legend: string, checked: readonly string[] = []): HTMLFieldSetElement & { selected(): string[] } {
  const boxes = KNOWN_SCOPES.map((scope) => {
    const box = h('input', { type: 'checkbox', name: 'scope', value: scope, id: uniqueId('scope') });
    box.checked = checked.includes(scope);
    return box;
  });
  const fieldset = h(
    'fieldset',
    { class: 'scopes' },
    h('legend', {}, legend),
    boxes.map((box) => h('label', { class: 'check', for: box.id }, box, ` ${box.value}`)),
  ) as HTMLFieldSetElement & { selected(): string[] };
  fieldset.selected = () => boxes.filter((box) => box.checked).map((box) => box.value);
  return fieldset;
}

export function heading(text: string): HTMLHeadingElement {
  return h('h1', { tabindex: -1 }, text);
}

export function section(title: string, ...children: (Node | null | false)[]): HTMLElement {
  const id = uniqueId('section');
  return h('section', { 'aria-labelledby': id }, h('h2', { id }, title), ...children);
}

export const has = (scope: string) => session()?.scopes.has(scope) ?? false;

/**
 * A list read page by page: `load(cursor)` fetches one; rows are drawn by `render` into
 * `container`, and a "Load more" button follows while the server has more. `redraw`
 * draws the rows already read again (a filter changed).
 */
export function pagedList<T>(
  container: HTMLElement,
  load: (cursor?: string) => Promise<{ data: T[]; nextCursor?: string | null }>,
  render: (rows: readonly T[]) => HTMLElement,
): { reload(): Promise<void>; redraw(): void } {
  let rows: T[] = [];
  let nextCursor: string | null | undefined;
  const errors = errorRegion();
  function redraw(): void {
    container.replaceChildren(render(rows), errors);
    if (nextCursor) container.append(actionButton('Load more', () => show(nextCursor!), errors));
  }
  async function show(cursor?: string): Promise<void> {
    const page = await load(cursor);
    rows = cursor ? [...rows, ...page.data] : page.data;
    nextCursor = page.nextCursor;
    redraw();
  }
  return { reload: () => show(), redraw };
}
