-- How each stage answers, per (benchmark, stage) of sampled completions (eval_generations with
-- sample >= 0; the greedy completion is left out):
--   n_completions      sampled completions stored;
--   truncated_share    share cut at the token budget (finish_reason = 'length');
--   backtrack_share    share with at least one counted backtrack (n_backtracks > 0); null when the
--                      latest scores row says no reflection counter ran (backtracks_counted false);
--   mean_backtracks    backtracks per completion (null likewise).
-- Stages are ordered base, direct_sft, sft, direct_rl, rl, then any other name alphabetically.
WITH latest AS (
    SELECT benchmark, stage, backtracks_counted
    FROM eval_scores
    QUALIFY row_number() OVER (PARTITION BY benchmark, stage ORDER BY created_at DESC) = 1
)
SELECT
    g.benchmark,
    g.stage,
    count(*) AS n_completions,
    avg(CASE WHEN g.finish_reason = 'length' THEN 1.0 ELSE 0.0 END) AS truncated_share,
    CASE WHEN coalesce(any_value(l.backtracks_counted), true)
         THEN avg(CASE WHEN g.n_backtracks > 0 THEN 1.0 ELSE 0.0 END) END AS backtrack_share,
    CASE WHEN coalesce(any_value(l.backtracks_counted), true) THEN avg(g.n_backtracks) END AS mean_backtracks
FROM eval_generations AS g
LEFT JOIN latest AS l USING (benchmark, stage)
WHERE g.sample >= 0
GROUP BY g.benchmark, g.stage
ORDER BY
    g.benchmark,
    CASE g.stage WHEN 'base' THEN 0 WHEN 'direct_sft' THEN 1 WHEN 'sft' THEN 2 WHEN 'direct_rl' THEN 3 WHEN 'rl' THEN 4 ELSE 5 END,
    g.stage
