/**
 * The broker interface: how rooms reach members on other processes and machines. A broker moves
 * opaque payloads on named channels; rooms put their own envelope in them. Implementations:
 * in-memory (one process, for tests), Redis pub/sub (`catzilla/redis`); another engine (NATS,
 * a cluster's IPC) implements these four calls and passes test/contracts/broker.contract.ts.
 */
export interface Broker {
  /** Send a payload to every subscriber of the channel, on every process (the sender's included). */
  publish(channel: string, payload: Uint8Array): void | Promise<void>;
  /** Receive the channel's payloads until `unsubscribe`. One handler per channel. */
  subscribe(channel: string, onMessage: (payload: Uint8Array) => void): void | Promise<void>;
  unsubscribe(channel: string): void | Promise<void>;
  /** Stop: no more deliveries, connections closed. */
  close(): Promise<void>;
}

/**
 * In-memory brokers on a shared bus: several apps in one process behave like several servers
 * (tests, or rooms shared by apps in one process). It is the reference implementation of the
 * contract; processes and machines need a networked broker.
 */
export class MemoryBus {
  private readonly members = new Set<BusBroker>();

  /** A broker attached to this bus. */
  broker(): Broker {
    const broker = new BusBroker(this.members);
    this.members.add(broker);
    return broker;
  }
}

class BusBroker implements Broker {
  readonly channels = new Map<string, (payload: Uint8Array) => void>();
  constructor(private readonly members: Set<BusBroker>) {}

  publish(channel: string, payload: Uint8Array): void {
    for (const member of this.members) {
      const handler = member.channels.get(channel);
      if (handler !== undefined) queueMicrotask(() => member.channels.get(channel) === handler && handler(payload));
    }
  }

  subscribe(channel: string, onMessage: (payload: Uint8Array) => void): void {
    this.channels.set(channel, onMessage);
  }

  unsubscribe(channel: string): void {
    this.channels.delete(channel);
  }

  async close(): Promise<void> {
    this.channels.clear();
    this.members.delete(this);
  }
}
