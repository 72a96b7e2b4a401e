import type { StreamEvent } from "../api/types";
import type { WebSocketLike } from "../realtime/RealtimeClient";

/** A WebSocket double driven by the test, playing the server's side. */
export class FakeSocket implements WebSocketLike {
  readyState = 0;
  onopen: ((event: Event) => void) | null = null;
  onmessage: ((event: MessageEvent) => void) | null = null;
  onclose: ((event: CloseEvent) => void) | null = null;
  onerror: ((event: Event) => void) | null = null;
  readonly sent: unknown[] = [];
  closedByClient: { code?: number; reason?: string } | null = null;

  constructor(readonly url: string) {}

  send(data: string): void {
    this.sent.push(JSON.parse(data));
  }

  close(code?: number, reason?: string): void {
    this.readyState = 3;
    this.closedByClient = { code, reason };
  }

  // --- what the server does
  open(): void {
    this.readyState = 1;
    this.onopen?.({ type: "open" } as Event);
  }

  receive(frame: unknown): void {
    this.onmessage?.({ data: JSON.stringify(frame) } as MessageEvent);
  }

  hello(streams: Record<string, number>): void {
    this.receive({ kind: "hello", streams });
  }

  push(event: StreamEvent): void {
    this.receive({ kind: "event", ...event });
  }

  serverClose(code: number): void {
    this.readyState = 3;
    this.onclose?.({ code, reason: "", wasClean: code !== 1006 } as CloseEvent);
  }
}
