// @vitest-environment happy-dom
import { afterEach, describe, expect, it } from "vitest";
import { createApp, defineComponent, h, nextTick, ref, type App } from "vue";

import { button, field, text } from "../testing/dom";
import DataPager from "./DataPager.vue";
import DataTable from "./DataTable.vue";
import FormField from "./FormField.vue";

let app: App | null = null;

function mount(render: () => ReturnType<typeof h>): HTMLElement {
  const root = document.createElement("div");
  document.body.append(root);
  app = createApp(defineComponent({ render }));
  app.mount(root);
  return root;
}

afterEach(() => {
  app?.unmount();
  app = null;
  document.body.innerHTML = "";
});

describe("FormField", () => {
  it("labels its control and lists the hint, the outside description and the error in aria-describedby", async () => {
    const error = ref<string | undefined>(undefined);
    const root = mount(() =>
      h(
        FormField,
        { id: "since", label: "From", hint: "Local time.", describedBy: "shared-hint", error: error.value, alertError: true },
        { default: (control: Record<string, unknown>) => h("input", { ...control, class: "input" }) },
      ),
    );
    const input = field("From", root);
    expect(input.id).toBe("since");
    expect(input.getAttribute("aria-describedby")).toBe("since-hint shared-hint");
    expect(input.hasAttribute("aria-invalid")).toBe(false);
    expect(text(document.getElementById("since-hint"))).toBe("Local time.");

    error.value = "Enter a complete date and time.";
    await nextTick();
    expect(input.getAttribute("aria-invalid")).toBe("true");
    expect(input.getAttribute("aria-describedby")).toBe("since-hint shared-hint since-error");
    const message = document.getElementById("since-error");
    expect(text(message)).toBe("Enter a complete date and time.");
    expect(message?.getAttribute("role")).toBe("alert");
  });

  it("leaves the error unannounced when the form has its own alert, and describes nothing without hint or error", () => {
    const root = mount(() =>
      h(
        FormField,
        { id: "dose", label: "Dose", error: "Too long." },
        { default: (control: Record<string, unknown>) => h("input", control) },
      ),
    );
    expect(field("Dose", root).getAttribute("aria-describedby")).toBe("dose-error");
    expect(document.getElementById("dose-error")?.hasAttribute("role")).toBe(false);
  });
});

describe("DataTable", () => {
  it("is a labelled scroll region with a hidden caption, header cells and the rows given", () => {
    const root = mount(() =>
      h(
        DataTable,
        { caption: "Users", captionId: "users-caption", columns: ["Name", { label: "Actions", hidden: true }], minWidth: "30rem" },
        { default: () => h("tr", { "data-row": "1" }, [h("th", { scope: "row" }, "Ada"), h("td", "—")]) },
      ),
    );
    const region = root.querySelector('[role="region"]');
    expect(region?.getAttribute("aria-labelledby")).toBe("users-caption");
    expect(region?.getAttribute("tabindex")).toBe("0");
    expect(text(root.querySelector("caption#users-caption"))).toBe("Users");
    expect([...root.querySelectorAll("thead th")].map(text)).toEqual(["Name", "Actions"]);
    expect(root.querySelector("thead th .visually-hidden")).not.toBeNull();
    expect(root.querySelector<HTMLTableElement>("table")?.style.minWidth).toBe("30rem");
    expect(root.querySelectorAll("tbody tr[data-row]")).toHaveLength(1);
    expect(root.querySelector("td.empty")).toBeNull();
  });

  it("says why it is empty in one cell across every column", () => {
    const root = mount(() =>
      h(DataTable, { caption: "Users", captionId: "c", columns: ["A", "B", "C"], empty: "No users yet." }),
    );
    const cell = root.querySelector<HTMLTableCellElement>("td.empty");
    expect(text(cell)).toBe("No users yet.");
    expect(cell?.colSpan).toBe(3);
  });
});

describe("DataPager", () => {
  it("asks for the previous or next page, and says which page this is", async () => {
    const asked: number[] = [];
    const root = mount(() =>
      h(DataPager, {
        page: 2,
        pageCount: 5,
        links: { previous: "/api/?page=1", next: null },
        label: "Pages of users",
        onGo: (page: number) => asked.push(page),
      }),
    );
    const nav = root.querySelector("nav");
    expect(nav?.getAttribute("aria-label")).toBe("Pages of users");
    expect(text(nav)).toContain("Page 2 of 5");
    expect(button("Next page", root).disabled).toBe(true);
    button("Previous page", root).click();
    await nextTick();
    expect(asked).toEqual([1]);
  });

  it("is not shown when there is only one page, and waits while a page loads", () => {
    const single = mount(() => h(DataPager, { page: 1, links: { previous: null, next: null }, label: "Pages" }));
    expect(single.querySelector("nav")).toBeNull();
    app?.unmount();
    const busy = mount(() => h(DataPager, { page: 1, links: { previous: null, next: "/api/?page=2" }, busy: true, label: "Pages" }));
    expect(text(busy.querySelector("nav"))).toContain("Page 1");
    expect(text(busy.querySelector("nav"))).not.toContain(" of ");
    expect(button("Next page", busy).disabled).toBe(true);
  });
});
