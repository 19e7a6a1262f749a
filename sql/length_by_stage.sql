-- Completion length by (benchmark, stage) over eval_generations, sampled completions only
-- (the greedy completion, sample = -1, is left out so every row describes the same sampling).
-- Rows with benchmark = 'all' pool every benchmark of a stage. Lengths are generated tokens
-- (n_tokens; completions with unknown length are skipped by the token statistics but counted in
-- n_completions). p50/p90 are interpolated quantiles (quantile_cont). truncated_share: completions
-- that hit the token budget (finish_reason = 'length').
SELECT
    coalesce(benchmark, 'all') AS benchmark,
    stage,
    count(*) AS n_completions,
    avg(n_tokens) AS mean_tokens,
    quantile_cont(n_tokens, 0.5) AS p50_tokens,
    quantile_cont(n_tokens, 0.9) AS p90_tokens,
    max(n_tokens) AS max_tokens,
    avg(CASE WHEN finish_reason = 'length' THEN 1.0 ELSE 0.0 END) AS truncated_share
FROM eval_generations
WHERE sample >= 0
GROUP BY GROUPING SETS ((benchmark, stage), (stage))
ORDER BY
    benchmark IS NULL,
    benchmark,
    CASE stage WHEN 'base' THEN 0 WHEN 'direct_sft' THEN 1 WHEN 'sft' THEN 2 WHEN 'direct_rl' THEN 3 WHEN 'rl' THEN 4 ELSE 5 END,
    stage
