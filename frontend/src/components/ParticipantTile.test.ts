// @vitest-environment happy-dom
import { afterEach, describe, expect, it } from "vitest";
import { createApp, h, type App } from "vue";

import { ApiError } from "../api/client";
import type { Invitation, InvitationRequest } from "../api/types";
import { settle } from "../testing/app";
import { button, field, fill, queryButton } from "../testing/dom";
import { describeInvitationError } from "../telehealth/guestLink";
import InviteGuestDialog from "./InviteGuestDialog.vue";
import ParticipantTile from "./ParticipantTile.vue";

let app: App | null = null;

function mount(render: () => ReturnType<typeof h>): HTMLElement {
  const root = document.createElement("div");
  document.body.append(root);
  app = createApp({ render });
  app.mount(root);
  return root;
}

afterEach(() => {
  app?.unmount();
  app = null;
  document.body.innerHTML = "";
});

describe("ParticipantTile", () => {
  it("shows name, role, muted and speaking, and asks before removing a guest", async () => {
    const events: string[] = [];
    const root = mount(() =>
      h(ParticipantTile, {
        participantId: "guest-x",
        name: "Ana Ruiz",
        role: "Interpreter",
        stream: null,
        speaking: true,
        muted: true,
        framesDecoded: 42,
        canMute: true,
        canRemove: true,
        onMute: (audio: boolean) => events.push(`mute:${audio}`),
        onRemove: () => events.push("remove"),
      }),
    );
    await settle();
    const tile = root.querySelector<HTMLElement>('[data-testid="participant-tile"]')!;
    expect(tile.dataset.speaking).toBe("true");
    expect(tile.dataset.framesDecoded).toBe("42");
    expect(tile.textContent).toContain("Ana Ruiz");
    expect(tile.textContent).toContain("Interpreter");
    expect(tile.querySelector('[data-testid="participant-muted"]')).not.toBeNull();

    button("Unmute Ana Ruiz").click();
    button("Remove Ana Ruiz").click();
    await settle();
    expect(events).toEqual(["mute:true"]);
    button("Keep").click();
    await settle();
    expect(queryButton("Confirm removal")).toBeUndefined();
    button("Remove Ana Ruiz").click();
    await settle();
    button("Confirm removal").click();
    expect(events).toEqual(["mute:true", "remove"]);
  });
});

describe("InviteGuestDialog", () => {
  it("creates the invitation with the role and name, then shows the link to copy", async () => {
    const sent: InvitationRequest[] = [];
    const create = async (body: InvitationRequest): Promise<Invitation> => {
      sent.push(body);
      return {
        id: "i1",
        participant_id: `guest-${"a".repeat(32)}`,
        appointment_id: 7,
        visit_id: null,
        role: body.role,
        name: body.name,
        url: "https://consulta.test/visit/join/tok",
        expires_at: new Date(Date.now() + 3_600_000).toISOString(),
      };
    };
    mount(() => h(InviteGuestDialog, { create, initialRole: "family", initialName: "" }));
    await settle();
    button("Create invitation link").click();
    await settle();
    expect(document.body.textContent).toContain("Enter the guest's name.");
    expect(sent).toEqual([]);

    fill(field("Guest's name"), "Marta Ruiz");
    button("Create invitation link").click();
    await settle();
    expect(sent).toEqual([{ role: "family", name: "Marta Ruiz", expires_in_minutes: 120 }]);
    expect((field("Join link") as HTMLInputElement).value).toBe("https://consulta.test/visit/join/tok");
    expect(queryButton("Copy link")).toBeDefined();
  });

  it("says why the API refused", async () => {
    const create = async (): Promise<Invitation> => {
      throw new ApiError(403, "forbidden", "Only the visit's practitioner may invite.");
    };
    mount(() => h(InviteGuestDialog, { create, initialName: "Sam" }));
    await settle();
    button("Create invitation link").click();
    await settle();
    expect(document.body.textContent).toContain("Only the visit's practitioner may invite.");
  });
});

describe("describeInvitationError", () => {
  it("names expired, used and invalid links", () => {
    expect(describeInvitationError(new ApiError(410, "invitation_expired", ""))).toMatch(/expired/);
    expect(describeInvitationError(new ApiError(409, "invitation_used", ""))).toMatch(/already been used/);
    expect(describeInvitationError(new ApiError(400, "invalid_token", ""))).toMatch(/not valid/);
    expect(describeInvitationError(new ApiError(410, "invitation_revoked", ""))).toMatch(/withdrawn/);
  });
});
