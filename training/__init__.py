"""`python -m training`: train, evaluate, sample and publish every family of the gallery.

Each family's trainer is reached through its registry entry: ``FAMILIES[name].make_trainer()``.
"""
