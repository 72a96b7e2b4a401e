import { createPinia } from "pinia";
import { createApp, type App as VueApp } from "vue";
import { createMemoryHistory, type Router } from "vue-router";

import App from "../App.vue";
import { setFetch } from "../api/client";
import { RealtimeClient } from "../realtime/RealtimeClient";
import { createAppRouter } from "../router";
import { setRealtimeClientFactory } from "../stores/realtime";
import type { FakeBackend } from "./backend";
import { FakeSocket } from "./FakeSocket";

/** Lets fetches, promise chains and Vue's render queue finish. */
export async function settle(rounds = 8): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((resolve) => setTimeout(resolve, 0));
}

export interface MountedApp {
  app: VueApp;
  router: Router;
  root: HTMLElement;
  sockets: FakeSocket[];
  socket(): FakeSocket;
  unmount(): void;
}

/** Mounts the whole app (router, stores, realtime) against a FakeBackend, at `path`. */
export async function mountApp(path: string, backend: FakeBackend): Promise<MountedApp> {
  setFetch(backend.fetch);
  const sockets: FakeSocket[] = [];
  setRealtimeClientFactory(
    (options) =>
      new RealtimeClient({
        ...options,
        url: "ws://consulta.test/ws/v1/events/",
        WebSocket: class extends FakeSocket {
          constructor(url: string) {
            super(url);
            sockets.push(this);
          }
        },
        fetch: backend.fetch,
        random: () => 0,
      }),
  );

  const app = createApp(App);
  app.use(createPinia());
  const router = createAppRouter(createMemoryHistory());
  app.use(router);
  await router.push(path);
  const root = document.createElement("div");
  document.body.append(root);
  app.mount(root);
  await settle();

  return {
    app,
    router,
    root,
    sockets,
    socket() {
      const last = sockets.at(-1);
      if (!last) throw new Error("no socket opened");
      return last;
    },
    unmount() {
      app.unmount();
      root.remove();
    },
  };
}

/** Waits until `condition` holds (lazy route chunks load in their own time), or fails after `timeoutMs`. */
export async function waitFor(condition: () => boolean, what = "condition", timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  await settle(2);
}
