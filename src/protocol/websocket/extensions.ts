/**
 * permessage-deflate negotiation (RFC 7692 §7): parse the client's offers, answer with the
 * parameters both sides will use.
 */

/** Server-side preferences for permessage-deflate. */
export interface DeflateOptions {
  /** Reset the server's compression context after every message (saves memory per connection). */
  serverNoContextTakeover?: boolean;
  /** Ask the client to reset its context after every message. */
  clientNoContextTakeover?: boolean;
  /** Largest LZ77 window (as a power of two, 9–15) the server compresses with. @default 15 */
  serverMaxWindowBits?: number;
  /** Largest window the client may compress with, when the client allows us to say. @default 15 */
  clientMaxWindowBits?: number;
}

/** The parameters a connection uses after negotiation. */
export interface DeflateParams {
  serverNoContextTakeover: boolean;
  clientNoContextTakeover: boolean;
  serverMaxWindowBits: number;
  clientMaxWindowBits: number;
}

/** One extension offer: its name and parameters (value `true` for a parameter without one). */
export interface ExtensionOffer {
  name: string;
  params: Map<string, string | true>;
}

/** Parse `Sec-WebSocket-Extensions` (RFC 6455 §9.1). Returns null when it does not parse. */
export function parseExtensions(header: string): ExtensionOffer[] | null {
  const offers: ExtensionOffer[] = [];
  for (const raw of header.split(",")) {
    const parts = raw.split(";").map((p) => p.trim());
    const name = parts.shift()!.toLowerCase();
    if (name === "") continue;
    const params = new Map<string, string | true>();
    for (const part of parts) {
      if (part === "") continue;
      const eq = part.indexOf("=");
      const key = (eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase();
      let value: string | true = eq < 0 ? true : part.slice(eq + 1).trim();
      if (typeof value === "string" && value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
      // §7.1: a parameter given twice makes the offer invalid.
      if (params.has(key)) return null;
      params.set(key, value);
    }
    offers.push({ name, params });
  }
  return offers;
}

function windowBits(value: string | true | undefined, required: boolean): number | undefined | null {
  if (value === undefined) return undefined;
  if (value === true) return required ? null : 15;
  if (!/^\d+$/.test(value)) return null;
  const bits = Number(value);
  return bits >= 8 && bits <= 15 ? bits : null;
}

/**
 * Accept the first permessage-deflate offer we can honour. Returns the parameters and the
 * response header value, or null to go without compression.
 */
export function negotiateDeflate(header: string | undefined, options: DeflateOptions): { params: DeflateParams; response: string } | null {
  if (header === undefined) return null;
  const offers = parseExtensions(header);
  if (offers === null) return null;
  const serverMax = options.serverMaxWindowBits ?? 15;
  const clientMax = options.clientMaxWindowBits ?? 15;
  for (const offer of offers) {
    if (offer.name !== "permessage-deflate") continue;
    const known = ["server_no_context_takeover", "client_no_context_takeover", "server_max_window_bits", "client_max_window_bits"];
    if ([...offer.params.keys()].some((k) => !known.includes(k))) continue;
    const snct = offer.params.get("server_no_context_takeover");
    const cnct = offer.params.get("client_no_context_takeover");
    if ((snct !== undefined && snct !== true) || (cnct !== undefined && cnct !== true)) continue;
    const offeredServerBits = windowBits(offer.params.get("server_max_window_bits"), true);
    const offeredClientBits = windowBits(offer.params.get("client_max_window_bits"), false);
    if (offeredServerBits === null || offeredClientBits === null) continue;
    // zlib cannot produce a raw deflate stream with an 8-bit window; decline such an offer.
    if (offeredServerBits === 8) continue;
    const params: DeflateParams = {
      serverNoContextTakeover: snct === true || (options.serverNoContextTakeover ?? false),
      clientNoContextTakeover: cnct === true || (options.clientNoContextTakeover ?? false),
      serverMaxWindowBits: Math.min(offeredServerBits ?? 15, serverMax),
      // Without client_max_window_bits in the offer the client may use 15, and we must not say otherwise.
      clientMaxWindowBits: offeredClientBits === undefined ? 15 : Math.min(offeredClientBits, clientMax),
    };
    let response = "permessage-deflate";
    if (params.serverNoContextTakeover) response += "; server_no_context_takeover";
    if (params.clientNoContextTakeover) response += "; client_no_context_takeover";
    if (offeredServerBits !== undefined || params.serverMaxWindowBits < 15) response += `; server_max_window_bits=${params.serverMaxWindowBits}`;
    if (offeredClientBits !== undefined && (offer.params.get("client_max_window_bits") !== true || params.clientMaxWindowBits < 15)) {
      response += `; client_max_window_bits=${params.clientMaxWindowBits}`;
    }
    return { params, response };
  }
  return null;
}
