import { hash } from 'node:crypto';

/**
 * Several durable events of one type carried by one stream message: a frame. Each event in it
 * is a complete signed envelope, opened and checked on its own exactly as if it had come alone;
 * the frame only saves the stream its per-message work (a publish and its acknowledgement, a
 * delivery and its acknowledgement, each a NATS message with its TLS record) for the events a
 * relay sends together. A frame is marked by the {@link FRAME_HEADER} header, whose value is
 * the number of events; its body is each event's length (4 bytes, big-endian) followed by its
 * bytes. A message without the header is one event, as before frames existed.
 */
export const FRAME_HEADER = 'Portcullis-Frame';

/** The most events one frame carries. */
export const MAX_FRAME_EVENTS = 256;

/**
 * The most bytes of events one frame carries: half of NATS's default `max_payload` (1 MiB),
 * or less where the server accepts less (the stream takes half of the server's figure). An
 * event larger than the bound goes alone.
 */
export const MAX_FRAME_BYTES = 512 * 1024;

const LENGTH_BYTES = 4;

/** Packs events (at least two, within the bounds) into a frame's body. */
export function encodeFrame(events: readonly Uint8Array[]): Buffer {
  if (events.length < 2 || events.length > MAX_FRAME_EVENTS) {
    throw new RangeError(`a frame carries 2 to ${MAX_FRAME_EVENTS} events`);
  }
  const size = events.reduce((sum, event) => sum + LENGTH_BYTES + event.length, 0);
  const body = Buffer.allocUnsafe(size);
  let at = 0;
  for (const event of events) {
    body.writeUInt32BE(event.length, at);
    body.set(event, at + LENGTH_BYTES);
    at += LENGTH_BYTES + event.length;
  }
  return body;
}

/**
 * The events of a frame whose header announced `declared` of them, or undefined when the
 * header or the body is malformed: a count that is not a plain number within the bounds, a
 * length running past the end, an empty event, bytes left over, or a count that differs.
 */
export function readFrame(body: Uint8Array, declared: string): Buffer[] | undefined {
  if (!/^[1-9][0-9]{0,3}$/.test(declared)) return undefined;
  const count = Number(declared);
  if (count < 2 || count > MAX_FRAME_EVENTS) return undefined;
  const bytes = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const events: Buffer[] = [];
  let at = 0;
  while (at < bytes.length) {
    if (events.length === count || bytes.length - at < LENGTH_BYTES) return undefined;
    const length = bytes.readUInt32BE(at);
    const start = at + LENGTH_BYTES;
    if (length === 0 || length > bytes.length - start) return undefined;
    events.push(bytes.subarray(start, start + length));
    at = start + length;
  }
  return events.length === count ? events : undefined;
}

/**
 * Splits events queued for one subject into what goes out together, in order: runs of at
 * most {@link MAX_FRAME_EVENTS} events and `maxBytes` bytes. A run of one is sent as a plain
 * message.
 */
export function frameRuns<T extends { readonly data: Uint8Array }>(
  queued: readonly T[],
  maxBytes = MAX_FRAME_BYTES,
): T[][] {
  const runs: T[][] = [];
  let run: T[] = [];
  let bytes = 0;
  for (const item of queued) {
    const size = LENGTH_BYTES + item.data.length;
    if (run.length > 0 && (run.length === MAX_FRAME_EVENTS || bytes + size > maxBytes)) {
      runs.push(run);
      run = [];
      bytes = 0;
    }
    run.push(item);
    bytes += size;
  }
  if (run.length > 0) runs.push(run);
  return runs;
}

/**
 * The stream message id of a frame: derived from its events' ids, so a frame sent again as it
 * was is dropped by the stream's duplicate window. A frame of other events (after a retry
 * grouped them differently) is a new message; the receivers' inboxes drop its repeats.
 */
export function frameMessageId(eventIds: readonly string[]): string {
  return `frame-${hash('sha256', eventIds.join('\n'), 'base64url')}`;
}
