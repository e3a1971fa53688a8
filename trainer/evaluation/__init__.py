"""Honest full-catalogue evaluation: metrics, the evaluator, baselines, slices, the report.

  metrics     ranks with pessimistic ties, HR/NDCG/MRR, coverage, binary metrics
  evaluator   `evaluate_ranking(score_fn, examples, catalogue_ids, seen)`, `SeenItems`
  baselines   popularity, repeat_frequency, cooccurrence, tfrs_two_tower_ids; `evaluate_baselines`
  slices      cold items, local time of day, region
  report      metrics.json (`build_metrics`, `write_metrics_json`) and report.md (`write_report`)
"""
