/**
 * OpenAI-compatible moderation, `POST /v1/moderations` (docs/clients.md): the request and answer
 * shapes of OpenAI's Moderations API, so the official `openai` package (`moderations.create`) works
 * with `baseURL` at this service. Texts go to the toxicity model (or a named text model), images to
 * `DEFAULT_IMAGE_MODEL` (or a named image model) through the one classification core
 * (src/predictions/classify.ts over src/inference/score.ts); this adapter parses, calls the core, and shapes the answer.
 *
 * Categories are our labels as they are, plus OpenAI's category names where the meaning matches
 * (`OPENAI_CATEGORIES`). A label is over its line when its score reaches the model's calibrated
 * threshold (manifest `thresholds`); a multiclass model without thresholds (the imported image
 * model) decides by its top class. `flagged` is any flagged category.
 */
import * as z from "zod";
import { ModerationAnswerSchema, type ModerationResultSchema } from "../answers";
import type { Handler } from "../context";
import { MODEL_ID_RE } from "../contracts/manifest";
import { ApiError } from "../errors";
import { readJsonBody, reply, validate } from "../http";
import { MAX_IMAGE_BODY_BYTES } from "../image/decode";
import { flaggedLabels } from "../inference/network";
import {
  type Classification,
  checkTextLimits,
  classifyImages,
  classifyTexts,
  type ImageSource,
} from "../predictions/classify";

/** The text model moderation uses unless the request names another. */
export const MODERATION_TEXT_MODEL = "toxicity";
/** OpenAI's model names, all served by our default models. */
const OPENAI_MODELS = new Set([
  "omni-moderation-latest",
  "omni-moderation-2024-09-26",
  "text-moderation-latest",
  "text-moderation-stable",
  "text-moderation-007",
]);
/** At most this many images in one request (each decoded and scored in full). */
export const MAX_MODERATION_IMAGES = 1;

/**
 * Our labels → OpenAI's categories with the same meaning (docs/clients.md gives the reasons). A
 * category's score is the highest (multi-label text model) or the summed (multiclass image model)
 * score of its labels; it is flagged when any of its labels is. Labels not listed here (`toxic`,
 * `severe_toxic`, `obscene`, `Sexy`) have no OpenAI counterpart and keep only their own name;
 * the benign image classes `Drawing` and `Neutral` are not categories at all.
 */
export const OPENAI_CATEGORIES: Readonly<Record<string, readonly string[]>> = {
  identity_hate: ["hate"],
  insult: ["harassment"],
  threat: ["harassment/threatening", "violence"],
  Porn: ["sexual"],
  Hentai: ["sexual"],
};
/** Image classes that are no moderation category. */
const BENIGN_LABELS = new Set(["Drawing", "Neutral"]);

const textPart = z.strictObject({ type: z.literal("text"), text: z.string() });
const imagePart = z.strictObject({
  type: z.literal("image_url"),
  image_url: z.strictObject({ url: z.string(), detail: z.string().optional() }),
});

/** Body of `POST /v1/moderations`. */
export const moderationRequestSchema = z.strictObject({
  input: z.union([
    z.string(),
    z.array(z.string()).min(1, "input must hold at least one string"),
    z.array(z.discriminatedUnion("type", [textPart, imagePart])).min(1, "input must hold at least one part"),
  ]),
  model: z.string().max(128).optional(),
});

type Part = z.infer<typeof textPart> | z.infer<typeof imagePart>;

/** Which of our models serve `model`: OpenAI's names and none → the defaults; else our model id. */
function modelsOf(model: string | undefined): { text?: string; image?: string } {
  if (model === undefined || OPENAI_MODELS.has(model)) return {};
  if (!MODEL_ID_RE.test(model)) {
    throw new ApiError("model_not_found", `no model named '${model.slice(0, 80)}'`, {
      extensions: { hint: `use one of ${[...OPENAI_MODELS].join(", ")} or one of our model ids` },
    });
  }
  // A named model serves the input kind it takes; the core refuses the other kind (400).
  return { text: model, image: model };
}

/** One moderated input: its texts and images, answered as one result. */
interface Item {
  texts: string[];
  images: ImageSource[];
}

function itemsOf(input: z.infer<typeof moderationRequestSchema>["input"]): Item[] {
  if (typeof input === "string") return [{ texts: [input], images: [] }];
  if (input.every((x): x is string => typeof x === "string")) {
    return input.map((text) => ({ texts: [text], images: [] }));
  }
  // An array of parts is one multimodal input (one result), as OpenAI's omni models answer it.
  const parts = input as Part[];
  const item: Item = { texts: [], images: [] };
  parts.forEach((part, i) => {
    if (part.type === "text") item.texts.push(part.text);
    else {
      if (!/^data:/i.test(part.image_url.url)) {
        throw new ApiError("invalid_request", `input.${i}.image_url.url must be a data: URL`, {
          extensions: {
            errors: [
              { path: `input.${i}.image_url.url`, message: "only data: URLs (base64); nothing is fetched" },
            ],
          },
        });
      }
      item.images.push({ base64: part.image_url.url });
    }
  });
  if (item.images.length > MAX_MODERATION_IMAGES) {
    throw new ApiError(
      "batch_too_large",
      `${item.images.length} images in one request; the limit is ${MAX_MODERATION_IMAGES}`,
      { extensions: { limit: MAX_MODERATION_IMAGES } },
    );
  }
  return [item];
}

/** One OpenAI result. */
type ModerationResult = z.infer<typeof ModerationResultSchema>;

/** Each label's flag: its threshold when the model declares one, else (multiclass) its top class. */
function labelFlags(c: Classification, scores: ArrayLike<number>): Set<string> {
  if (c.thresholds) return new Set(flaggedLabels(c.labels, scores, c.thresholds));
  let best = 0;
  for (let i = 1; i < c.labels.length; i++) if ((scores[i] as number) > (scores[best] as number)) best = i;
  return new Set([c.labels[best] as string]);
}

/**
 * Adds one scored input (a text or an image) to a result: each label under its own name and under
 * its OpenAI categories. Across inputs a category keeps its highest score and is flagged if any is.
 */
function addScores(
  result: ModerationResult,
  c: Classification,
  scores: ArrayLike<number>,
  kind: "text" | "image",
): void {
  const flags = labelFlags(c, scores);
  const perInput = new Map<string, { score: number; flagged: boolean }>();
  const add = (name: string, score: number, flagged: boolean, sum: boolean) => {
    const seen = perInput.get(name);
    perInput.set(name, {
      score: seen ? (sum ? seen.score + score : Math.max(seen.score, score)) : score,
      flagged: (seen?.flagged ?? false) || flagged,
    });
  };
  c.labels.forEach((label, i) => {
    if (BENIGN_LABELS.has(label)) return;
    const score = scores[i] as number;
    add(label, score, flags.has(label), false);
    // A multiclass model's classes are exclusive: the probability of a category is their sum.
    for (const category of OPENAI_CATEGORIES[label] ?? [])
      add(category, score, flags.has(label), !c.thresholds);
  });
  for (const [name, { score, flagged }] of perInput) {
    result.category_scores[name] = Math.max(result.category_scores[name] ?? 0, Math.min(1, score));
    result.categories[name] = (result.categories[name] ?? false) || flagged;
    const types = result.category_applied_input_types[name] ?? [];
    if (!types.includes(kind)) types.push(kind);
    result.category_applied_input_types[name] = types;
  }
  result.flagged = Object.values(result.categories).some(Boolean);
}

/**
 * `POST /v1/moderations` `{input, model?}` → `{id, model, results: [{flagged, categories,
 * category_scores, category_applied_input_types}]}` (plus `models`: the id and version of each model
 * used). A string or each string of an array is one result; an array of text/image parts is one.
 */
export const moderations: Handler = async (request, env, ctx) => {
  const { state } = request;
  const { config } = state;
  const body = validate(
    moderationRequestSchema,
    await readJsonBody(request, Math.max(config.MAX_BODY_BYTES, MAX_IMAGE_BODY_BYTES)),
  );
  const choice = modelsOf(body.model);
  const items = itemsOf(body.input);
  const texts = items.flatMap((item) => item.texts);
  const images = items.flatMap((item) => item.images);
  const byText: number[] = items.flatMap((item, i) => item.texts.map(() => i));
  if (texts.length > 0) checkTextLimits(texts, state, (i) => (items.length > 1 ? `input.${i}` : "input"));
  if (texts.length === 0 && images.length === 0) {
    throw new ApiError("invalid_request", "input holds no text and no image", {
      extensions: { errors: [{ path: "input", message: "at least one text or image part is required" }] },
    });
  }
  // Images first: every image is decoded before any model is loaded (bad input costs no model).
  const imageScores =
    images.length > 0 ? await classifyImages(env, ctx, state, { model: choice.image }, images) : undefined;
  const textScores =
    texts.length > 0
      ? await classifyTexts(env, ctx, state, { model: choice.text ?? MODERATION_TEXT_MODEL }, texts)
      : undefined;
  const results: ModerationResult[] = items.map(() => ({
    flagged: false,
    categories: {},
    category_scores: {},
    category_applied_input_types: {},
  }));
  if (textScores) {
    textScores.scores.forEach((s, t) => {
      addScores(results[byText[t] as number] as ModerationResult, textScores, s, "text");
    });
  }
  if (imageScores) {
    // Only an array of parts carries images, and it is one item.
    for (const s of imageScores.scores) addScores(results[0] as ModerationResult, imageScores, s, "image");
  }
  const models = [textScores?.model, imageScores?.model].filter((m) => m !== undefined);
  return reply(ModerationAnswerSchema, {
    id: `modr-${state.requestId}`,
    model: models.map((m) => m.id).join("+"),
    models,
    results,
  });
};
