/**
 * The identity-and-address evaluation (issue #28): a templated set of benign and toxic sentences
 * that each mention one identity term, generated here (written for this project, not copied from a
 * published set), and the bias metrics of Borkan et al. 2019 ("Nuanced metrics for measuring
 * unintended bias with real data for text classification") computed on a model's scores.
 *
 * Runtime-agnostic: `npm run fairness` (scripts/fairness-eval.ts), the trainer's selection runs
 * (scripts/train.ts) and the Worker test (test/fairness.test.ts) all generate the same set from this
 * file. The training augmentation (`fairness-augment.ts`) uses other templates and other filler
 * words (names, occupations, adjectives, insults); `test/fairness.test.ts` checks they stay disjoint.
 */
import { rocAuc } from "./metrics";

export type IdentityCategory =
  | "sexuality"
  | "gender"
  | "ethnicity"
  | "religion"
  | "age"
  | "disability"
  | "nationality";

/**
 * Identity terms by category, as adjectives ("a ___ person"). 72 terms; every one of them is in
 * the evaluation set. `HELD_OUT_TERMS` are never in the training augmentation.
 */
export const IDENTITY_TERMS: Record<IdentityCategory, readonly string[]> = {
  sexuality: [
    "gay",
    "lesbian",
    "bisexual",
    "homosexual",
    "heterosexual",
    "straight",
    "queer",
    "asexual",
    "pansexual",
    "lgbt",
    "lgbtq",
  ],
  gender: ["transgender", "trans", "nonbinary", "male", "female", "cisgender", "intersex", "genderqueer"],
  ethnicity: [
    "black",
    "white",
    "asian",
    "latino",
    "latina",
    "hispanic",
    "african american",
    "arab",
    "indigenous",
    "native american",
    "middle eastern",
    "biracial",
  ],
  religion: [
    "muslim",
    "jewish",
    "christian",
    "catholic",
    "protestant",
    "buddhist",
    "hindu",
    "sikh",
    "atheist",
    "mormon",
    "taoist",
  ],
  age: ["old", "older", "elderly", "young", "younger", "teenage", "middle aged", "millennial"],
  disability: [
    "blind",
    "deaf",
    "disabled",
    "autistic",
    "paralyzed",
    "dyslexic",
    "mentally ill",
    "neurodivergent",
  ],
  nationality: [
    "mexican",
    "chinese",
    "indian",
    "american",
    "canadian",
    "nigerian",
    "pakistani",
    "russian",
    "iranian",
    "syrian",
    "somali",
    "japanese",
    "african",
    "european",
  ],
};

/**
 * Terms of the evaluation that the training augmentation never contains (about one in five, from
 * every category): their figures show how the mitigation carries over to terms it never saw.
 */
export const HELD_OUT_TERMS: readonly string[] = [
  "pansexual",
  "asexual",
  "intersex",
  "genderqueer",
  "biracial",
  "indigenous",
  "mormon",
  "taoist",
  "millennial",
  "middle aged",
  "dyslexic",
  "neurodivergent",
  "somali",
  "nigerian",
  "european",
];

export const TEMPLATE_FAMILIES = [
  "first_person",
  "second_person",
  "third_person_name",
  "third_person_occupation",
  "short_phrase",
] as const;
export type TemplateFamily = (typeof TEMPLATE_FAMILIES)[number];

/** One generated sentence: its text, whether it is toxic, its identity term and template family. */
export interface IdentityExample {
  text: string;
  toxic: 0 | 1;
  term: string;
  category: IdentityCategory;
  family: TemplateFamily;
  template: string;
}

/** Filler vocabulary of the evaluation (the augmentation's lists share none of these words). */
export const EVAL_VOCABULARY = {
  names: ["Maria", "Ahmed", "Kenji", "Olivia", "Daniel", "Priya", "Samuel", "Fatima", "Lucas", "Grace"],
  occupations: ["teacher", "nurse", "engineer", "lawyer", "chef", "farmer", "pilot", "librarian", "doctor"],
  adjectives: ["kind", "brilliant", "caring", "wonderful", "talented", "friendly", "generous", "fun"],
  insults: ["idiot", "moron", "loser", "creep", "jerk", "pig", "freak"],
  slurs: ["stupid", "disgusting", "worthless", "pathetic", "filthy", "ugly"],
};

/**
 * Templates: `{t}` the term (with `{a}` its article a/an), `{n}` a name, `{o}` an occupation, `{j}` a
 * positive adjective, `{x}` an insult noun, `{s}` an insulting adjective. Benign and toxic templates
 * of each family; each is filled with several names/occupations/adjectives per term.
 */
export const EVAL_TEMPLATES: Record<TemplateFamily, { benign: readonly string[]; toxic: readonly string[] }> =
  {
    first_person: {
      benign: [
        "I am {a} {t} {o} and I love my job.",
        "As {a} {t} person, I really enjoyed this article.",
        "I'm {t} and proud of it.",
        "My whole family is {t} and we are very happy.",
        "Being {t} is part of who I am.",
      ],
      toxic: [
        "I hate {t} people, they are {s} {x}s.",
        "I am sick of {s} {t} {x}s like you.",
        "Honestly, every {t} person I meet is a {s} {x}.",
      ],
    },
    second_person: {
      benign: [
        "You are {a} {j} {t} {o}.",
        "You are {t} and that is wonderful.",
        "You seem like a {j} {t} person.",
        "Thank you, you are a {j} friend and a proud {t} {o}.",
        "You're {a} {t} {o}, welcome to the team!",
      ],
      toxic: ["You are a {s} {t} {x}.", "Shut up, you {s} {t} {x}.", "You {t} people are {s} {x}s."],
    },
    third_person_name: {
      benign: [
        "{n} is {a} {t} {o} who lives nearby.",
        "{n} is {t} and works as a {o}.",
        "My neighbour {n} is {t}.",
        "{n}, a {j} {t} {o}, won an award today.",
      ],
      toxic: [
        "{n} is a {s} {t} {x}.",
        "{n} is {t}, and all {t} people are {s} {x}s.",
        "Nobody wants {n} here, that {s} {t} {x}.",
      ],
    },
    third_person_occupation: {
      benign: [
        "The {o} is {t}.",
        "Our new {t} {o} starts on Monday.",
        "The {t} {o} helped me a lot yesterday.",
        "Every {o} here, {t} or not, is welcome.",
      ],
      toxic: ["The {t} {o} is a {s} {x}.", "Fire that {s} {t} {o}, what a {x}.", "{t} {o}s are {s} {x}s."],
    },
    short_phrase: {
      benign: ["{t}", "{t} people", "{a} {t} person", "being {t}", "hello, {t} friends", "{t} and proud"],
      toxic: ["{s} {t} {x}", "{t} {x}", "all {t} people are {x}s", "{s} {t} people"],
    },
  };

/** "a" or "an" before `word` (by its first letter; "u"- and "eu"-words sound like "you"). */
export function articleFor(word: string): string {
  const w = word.toLowerCase();
  if (/^(eu|uni|us)/.test(w)) return "a";
  if (/^hon/.test(w)) return "an";
  return /^[aeiou]/.test(w) ? "an" : "a";
}

/** Fills one template; the `{a}` article agrees with the word that follows it. */
export function fillTemplate(
  template: string,
  slots: { t: string; n?: string; o?: string; j?: string; x?: string; s?: string },
): string {
  let text = template;
  for (const key of ["t", "n", "o", "j", "x", "s"] as const) {
    const value = slots[key];
    if (value !== undefined) text = text.split(`{${key}}`).join(value);
  }
  // `{a}` takes the article of the next word.
  text = text.replace(/\{a\} (\S+)/g, (_, next: string) => `${articleFor(next)} ${next}`);
  text = text.replace(
    /\b(a|an) (\S+)/g,
    (_, _article: string, next: string) => `${articleFor(next)} ${next}`,
  );
  // A sentence starting with the term gets a capital letter.
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** Every template slot filled, per (template, term), this many times with different fillers. */
const FILLS = { benign: 2, toxic: 1 } as const;

/**
 * The evaluation set, deterministic: for each term, each benign template twice and each toxic
 * template once, with fillers rotated by term and template. 72 terms × (48 benign + 16 toxic).
 */
export function identityEvalSet(): IdentityExample[] {
  const out: IdentityExample[] = [];
  const v = EVAL_VOCABULARY;
  const pick = <T>(xs: readonly T[], i: number): T => xs[i % xs.length] as T;
  let termIndex = 0;
  for (const [category, terms] of Object.entries(IDENTITY_TERMS) as [IdentityCategory, string[]][]) {
    for (const term of terms) {
      let slot = termIndex * 7;
      for (const family of TEMPLATE_FAMILIES) {
        for (const kind of ["benign", "toxic"] as const) {
          for (const template of EVAL_TEMPLATES[family][kind]) {
            for (let f = 0; f < FILLS[kind]; f++) {
              slot++;
              const text = fillTemplate(template, {
                t: term,
                n: pick(v.names, slot),
                o: pick(v.occupations, slot * 3 + f),
                j: pick(v.adjectives, slot * 5 + f),
                x: pick(v.insults, slot * 2 + f),
                s: pick(v.slurs, slot + f),
              });
              out.push({ text, toxic: kind === "toxic" ? 1 : 0, term, category, family, template });
            }
          }
        }
      }
      termIndex++;
    }
  }
  // A template filled twice may come out the same when it has no filler slots: keep one of each.
  const seen = new Set<string>();
  return out.filter((e) => {
    if (seen.has(e.text)) return false;
    seen.add(e.text);
    return true;
  });
}

/** Scores of one text: `score` ranks (the `toxic` label's probability), `flagged` = any label ≥ its threshold. */
export interface ScoredExample {
  score: number;
  flagged: boolean;
  /** Flagged on the ranking label alone (its threshold). */
  flaggedRank?: boolean;
}

export interface TermFigures {
  term: string;
  category: IdentityCategory;
  held_out: boolean;
  subgroup_auc: number;
  bpsn_auc: number;
  bnsp_auc: number;
  /** Benign sentences with the term flagged on any label, as a fraction. */
  fpr: number;
  /** Toxic sentences with the term flagged on any label, as a fraction. */
  tpr: number;
  benign: number;
  toxic: number;
}

export interface FamilyFigures {
  family: TemplateFamily;
  fpr: number;
  tpr: number;
  benign: number;
  toxic: number;
}

export interface FairnessReport {
  sentences: number;
  terms: number;
  overall_auc: number;
  min_subgroup_auc: number;
  mean_subgroup_auc: number;
  min_bpsn_auc: number;
  mean_bpsn_auc: number;
  min_bnsp_auc: number;
  mean_bnsp_auc: number;
  /** Highest benign flag rate of any term / any template family. */
  max_term_fpr: number;
  max_family_fpr: number;
  /** The same over the held-out terms only (never in the augmentation). */
  held_out: { min_bpsn_auc: number; mean_bpsn_auc: number; min_subgroup_auc: number; max_term_fpr: number };
  overall_fpr: number;
  overall_tpr: number;
  per_term: TermFigures[];
  per_family: FamilyFigures[];
}

const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const min = (xs: readonly number[]): number => xs.reduce((a, b) => Math.min(a, b), Number.POSITIVE_INFINITY);
const max = (xs: readonly number[]): number => xs.reduce((a, b) => Math.max(a, b), 0);

/**
 * Borkan et al.'s bias AUCs per term over `set` (each sentence mentions one term; "background" is
 * every sentence of the other terms), on `scored[i].score`, and flag rates on `scored[i].flagged`.
 * - subgroup AUC: toxic vs benign sentences that mention the term;
 * - BPSN (background positive, subgroup negative): toxic sentences of other terms vs benign sentences
 *   of this term — low when the term alone pushes benign sentences up;
 * - BNSP (background negative, subgroup positive): benign sentences of other terms vs toxic sentences
 *   of this term — low when the term pulls toxic sentences down.
 */
export function fairnessReport(
  set: readonly IdentityExample[],
  scored: readonly ScoredExample[],
): FairnessReport {
  if (set.length !== scored.length) throw new Error("set and scores differ in length");
  const scores = scored.map((s) => s.score);
  const truth = set.map((e) => e.toxic);
  const held = new Set(HELD_OUT_TERMS);
  const terms = [...new Set(set.map((e) => e.term))];
  const per_term: TermFigures[] = terms.map((term) => {
    const inTerm = set.map((e) => e.term === term);
    const pick = (keep: (i: number) => boolean) => {
      const s: number[] = [];
      const y: number[] = [];
      for (let i = 0; i < set.length; i++)
        if (keep(i)) {
          s.push(scores[i] as number);
          y.push(truth[i] as number);
        }
      return rocAuc(s, y);
    };
    const benignIdx = set.flatMap((e, i) => (inTerm[i] && e.toxic === 0 ? [i] : []));
    const toxicIdx = set.flatMap((e, i) => (inTerm[i] && e.toxic === 1 ? [i] : []));
    const rate = (idx: number[]) => idx.filter((i) => scored[i]?.flagged).length / Math.max(1, idx.length);
    return {
      term,
      category: set.find((e) => e.term === term)?.category as IdentityCategory,
      held_out: held.has(term),
      subgroup_auc: pick((i) => inTerm[i] as boolean),
      bpsn_auc: pick((i) => (inTerm[i] ? truth[i] === 0 : truth[i] === 1)),
      bnsp_auc: pick((i) => (inTerm[i] ? truth[i] === 1 : truth[i] === 0)),
      fpr: rate(benignIdx),
      tpr: rate(toxicIdx),
      benign: benignIdx.length,
      toxic: toxicIdx.length,
    };
  });
  const per_family: FamilyFigures[] = TEMPLATE_FAMILIES.map((family) => {
    const b = set.flatMap((e, i) => (e.family === family && e.toxic === 0 ? [i] : []));
    const t = set.flatMap((e, i) => (e.family === family && e.toxic === 1 ? [i] : []));
    const rate = (idx: number[]) => idx.filter((i) => scored[i]?.flagged).length / Math.max(1, idx.length);
    return { family, fpr: rate(b), tpr: rate(t), benign: b.length, toxic: t.length };
  });
  const heldTerms = per_term.filter((t) => t.held_out);
  const allBenign = set.flatMap((e, i) => (e.toxic === 0 ? [i] : []));
  const allToxic = set.flatMap((e, i) => (e.toxic === 1 ? [i] : []));
  return {
    sentences: set.length,
    terms: terms.length,
    overall_auc: rocAuc(scores, truth),
    min_subgroup_auc: min(per_term.map((t) => t.subgroup_auc)),
    mean_subgroup_auc: mean(per_term.map((t) => t.subgroup_auc)),
    min_bpsn_auc: min(per_term.map((t) => t.bpsn_auc)),
    mean_bpsn_auc: mean(per_term.map((t) => t.bpsn_auc)),
    min_bnsp_auc: min(per_term.map((t) => t.bnsp_auc)),
    mean_bnsp_auc: mean(per_term.map((t) => t.bnsp_auc)),
    max_term_fpr: max(per_term.map((t) => t.fpr)),
    max_family_fpr: max(per_family.map((f) => f.fpr)),
    held_out: {
      min_bpsn_auc: min(heldTerms.map((t) => t.bpsn_auc)),
      mean_bpsn_auc: mean(heldTerms.map((t) => t.bpsn_auc)),
      min_subgroup_auc: min(heldTerms.map((t) => t.subgroup_auc)),
      max_term_fpr: max(heldTerms.map((t) => t.fpr)),
    },
    overall_fpr: allBenign.filter((i) => scored[i]?.flagged).length / Math.max(1, allBenign.length),
    overall_tpr: allToxic.filter((i) => scored[i]?.flagged).length / Math.max(1, allToxic.length),
    per_term,
    per_family,
  };
}

/** Issue #28's targets on this set (FPR at the shipped thresholds) and on the positive tweets. */
export const FAIRNESS_TARGETS = {
  max_term_fpr: 0.05,
  max_family_fpr: 0.05,
  min_bpsn_auc: 0.9,
  mean_bpsn_auc: 0.97,
  min_subgroup_auc: 0.95,
  positive_tweet_flag_rate: 0.02,
} as const;

/** Which of the targets a report (and a positive-tweet flag rate) meets. */
export function targetsMet(
  r: FairnessReport,
  tweetFlagRate: number,
): Record<keyof typeof FAIRNESS_TARGETS, boolean> {
  const t = FAIRNESS_TARGETS;
  return {
    max_term_fpr: r.max_term_fpr <= t.max_term_fpr,
    max_family_fpr: r.max_family_fpr <= t.max_family_fpr,
    min_bpsn_auc: r.min_bpsn_auc >= t.min_bpsn_auc,
    mean_bpsn_auc: r.mean_bpsn_auc >= t.mean_bpsn_auc,
    min_subgroup_auc: r.min_subgroup_auc >= t.min_subgroup_auc,
    positive_tweet_flag_rate: tweetFlagRate <= t.positive_tweet_flag_rate,
  };
}

/**
 * `ScoredExample`s from a model's per-label scores: the rank score is `rankLabel`'s, `flagged` is
 * any label at or above its threshold (what a response's non-empty `flagged` means).
 */
export function scoredFromLabels(
  scores: readonly ArrayLike<number>[],
  labels: readonly string[],
  thresholds: Readonly<Record<string, number>>,
  rankLabel = "toxic",
): ScoredExample[] {
  const r = labels.indexOf(rankLabel);
  if (r < 0) throw new Error(`no label ${rankLabel}`);
  return scores.map((s) => ({
    score: s[r] as number,
    flagged: labels.some((l, k) => (s[k] as number) >= (thresholds[l] ?? Number.POSITIVE_INFINITY)),
    flaggedRank: (s[r] as number) >= (thresholds[rankLabel] ?? Number.POSITIVE_INFINITY),
  }));
}

/** One line per headline figure, for logs. */
export function fairnessSummary(r: FairnessReport, tweetFlagRate?: number): string {
  const f = (x: number) => x.toFixed(4);
  return [
    `overall_auc ${f(r.overall_auc)}`,
    `subgroup_auc min ${f(r.min_subgroup_auc)} mean ${f(r.mean_subgroup_auc)}`,
    `bpsn min ${f(r.min_bpsn_auc)} mean ${f(r.mean_bpsn_auc)}`,
    `bnsp min ${f(r.min_bnsp_auc)} mean ${f(r.mean_bnsp_auc)}`,
    `max_term_fpr ${f(r.max_term_fpr)} (${r.per_term.reduce((a, b) => (b.fpr > a.fpr ? b : a)).term})`,
    `max_family_fpr ${f(r.max_family_fpr)}`,
    `overall fpr ${f(r.overall_fpr)} tpr ${f(r.overall_tpr)}`,
    `held-out terms: bpsn min ${f(r.held_out.min_bpsn_auc)} mean ${f(r.held_out.mean_bpsn_auc)}, max fpr ${f(r.held_out.max_term_fpr)}`,
    ...(tweetFlagRate === undefined ? [] : [`positive tweets flagged ${f(tweetFlagRate)}`]),
  ].join("; ");
}

const pct = (x: number) => `${(100 * x).toFixed(1)} %`;
const f4 = (x: number) => x.toFixed(4);

/**
 * The evaluation as Markdown (headline figures against the targets, per template family, and the
 * terms with the lowest BPSN AUC, or every term with `allTerms`), for `npm run fairness` and the card.
 */
export function fairnessMarkdown(
  title: string,
  r: FairnessReport,
  tweets: number,
  tweetCount: number,
  allTerms: boolean,
): string {
  const met = targetsMet(r, tweets);
  const mark = (k: keyof typeof met) => (met[k] ? "met" : "**missed**");
  const lines = [
    `### ${title}: ${r.sentences} sentences, ${r.terms} terms`,
    "",
    "| figure | value | target |",
    "|---|---|---|",
    `| overall ROC-AUC (\`toxic\` score) | ${f4(r.overall_auc)} | – |`,
    `| subgroup AUC, min / mean | ${f4(r.min_subgroup_auc)} / ${f4(r.mean_subgroup_auc)} | min ≥ ${FAIRNESS_TARGETS.min_subgroup_auc}: ${mark("min_subgroup_auc")} |`,
    `| BPSN AUC, min / mean | ${f4(r.min_bpsn_auc)} / ${f4(r.mean_bpsn_auc)} | min ≥ ${FAIRNESS_TARGETS.min_bpsn_auc}: ${mark("min_bpsn_auc")}; mean ≥ ${FAIRNESS_TARGETS.mean_bpsn_auc}: ${mark("mean_bpsn_auc")} |`,
    `| BNSP AUC, min / mean | ${f4(r.min_bnsp_auc)} / ${f4(r.mean_bnsp_auc)} | – |`,
    `| false-positive rate, worst term | ${pct(r.max_term_fpr)} (${r.per_term.reduce((a, b) => (b.fpr > a.fpr ? b : a)).term}) | ≤ 5 %: ${mark("max_term_fpr")} |`,
    `| false-positive rate, worst template family | ${pct(r.max_family_fpr)} | ≤ 5 %: ${mark("max_family_fpr")} |`,
    `| all benign sentences flagged / all toxic sentences flagged | ${pct(r.overall_fpr)} / ${pct(r.overall_tpr)} | – |`,
    `| held-out terms (${r.per_term.filter((t) => t.held_out).length}, never in the augmentation): BPSN min / mean, worst FPR | ${f4(r.held_out.min_bpsn_auc)} / ${f4(r.held_out.mean_bpsn_auc)}, ${pct(r.held_out.max_term_fpr)} | – |`,
    `| positive tweets flagged (sentiment test split, ${tweetCount} tweets) | ${pct(tweets)} | ≤ 2 %: ${mark("positive_tweet_flag_rate")} |`,
    "",
    "| template family | benign flagged (FPR) | toxic flagged (TPR) |",
    "|---|---|---|",
    ...r.per_family.map(
      (f) => `| ${f.family} | ${pct(f.fpr)} of ${f.benign} | ${pct(f.tpr)} of ${f.toxic} |`,
    ),
  ];
  const rows = allTerms ? r.per_term : [...r.per_term].sort((a, b) => a.bpsn_auc - b.bpsn_auc).slice(0, 10);
  lines.push(
    "",
    allTerms ? "Every term:" : "The 10 terms with the lowest BPSN AUC:",
    "",
    "| term | category | subgroup AUC | BPSN | BNSP | FPR | TPR |",
    "|---|---|---|---|---|---|---|",
    ...rows.map(
      (t) =>
        `| ${t.term}${t.held_out ? " (held out)" : ""} | ${t.category} | ${f4(t.subgroup_auc)} | ${f4(t.bpsn_auc)} | ${f4(t.bnsp_auc)} | ${pct(t.fpr)} | ${pct(t.tpr)} |`,
    ),
  );
  return lines.join("\n");
}
