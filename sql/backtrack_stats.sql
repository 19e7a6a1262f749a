-- Backtracks, reflections and CoT length of the CoT corpus, per dataset and kind
-- (kinds: direct / search = the ASTRO corpus, direct_arm = the Direct-arm ablation).
-- One row per (dataset, kind):
--   n_examples, examples_bt_0 / _1 / _2 / _3plus (examples with that many backtracks),
--   backtrack_histogram (list of {n_backtracks, n_examples}, ascending, every observed count),
--   mean_backtracks, mean_reflections, tokens_mean / tokens_p50 / tokens_p90 / tokens_max
--   (n_tokens of the completion; see cot_examples.n_tokens_method for how they were counted).
-- A single SELECT without a trailing semicolon, so it can also back a view.
WITH hist AS (
    SELECT dataset, kind, n_backtracks, count(*) AS n_examples
    FROM cot_examples
    GROUP BY dataset, kind, n_backtracks
),
hist_lists AS (
    SELECT
        dataset,
        kind,
        list({'n_backtracks': n_backtracks, 'n_examples': n_examples} ORDER BY n_backtracks) AS backtrack_histogram
    FROM hist
    GROUP BY dataset, kind
),
per_kind AS (
    SELECT
        dataset,
        kind,
        count(*) AS n_examples,
        count(*) FILTER (WHERE n_backtracks = 0) AS examples_bt_0,
        count(*) FILTER (WHERE n_backtracks = 1) AS examples_bt_1,
        count(*) FILTER (WHERE n_backtracks = 2) AS examples_bt_2,
        count(*) FILTER (WHERE n_backtracks >= 3) AS examples_bt_3plus,
        avg(n_backtracks) AS mean_backtracks,
        avg(n_reflections) AS mean_reflections,
        avg(n_tokens) AS tokens_mean,
        quantile_cont(n_tokens, 0.5) AS tokens_p50,
        quantile_cont(n_tokens, 0.9) AS tokens_p90,
        max(n_tokens) AS tokens_max
    FROM cot_examples
    GROUP BY dataset, kind
)
SELECT p.*, h.backtrack_histogram
FROM per_kind AS p
JOIN hist_lists AS h USING (dataset, kind)
ORDER BY p.dataset, p.kind
