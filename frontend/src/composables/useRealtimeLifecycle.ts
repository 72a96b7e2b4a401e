import { watch } from "vue";
import { useRouter } from "vue-router";

import { CLOSE_SESSION_REVOKED } from "../realtime/protocol";
import { useRealtimeStore } from "../stores/realtime";
import { NOTICE_DEACTIVATED, NOTICE_SIGNED_OUT, useSessionStore } from "../stores/session";

/**
 * Ties the tab's realtime socket to the sign-in session: open while signed in, closed
 * after sign-out, and when the server ends the session (close 4401/4403) the tab
 * forgets the user and goes to the sign-in page with the reason.
 * Call once, from the root component.
 */
export function useRealtimeLifecycle(): void {
  const session = useSessionStore();
  const realtime = useRealtimeStore();
  const router = useRouter();

  watch(
    () => session.me?.session ?? null,
    (current) => {
      if (current === null) realtime.stop();
      else realtime.start(current);
    },
    { immediate: true },
  );

  watch(
    () => realtime.termination,
    (ended) => {
      if (!ended) return;
      const deactivated = ended.code === CLOSE_SESSION_REVOKED && ended.revokedReason === "deactivated";
      session.clear(deactivated ? NOTICE_DEACTIVATED : NOTICE_SIGNED_OUT);
      void router.replace({ name: "login" });
    },
  );
}
