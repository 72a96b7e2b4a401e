import { defineStore } from "pinia";
import { computed, ref } from "vue";

import { ApiError } from "../api/client";
import { auth } from "../api/endpoints";
import type { Me, Role } from "../api/types";

export const NOTICE_SIGNED_OUT = "You have been signed out.";
export const NOTICE_DEACTIVATED = "Your account was deactivated.";
export const NOTICE_UNREACHABLE = "Could not reach Consulta. Check your connection and try again.";

/** The signed-in user (from /api/v1/auth/me/) and the sign-in / sign-out actions. */
export const useSessionStore = defineStore("session", () => {
  const me = ref<Me | null>(null);
  /** /me has answered (200 or 401) at least once in this tab. */
  const loaded = ref(false);
  /** A message for the sign-in page (why the user is there). */
  const notice = ref<string | null>(null);

  const isAuthenticated = computed(() => me.value !== null);
  const roles = computed<Role[]>(() => me.value?.roles ?? []);

  let pending: Promise<Me | null> | null = null;

  /** Loads /me once; concurrent callers share the request. Never throws. */
  function load(): Promise<Me | null> {
    pending ??= (async () => {
      try {
        me.value = await auth.me();
        loaded.value = true;
      } catch (error) {
        me.value = null;
        if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
          loaded.value = true;
        } else {
          // Server unreachable or failing: stay "not loaded" so the next navigation asks again.
          notice.value = NOTICE_UNREACHABLE;
        }
      } finally {
        pending = null;
      }
      return me.value;
    })();
    return pending;
  }

  /** Signs in; throws ApiError (invalid_credentials, too_many_attempts, invalid, ...). */
  async function login(username: string, password: string): Promise<Me> {
    await auth.csrf();
    let signedIn: Me;
    try {
      signedIn = await auth.login({ username, password });
    } catch (error) {
      // A stale csrftoken cookie (e.g. rotated by a sign-in in another tab): fetch a fresh one, try once more.
      if (!(error instanceof ApiError && error.code === "csrf_failed")) throw error;
      await auth.csrf();
      signedIn = await auth.login({ username, password });
    }
    me.value = signedIn;
    loaded.value = true;
    notice.value = null;
    return signedIn;
  }

  /** Signs out on the server (best effort) and forgets the user. */
  async function logout(): Promise<void> {
    try {
      await auth.logout();
    } catch {
      // Already signed out, or the server is unreachable: the tab forgets the user either way.
    }
    clear(NOTICE_SIGNED_OUT);
  }

  /** Forgets the user without asking the server (the server already ended the session). */
  function clear(message: string | null = null): void {
    me.value = null;
    loaded.value = true;
    notice.value = message;
  }

  function dismissNotice(): void {
    notice.value = null;
  }

  return { me, loaded, notice, isAuthenticated, roles, load, login, logout, clear, dismissNotice };
});
