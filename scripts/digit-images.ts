/**
 * Synthetic digit images for the digits model's reference file, the tests and the bench: digits
 * drawn from hand-written stroke paths (no dataset pixels), white on black like MNIST, encoded as
 * PNG (fast-png) or JPEG (jpeg-js). Node only (jpeg-js's encoder needs `Buffer`).
 */
import { encode as encodePng } from "fast-png";
import { encode as encodeJpeg } from "jpeg-js";

type Point = [number, number];

function arc(cx: number, cy: number, rx: number, ry: number, from: number, to: number, steps = 24): Point[] {
  return Array.from({ length: steps + 1 }, (_, i) => {
    const t = ((from + ((to - from) * i) / steps) * Math.PI) / 180;
    return [cx + rx * Math.cos(t), cy + ry * Math.sin(t)] as Point;
  });
}

/** Stroke paths per digit in a unit box (x right, y down). */
const STROKES: Record<string, Point[][]> = {
  "0": [arc(0.5, 0.5, 0.3, 0.45, 0, 360, 48)],
  "1": [
    [
      [0.35, 0.2],
      [0.55, 0.05],
      [0.55, 0.95],
    ],
  ],
  "2": [
    [...arc(0.5, 0.3, 0.3, 0.25, 190, 360), ...arc(0.5, 0.3, 0.3, 0.25, 0, 50, 6), [0.2, 0.95], [0.85, 0.95]],
  ],
  "3": [arc(0.5, 0.28, 0.28, 0.23, 200, 450), arc(0.5, 0.72, 0.32, 0.23, 270, 520)],
  "4": [
    [
      [0.65, 0.95],
      [0.65, 0.05],
      [0.12, 0.65],
      [0.88, 0.65],
    ],
  ],
  "7": [
    [
      [0.15, 0.08],
      [0.85, 0.08],
      [0.4, 0.95],
    ],
  ],
};

/** The digits that have stroke paths. */
export const DRAWN_DIGITS = Object.keys(STROKES);

function segmentDistance(px: number, py: number, a: Point, b: Point): number {
  const [ax, ay] = a;
  const dx = b[0] - ax;
  const dy = b[1] - ay;
  const len2 = dx * dx + dy * dy;
  const t = len2 === 0 ? 0 : Math.max(0, Math.min(1, ((px - ax) * dx + (py - ay) * dy) / len2));
  return Math.hypot(px - (ax + t * dx), py - (ay + t * dy));
}

/**
 * Draws `digit` white on black, anti-aliased, into a `width × height` gray image: the digit fills a
 * square box of `box` pixels (default 20/28 of the shorter side, as MNIST), centred.
 */
export function drawDigit(digit: string, width: number, height: number, box?: number): Uint8Array {
  const strokes = STROKES[digit];
  if (!strokes) throw new Error(`no stroke path for digit ${digit}`);
  const size = box ?? (Math.min(width, height) * 20) / 28;
  const x0 = (width - size) / 2;
  const y0 = (height - size) / 2;
  const radius = size * 0.065;
  const segments = strokes.flatMap((path) =>
    path.slice(1).map((p, i) => {
      const a = path[i] as Point;
      return [
        [x0 + a[0] * size, y0 + a[1] * size],
        [x0 + p[0] * size, y0 + p[1] * size],
      ] as [Point, Point];
    }),
  );
  const out = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let d = Number.POSITIVE_INFINITY;
      for (const [a, b] of segments) d = Math.min(d, segmentDistance(x + 0.5, y + 0.5, a, b));
      out[y * width + x] = Math.round(255 * Math.max(0, Math.min(1, radius + 0.5 - d)));
    }
  }
  return out;
}

/** A gray image as an 8-bit grayscale PNG. */
export function grayPng(gray: Uint8Array, width: number, height: number): Uint8Array {
  return encodePng({ width, height, data: gray, channels: 1, depth: 8 });
}

/** A gray image as an RGB JPEG (jpeg-js, 4:2:0) of `quality`. */
export function grayJpeg(gray: Uint8Array, width: number, height: number, quality = 90): Uint8Array {
  const rgba = new Uint8Array(width * height * 4);
  for (let i = 0; i < gray.length; i++)
    rgba.fill(gray[i] as number, i * 4, i * 4 + 3).fill(255, i * 4 + 3, i * 4 + 4);
  return new Uint8Array(encodeJpeg({ width, height, data: rgba }, quality).data);
}

/** Base64 (standard alphabet) of `bytes`. */
export function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("base64");
}
