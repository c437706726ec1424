/**
 * Training augmentation against identity and address bias (issue #28), for the `toxicity` model.
 *
 * In the Jigsaw 2018 sample, identity words ("gay", "muslim", "black") and second-person phrasing
 * ("you are a …") occur mostly in toxic comments, so a bag of n-grams learns them as toxic on their
 * own. These generated sentences show the model the same identity terms and address forms in
 * benign sentences, and — as often, per term — in toxic ones, so that the identity term carries no
 * evidence either way and the insult does.
 *
 * Disjoint from the evaluation (`fairness.ts`) by construction: other templates, other names,
 * occupations, adjectives and insults (`test/fairness.test.ts` checks that no filler word of one is
 * in the other and that no evaluation sentence is generated here), and the evaluation's
 * `HELD_OUT_TERMS` are never used. It adds identity terms the evaluation does not have.
 */
import { fillTemplate, HELD_OUT_TERMS, IDENTITY_TERMS } from "./fairness";

/** Terms that only the augmentation uses (the evaluation never sees them). */
export const AUGMENT_EXTRA_TERMS: readonly string[] = [
  "two-spirit",
  "agender",
  "korean",
  "vietnamese",
  "filipino",
  "brazilian",
  "ukrainian",
  "turkish",
  "polish",
  "irish",
  "jamaican",
  "ethiopian",
  "jain",
  "sunni",
  "shia",
  "orthodox",
  "deafblind",
  "wheelchair-using",
  "elder",
  "senior",
];

/** The augmentation's identity terms: the evaluation's minus the held-out ones, plus its own. */
export function augmentTerms(): string[] {
  const held = new Set(HELD_OUT_TERMS);
  return [
    ...Object.values(IDENTITY_TERMS)
      .flat()
      .filter((t) => !held.has(t)),
    ...AUGMENT_EXTRA_TERMS,
  ];
}

/** Filler vocabulary of the augmentation (none of these words is in `EVAL_VOCABULARY`). */
export const AUGMENT_VOCABULARY = {
  names: ["Hannah", "Omar", "Yuki", "Carlos", "Amara", "Tomasz", "Leila", "Viktor", "Noor", "Isaac", "Rosa"],
  occupations: [
    "plumber",
    "accountant",
    "dentist",
    "firefighter",
    "baker",
    "scientist",
    "cashier",
    "painter",
    "editor",
    "coach",
  ],
  adjectives: [
    "thoughtful",
    "lovely",
    "amazing",
    "helpful",
    "honest",
    "clever",
    "warm",
    "cheerful",
    "patient",
  ],
  insults: ["imbecile", "cretin", "dimwit", "parasite", "halfwit", "clown", "degenerate"],
  slurs: ["dumb", "repulsive", "useless", "vile", "brainless", "miserable"],
};

/**
 * Templates (slots as in `fairness.ts`: `{t}` term, `{a}` article, `{n}` name, `{o}` occupation, `{j}`
 * adjective, `{x}` insult noun, `{s}` insulting adjective). `hate`: the toxic sentence attacks the
 * identity itself (also labelled `identity_hate`); otherwise it insults a person (also `insult`).
 */
export const AUGMENT_TEMPLATES = {
  benign: [
    "we had a great time with our {t} friends last night",
    "{n} told me about growing up {t}, it was fascinating",
    "speaking as {a} {t} {o}, I think this edit is fine",
    "you are such {a} {j} {o}, thanks for all the help",
    "you're {t}? cool, so am I",
    "hey, you're a {j} person, don't let anyone tell you otherwise",
    "the {t} community here organised a food drive",
    "our {o} {n} is {t} and really {j}",
    "{t} folks are welcome at the meetup on friday",
    "as {a} {t} woman I found the history section useful",
    "as {a} {t} man, this article helped me a lot",
    "i think you are {a} {j} writer",
    "{t} culture has a long and rich history",
    "glad to see more {t} {o}s in this field",
    "my {t} grandmother taught me to cook",
    "you are {t} and you are {j}",
  ],
  toxic: [
    { text: "you are a {s} {x} and should be banned", hate: false },
    { text: "{n} is a {s} {t} {x}, ignore everything {n} writes", hate: false },
    { text: "get lost you {s} {x}", hate: false },
    { text: "{t} people are {x}s and should not be allowed here", hate: true },
    { text: "we don't want any {s} {t} {x}s in this country", hate: true },
    { text: "typical {s} {t} {x}, always whining", hate: true },
    { text: "you {s} {t} {x}, nobody cares about you", hate: true },
    { text: "what a {s} {x} this {t} {o} is", hate: false },
  ],
} as const;

/** One augmentation row: text and the `toxicity` targets (−1 = unknown). */
export interface AugmentRow {
  text: string;
  target: number[];
}

/**
 * The generated rows, deterministic: per term, every benign template once and every toxic template
 * once (half of the toxic ones with each of two fillers), fillers rotated by term and template.
 * Labels (toxicity's order: toxic, severe_toxic, obscene, threat, insult, identity_hate): benign →
 * all 0; toxic → toxic 1, insult 1 or identity_hate 1 by template, the rest unknown.
 */
export function identityAugmentation(): AugmentRow[] {
  const v = AUGMENT_VOCABULARY;
  const pick = <T>(xs: readonly T[], i: number): T => xs[i % xs.length] as T;
  const rows: AugmentRow[] = [];
  const seen = new Set<string>();
  const push = (text: string, target: number[]) => {
    if (seen.has(text)) return;
    seen.add(text);
    rows.push({ text, target });
  };
  augmentTerms().forEach((term, ti) => {
    let slot = ti * 5;
    const fill = (template: string) => {
      slot++;
      return fillTemplate(template, {
        t: term,
        n: pick(v.names, slot),
        o: pick(v.occupations, slot * 3),
        j: pick(v.adjectives, slot * 7),
        x: pick(v.insults, slot * 2),
        s: pick(v.slurs, slot),
      });
    };
    for (const template of AUGMENT_TEMPLATES.benign) push(fill(template), [0, 0, 0, 0, 0, 0]);
    for (const { text, hate } of AUGMENT_TEMPLATES.toxic)
      push(fill(text), [1, -1, -1, -1, hate ? -1 : 1, hate ? 1 : -1]);
  });
  return rows;
}

/** Words that keep a tweet out of the benign augmentation (profanity is often labelled toxic). */
const PROFANITY =
  /fuck|shit|bitch|cunt|dick|bastard|whore|slut|fag|nigg|retard|\bass\b|asshole|crap|piss|suck|damn|hell\b|stupid|idiot|hate|kill|die\b/i;

/** Whether a positive tweet may be used as a benign training row (no profanity or violent word). */
export const cleanTweet = (text: string): boolean => !PROFANITY.test(text);
