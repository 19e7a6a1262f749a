-- Leaderboard: one row per (benchmark, stage) from eval_scores, the latest run of each pair.
-- Percent columns are 100 x the stored fractions. pass_at_1 is the mean over problems of each
-- problem's mean correctness over its n_samples sampled completions; stderr_pct is its standard
-- error (std over problems of the per-problem means / sqrt(n_problems); null with < 2 problems).
-- maj_at_k_pct: majority vote over the first k samples; greedy_pct: one temperature-0 completion
-- per problem (null when greedy was off). pass_at_1_text is "mean ± stderr" for tables.
-- Stages are ordered base, direct_sft, sft, direct_rl, rl, then any other name alphabetically.
WITH latest AS (
    SELECT *
    FROM eval_scores
    QUALIFY row_number() OVER (PARTITION BY benchmark, stage ORDER BY created_at DESC) = 1
)
SELECT
    benchmark,
    stage,
    n_problems,
    n_samples,
    round(100 * pass_at_1, 1) AS pass_at_1_pct,
    round(100 * stderr, 1) AS stderr_pct,
    CASE
        WHEN pass_at_1 IS NULL THEN NULL
        WHEN stderr IS NULL THEN printf('%.1f', 100 * pass_at_1)
        ELSE printf('%.1f ± %.1f', 100 * pass_at_1, 100 * stderr)
    END AS pass_at_1_text,
    k,
    round(100 * maj_at_k, 1) AS maj_at_k_pct,
    round(100 * greedy, 1) AS greedy_pct,
    round(mean_tokens, 1) AS mean_tokens,
    round(100 * truncated_share, 1) AS truncated_pct,
    temperature,
    top_p,
    seed,
    model_path,
    created_at
FROM latest
ORDER BY
    benchmark,
    CASE stage WHEN 'base' THEN 0 WHEN 'direct_sft' THEN 1 WHEN 'sft' THEN 2 WHEN 'direct_rl' THEN 3 WHEN 'rl' THEN 4 ELSE 5 END,
    stage
