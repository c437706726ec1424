/**
 * Webhook deliveries (docs/webhooks.md): `GET /api/v1/webhooks/deliveries[?subject=<id>&limit=]`
 * lists the caller's deliveries, newest first; `GET /api/v1/webhooks/deliveries/:id` shows one.
 * Only the issuer that submitted the job or prediction, and admins, see a delivery.
 */
import { z } from "zod";
import { WebhookDeliveryListSchema, WebhookDeliverySchema } from "../answers";
import { canSee, ownerScope } from "../auth/scope";
import type { Handler } from "../context";
import { d1 } from "../contracts/d1";
import { ApiError } from "../errors";
import { reply, validate } from "../http";
import { type DeliveryRow, deliveryView, listDeliveries } from "../webhooks/deliveries";

export const deliveriesQuerySchema = z.strictObject({
  subject: z.uuid({ error: "subject must be a prediction or job id" }).optional(),
  limit: z
    .string()
    .regex(/^\d+$/, "limit must be a whole number")
    .transform(Number)
    .pipe(z.number().int().min(1).max(1000))
    .optional(),
});

/** `GET /api/v1/webhooks/deliveries`. */
export const getDeliveries: Handler = async (request, env) => {
  const query = validate(deliveriesQuerySchema, { ...request.query });
  const rows = await d1("list webhook deliveries", () =>
    listDeliveries(env.DB, ownerScope(request.state), query.subject, query.limit ?? 100),
  );
  return reply(WebhookDeliveryListSchema, { deliveries: rows.map(deliveryView) });
};

/** `GET /api/v1/webhooks/deliveries/:id`. */
export const getDelivery: Handler = async (request, env) => {
  const id = String(request.params.id ?? "");
  const row = /^msg_[0-9a-f-]{36}$/.test(id)
    ? await d1("read webhook delivery", () =>
        env.DB.prepare("SELECT * FROM webhook_deliveries WHERE id = ?").bind(id).first<DeliveryRow>(),
      )
    : null;
  if (!row || !canSee(request.state, row.issuer)) {
    throw new ApiError("webhook_delivery_not_found", `no webhook delivery '${id.slice(0, 80)}'`);
  }
  return reply(WebhookDeliverySchema, deliveryView(row));
};
