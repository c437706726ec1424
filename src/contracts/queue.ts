/** The queue message contract between producers (jobs, async predictions, sweeps) and the consumer. */
import * as z from "zod";

/** Body of a queue message. */
export const queueMessageSchema = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("job"), id: z.uuid() }),
  z.strictObject({ kind: z.literal("prediction"), id: z.uuid(), key: z.string().min(1) }),
  // A webhook delivery attempt (src/webhooks/deliveries.ts), sent on the predictions queue.
  z.strictObject({ kind: z.literal("webhook"), id: z.string().regex(/^msg_[0-9a-f-]{36}$/) }),
]);

/** A queue message body. */
export type QueueMessageBody = z.infer<typeof queueMessageSchema>;
