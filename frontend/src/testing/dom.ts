/** Minimal accessible-name queries for component tests (the browser tests use Playwright's). */

function normalise(text: string | null | undefined): string {
  return (text ?? "").replace(/\s+/g, " ").trim();
}

export function accessibleName(element: Element): string {
  const label = element.getAttribute("aria-label");
  if (label) return normalise(label);
  const labelledBy = element.getAttribute("aria-labelledby");
  if (labelledBy) {
    return normalise(labelledBy.split(" ").map((id) => document.getElementById(id)?.textContent).join(" "));
  }
  return normalise(element.textContent);
}

export function text(element: Element | null | undefined): string {
  return normalise(element?.textContent);
}

function find<T extends Element>(root: ParentNode, selector: string, name: string): T | undefined {
  return [...root.querySelectorAll<T>(selector)].find((el) => accessibleName(el) === name);
}

export function button(name: string, root: ParentNode = document): HTMLButtonElement {
  const found = find<HTMLButtonElement>(root, "button", name);
  if (!found) throw new Error(`no button named "${name}"`);
  return found;
}

export function queryButton(name: string, root: ParentNode = document): HTMLButtonElement | undefined {
  return find<HTMLButtonElement>(root, "button", name);
}

export function link(name: string, root: ParentNode = document): HTMLAnchorElement {
  const found = find<HTMLAnchorElement>(root, "a[href]", name);
  if (!found) throw new Error(`no link named "${name}"`);
  return found;
}

export function heading(level = 1, root: ParentNode = document): string {
  return text(root.querySelector(`h${level}`));
}

export function field(label: string, root: ParentNode = document): HTMLInputElement {
  const element = [...root.querySelectorAll("label")].find((l) => normalise(l.textContent) === label);
  const input = element ? document.getElementById(element.htmlFor) : null;
  if (!(input instanceof HTMLInputElement)) throw new Error(`no field labelled "${label}"`);
  return input;
}

export function select(label: string, root: ParentNode = document): HTMLSelectElement {
  const element = [...root.querySelectorAll("label")].find((l) => normalise(l.textContent) === label);
  const control = element ? document.getElementById(element.htmlFor) : null;
  if (!(control instanceof HTMLSelectElement)) throw new Error(`no select labelled "${label}"`);
  return control;
}

/** Picks the option whose text is `optionText`, as a user would. */
export function choose(control: HTMLSelectElement, optionText: string): void {
  const option = [...control.options].find((o) => normalise(o.textContent) === optionText);
  if (!option) throw new Error(`no option "${optionText}"`);
  control.value = option.value;
  control.dispatchEvent(new Event("change", { bubbles: true }));
}

export function fill(input: HTMLInputElement, value: string): void {
  input.value = value;
  input.dispatchEvent(new Event("input", { bubbles: true }));
}

export function byRole(role: "alert" | "status", root: ParentNode = document): HTMLElement[] {
  return [...root.querySelectorAll<HTMLElement>(`[role="${role}"]`)];
}

export function navigation(name: string, root: ParentNode = document): HTMLElement {
  const found = find<HTMLElement>(root, "nav", name);
  if (!found) throw new Error(`no navigation named "${name}"`);
  return found;
}
