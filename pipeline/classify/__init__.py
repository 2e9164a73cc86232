"""Study classifier: exact rules + calibrated linear models over title, abstract and metadata.

Public entry points: `service.classify_store`, `service.train_command`,
`service.evaluate_command` (the `kea` subcommands), `predict.predict_articles`,
`registry.get_model`, `train.load_model`, `text.article_from_record`.
"""
