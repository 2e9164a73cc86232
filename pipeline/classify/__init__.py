"""Study classifier: exact rules + calibrated linear models over title, abstract and metadata.

Public entry points: `service.classify_store`, `service.train_command`,
`service.evaluate_command` (the `kea` subcommands), `predict.predict_articles`,
`registry.get_model`, `train.load_model` (the portable artefact, `portable`),
`card.model_card` (the metadata the dashboard shows), `text.article_from_record`.
"""
