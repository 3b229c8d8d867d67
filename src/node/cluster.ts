import cluster, { type Worker } from "node:cluster";
import { ChannelLogs, type Broker, type LogEntry, type LogLimits } from "../rooms/broker.js";
import type { Logger } from "../options.js";

/** IPC messages between the primary and the workers. */
type HubMessage =
  | { cz: "sub"; channel: string }
  | { cz: "unsub"; channel: string }
  | { cz: "pub"; channel: string; payload: Uint8Array }
  | { cz: "msg"; channel: string; payload: Uint8Array; id?: number }
  | { cz: "append"; seq: number; channel: string; payload: Uint8Array; limits: LogLimits }
  | { cz: "appended"; seq: number; id: number }
  | { cz: "read"; seq: number; channel: string; afterId: number; limits: LogLimits }
  | { cz: "entries"; seq: number; lastId: number; entries: LogEntry[] }
  | { cz: "listening"; port: number; host: string; engine: "node" | "native" };

/**
 * Where a worker forked after the first listens when the app asked for port 0: the first
 * worker's port. Workers on node:cluster share the primary's socket and need it not; workers on
 * the native HTTP engine each bind the port (SO_REUSEPORT) and must agree on it.
 */
export const WORKER_PORT_ENV = "CATZILLA_WORKER_PORT";

function isHubMessage(message: unknown): message is HubMessage {
  return typeof message === "object" && message !== null && "cz" in message;
}

/**
 * The primary of `listen({ workers })`: forks the workers (they run the same script and share
 * the port), relays room broadcasts between them over IPC, restarts a worker that dies, and
 * stops them all on `stop()`. It also keeps the room logs of rooms with history, so that ids are
 * the same on every worker.
 */
export class ClusterPrimary {
  private readonly subscriptions = new Map<Worker, Set<string>>();
  private readonly logs = new ChannelLogs();
  private stopping = false;

  constructor(private readonly count: number, private readonly logger: Logger) {
    // Structured clone over IPC: payloads travel as bytes, not as JSON arrays of numbers.
    cluster.setupPrimary({ serialization: "advanced" });
  }

  /** The environment of the workers forked after the first. */
  private env: Record<string, string> = {};

  /**
   * Fork the workers: the first alone (its port is the others' when the app asked for port 0),
   * then the rest; resolves with the address once every one of them listens.
   */
  async start(): Promise<{ port: number; host: string }> {
    const first = await this.fork();
    if (first.engine === "native") this.env = { [WORKER_PORT_ENV]: String(first.port) };
    const listening: Array<Promise<{ port: number; host: string }>> = [];
    for (let i = 1; i < this.count; i++) listening.push(this.fork());
    await Promise.all(listening);
    return { port: first.port, host: first.host };
  }

  /** Stop every worker (SIGTERM: each closes gracefully) and wait for them to exit. */
  async stop(): Promise<void> {
    this.stopping = true;
    const exits = [...this.subscriptions.keys()].map((worker) => new Promise<void>((resolve) => {
      if (worker.isDead()) return resolve();
      worker.once("exit", () => resolve());
      worker.process.kill("SIGTERM");
    }));
    await Promise.all(exits);
  }

  /** Every worker with the channel gets it, the sender too (rooms skip their own plain publishes). */
  private relay(channel: string, payload: Uint8Array, id: number | undefined): void {
    for (const [worker, channels] of this.subscriptions) {
      if (channels.has(channel) && worker.isConnected()) worker.send({ cz: "msg", channel, payload, id } satisfies HubMessage);
    }
  }

  private fork(): Promise<{ port: number; host: string; engine: "node" | "native" }> {
    const worker = cluster.fork(this.env);
    this.subscriptions.set(worker, new Set());
    let listened = false;
    return new Promise((resolve, reject) => {
      worker.on("message", (message: unknown) => {
        if (!isHubMessage(message)) return;
        switch (message.cz) {
          case "listening":
            listened = true;
            resolve({ port: message.port, host: message.host, engine: message.engine });
            return;
          case "sub":
            this.subscriptions.get(worker)?.add(message.channel);
            return;
          case "unsub":
            this.subscriptions.get(worker)?.delete(message.channel);
            return;
          case "pub":
            this.relay(message.channel, message.payload, undefined);
            return;
          case "append": {
            const id = this.logs.append(message.channel, message.payload, message.limits, Date.now());
            this.relay(message.channel, message.payload, id);
            if (worker.isConnected()) worker.send({ cz: "appended", seq: message.seq, id } satisfies HubMessage);
            return;
          }
          case "read": {
            const { lastId, entries } = this.logs.read(message.channel, message.afterId, message.limits, Date.now());
            if (worker.isConnected()) worker.send({ cz: "entries", seq: message.seq, lastId, entries } satisfies HubMessage);
            return;
          }
        }
      });
      worker.once("exit", (code, signal) => {
        this.subscriptions.delete(worker);
        reject(new Error(`Worker ${worker.process.pid} exited (${signal ?? code}) before listening`));
        // A worker that dies after it served is replaced; one that never got to listen is not
        // (it would fail the same way again).
        if (!this.stopping && listened) {
          this.logger.error(`catzilla: worker ${worker.process.pid} exited (${signal ?? code}); starting another`);
          void this.fork().catch((error: unknown) => this.logger.error("catzilla: a replacement worker failed", error));
        }
      });
    });
  }
}

/** In a worker: tell the primary where we listen, and on which HTTP engine. */
export function announceListening(port: number, host: string, engine: "node" | "native"): void {
  process.send?.({ cz: "listening", port, host, engine } satisfies HubMessage);
}

/** The broker of a worker: room broadcasts go to the other workers through the primary. */
export function clusterBroker(): Broker {
  const handlers = new Map<string, (payload: Uint8Array, id?: number) => void>();
  const waiting = new Map<number, { resolve(message: HubMessage): void; reject(error: Error): void }>();
  let seq = 0;
  const onMessage = (message: unknown): void => {
    if (!isHubMessage(message)) return;
    if (message.cz === "msg") handlers.get(message.channel)?.(message.payload, message.id);
    else if (message.cz === "appended" || message.cz === "entries") {
      waiting.get(message.seq)?.resolve(message);
      waiting.delete(message.seq);
    }
  };
  process.on("message", onMessage);
  const ask = (request: HubMessage & { seq: number }): Promise<HubMessage> => new Promise((resolve, reject) => {
    if (process.send === undefined || !process.connected) return reject(new Error("The cluster primary is gone"));
    waiting.set(request.seq, { resolve, reject });
    process.send(request);
  });
  return {
    log: {
      async append(channel, payload, limits) {
        const reply = await ask({ cz: "append", seq: ++seq, channel, payload, limits });
        return reply.cz === "appended" ? reply.id : 0;
      },
      async read(channel, afterId, limits) {
        const reply = await ask({ cz: "read", seq: ++seq, channel, afterId, limits });
        return reply.cz === "entries" ? { lastId: reply.lastId, entries: reply.entries } : { lastId: 0, entries: [] };
      },
    },
    publish(channel, payload) {
      process.send?.({ cz: "pub", channel, payload } satisfies HubMessage);
    },
    subscribe(channel, handler) {
      handlers.set(channel, handler);
      process.send?.({ cz: "sub", channel } satisfies HubMessage);
    },
    unsubscribe(channel) {
      handlers.delete(channel);
      process.send?.({ cz: "unsub", channel } satisfies HubMessage);
    },
    async close() {
      handlers.clear();
      for (const request of waiting.values()) request.reject(new Error("The cluster broker closed"));
      waiting.clear();
      process.off("message", onMessage);
    },
  };
}

export { cluster };
