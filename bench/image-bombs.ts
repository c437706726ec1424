/**
 * The decode-bomb part of `npm run bench` alone: `npx tsx bench/image-bombs.ts [name…]` prints, as
 * JSON, the time the Worker's decoder takes to refuse each hostile file (or to decode the valid
 * ones at the pixel limit), min/median/max over BENCH_BOMB_ROUNDS rounds (default 7).
 */
import { measureBombTimes } from "./image-time";

const names = process.argv.slice(2);
const rounds = Number(process.env.BENCH_BOMB_ROUNDS ?? 7);
console.log(
  JSON.stringify(measureBombTimes(rounds, undefined, names.length > 0 ? names : undefined), null, 2),
);
