import { defineStore } from "pinia";
import { computed, ref, shallowRef } from "vue";

import type { StreamEvent } from "../api/types";
import { describeUserAgent, formatDateTime } from "../format";
import {
  RealtimeClient,
  type RealtimeClientOptions,
  type RealtimeStatus,
  type Termination,
} from "../realtime/RealtimeClient";

/** How many received events the "Live activity" lists keep. */
export const RECENT_EVENTS_LIMIT = 50;

export interface SessionNotice {
  id: string;
  text: string;
}

type ClientFactory = (options: RealtimeClientOptions) => RealtimeClient;

/** A page's wish to receive a `group:` stream, kept across the tab's clients (sign-in sessions). */
interface StreamMembership {
  stream: string;
  onJoined: () => void;
  release: (() => void) | null;
}

let clientFactory: ClientFactory = (options) => new RealtimeClient(options);

/** For tests: build clients with a fake WebSocket and fetch. */
export function setRealtimeClientFactory(factory: ClientFactory): void {
  clientFactory = factory;
}

/**
 * The tab's realtime connection as Vue state: connection status, the events this tab
 * received, and the notices they raise. One RealtimeClient per signed-in session.
 */
export const useRealtimeStore = defineStore("realtime", () => {
  const status = ref<RealtimeStatus>("idle");
  /** Newest first. */
  const events = ref<StreamEvent[]>([]);
  const notices = ref<SessionNotice[]>([]);
  const termination = ref<Termination | null>(null);
  const client = shallowRef<RealtimeClient | null>(null);
  let ownSession: string | null = null;
  let subscribers = new Set<(event: StreamEvent) => void>();
  let memberships = new Set<StreamMembership>();

  const connectionLabel = computed(() => {
    switch (status.value) {
      case "live":
        return "Live";
      case "reconnecting":
        return "Reconnecting…";
      case "connecting":
        return "Connecting…";
      default:
        return "Offline";
    }
  });

  function handleEvent(event: StreamEvent): void {
    events.value = [event, ...events.value].slice(0, RECENT_EVENTS_LIMIT);
    if (event.type === "session.signed_in_elsewhere") {
      const { session, user_agent: userAgent, at } = event.data;
      if (typeof session === "string" && session !== ownSession) {
        const when = formatDateTime(typeof at === "string" ? at : event.at);
        const device = describeUserAgent(typeof userAgent === "string" ? userAgent : "");
        notices.value = [
          ...notices.value,
          {
            id: `${event.stream}#${event.seq}`,
            text: `Your account was signed in on another device (${device}, ${when}).`,
          },
        ];
      }
    }
    for (const subscriber of [...subscribers]) subscriber(event);
  }

  /** Opens the tab's socket for the given sign-in session (no-op if already open for it). */
  function start(session: string): void {
    if (client.value && ownSession === session) return;
    stop();
    ownSession = session;
    events.value = [];
    notices.value = [];
    termination.value = null;
    const created = clientFactory({
      onWarning: (warning) => {
        if (import.meta.env.DEV) console.warn("realtime:", warning);
      },
    });
    created.subscribe(handleEvent);
    created.onStatus((next) => {
      status.value = next;
    });
    created.onTerminated((ended) => {
      termination.value = ended;
    });
    created.onSubscribed((stream) => {
      for (const membership of [...memberships]) if (membership.stream === stream) membership.onJoined();
    });
    for (const membership of memberships) membership.release = created.subscribeStream(membership.stream);
    client.value = created;
    created.start();
    status.value = created.status;
  }

  function stop(): void {
    for (const membership of memberships) membership.release = null;
    client.value?.stop();
    client.value = null;
    ownSession = null;
    status.value = "idle";
  }

  function dismissNotice(id: string): void {
    notices.value = notices.value.filter((notice) => notice.id !== id);
  }

  /** Lets a page react to events (e.g. refresh a list); returns the unsubscribe function. */
  function subscribe(listener: (event: StreamEvent) => void): () => void {
    subscribers.add(listener);
    return () => subscribers.delete(listener);
  }

  /**
   * Receive a `group:<name>` stream (e.g. "group:scheduling.board") until the returned function is called.
   * `onJoined` runs each time the server confirms the subscription: first, and after every reconnect — the
   * moment to (re)load over REST what the stream's events will then keep up to date.
   */
  function joinStream(stream: string, onJoined: () => void = () => undefined): () => void {
    const membership: StreamMembership = { stream, onJoined, release: null };
    memberships.add(membership);
    if (client.value) membership.release = client.value.subscribeStream(stream);
    return () => {
      memberships.delete(membership);
      membership.release?.();
      membership.release = null;
    };
  }

  function $reset(): void {
    stop();
    events.value = [];
    notices.value = [];
    termination.value = null;
    subscribers = new Set();
    memberships = new Set();
  }

  return {
    status,
    events,
    notices,
    termination,
    connectionLabel,
    start,
    stop,
    dismissNotice,
    subscribe,
    joinStream,
    $reset,
  };
});
