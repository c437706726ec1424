/**
 * Reproducible synthetic RGB images for parity checks of imported image models: the same
 * `(seed, index, size)` gives the same pixels in Node (the importer's reference script, the bench)
 * and in workerd (the tests), so references can be recomputed anywhere without storing pixels.
 *
 * Three styles, by `index % 3`: "photo" (a smooth two-colour gradient, soft-edged ellipses and
 * rectangles in random colours, noise), "drawing" (a light flat background, flat shapes with dark
 * outlines, no noise) and "skin" (large soft shaded ellipses in skin-like tones over a gradient,
 * noise) — not photographs, but varied enough to spread a moderation model's scores over classes.
 */

import { createRng } from "../training/prng";
import type { DecodedImage } from "./pixels";

/** Version of the generator: change it when the pixels change (references record it). */
export const SYNTHETIC_IMAGE_VERSION = 1;

const SKIN: [number, number, number][] = [
  [224, 172, 140],
  [198, 134, 103],
  [141, 85, 60],
  [241, 194, 167],
];

/** The `index`-th synthetic `width × height` RGB image of `seed` (decoded form: 3 channels, 8-bit). */
export function syntheticImage(seed: number, index: number, width: number, height: number): DecodedImage {
  const rng = createRng((seed * 7919 + index * 104_729) >>> 0);
  const style = index % 3;
  const skinShare = style === 2 ? 0.85 : 0.2;
  const color = (): [number, number, number] =>
    rng.next() < skinShare
      ? ((SKIN[rng.nextInt(SKIN.length)] as [number, number, number]).map((v) =>
          Math.max(0, Math.min(255, v + rng.nextInt(31) - 15)),
        ) as [number, number, number])
      : [rng.nextInt(256), rng.nextInt(256), rng.nextInt(256)];
  const data = new Uint8Array(width * height * 3);
  const px = new Float32Array(width * height * 3);
  // Background: a linear gradient between two colours along a random direction.
  const light = (): [number, number, number] => [
    200 + rng.nextInt(56),
    200 + rng.nextInt(56),
    200 + rng.nextInt(56),
  ];
  const a = style === 1 ? light() : color();
  const b = style === 1 ? light() : color();
  const angle = rng.next() * Math.PI * 2;
  const dx = Math.cos(angle);
  const dy = Math.sin(angle);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const t = Math.min(1, Math.max(0, 0.5 + ((x / width - 0.5) * dx + (y / height - 0.5) * dy)));
      for (let c = 0; c < 3; c++)
        px[(y * width + x) * 3 + c] = (a[c] as number) * (1 - t) + (b[c] as number) * t;
    }
  // Shapes: soft-edged ellipses and rectangles, alpha-blended.
  const shapes = 2 + rng.nextInt(6);
  for (let s = 0; s < shapes; s++) {
    const col = color();
    const big = style === 2 ? 0.2 : 0.05;
    const cx = rng.next() * width;
    const cy = rng.next() * height;
    const rx = (big + rng.next() * 0.4) * width;
    const ry = (big + rng.next() * 0.4) * height;
    const ellipse = style === 2 || rng.next() < 0.6;
    const opacity = style === 1 ? 1 : 0.5 + rng.next() * 0.5;
    // Drawings: a hard edge with a dark outline; others: a soft edge (skin: shaded towards the rim).
    const outline = style === 1 ? 2 + rng.nextInt(3) : 0;
    const x0 = Math.max(0, Math.floor(cx - rx - 2));
    const x1 = Math.min(width, Math.ceil(cx + rx + 2));
    const y0 = Math.max(0, Math.floor(cy - ry - 2));
    const y1 = Math.min(height, Math.ceil(cy + ry + 2));
    for (let y = y0; y < y1; y++)
      for (let x = x0; x < x1; x++) {
        const u = (x + 0.5 - cx) / rx;
        const v = (y + 0.5 - cy) / ry;
        const d = ellipse ? Math.sqrt(u * u + v * v) : Math.max(Math.abs(u), Math.abs(v));
        const p = (y * width + x) * 3;
        if (style === 1) {
          const inside = (1 - d) * Math.min(rx, ry);
          if (inside < 0) continue;
          const ink = inside < outline ? 20 : -1;
          for (let c = 0; c < 3; c++) px[p + c] = ink >= 0 ? ink : (col[c] as number);
          continue;
        }
        const edge = Math.min(1, Math.max(0, (1 - d) * Math.min(rx, ry) * 0.5));
        const alpha = edge * opacity;
        if (alpha <= 0) continue;
        const shade = style === 2 ? 1 - 0.35 * d * d : 1;
        for (let c = 0; c < 3; c++)
          px[p + c] = (px[p + c] as number) * (1 - alpha) + (col[c] as number) * shade * alpha;
      }
  }
  // Noise: ±amp per pixel and channel.
  const amp = style === 1 ? 0 : rng.next() * 24;
  for (let i = 0; i < px.length; i++) {
    const v = (px[i] as number) + (rng.next() - 0.5) * 2 * amp;
    data[i] = Math.max(0, Math.min(255, Math.round(v)));
  }
  return { format: "png", width, height, channels: 3, data };
}
