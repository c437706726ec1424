/**
 * Bank-transaction features for the online learner: a sample's fields become one line of
 * featurizer words, which the one text featurizer (`src/featurizer/text.ts`) hashes. The learner
 * (Durable Object), the offline evaluation and the edge predict path all call `bankFeatures` /
 * `bankText`, and every exported snapshot records `BANK_FEATURIZER` as its featurizer spec, so a
 * client may also send `bankText(sample)` to `POST /api/v1/predict` with the snapshot's model id.
 *
 * Words (version 1): `co_<CompanyId>`, `am_<BankEntryAmount>`, and for each whitespace token t of
 * BankEntryText `tx_<t>` and `ct_<CompanyId>_<t>` (company × token), plus `ca_<CompanyId>_<amount>`,
 * `fi_<first token>` and `cf_<CompanyId>_<first token>`. Field values are escaped so each word is
 * one featurizer token (`escapeWord`). Unigrams only, binary tf, L2 norm, 2^12 buckets: the
 * exported int8 matrix is 4,096 × labels bytes (1,682 accounts in the whole dataset → 6.9 MB).
 */
import { BANK_FEATURIZER } from "../contracts/manifest";
import { featurize, type SparseFeatures } from "../featurizer/text";

/** Version of the sample → words mapping; recorded in each snapshot's description (`BANK_INPUT_TAG`). */
export const BANK_FEATURES_VERSION = 1;
/** Marker in a snapshot manifest's description naming the input mapping it was trained with. */
export const BANK_INPUT_TAG = `input=bank-sample-v${BANK_FEATURES_VERSION}`;

/** The fields a prediction needs (a labelled sample has more; see `src/online/sample.ts`). */
export interface BankInput {
  CompanyId: string;
  BankEntryText: string;
  BankEntryAmount: string;
}

/**
 * Makes `value` safe inside one featurizer word: letters and digits stay, every other character
 * becomes `_<hex code point>_` (so `int:a05` → `int_3a_a05`, `> -100` → `_3e__20__2d_100`).
 */
export function escapeWord(value: string): string {
  return value.replace(/[^\p{L}\p{N}]/gu, (ch) => `_${(ch.codePointAt(0) as number).toString(16)}_`);
}

/** The featurizer words of a sample, space-separated (see the module comment). */
export function bankText(input: BankInput): string {
  const company = escapeWord(input.CompanyId);
  const amount = escapeWord(input.BankEntryAmount);
  const tokens = input.BankEntryText.split(/\s+/u).filter(Boolean).map(escapeWord);
  const words = [`co_${company}`, `am_${amount}`, `ca_${company}_${amount}`];
  for (const t of tokens) words.push(`tx_${t}`, `ct_${company}_${t}`);
  if (tokens[0] !== undefined) words.push(`fi_${tokens[0]}`, `cf_${company}_${tokens[0]}`);
  return words.join(" ");
}

/** Hashed features of a sample: `featurize(bankText(input), BANK_FEATURIZER)`. */
export function bankFeatures(input: BankInput): SparseFeatures {
  return featurize(bankText(input), BANK_FEATURIZER);
}
