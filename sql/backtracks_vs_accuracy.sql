-- Backtracks vs accuracy. One row per (benchmark, stage, backtrack bucket) of sampled completions
-- (eval_generations with sample >= 0; the greedy completion is left out), with:
--   n_completions, accuracy     completions in the bucket and the share of them that are correct;
--   r_per_sample                Pearson r between n_backtracks and correct (0/1) over all sampled
--                               completions of that (benchmark, stage): do completions that backtrack
--                               more tend to be right? (same value on every bucket row of the pair);
--   r_per_problem, n_problems   Pearson r over the pair's problems between a problem's mean backtracks
--                               per sample and its share of correct samples: are the problems the
--                               model backtracks on more the ones it solves more? (same on every row);
--   r_across_stages, n_stages   Pearson r between a stage's mean_backtracks and its pass_at_1 across the
--                               stages of the benchmark (eval_scores, latest run per pair): the paper's
--                               statistic (r about 0.82-0.85), which it computes across training
--                               checkpoints; with our 2-5 stages it rests on few points, so n_stages is
--                               given beside it (same value on every row of the benchmark).
-- A correlation is null where it is undefined (fewer than 2 points or no variance, e.g. when no
-- reflection counter ran and every n_backtracks is 0; such stages, backtracks_counted = false, are
-- left out of r_across_stages). Buckets: 0, 1, 2, 3, 4-7, 8+.
WITH sampled AS (
    SELECT benchmark, stage, problem_id, n_backtracks, CASE WHEN correct THEN 1.0 ELSE 0.0 END AS correct
    FROM eval_generations
    WHERE sample >= 0
),
bucketed AS (
    SELECT
        *,
        CASE WHEN n_backtracks <= 3 THEN n_backtracks WHEN n_backtracks <= 7 THEN 4 ELSE 8 END AS bucket_order,
        CASE
            WHEN n_backtracks <= 3 THEN CAST(n_backtracks AS VARCHAR)
            WHEN n_backtracks <= 7 THEN '4-7'
            ELSE '8+'
        END AS backtracks_bucket
    FROM sampled
),
per_sample AS (
    SELECT benchmark, stage, corr(n_backtracks, correct) AS r
    FROM sampled
    GROUP BY benchmark, stage
),
per_problem AS (
    SELECT benchmark, stage, problem_id, avg(n_backtracks) AS backtracks, avg(correct) AS accuracy
    FROM sampled
    GROUP BY benchmark, stage, problem_id
),
problem_corr AS (
    SELECT benchmark, stage, corr(backtracks, accuracy) AS r, count(*) AS n_problems
    FROM per_problem
    GROUP BY benchmark, stage
),
latest_scores AS (
    SELECT benchmark, stage, mean_backtracks, pass_at_1
    FROM eval_scores
    WHERE backtracks_counted
    QUALIFY row_number() OVER (PARTITION BY benchmark, stage ORDER BY created_at DESC) = 1
),
across_stages AS (
    SELECT benchmark, corr(mean_backtracks, pass_at_1) AS r, count(*) AS n_stages
    FROM latest_scores
    WHERE mean_backtracks IS NOT NULL AND pass_at_1 IS NOT NULL
    GROUP BY benchmark
)
SELECT
    b.benchmark,
    b.stage,
    b.backtracks_bucket,
    count(*) AS n_completions,
    avg(b.correct) AS accuracy,
    any_value(CASE WHEN isnan(p.r) THEN NULL ELSE p.r END) AS r_per_sample,
    any_value(CASE WHEN isnan(a.r) THEN NULL ELSE a.r END) AS r_across_stages,
    any_value(a.n_stages) AS n_stages,
    any_value(CASE WHEN isnan(q.r) THEN NULL ELSE q.r END) AS r_per_problem,
    any_value(q.n_problems) AS n_problems
FROM bucketed AS b
LEFT JOIN per_sample AS p USING (benchmark, stage)
LEFT JOIN problem_corr AS q USING (benchmark, stage)
LEFT JOIN across_stages AS a USING (benchmark)
GROUP BY b.benchmark, b.stage, b.backtracks_bucket, b.bucket_order
ORDER BY
    b.benchmark,
    CASE b.stage WHEN 'base' THEN 0 WHEN 'direct_sft' THEN 1 WHEN 'sft' THEN 2 WHEN 'direct_rl' THEN 3 WHEN 'rl' THEN 4 ELSE 5 END,
    b.stage,
    b.bucket_order
