-- Search statistics per dataset over the tree_nodes table (one row per MCTS node).
-- n_trees: searched problems; mean_nodes: nodes per tree; share_with_correct: trees with at least
-- one correct terminal; share_with_both: trees with a correct AND an incorrect terminal (the ones
-- procedure cloning can turn into backtracking traces); mean_terminal_depth: mean depth over all
-- terminal nodes of the dataset (a terminal without an answer counts as incorrect).
WITH per_tree AS (
    SELECT
        dataset,
        problem_id,
        count(*) AS n_nodes,
        coalesce(bool_or(is_terminal AND correct), false) AS has_correct,
        coalesce(bool_or(is_terminal AND NOT coalesce(correct, false)), false) AS has_incorrect
    FROM tree_nodes
    GROUP BY dataset, problem_id
),
terminal_depth AS (
    SELECT dataset, avg(depth) AS mean_terminal_depth
    FROM tree_nodes
    WHERE is_terminal
    GROUP BY dataset
)
SELECT
    t.dataset,
    count(*) AS n_trees,
    avg(t.n_nodes) AS mean_nodes,
    avg(CASE WHEN t.has_correct THEN 1.0 ELSE 0.0 END) AS share_with_correct,
    avg(CASE WHEN t.has_correct AND t.has_incorrect THEN 1.0 ELSE 0.0 END) AS share_with_both,
    any_value(d.mean_terminal_depth) AS mean_terminal_depth
FROM per_tree AS t
LEFT JOIN terminal_depth AS d USING (dataset)
GROUP BY t.dataset
ORDER BY t.dataset
